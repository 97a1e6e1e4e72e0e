"""Every invocation of the OCI runtime binary lives here.

The runtime is pluggable by path (`--runtime`): anything that speaks runc's
command line (runc, crun, youki) works.  crun fails on this machine's hybrid
cgroup layout, so runc is the default.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from pathlib import Path
from typing import Callable

from ..errors import Conflict, NotFound, SystemError_
from .loopread import read_on_loop


class RuntimeError_(SystemError_):
    pass


class OCIRuntime:
    def __init__(self, binary: str, root: Path, binary_for: Callable[[str], str] | None = None) -> None:
        path = shutil.which(binary)
        if path is None:
            from ..errors import Unavailable

            raise Unavailable(f"OCI runtime {binary!r} not found in PATH")
        self.binary = path
        self.root = root
        # a container's own runtime (HostConfig.Runtime, from `runtimes`); all share one state root
        self.binary_for = binary_for
        root.mkdir(parents=True, exist_ok=True)

    async def version(self) -> tuple[str, str]:
        """(version, commit) as `runc --version` prints them; cached."""
        if not hasattr(self, "_version"):
            proc = await asyncio.create_subprocess_exec(self.binary, "--version", stdout=asyncio.subprocess.PIPE,
                                                        stderr=asyncio.subprocess.DEVNULL)
            out, _ = await proc.communicate()
            version = commit = ""
            for line in out.decode(errors="replace").splitlines():
                if line.startswith(("runc version", "crun version", "youki version")):
                    version = line.split("version", 1)[1].strip()
                elif line.startswith("commit:"):
                    commit = line.split(":", 1)[1].strip()
            self._version = (version, commit)
        return self._version

    def base_args(self, cid: str | None = None) -> list[str]:
        binary = self.binary_for(cid) if (cid and self.binary_for) else self.binary
        return [binary, "--root", str(self.root)]

    async def _run(self, *args: str, input: bytes | None = None, check: bool = True,
                   cid: str | None = None) -> tuple[int, bytes, bytes]:
        proc = await asyncio.create_subprocess_exec(
            *self.base_args(cid), *args,
            stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate(input)
        if check and proc.returncode != 0:
            msg = _clean_error(err or out)
            if "does not exist" in msg or "not exist" in msg:
                raise NotFound(msg)
            if "not running" in msg or "not paused" in msg or "cannot" in msg and "state" in msg:
                raise Conflict(msg)
            raise RuntimeError_(f"{Path(self.binary).name} {args[0]}: {msg}")
        return proc.returncode or 0, out, err

    async def start(self, cid: str, pid: int = 0) -> None:
        """Let the created container's process run.

        For runc (`pid`: its init's pid) this is done in-process, as `runc start` itself does
        it: read the byte `runc init` writes into `<state>/exec.fifo`, then remove the fifo
        (runc then reports the container "running").  That spares forking a Go binary on the
        path of every start (5-7 ms here).  Other runtimes, or no fifo: their own `start`.
        """
        fifo = self.root / cid / EXEC_FIFO
        if pid > 0 and Path(self.base_args(cid)[0]).name == "runc":
            try:
                fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            except FileNotFoundError:
                pass  # not created, or started already: runc's own error says which
            else:
                await _release_init(fd, fifo, pid)
                return
        await self._run("start", cid, cid=cid)

    async def kill(self, cid: str, signal: int, all_processes: bool = False) -> None:
        args = ["kill"] + (["--all"] if all_processes else []) + [cid, str(signal)]
        await self._run(*args, cid=cid)

    async def pause(self, cid: str) -> None:
        await self._run("pause", cid, cid=cid)

    async def resume(self, cid: str) -> None:
        await self._run("resume", cid, cid=cid)

    async def delete(self, cid: str, force: bool = True) -> None:
        if not (self.root / cid).exists():  # runc has no state: spare the fork (teardown runs twice on --rm)
            return
        if Path(self.base_args(cid)[0]).name == "runc" and await asyncio.to_thread(_forget_stopped, self.root / cid):
            return
        rc, out, err = await self._run("delete", *(["--force"] if force else []), cid, check=False, cid=cid)
        if rc != 0 and b"does not exist" not in err and b"not exist" not in out:
            raise RuntimeError_(f"runc delete: {_clean_error(err)}")

    async def state(self, cid: str) -> dict | None:
        rc, out, err = await self._run("state", cid, check=False, cid=cid)
        if rc != 0:
            return None
        return json.loads(out)

    async def update(self, cid: str, resources: dict) -> None:
        await self._run("update", "--resources", "-", cid, input=json.dumps(resources).encode(), cid=cid)

    async def ps(self, cid: str) -> list[int]:
        rc, out, _ = await self._run("ps", "--format", "json", cid, check=False, cid=cid)
        if rc != 0:
            return []
        return json.loads(out) or []

    def list_ids(self) -> list[str]:
        """Containers runc knows (directories under its root), without forking."""
        if not self.root.exists():
            return []
        return [p.name for p in self.root.iterdir() if (p / "state.json").exists()]


EXEC_FIFO = "exec.fifo"


def _forget_stopped(state_dir: Path) -> bool:
    """`runc delete` of a stopped container, in-process (a Go binary's start spared on the path
    of every removal); False, and runc does it, unless this is certainly all runc would do.

    For a container whose init is gone, that had a PID namespace of its own (so nothing of
    it can still run: the kernel killed the rest with its init), and no hooks, runc's
    destroy removes the cgroup directories listed in its state, then its state directory.
    """
    try:
        state = json.loads((state_dir / "state.json").read_text())
    except (OSError, ValueError):
        return False
    cfg = state.get("config") or {}
    pid_ns = [ns for ns in cfg.get("namespaces") or [] if ns.get("type") == "NEWPID"]
    if (not pid_ns or pid_ns[0].get("path") or any((cfg.get("Hooks") or {}).values())
            or state.get("intel_rdt_path") or _init_alive(state)):
        return False
    for path in (state.get("cgroup_paths") or {}).values():
        if not _remove_cgroup(Path(path)):
            return False
    shutil.rmtree(state_dir, ignore_errors=True)
    return not state_dir.exists()


def _init_alive(state: dict) -> bool:
    """runc's test: the init pid runs and started when the state says (not a reused pid)."""
    try:
        with open(f"/proc/{int(state.get('init_process_pid') or 0)}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, ValueError, IndexError):
        return False
    # after the command: fields[0] is the state, fields[19] the start time
    return fields[0] not in ("Z", "X") and fields[19] == str(state.get("init_process_start"))


def _remove_cgroup(top: Path) -> bool:
    """rmdir a cgroup and its children, deepest first; a cgroup whose last task is still
    exiting refuses briefly (EBUSY), so try again a few times as runc does."""
    try:
        os.rmdir(top)  # the usual case, no child cgroup: one rmdir, not a walk over the control files
        return True
    except FileNotFoundError:
        return True
    except OSError:
        pass
    for attempt in range(4):
        busy = False
        for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda t: -len(t[0])):
            try:
                os.rmdir(dirpath)
            except FileNotFoundError:
                pass
            except OSError:
                busy = True
        if not busy:
            return True
        time.sleep(0.005 * 2 ** attempt)
    return False


async def _release_init(fd: int, fifo: Path, pid: int) -> None:
    """Read the exec fifo until `runc init` closes it (it execs the process), as `runc start`.

    The reader was opened non-blocking: until a writer has come, epoll reports nothing, so
    the wait ends on the writer's byte and close, or on the init process's death.
    """
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        pidfd = -1
    try:
        if pidfd >= 0:  # EOF: init closed the fifo as it exec'd; or the init died
            data = await read_on_loop(fd, until_readable=pidfd)
        else:  # gone already: what it wrote before it died, if anything
            try:
                data = os.read(fd, 4096)
            except BlockingIOError:
                data = b""
    finally:
        os.close(fd)
        if pidfd >= 0:
            os.close(pidfd)
    if not data:
        raise RuntimeError_("runc start: container process is already dead")  # as `runc start` fails
    try:
        os.unlink(fifo)
    except FileNotFoundError:
        pass


def _clean_error(raw: bytes) -> str:
    """runc prints logrus lines (`time=... level=error msg="..."`); keep the message."""
    text = raw.decode(errors="replace").strip()
    msgs = []
    for line in text.splitlines():
        if 'msg="' in line:
            msgs.append(line.split('msg="', 1)[1].rsplit('"', 1)[0].replace('\\"', '"'))
        elif line.strip():
            msgs.append(line.strip())
    return "; ".join(msgs) or text
