"""The processes of a container, as `docker top` shows them.

Like dockerd: run the host's `ps` with the caller's ps_args (default `-ef`),
keep the lines whose PID is in the container's cgroup, and join everything
after the second-to-last title into the last column (CMD).  Without a `ps`
binary, the default columns (UID PID PPID C STIME TTY TIME CMD) are built
from /proc.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import re
import shutil
import time
from typing import Any

from ..errors import Conflict, InvalidParameter

DEFAULT_ARGS = "-ef"
PS_COLUMNS = "8192"
DEFAULT_TITLES = ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
_ASSIGN_PID = re.compile(r"\s+(\S*)=\s*(PID\S*)")


def validate_ps_args(ps_args: str) -> None:
    """dockerd refuses renaming the PID column to anything but `pid=`."""
    if "\0" in ps_args:  # no argv can carry it (exec would fail: was a 500)
        raise InvalidParameter("invalid ps_args: NUL byte")
    for key, value in _ASSIGN_PID.findall(" " + ps_args):
        if key != "pid":
            raise InvalidParameter(f'specifying "{key}={value}" is not allowed')


def parse_ps_output(output: str, pids: set[int]) -> dict[str, Any]:
    lines = output.split("\n")
    titles = lines[0].split()
    if "PID" not in titles:
        raise InvalidParameter("Couldn't find PID field in ps output")
    idx = titles.index("PID")
    procs: list[list[str]] = []
    inside = False  # thread lines ("-" in PID, ps -m) follow their process
    for line in lines[1:]:
        if not line:
            continue
        fields = line.split()
        if len(fields) <= idx:
            continue
        if fields[idx] == "-":
            if inside:
                procs.append(_row(fields, len(titles)))
            continue
        try:
            pid = int(fields[idx])
        except ValueError:
            raise InvalidParameter(f"Unexpected pid '{fields[idx]}'") from None
        inside = pid in pids
        if inside:
            procs.append(_row(fields, len(titles)))
    return {"Titles": titles, "Processes": procs}


def _row(fields: list[str], ntitles: int) -> list[str]:
    return fields[:ntitles - 1] + [" ".join(fields[ntitles - 1:])]


async def _run_ps(args: list[str]) -> tuple[int, str, str]:
    # without a terminal, procps cuts lines at 80 columns: CMD would be cut short
    env = {**os.environ, "COLUMNS": PS_COLUMNS}
    proc = await asyncio.create_subprocess_exec(
        "ps", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL, env=env)
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")


async def container_top(engine: Any, ref: str, ps_args: str | None = None) -> dict[str, Any]:
    c = engine.containers.get(ref)
    if c.state.status == "restarting":
        raise Conflict(f"Container {c.id} is restarting, wait until the container is running")
    if c.state.status not in ("running", "paused"):
        raise Conflict(f"Container {c.id} is not running")
    ps_args = ps_args or DEFAULT_ARGS
    validate_ps_args(ps_args)
    pids = set(await asyncio.to_thread(engine.cgroups.pids, c.id))
    if not pids and c.state.pid:
        pids = {c.state.pid}
    args = ps_args.split()
    if shutil.which("ps") is None:
        if ps_args.strip() != DEFAULT_ARGS:
            raise InvalidParameter("ps_args needs a ps binary on the engine's host")
        return await asyncio.to_thread(proc_top, sorted(pids))
    rc, out, err = await _run_ps([*args, "-q", ",".join(str(p) for p in sorted(pids))])
    if rc != 0:
        # some options (f, for one) refuse -q: retry without it, as dockerd does
        rc, out, err = await _run_ps(args)
    if rc != 0:
        raise InvalidParameter(f"Error running ps: {err.strip() or out.strip()}")
    return parse_ps_output(out, pids)


# ---------------------------------------------------- /proc fallback (-ef)

def _user(uid: int) -> str:
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
    return name if len(name) <= 8 else str(uid)


def _tty(nr: int) -> str:
    if nr == 0:
        return "?"
    major, minor = (nr >> 8) & 0xFFF, (nr & 0xFF) | ((nr >> 12) & 0xFFF00)
    if major == 136:
        return f"pts/{minor}"
    if major == 4:
        return f"tty{minor}"
    return "?"


def _clock(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    return (f"{days}-" if days else "") + f"{h:02d}:{m:02d}:{s:02d}"


def proc_top(pids: list[int]) -> dict[str, Any]:
    """The `ps -ef` columns for `pids`, read from /proc."""
    hz = os.sysconf("SC_CLK_TCK")
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    boot = time.time() - uptime
    procs = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
            uid = os.stat(f"/proc/{pid}").st_uid
        except OSError:
            continue  # exited meanwhile
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        rest = stat[stat.rindex(")") + 2:].split()
        ppid, tty_nr = int(rest[1]), int(rest[4])
        ticks = int(rest[11]) + int(rest[12])
        started = int(rest[19]) / hz
        elapsed = max(uptime - started, 1e-9)
        start_t = time.localtime(boot + started)
        stime = time.strftime("%H:%M" if time.time() - (boot + started) < 86400 else "%b%d", start_t)
        procs.append([_user(uid), str(pid), str(ppid), str(int(100 * ticks / hz / elapsed)), stime,
                      _tty(tty_nr), _clock(ticks // hz), " ".join(argv) if argv else f"[{comm}]"])
    return {"Titles": list(DEFAULT_TITLES), "Processes": procs}
