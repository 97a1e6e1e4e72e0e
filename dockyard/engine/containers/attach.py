"""Attach sessions: a client's view of a container's stdio through its monitor.

The HTTP layer owns the client connection and framing; this module owns the
monitor side and the detach-key logic, so it is testable without HTTP.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from ...errors import InvalidParameter
from ...runtime.conmon import STREAM_STDERR, STREAM_STDOUT, ATTACH_PACKET, Monitor

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"
STDIN_PACKET = 8192


def parse_detach_keys(spec: str) -> bytes:
    """Docker's format: comma-separated `ctrl-<x>` or single characters."""
    out = bytearray()
    for key in spec.split(","):
        key = key.strip()
        if len(key) == 1:
            out.append(ord(key))
            continue
        low = key.lower()
        if low.startswith("ctrl-") and len(key) == 6:
            c = key[5]
            if c.lower() in "abcdefghijklmnopqrstuvwxyz":
                out.append(ord(c.lower()) - ord("a") + 1)
                continue
            if c in "@[\\]^_":
                out.append({"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}[c])
                continue
        raise InvalidParameter(f"Invalid detach keys ({spec}) provided")
    if not out:
        raise InvalidParameter(f"Invalid detach keys ({spec}) provided")
    return bytes(out)


class DetachScanner:
    """Finds the detach sequence in stdin, holding back a possible prefix."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """Return (bytes to forward, detached?)."""
        if not self.keys:
            return data, False
        buf = self.held + data
        self.held = b""
        idx = buf.find(self.keys)
        if idx >= 0:
            return buf[:idx], True
        # keep the longest suffix that is a prefix of the sequence
        for n in range(min(len(self.keys) - 1, len(buf)), 0, -1):
            if buf.endswith(self.keys[:n]):
                self.held = buf[-n:]
                return buf[:-n], False
        return buf, False


class AttachStream:
    def __init__(self, *, stdin: bool, stdout: bool, stderr: bool, tty: bool,
                 detach_keys: bytes) -> None:
        self.want_stdin = stdin
        self.want_stdout = stdout
        self.want_stderr = stderr
        self.tty = tty
        # Docker applies detach keys to TTY sessions only: piped binary stdin is never scanned
        self.scanner = DetachScanner(detach_keys if tty else b"")
        self.sock: socket.socket | None = None
        self.connected = asyncio.Event()
        self.ended = asyncio.Event()  # the container will produce no more output
        self.input_open = asyncio.Event()  # cleared while the monitor is not ready for stdin
        self.input_open.set()
        self.detached = False

    def connect(self, bundle: Path) -> None:
        self.sock = Monitor.connect_attach(bundle)
        self.connected.set()

    def end(self) -> None:
        """The container is gone before we could connect (or has exited)."""
        self.ended.set()
        self.connected.set()
        self.input_open.set()

    def hold_input(self) -> None:
        """Keep client stdin here until release_input (output flows meanwhile)."""
        self.input_open.clear()

    def release_input(self) -> None:
        self.input_open.set()

    async def recv(self) -> tuple[int, bytes] | None:
        """Next (stream, data) the client asked for; None when output is over."""
        await self.connected.wait()
        if self.sock is None:
            return None
        loop = asyncio.get_running_loop()
        reset = False
        while True:
            try:
                pkt = await loop.sock_recv(self.sock, ATTACH_PACKET)
            except ConnectionResetError:
                # conmon exited with stdin we sent still unread (a fast process that never read
                # it): the kernel reports ECONNRESET *before* the output packets still queued
                # for us, and only once.  Read on: the output follows, then end of stream.
                if reset:
                    return None
                reset = True
                continue
            except (ConnectionError, OSError):
                return None
            reset = False
            if not pkt:
                return None
            kind, data = pkt[0], pkt[1:]
            if kind == STREAM_STDOUT and self.want_stdout:
                return 1, data
            if kind == STREAM_STDERR and self.want_stderr:
                return 2, data

    async def send(self, data: bytes) -> bool:
        """Forward client stdin; False once the detach keys were typed."""
        fwd, detached = self.scanner.feed(data)
        await self.connected.wait()
        await self.input_open.wait()
        if fwd and self.sock is not None and self.want_stdin:
            loop = asyncio.get_running_loop()
            try:
                # one SEQPACKET packet per send, and conmon reads at most 32 KiB of each:
                # larger packets would be cut short, so send in pieces
                for i in range(0, len(fwd), STDIN_PACKET):
                    await loop.sock_sendall(self.sock, fwd[i:i + STDIN_PACKET])
            except (ConnectionError, OSError):
                pass
        if detached:
            self.detached = True
        return not detached

    def close_stdin(self) -> None:
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None
        self.ended.set()
        self.connected.set()
        self.input_open.set()
