"""The engine's side of the log daemon: start or adopt it, send it requests.

The daemon is started with the engine's interpreter and code, in a session of
its own, so a SIGKILL of the engine leaves it running (like conmon).  A new
engine adopts the daemon it finds answering on the socket; a daemon that died
is started again and resumes from each container's saved spool offset.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)


class LogDaemonClient:
    def __init__(self, data_root: Path, exec_root: Path) -> None:
        self.data_root = data_root
        self.exec_root = exec_root
        self.sock = exec_root / "logd.sock"
        self.proc: subprocess.Popen | None = None
        self._starting: asyncio.Lock | None = None
        self._bg: set[asyncio.Task] = set()
        self._pidfd = -1
        self._watched_pid = 0
        self._closing = False

    def _spawn(self) -> None:
        if self.proc is not None:
            self.proc.poll()  # reap an earlier daemon that died
        pkg_root = str(Path(__file__).resolve().parents[3])
        env = dict(os.environ)
        env["PYTHONPATH"] = pkg_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        with open(self.exec_root / "logd.log", "ab") as logf:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "dockyard.cli", "logd", "--data-root", str(self.data_root),
                 "--exec-root", str(self.exec_root)],
                stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, env=env, cwd="/",
                start_new_session=True, close_fds=True)
        log.info("started the log daemon (pid %d)", self.proc.pid)

    async def _ask(self, req: dict, timeout: float) -> dict:
        reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(self.sock)), timeout)
        try:
            writer.write(json.dumps(req).encode() + b"\n")
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), timeout)
            if not line:
                raise ConnectionError("log daemon closed the connection")
            return json.loads(line)
        finally:
            writer.close()

    async def adopt(self) -> bool:
        """Watch the daemon if one answers (it outlived an engine); start none."""
        try:
            self._watch(await self._ask({"op": "ping"}, 2.0))
            return True
        except (OSError, asyncio.TimeoutError, ValueError):
            return False

    async def ensure(self, timeout: float = 20.0) -> None:
        """Adopt the running daemon, or start one and wait until it answers."""
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if await self.adopt():
                return
            self._spawn()
            deadline = time.monotonic() + timeout
            while True:
                try:
                    self._watch(await self._ask({"op": "ping"}, 2.0))
                    return
                except (OSError, asyncio.TimeoutError, ValueError):
                    if time.monotonic() > deadline or (self.proc and self.proc.poll() is not None):
                        log.error("the log daemon did not start: see %s", self.exec_root / "logd.log")
                        return
                    await asyncio.sleep(0.05)

    def _watch(self, pong: dict) -> None:
        """A pidfd on the daemon: if it dies, start another at once (spools must not wait)."""
        pid = int(pong.get("pid") or 0)
        if not pid or pid == self._watched_pid:
            return
        self._unwatch()
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            return
        self._pidfd, self._watched_pid = fd, pid
        asyncio.get_running_loop().add_reader(fd, self._died)

    def _unwatch(self) -> None:
        if self._pidfd >= 0:
            asyncio.get_running_loop().remove_reader(self._pidfd)
            os.close(self._pidfd)
        self._pidfd, self._watched_pid = -1, 0

    def _died(self) -> None:
        self._unwatch()
        if self.proc is not None:
            self.proc.poll()
        if self._closing:
            return
        log.warning("the log daemon exited: starting it again")
        t = asyncio.get_running_loop().create_task(self.ensure())
        self._bg.add(t)
        t.add_done_callback(self._bg.discard)

    async def request(self, op: str, cid: str, timeout: float = 30.0) -> bool:
        """Ask and wait; a daemon found dead is started again once.  False when it failed."""
        for attempt in (1, 2):
            try:
                ans = await self._ask({"op": op, "id": cid}, timeout)
                if not ans.get("ok"):
                    log.warning("log daemon: %s %s: %s", op, cid[:12], ans.get("error"))
                return bool(ans.get("ok"))
            except (OSError, asyncio.TimeoutError, ValueError) as exc:
                if attempt == 2 or isinstance(exc, asyncio.TimeoutError):
                    log.warning("log daemon: %s %s: %s", op, cid[:12], exc or type(exc).__name__)
                    return False
                await self.ensure()
        return False

    def notify(self, op: str, cid: str) -> None:
        """Send without waiting (the start path does not wait for the daemon)."""
        t = asyncio.get_running_loop().create_task(self.request(op, cid))
        self._bg.add(t)
        t.add_done_callback(self._bg.discard)

    def close(self) -> None:
        """The engine stops and leaves the daemon running (containers still run)."""
        self._closing = True
        self._unwatch()

    async def shutdown(self) -> None:
        """Stop the daemon (no container left running): it saves its progress first."""
        self._closing = True  # its exit is not a death to repair
        self.close()
        try:
            await self._ask({"op": "exit"}, 5.0)
        except (OSError, asyncio.TimeoutError, ValueError):
            return
        if self.proc is not None:
            try:
                await asyncio.to_thread(self.proc.wait, 10)
            except subprocess.TimeoutExpired:
                pass
