"""The log daemon: one process per engine that turns conmon's spools into the drivers' logs.

Why a daemon of its own (the design choice, see also the README):
- conmon 2.1.6 writes only CRI "k8s-file" lines, journald, or nothing, and its
  --log-size-max truncates instead of rotating into numbered files.  Something
  else must write Docker's formats and rotate them, and it must outlive the
  engine, or a container writing while the engine is down fills the disk.
- One process for all containers costs one Python interpreter (~15 MiB) in
  total, where a logger per container would cost ~10 MiB each and a process
  spawn on every `docker run` (the start path stays as before: the engine
  writes one small file and sends one datagram-sized message it does not wait for).
- conmon keeps writing a regular file (its spool), never a pipe: a stalled or
  dead log daemon can never block the container, and conmon's attach socket is
  untouched.  conmon renames a fresh spool into place every `spool_max` bytes,
  so the spool stays bounded even while no daemon reads it.

Protocol: JSON lines on `<exec-root>/logd.sock`, one request per connection:
  {"op": "watch", "id": ID}   follow the container's spool (config in logconfig.json)
  {"op": "sync", "id": ID}    convert everything spooled so far, then answer
  {"op": "stop", "id": ID}    the container stopped: drain, close the driver, drop the spool
  {"op": "ping"} / {"op": "exit"}
Answers: {"ok": true} or {"ok": false, "error": "..."}.
Progress (spool inode, offset and first bytes) is kept in `<ctr>/spool.offset`, so a
restarted daemon resumes where the last one stopped, repeating at most a few records.

`watch` is only the fast path: the engine sends it without waiting, after conmon
started, so an engine SIGKILLed in between loses it.  The daemon therefore also
looks for spools it does not follow every RESCAN seconds (and at start), and
follows one found unfollowed twice in a row, so a container's output never
waits for a message that will not come.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import selectors
import signal
import socket
import threading
import time
from pathlib import Path

from . import open_driver
from .base import ContainerInfo, LogDriver, LogRecord
from .spool import OFFSET_NAME, SPOOL_NAME, SpoolReader

log = logging.getLogger("dockyard.logd")

CONFIG_NAME = "logconfig.json"
TICK = 0.05
PER_TICK = 4 << 20  # spool bytes per container per tick: one busy container cannot starve the others
RESCAN = 1.0  # seconds between looks for spools no `watch` announced
ACCEPT_BACKOFF = 0.5  # seconds the listening socket rests after accept() failed (out of descriptors)


def write_config(ctr_dir: Path, driver: str, opts: dict[str, str], info: ContainerInfo) -> None:
    """Written by the engine before each start; read by the daemon at `watch`."""
    if not (ctr_dir / SPOOL_NAME).exists():
        try:  # an offset without its spool belongs to no file any more (inode numbers are reused)
            (ctr_dir / OFFSET_NAME).unlink()
        except FileNotFoundError:
            pass
    tmp = ctr_dir / (CONFIG_NAME + ".tmp")
    tmp.write_text(json.dumps({"driver": driver, "opts": opts, "info": info.to_json()}))
    os.rename(tmp, ctr_dir / CONFIG_NAME)


class Tap:
    """One container: its spool reader and its driver."""

    def __init__(self, ctr_dir: Path) -> None:
        self.dir = ctr_dir
        cfg = json.loads((ctr_dir / CONFIG_NAME).read_text())
        info = ContainerInfo.from_json(cfg["info"])
        self.driver: LogDriver = open_driver(cfg["driver"], ctr_dir, info, cfg.get("opts") or {})
        self.reader = SpoolReader(ctr_dir / SPOOL_NAME)
        ino, off, head = _load_offset(ctr_dir / OFFSET_NAME)
        self.reader.open(ino, off, head)
        self.saved: tuple[int, int, bytes] = (ino, off, head or b"")
        self.errors = 0
        self._offset_fd = -1
        self._skipped_told, self._next_tell = 0, 0.0

    def pump(self, limit: int = PER_TICK) -> int:
        recs = self.reader.read(limit)
        if self.reader.skipped != self._skipped_told and time.monotonic() >= self._next_tell:
            self._skipped_told, self._next_tell = self.reader.skipped, time.monotonic() + 10
            log.warning("log of %s: %d spool bytes dropped unread so far (conmon wrote faster than the "
                        "daemon converted)", self.dir.name[:12], self.reader.skipped)
        self._write(recs)
        self._save()
        if hasattr(self.driver, "flush"):
            self.driver.flush()
        return len(recs)

    def drain(self) -> None:
        while self.pump(1 << 30):
            pass

    def _write(self, recs: list[LogRecord]) -> None:
        for r in recs:
            try:
                self.driver.write(r)
            except Exception as exc:  # a full disk, a closed socket: drop, never stop
                self.errors += 1
                if self.errors == 1 or self.errors % 10000 == 0:
                    log.warning("log driver of %s: %s (%d records dropped so far)", self.dir.name, exc, self.errors)

    def _save(self) -> None:
        pos = self.reader.position()
        if pos == self.saved or pos[0] == 0:
            return
        self.saved = pos
        data = f"{pos[0]} {pos[1]} {pos[2].hex()}\n".encode()
        try:
            if self._offset_fd < 0:
                self._offset_fd = os.open(self.dir / OFFSET_NAME, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
            os.pwrite(self._offset_fd, data.ljust(160), 0)  # fixed width: never a torn, shorter number
        except OSError:
            pass

    def stop(self) -> None:
        """The container is gone: write what is left, close, drop the spool."""
        self.drain()
        self._write(self.reader.flush())
        self.close()
        # the offset first: a crash between the two re-reads a spool, never skips into a new one
        for name in (OFFSET_NAME, SPOOL_NAME):
            try:
                (self.dir / name).unlink()
            except FileNotFoundError:
                pass

    def close(self) -> None:
        self.reader.close()
        try:
            self.driver.close()
        except Exception as exc:
            log.warning("closing the log driver of %s: %s", self.dir.name, exc)
        if self._offset_fd >= 0:
            os.close(self._offset_fd)
            self._offset_fd = -1


def _load_offset(p: Path) -> tuple[int, int, bytes | None]:
    """`inode offset head-hex` (head None: written by a daemon that kept no head)."""
    try:
        fields = p.read_text().split()
        return int(fields[0]), int(fields[1]), bytes.fromhex(fields[2]) if len(fields) > 2 else None
    except (FileNotFoundError, ValueError, IndexError):
        return 0, 0, None


class LogDaemon:
    def __init__(self, data_root: Path, exec_root: Path) -> None:
        self.ctr_root = data_root / "containers"
        self.exec_root = exec_root
        self.taps: dict[str, Tap] = {}
        self.stopping = threading.Event()
        # containers whose driver would not open, by their config's mtime: retried when it changes
        self._broken: dict[str, int] = {}
        # spools found unfollowed by the last rescan: followed if the next finds them still so
        # (a watch normally comes within moments of conmon creating the spool)
        self._unannounced: set[str] = set()

    def _tap(self, cid: str) -> Tap | None:
        t = self.taps.get(cid)
        if t is None:
            d = self.ctr_root / cid
            if not (d / CONFIG_NAME).exists():
                return None
            t = self.taps[cid] = Tap(d)
        return t

    def scan(self, late: bool = False) -> None:
        """Follow every spool not followed yet: at start (containers running, or stopped
        while we were away), then every RESCAN seconds (`late`) for a `watch` that never came."""
        try:
            names = os.listdir(self.ctr_root)
        except FileNotFoundError:
            return
        seen, self._unannounced = self._unannounced, set()
        for cid in names:
            if cid in self.taps or cid.startswith("."):  # `.removed-<id>`: being deleted
                continue
            d = self.ctr_root / cid
            try:
                if not (d / SPOOL_NAME).exists():
                    continue
                mtime = os.stat(d / CONFIG_NAME).st_mtime_ns
            except OSError:
                continue
            if self._broken.get(cid) == mtime:
                continue
            if late and cid not in seen:
                self._unannounced.add(cid)
                continue
            try:
                self._tap(cid)
                self._broken.pop(cid, None)
                if late:
                    log.warning("following the log of %s, for which no watch came", cid[:12])
            except Exception as exc:
                self._broken[cid] = mtime
                log.error("cannot follow the log of %s: %s", cid[:12], exc)
        for cid in self._broken.keys() - set(names):  # removed containers
            del self._broken[cid]

    def handle(self, req: dict) -> dict:
        op, cid = req.get("op"), str(req.get("id") or "")
        if op == "ping":
            return {"ok": True, "pid": os.getpid()}
        if op == "exit":
            self.stopping.set()
            return {"ok": True}
        if not cid or "/" in cid or cid.startswith("."):
            return {"ok": False, "error": "bad container id"}
        if op == "watch":
            old = self.taps.pop(cid, None)
            if old is not None:
                old.drain()
                old.close()
            # no spool: the container already stopped and was drained (a `stop` overtook us)
            if (self.ctr_root / cid / SPOOL_NAME).exists():
                self._tap(cid)
            return {"ok": True}
        if op == "sync":
            t = self.taps.get(cid)
            if t is None and (self.ctr_root / cid / SPOOL_NAME).exists():
                t = self._tap(cid)  # a spool nobody announced (a lost `watch`): follow it now
            if t is not None:
                t.drain()
            return {"ok": True}
        if op == "stop":
            t = self.taps.pop(cid, None)
            if t is None and (self.ctr_root / cid / SPOOL_NAME).exists():
                t = self._tap(cid)
                self.taps.pop(cid, None)
            if t is not None:
                t.stop()
            return {"ok": True}
        return {"ok": False, "error": f"unknown op {op!r}"}

    def _on_request(self, conn: socket.socket, buf: bytearray) -> bool:
        """Read from a client; answer once its line is complete.  True: done with it."""
        try:
            data = conn.recv(65536)
        except BlockingIOError:
            return False
        except OSError:
            return True
        if not data and not buf:  # closed before asking: an engine killed between connect and send
            return True
        buf += data
        if b"\n" not in buf and data:
            return len(buf) > 65536
        try:
            ans = self.handle(json.loads(bytes(buf).split(b"\n", 1)[0]))
        except Exception as exc:
            log.exception("request %r failed", bytes(buf[:200]))
            ans = {"ok": False, "error": str(exc)}
        try:
            conn.setblocking(True)
            conn.settimeout(5)
            conn.sendall(json.dumps(ans).encode() + b"\n")
        except OSError:
            pass
        return True

    def run(self) -> None:
        """One thread, one selector: requests are answered between two containers' pumps."""
        path = self.exec_root / "logd.sock"
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        self.scan()
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(str(path))
        os.chmod(path, 0o600)
        srv.listen(64)
        srv.setblocking(False)
        sel = selectors.DefaultSelector()
        sel.register(srv, selectors.EVENT_READ, None)
        (self.exec_root / "logd.pid").write_text(f"{os.getpid()}\n")
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stopping.set())
        log.info("log daemon %d following %d containers", os.getpid(), len(self.taps))

        accept_paused_until = 0.0  # out of descriptors: the listening socket rests until then
        accept_failing = False  # logged once per streak of failures, not every half second

        def serve(timeout: float) -> None:
            nonlocal accept_paused_until, accept_failing
            if accept_paused_until and time.monotonic() >= accept_paused_until:
                accept_paused_until = 0.0
                sel.register(srv, selectors.EVENT_READ, None)
            for key, _ in sel.select(timeout):
                if key.data is None:
                    try:
                        conn, _ = srv.accept()
                    except (BlockingIOError, ConnectionAbortedError):
                        continue
                    except OSError as exc:
                        # EMFILE/ENFILE/ENOBUFS/ENOMEM: the client waits in the backlog; keep
                        # pumping the logs, and take it once descriptors are free again (the
                        # socket stays readable, so it leaves the selector meanwhile: no busy loop).
                        if not accept_failing:
                            log.warning("cannot accept a request (%s): retrying every %.1fs", exc, ACCEPT_BACKOFF)
                        accept_failing = True
                        sel.unregister(srv)
                        accept_paused_until = time.monotonic() + ACCEPT_BACKOFF
                        continue
                    if accept_failing:
                        log.warning("accepting requests again")
                        accept_failing = False
                    conn.setblocking(False)
                    sel.register(conn, selectors.EVENT_READ, bytearray())
                elif self._on_request(key.fileobj, key.data):
                    sel.unregister(key.fileobj)
                    key.fileobj.close()

        next_scan = time.monotonic() + RESCAN
        try:
            while not self.stopping.is_set():
                t0 = time.monotonic()
                if t0 >= next_scan:
                    try:
                        self.scan(late=True)
                    except OSError as exc:  # e.g. EMFILE listing the containers: next time
                        log.warning("cannot look for unfollowed logs: %s", exc)
                    next_scan = t0 + RESCAN
                for cid, tap in list(self.taps.items()):
                    if self.taps.get(cid) is not tap:  # replaced or stopped by a request meanwhile
                        continue
                    try:
                        tap.pump()
                    except Exception:
                        log.exception("log of %s", cid[:12])
                    serve(0)  # answer requests between containers
                while not self.stopping.is_set():
                    left = TICK - (time.monotonic() - t0)
                    if left <= 0:
                        break
                    serve(left)
        finally:
            sel.close()
            srv.close()
            for tap in self.taps.values():
                tap.drain()  # progress saved: the next daemon resumes from here
                tap.close()
            try:
                path.unlink()
            except FileNotFoundError:
                pass


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="dockyard logd")
    p.add_argument("--data-root", required=True)
    p.add_argument("--exec-root", required=True)
    p.add_argument("--log-level", default="info")
    a = p.parse_args(argv)
    logging.basicConfig(level=a.log_level.upper() if a.log_level != "warn" else "WARNING",
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    LogDaemon(Path(a.data_root), Path(a.exec_root)).run()
    return 0
