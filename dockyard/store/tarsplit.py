"""Keep a layer tar as "skeleton + unpacked files" instead of a second full copy.

A layer is unpacked anyway; storing its tar as well doubles what an import or
load writes.  Like Docker's tar-split, we keep only the bytes of the tar that
are not regular-file contents (headers, PAX records, padding, the end blocks)
and, for each file's contents, where it lives in the unpacked layer.  The tar
comes back byte for byte by splicing the files into the skeleton; the caller
checks the result against the DiffID, so a mistake can never go unnoticed.

The skeleton file is a sequence of records:
    b"S" len:u64 bytes              tar bytes kept as they are
    b"F" index:u64 size:u64 n:u16 path   `size` bytes from the layer's `path`
A file that the same tar later replaces or deletes (a duplicate name, a
whiteout of it) would lose its contents from the layer: they are copied into a
side file first ("inline" records: index:u64 size:u64 bytes).

The writer is fed the tar stream as it is read (through a tee, which reads
ahead) and told, member by member, where file contents lie; it holds back only
the bytes it cannot classify yet.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import BinaryIO, Iterator

CHUNK = 1 << 20
_U64 = struct.Struct(">Q")
_FILE = struct.Struct(">QQH")
_INLINE = struct.Struct(">QQ")


class SkeletonWriter:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._f = open(path, "wb")
        self._inline_f: BinaryIO | None = None
        self._received = 0  # stream offset of the end of what write() got
        self._pending = bytearray()  # bytes [received - len(pending), received) not classified yet
        self._final = 0  # bytes before this offset are skeleton unless inside the skip range
        self._skip = (0, 0)  # [a, b): file contents, not kept
        self._files: dict[str, tuple[int, int]] = {}  # absolute path -> (index, size)
        self._count = 0

    # -- the stream

    def write(self, data: bytes) -> int:
        self._pending += data
        self._received += len(data)
        self._flush()
        return len(data)

    def _flush(self) -> None:
        """Emit or drop the pending bytes below the classified frontier."""
        start = self._received - len(self._pending)
        a, b = self._skip
        while self._pending and start < self._final:
            if a <= start < b:  # inside file contents: drop
                n = min(b, self._final, self._received) - start
                del self._pending[:n]
            else:
                end = min(self._final, self._received, a if start < a else self._final)
                n = end - start
                if n <= 0:
                    break
                self._emit(bytes(self._pending[:n]))
                del self._pending[:n]
            start = self._received - len(self._pending)

    def _emit(self, data: bytes) -> None:
        if data:
            self._f.write(b"S" + _U64.pack(len(data)) + data)

    # -- what the unpacker tells

    def file(self, offset: int, size: int, path: str, rel: str) -> None:
        """A regular file's contents lie at [offset, offset+size) and go to `path` (`rel` in the layer)."""
        self._final = max(self._final, offset)
        self._flush()  # everything before the contents is skeleton
        index = self._count
        self._count += 1
        name = rel.encode("utf-8", "surrogateescape")
        self._f.write(b"F" + _FILE.pack(index, size, len(name)) + name)
        self._skip = (offset, offset + size)
        self._final = offset + size
        self._flush()
        self._files[path] = (index, size)

    def other(self, end: int) -> None:
        """A member whose bytes up to `end` are all skeleton (headers, sparse or whiteout data)."""
        self._final = max(self._final, end)
        self._flush()

    def removing(self, path: str) -> None:
        """`path` (a file or a directory) is about to be deleted or replaced: keep the
        contents of the files of ours it holds."""
        prefix = path.rstrip("/") + "/"
        for p in [p for p in self._files if p == path or p.startswith(prefix)]:
            index, size = self._files.pop(p)
            if self._inline_f is None:
                self._inline_f = open(str(self.path) + ".inline", "wb")
            self._inline_f.write(_INLINE.pack(index, size))
            with open(p, "rb") as src:
                copied = _copy_n(src, self._inline_f, size)
            if copied != size:
                raise OSError(f"{p} is shorter than its tar entry")

    def close(self) -> None:
        self._final = self._received
        self._flush()
        self._emit(bytes(self._pending))
        self._pending.clear()
        self._f.close()
        if self._inline_f is not None:
            self._inline_f.close()

    def abort(self) -> None:
        self._f.close()
        if self._inline_f is not None:
            self._inline_f.close()


def _copy_n(src: BinaryIO, dst: BinaryIO, n: int) -> int:
    done = 0
    while done < n:
        chunk = src.read(min(CHUNK, n - done))
        if not chunk:
            break
        dst.write(chunk)
        done += len(chunk)
    return done


def rebuild(skeleton: Path, root: Path, out: BinaryIO) -> None:
    """Write the original tar to `out` from a skeleton and the unpacked layer at `root`."""
    for chunk in chunks(skeleton, root):
        out.write(chunk)


def chunks(skeleton: Path, root: Path) -> Iterator[bytes]:
    """The original tar, in pieces, from a skeleton and the unpacked layer at `root`."""
    inline: dict[int, tuple[int, int]] = {}
    side = Path(str(skeleton) + ".inline")
    inline_f = open(side, "rb") if side.exists() else None
    try:
        if inline_f is not None:
            while head := inline_f.read(_INLINE.size):
                index, size = _INLINE.unpack(head)
                inline[index] = (inline_f.tell(), size)
                inline_f.seek(size, os.SEEK_CUR)
        with open(skeleton, "rb") as f:
            while kind := f.read(1):
                if kind == b"S":
                    (n,) = _U64.unpack(f.read(_U64.size))
                    yield from _read_n(f, n, "skeleton")
                elif kind == b"F":
                    index, size, n = _FILE.unpack(f.read(_FILE.size))
                    rel = f.read(n).decode("utf-8", "surrogateescape")
                    if index in inline:
                        assert inline_f is not None
                        inline_f.seek(inline[index][0])
                        yield from _read_n(inline_f, size, rel)
                    else:
                        with open(root / rel, "rb") as src:
                            yield from _read_n(src, size, rel)
                else:
                    raise ValueError(f"bad skeleton record {kind!r}")
    finally:
        if inline_f is not None:
            inline_f.close()


def _read_n(f: BinaryIO, n: int, what: str) -> Iterator[bytes]:
    done = 0
    while done < n:
        chunk = f.read(min(CHUNK, n - done))
        if not chunk:
            raise ValueError(f"{what}: {done} of {n} bytes")
        done += len(chunk)
        yield chunk


def remove(skeleton: Path) -> None:
    for p in (skeleton, Path(str(skeleton) + ".inline")):
        p.unlink(missing_ok=True)


def tar_size(skeleton: Path) -> int:
    """Bytes of the tar a skeleton rebuilds (read from its records, not by rebuilding)."""
    n = 0
    with open(skeleton, "rb") as f:
        while kind := f.read(1):
            if kind == b"S":
                (k,) = _U64.unpack(f.read(_U64.size))
                f.seek(k, os.SEEK_CUR)
                n += k
            else:
                _, size, k = _FILE.unpack(f.read(_FILE.size))
                f.seek(k, os.SEEK_CUR)
                n += size
    return n
