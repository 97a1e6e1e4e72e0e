"""The per-container monitor: conmon, every invocation of it lives here.

Why conmon (Podman's and CRI-O's monitor) rather than a monitor of our own or
containerd-shim: it is ~2 MiB per container, it double-forks away from the
engine so a container survives the engine's SIGKILL, and it already does the
four things a monitor must do without the engine: hold the container's stdio
(and its pty), write the log file, reap the container and record its exit
code, and serve attach clients on a socket.

The protocol, learnt from libpod:
- `_OCI_SYNCPIPE` (an inherited fd): conmon writes `{"data": <pid>}` once `runc create`
  succeeded, or `{"data": -1, "message": "..."}` when it failed.
- `_OCI_STARTPIPE`: conmon blocks until the engine writes a byte, so the
  engine could move it into a cgroup first.
- `<bundle>/attach`: a SOCK_SEQPACKET socket.  Each packet conmon sends is one
  byte of stream type (2 stdout, 3 stderr) and the data; what a client sends
  goes to the container's stdin; a client's shutdown(SHUT_WR) closes stdin
  unless `--leave-stdin-open`.
- `<bundle>/ctl`: a fifo taking `1 <rows> <cols>\\n` to resize the pty.
- `--exit-dir`: conmon writes the exit code to `<exit-dir>/<id>` before it
  exits; `--persist-dir` gets `exit` and, on an OOM kill, `oom`.
- `--log-path k8s-file:PATH`: lines `<RFC3339Nano> <stdout|stderr> <F|P> <text>`, appended
  (O_APPEND); with `--log-size-max N` conmon renames a fresh file over PATH every N
  bytes.  `--log-path none` keeps no log (attach still works).
- With a terminal, the pty master conmon gets from runc is made non-blocking
  (console.py), or input the process does not read yet would stall its output.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import SystemError_, Unavailable
from .console import unblock_console
from .loopread import read_on_loop

STREAM_STDOUT = 2
STREAM_STDERR = 3
ATTACH_PACKET = 8192 + 1


@dataclass
class MonitorHandle:
    conmon_pid: int
    container_pid: int


class Monitor:
    def __init__(self, conmon: str, runtime_path: str, runtime_root: Path, exit_dir: Path,
                 runtime_for: Callable[[str], str] | None = None) -> None:
        path = shutil.which(conmon)
        if path is None:
            raise Unavailable(f"container monitor {conmon!r} not found in PATH (apt install conmon)")
        self.binary = path
        self.runtime_path = runtime_path
        self.runtime_for = runtime_for  # the container's own runtime binary, by container id
        self.runtime_root = runtime_root
        self.exit_dir = exit_dir
        exit_dir.mkdir(parents=True, exist_ok=True)

    async def version(self) -> str:
        """`conmon --version`'s version; cached."""
        if not hasattr(self, "_version"):
            proc = await asyncio.create_subprocess_exec(self.binary, "--version", stdout=asyncio.subprocess.PIPE,
                                                        stderr=asyncio.subprocess.DEVNULL)
            out, _ = await proc.communicate()
            first = out.decode(errors="replace").splitlines()[:1]
            self._version = first[0].split("version", 1)[-1].strip() if first else ""
        return self._version

    def _args(self, cid: str, cuuid: str, name: str, bundle: Path, log_path: Path | None, exit_dir: Path,
              *, terminal: bool, stdin: bool, leave_stdin_open: bool, log_size_max: int = 0) -> list[str]:
        for stale in ("oom", "exit", "attach", "ctl", "winsz", "pidfile", "conmon.pid"):
            try:
                (bundle / stale).unlink()
            except FileNotFoundError:
                pass
        args = [
            self.binary, "--api-version", "1",
            "-c", cid, "-u", cuuid, "-n", name,
            "-r", self.runtime_for(cid) if self.runtime_for else self.runtime_path,
            "--runtime-arg", "--root", "--runtime-arg", str(self.runtime_root),
            "-b", str(bundle),
            "-p", str(bundle / "pidfile"),
            "-P", str(bundle / "conmon.pid"),
            "-l", f"k8s-file:{log_path}" if log_path is not None else "none",
            "--exit-dir", str(exit_dir),
            "--persist-dir", str(bundle),
            "--socket-dir-path", str(bundle),
            "--full-attach",
            "--log-level", "error",
            "--no-sync-log",
        ]
        if log_size_max > 0 and log_path is not None:
            args += ["--log-size-max", str(log_size_max)]
        if terminal:
            args.append("-t")
        if stdin:
            args.append("-i")
            if leave_stdin_open:
                args.append("--leave-stdin-open")
        return args

    async def create(self, cid: str, name: str, bundle: Path, log_path: Path | None, *,
                     terminal: bool, stdin: bool, leave_stdin_open: bool,
                     log_size_max: int = 0) -> MonitorHandle:
        """Start conmon, which runs `runc create` and stays in the background.

        `log_path` None: no log kept; else the spool conmon appends to.
        """
        self.clear_exit(cid)
        args = self._args(cid, cid, name, bundle, log_path, self.exit_dir, terminal=terminal,
                          stdin=stdin, leave_stdin_open=leave_stdin_open, log_size_max=log_size_max)
        handle = await self._launch(args, bundle, None)
        if terminal:
            await asyncio.to_thread(unblock_console, handle.conmon_pid)
        return handle

    async def exec(self, cid: str, exec_id: str, bundle: Path, spec: Path, log_path: Path, *,
                   terminal: bool, stdin: bool, on_attach_ready: Callable[[], None]) -> MonitorHandle:
        """Start conmon for `runc exec`; `on_attach_ready` connects clients before the process runs.

        The exit code lands in `<bundle>/<cid>` (see exec_exit_code).
        """
        args = self._args(cid, exec_id, exec_id, bundle, log_path, bundle, terminal=terminal,
                          stdin=stdin, leave_stdin_open=False)
        args += ["--exec", "--exec-process-spec", str(spec), "--exec-attach"]
        handle = await self._launch(args, bundle, on_attach_ready, action="exec")
        if terminal:  # the process runs already: callers hold client input back until this is done
            await asyncio.to_thread(unblock_console, handle.conmon_pid)
        return handle

    async def _launch(self, args: list[str], bundle: Path,
                      on_attach_ready: Callable[[], None] | None, action: str = "create") -> MonitorHandle:
        sync_r, sync_w = os.pipe()
        start_r, start_w = os.pipe()
        child_fds = [sync_w, start_r]
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
               "_OCI_SYNCPIPE": str(sync_w), "_OCI_STARTPIPE": str(start_r)}
        attach_r = None
        if on_attach_ready is not None:
            attach_r, attach_w = os.pipe()
            child_fds.append(attach_w)
            env["_OCI_ATTACHPIPE"] = str(attach_w)
        for fd in child_fds:
            os.set_inheritable(fd, True)
        errlog = open(bundle / "conmon.log", "ab")
        try:
            proc = await asyncio.create_subprocess_exec(
                *args, cwd=str(bundle), env=env,
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=errlog,
                pass_fds=tuple(child_fds), start_new_session=True,
            )
        finally:
            errlog.close()
            for fd in child_fds:
                os.close(fd)
        try:
            try:
                os.write(start_w, b"\0")
                if attach_r is not None:
                    # exec: conmon says when its attach socket listens, then waits for a second byte
                    ready = await _read_sync(attach_r)
                    if int(ready.get("data", -1)) < 0:
                        raise SystemError_(_runtime_message(ready.get("message") or _tail(bundle / "conmon.log"), action))
                    on_attach_ready()
                    os.write(start_w, b"\0")
            finally:
                os.close(start_w)  # on failure this also tells conmon to give up
                if attach_r is not None:
                    os.close(attach_r)
            msg = await _read_sync(sync_r)
        finally:
            os.close(sync_r)
            # The first conmon process exits right after its double fork.
            await proc.wait()
        pid = int(msg.get("data", -1))
        if pid <= 0:
            detail = msg.get("message") or _tail(bundle / "conmon.log") or "container monitor failed"
            raise SystemError_(_runtime_message(detail, action))
        conmon_pid = int((bundle / "conmon.pid").read_text().strip())
        return MonitorHandle(conmon_pid=conmon_pid, container_pid=pid)

    @staticmethod
    def exec_exit_code(bundle: Path, cid: str) -> int | None:
        try:
            return int((bundle / cid).read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def exit_code(self, cid: str) -> int | None:
        try:
            return int((self.exit_dir / cid).read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def exit_time(self, cid: str) -> str | None:
        """When conmon recorded the exit, as Docker's RFC3339Nano."""
        try:
            ns = os.stat(self.exit_dir / cid).st_mtime_ns
        except FileNotFoundError:
            return None
        from datetime import datetime, timezone

        dt = datetime.fromtimestamp(ns // 1_000_000_000, tz=timezone.utc)
        return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{ns % 1_000_000_000:09d}Z"

    def clear_exit(self, cid: str) -> None:
        try:
            (self.exit_dir / cid).unlink()
        except FileNotFoundError:
            pass

    @staticmethod
    def oom_killed(bundle: Path) -> bool:
        return (bundle / "oom").exists()

    @staticmethod
    def resize(bundle: Path, height: int, width: int) -> None:
        try:
            fd = os.open(bundle / "ctl", os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            return
        try:
            os.write(fd, f"1 {height} {width}\n".encode())
        finally:
            os.close(fd)

    @staticmethod
    def connect_attach(bundle: Path) -> socket.socket:
        """Connect to conmon's attach socket, whatever the length of its path."""
        dfd = os.open(bundle, os.O_PATH)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            s.connect(f"/proc/self/fd/{dfd}/attach")
        except OSError:
            s.close()
            raise
        finally:
            os.close(dfd)
        s.setblocking(False)
        return s


async def _read_sync(fd: int) -> dict:
    """conmon's first line on a sync pipe (EOF without one: conmon gave up)."""
    os.set_blocking(fd, False)
    buf = await read_on_loop(fd, enough=lambda data: b"\n" in data)
    line = buf.split(b"\n", 1)[0].strip()
    if not line:
        return {"data": -1}
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return {"data": -1, "message": line.decode(errors="replace")}


def _tail(path: Path, n: int = 2000) -> str:
    try:
        return path.read_bytes()[-n:].decode(errors="replace").strip()
    except OSError:
        return ""


def _runtime_message(detail: str, action: str = "create") -> str:
    """dockerd's "OCI runtime create failed: ..." / "OCI runtime exec failed: ..." """
    from .runc import _clean_error

    return f"OCI runtime {action} failed: " + _clean_error(detail.encode())
