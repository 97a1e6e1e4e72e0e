"""Byte streams for one-pass layer import: a tee that copies what is read, and a
bounded pipe from the event loop (a download) to the worker thread that unpacks.

With both, a pulled layer is hashed (compressed digest), kept (compressed blob),
decompressed, hashed again (DiffID), kept (layer tar) and unpacked while its
bytes arrive, instead of being written whole to disk and read back twice.
"""

from __future__ import annotations

import io
import queue
import threading
from typing import BinaryIO, Protocol


class Sink(Protocol):
    def write(self, data: bytes) -> int: ...


class TeeReader(io.RawIOBase):
    """Reads from `src`, writing every byte read to `sink` too; counts them."""

    def __init__(self, src: BinaryIO, sink: Sink | None) -> None:
        self.src, self.sink = src, sink
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        data = self.src.read(len(b))
        n = len(data)
        if n:
            b[:n] = data
            if self.sink is not None:
                self.sink.write(data)
            self.count += n
        return n

    def drain(self, chunk: int = 1 << 20) -> None:
        """Read to the end (what a tar reader leaves after its end-of-archive blocks)."""
        buf = bytearray(chunk)
        while self.readinto(buf):
            pass


class IterReader(io.RawIOBase):
    """A file-like reader over an iterator of byte chunks."""

    def __init__(self, chunks) -> None:  # type: ignore[no-untyped-def]
        self._it = iter(chunks)
        self._buf = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        while not self._buf:
            chunk = next(self._it, None)
            if chunk is None:
                return 0
            self._buf = memoryview(chunk)
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


class PipeClosed(Exception):
    """The reading side of a ChunkPipe has gone away."""


class ChunkPipe(io.RawIOBase):
    """A bounded byte queue: `put` from one thread, file-like `read` from another.

    `put` blocks while `depth` chunks wait (back-pressure on the download) and
    `finish()` queues the end; both block, so call them from a worker thread.
    `fail(exc)` never blocks (it may come from a cancelled coroutine): the
    reader raises `exc` at its next read.  When the reader stops early
    (`close()`), pending and later `put`s raise PipeClosed instead of waiting.
    """

    def __init__(self, depth: int = 8) -> None:
        self._q: queue.Queue[bytes | None] = queue.Queue(depth)
        self._buf = memoryview(b"")
        self._eof = False
        self._error: BaseException | None = None
        self._reader_gone = threading.Event()
        self.consumed = 0  # bytes handed to the reader so far

    def readable(self) -> bool:
        return True

    # -- producer side

    def put(self, chunk: bytes | None) -> None:
        while True:
            if self._reader_gone.is_set():
                raise PipeClosed()
            try:
                self._q.put(chunk, timeout=0.2)
                return
            except queue.Full:
                continue

    def finish(self) -> None:
        self.put(None)

    def fail(self, exc: BaseException) -> None:
        self._error = exc

    # -- consumer side

    def readinto(self, b) -> int:  # type: ignore[override]
        while not self._buf:
            if self._error is not None:
                raise self._error
            if self._eof:
                return 0
            try:
                item = self._q.get(timeout=0.2)
            except queue.Empty:
                continue
            if item is None:
                self._eof = True
                return 0
            self._buf = memoryview(item)
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        self.consumed += n
        return n

    def close(self) -> None:
        self._reader_gone.set()
        super().close()

    def drop(self) -> None:
        """Free the chunks still queued (the transfer is over, whatever its outcome)."""
        self._buf = memoryview(b"")
        while True:
            try:
                self._q.get_nowait()
            except queue.Empty:
                return


class HashSink:
    """A sink that only hashes and counts (the DiffID of a tar kept compressed)."""

    def __init__(self) -> None:
        import hashlib

        self._h = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._h.update(data)
        self.size += len(data)
        return len(data)

    @property
    def digest(self) -> str:
        return "sha256:" + self._h.hexdigest()


class BackgroundWriter:
    """Hands writes to a worker thread, so hashing and writing one copy overlaps with
    unpacking another on a second core (hashlib and file writes release the GIL).

    `wait()` returns once everything written so far reached the sink (and raises the
    sink's error, if any); `stop()` ends the thread whatever happened.
    """

    def __init__(self, sink: Sink, depth: int = 8) -> None:
        self.sink = sink
        self._q: queue.Queue[bytes | None] = queue.Queue(depth)
        self._error: BaseException | None = None
        self._t = threading.Thread(target=self._run, name="blob-writer", daemon=True)
        self._t.start()

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            if self._error is None:
                try:
                    self.sink.write(item)
                except BaseException as exc:  # reported by the next write() or wait()
                    self._error = exc

    def write(self, data: bytes) -> int:
        if self._error is not None:
            raise self._error
        self._q.put(bytes(data))
        return len(data)

    def wait(self) -> None:
        self.stop()
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        if self._t.is_alive():
            self._q.put(None)
            self._t.join()
