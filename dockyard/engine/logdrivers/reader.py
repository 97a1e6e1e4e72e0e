"""`docker logs` for drivers that keep files: tail, since/until and follow across rotations.

Files are read in bounded chunks off the event loop; `tail` walks back from the
newest file; rotated `.gz` files are decompressed into a temporary file first.
Following keeps the live file open and notices, at every step, a new live file
the writer rotated in: the rest of the old file is read, then the new one from its
start.  As with dockerd, a file rotated in and out again between two steps of a
slow reader is not seen.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import shutil
import tempfile
from pathlib import Path
from typing import AsyncIterator, Callable

from .base import LogQuery, LogRecord
from .rotating import rotated_files

CHUNK = 1 << 20


class _Gunzipped:
    """A rotated .gz file, held open now, decompressed only when read (a short --tail rarely needs it)."""

    def __init__(self, p: Path) -> None:
        self.raw = open(p, "rb")
        self.tmp = None

    def _file(self):
        if self.tmp is None:
            self.tmp = tempfile.TemporaryFile()
            with gzip.open(self.raw, "rb") as src:
                shutil.copyfileobj(src, self.tmp, CHUNK)
            self.tmp.flush()  # fstat (the size tail starts from) sees only what is written out
        return self.tmp

    def fileno(self) -> int:
        return self._file().fileno()

    def seek(self, pos: int) -> int:
        return self._file().seek(pos)

    def read(self, n: int = -1) -> bytes:
        return self._file().read(n)

    def close(self) -> None:
        self.raw.close()
        if self.tmp is not None:
            self.tmp.close()


def _open(p: Path):
    return _Gunzipped(p) if p.name.endswith(".gz") else open(p, "rb")


def _open_all(live: Path) -> tuple[list, object | None]:
    """Rotated files (oldest first) and the live file, opened together."""
    for _ in range(3):  # a rotation while listing renames files under us: list again
        try:
            live_f = open(live, "rb")
        except FileNotFoundError:
            live_f = None
        olds = []
        try:
            for p in rotated_files(live):
                olds.append(_open(p))
            return olds, live_f
        except (FileNotFoundError, EOFError, OSError):
            for f in olds:
                f.close()
            if live_f:
                live_f.close()
    return [], None


def _read_chunk(f, offset: int, codec) -> tuple[list[LogRecord], int]:
    f.seek(offset)
    data = f.read(CHUNK)
    recs, used = codec.split(data)
    if used == 0 and len(data) == CHUNK:
        used = len(data)  # a record larger than a chunk cannot be: never stuck on garbage
    return recs, offset + used


async def read_logs(live: Path, codec, q: LogQuery, still_running: Callable[[], bool],
                    poll: float = 0.05) -> AsyncIterator[LogRecord]:
    olds, live_f = await asyncio.to_thread(_open_all, live)
    while live_f is None and q.follow and still_running():
        await asyncio.sleep(poll)
        olds, live_f = await asyncio.to_thread(_open_all, live)
    sources = olds + ([live_f] if live_f else [])
    try:
        starts = [0] * len(sources)
        first = 0
        if q.tail is not None:
            need = q.tail
            first = len(sources)
            for i in range(len(sources) - 1, -1, -1):
                if need <= 0:
                    break
                off, found = await asyncio.to_thread(codec.tail_offset, sources[i], need)
                starts[i], first, need = off, i, need - found
            if q.tail == 0:
                first = len(sources)
        live_offset = os.fstat(live_f.fileno()).st_size if live_f and q.tail == 0 else 0
        for i in range(first, len(sources)):
            f, off = sources[i], starts[i]
            while True:
                recs, new = await asyncio.to_thread(_read_chunk, f, off, codec)
                if new == off:
                    break
                off = new
                for r in recs:
                    if q.wants(r):
                        yield r
            if f is live_f:
                live_offset = off
        if not q.follow or live_f is None:
            return
        # files to read in order: the one being read, then any the writer rotated in since
        queue: list[list] = [[live_f, live_offset, os.fstat(live_f.fileno()).st_ino]]
        while True:
            running = still_running()
            try:
                ino = os.stat(live).st_ino
            except FileNotFoundError:
                ino = None
            if ino is not None and ino != queue[-1][2]:
                try:
                    nf = open(live, "rb")
                    sources.append(nf)
                    queue.append([nf, 0, os.fstat(nf.fileno()).st_ino])
                except FileNotFoundError:
                    pass
            f, off = queue[0][0], queue[0][1]
            recs, new = await asyncio.to_thread(_read_chunk, f, off, codec)
            if new > off:
                queue[0][1] = new
                for r in recs:
                    if q.until_ns and r.time_ns > q.until_ns:
                        return
                    if q.wants(r):
                        yield r
                continue
            if len(queue) > 1:  # rotated away and read to its end: on to the next file
                f.close()
                queue.pop(0)
                continue
            if not running:
                return
            await asyncio.sleep(poll)
    finally:
        for s in sources:
            s.close()
