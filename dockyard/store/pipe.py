"""Byte streams for one-pass layer import: a tee that copies what is read, and a
bounded pipe from the event loop (a download) to the worker thread that unpacks.

With both, a pulled layer is hashed (compressed digest), kept (compressed blob),
decompressed, hashed again (DiffID), kept (layer tar) and unpacked while its
bytes arrive, instead of being written whole to disk and read back twice.
"""

from __future__ import annotations

import io
import os
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
        n = self.src.readinto(b)  # straight into the caller's buffer: no intermediate bytes
        if n:
            if self.sink is not None:
                self.sink.write(memoryview(b)[:n])
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


class ForwardReader:
    """A file-like object over a stream that tarfile can open in seeking mode ("r:"):
    `seek` only goes forward (by reading), and file contents are copied to a file
    descriptor (`copy_to`) through one reused buffer, without the copies of tarfile's
    stream mode (a join and two slices per read, then one more per extracted read).
    """

    def __init__(self, src: BinaryIO, bufsize: int = 1 << 20) -> None:
        self.src = src
        self._buf = bytearray(bufsize)
        self._mv = memoryview(self._buf)
        self._start = self._end = 0  # unread bytes are _buf[_start:_end]
        self._pos = 0  # stream offset of _buf[_start]

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def _fill(self) -> int:
        """Refill the (empty) buffer; 0 at the end of the stream."""
        n = self.src.readinto(self._mv)
        self._start, self._end = 0, n or 0
        return self._end

    def read(self, n: int = -1) -> bytes:
        out = bytearray()
        while n < 0 or len(out) < n:
            if self._start == self._end and not self._fill():
                break
            k = self._end - self._start if n < 0 else min(n - len(out), self._end - self._start)
            out += self._mv[self._start:self._start + k]
            self._start += k
            self._pos += k
        return bytes(out)

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            pos += self._pos
        elif whence != io.SEEK_SET:
            raise io.UnsupportedOperation("seek from the end of a stream")
        if pos < self._pos:
            raise io.UnsupportedOperation(f"seek back to {pos} from {self._pos} in a stream")
        while self._pos < pos:
            if self._start == self._end and not self._fill():
                break  # past the end: the next read finds nothing, as with a file
            k = min(pos - self._pos, self._end - self._start)
            self._start += k
            self._pos += k
        return self._pos

    def copy_to(self, fd: int, n: int) -> int:
        """Copy the next `n` bytes to `fd`; returns how many there were (fewer at the end)."""
        done = 0
        while done < n:
            if self._start == self._end and not self._fill():
                break
            k = min(n - done, self._end - self._start)
            view = self._mv[self._start:self._start + k]
            while view:
                w = os.write(fd, view)
                view = view[w:]
            self._start += k
            self._pos += k
            done += k
        return done


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
