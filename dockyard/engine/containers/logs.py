"""Reading conmon's CRI ("k8s-file") log files directly.

Containers created before log drivers existed kept this file as their log;
today conmon's output goes through the log daemon (engine/logdrivers/) and
this module only serves those older containers and the unit tests of the format.

Each line is `<RFC3339Nano time> <stdout|stderr> <F|P> <text>`: P marks a
partial line that the next record continues, F the end of a line.  We join
partials back so `docker logs` shows lines exactly as the process wrote them.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from pathlib import Path
from typing import AsyncIterator, Callable, Iterator

from ..logdrivers.base import STDERR, STDOUT, LogQuery, LogRecord, format_time, parse_time  # noqa: F401


class LineParser:
    """Turns log lines into records, joining partial (P) lines; keeps state between feeds."""

    def __init__(self) -> None:
        self.pending: dict[int, LogRecord] = {}

    def feed(self, lines: Iterator[bytes]) -> Iterator[LogRecord]:
        for raw in lines:
            if raw.endswith(b"\n"):
                raw = raw[:-1]
            parts = raw.split(b" ", 3)
            if len(parts) < 3:
                continue
            ts, stream_name, tag = parts[0], parts[1], parts[2]
            text = parts[3] if len(parts) > 3 else b""
            stream = STDERR if stream_name == b"stderr" else STDOUT
            try:
                t = parse_time(ts)
            except ValueError:
                continue
            prev = self.pending.pop(stream, None)
            if prev is not None:
                prev.data += text
                rec = prev
            else:
                rec = LogRecord(stream, t, text)
            if tag.startswith(b"P"):
                self.pending[stream] = rec
            else:
                rec.data += b"\n"
                yield rec

    def flush(self) -> Iterator[LogRecord]:
        yield from self.pending.values()
        self.pending.clear()


def parse_lines(lines: Iterator[bytes]) -> Iterator[LogRecord]:
    p = LineParser()
    yield from p.feed(lines)
    yield from p.flush()


CHUNK = 1 << 20


def tail_offset(f, n: int, block: int = 1 << 16) -> int:
    """Where the last `n` complete records (F lines) start, found reading backwards."""
    end = os.fstat(f.fileno()).st_size
    pos, full, carry = end, 0, b""
    while pos > 0:
        step = min(block, pos)
        pos -= step
        f.seek(pos)
        buf = f.read(step) + carry
        lines = buf.split(b"\n")
        carry = lines[0]  # may be the end of a line that starts in an earlier block
        for i in range(len(lines) - 1, 0, -1):
            parts = lines[i].split(b" ", 3)
            if len(parts) >= 3 and parts[2].startswith(b"F"):
                full += 1
                if full > n:
                    # this line ends the record before the last n: start after it
                    return pos + sum(len(x) + 1 for x in lines[:i + 1])
    return 0


def _read_chunk(f, offset: int) -> tuple[list[bytes], int]:
    """Complete lines from `offset` (at most about CHUNK bytes) and the offset after them."""
    f.seek(offset)
    data = f.read(CHUNK)
    end = data.rfind(b"\n") + 1  # a half-written last line waits for the next read
    if end == 0 and len(data) == CHUNK:
        end = len(data)  # conmon splits lines far below this: never expected, never stuck
    return data[:end].splitlines(keepends=True), offset + end


async def follow(path: Path, q: LogQuery, still_running: Callable[[], bool],
                 poll: float = 0.05) -> AsyncIterator[LogRecord]:
    """Yield the matching records, then new ones while the container runs.

    The file stays open throughout, so an auto-removed container's last
    lines are still read after its directory is gone.  Memory stays bounded:
    the file is read in chunks, and `tail` starts reading near the end.
    """
    f = None
    while f is None:
        try:
            f = open(path, "rb")
        except FileNotFoundError:
            if not (q.follow and still_running()):
                return
            await asyncio.sleep(poll)
    with f:
        parser = LineParser()
        offset = 0
        if q.tail is not None and q.tail >= 0:
            offset = await asyncio.to_thread(tail_offset, f, q.tail)
            last: deque[LogRecord] = deque(maxlen=q.tail or None)
            while True:
                lines, new = await asyncio.to_thread(_read_chunk, f, offset)
                if new == offset:
                    break
                offset = new
                last.extend(r for r in parser.feed(iter(lines)) if q.wants(r))
            if not q.follow:
                last.extend(r for r in parser.flush() if q.wants(r))
            for r in (last if q.tail else []):
                yield r
        if not q.follow and q.tail is None:
            while True:
                lines, new = await asyncio.to_thread(_read_chunk, f, offset)
                if new == offset:
                    for r in parser.flush():  # output that ended without a newline
                        if q.wants(r):
                            yield r
                    return
                offset = new
                for r in parser.feed(iter(lines)):
                    if q.wants(r):
                        yield r
        if not q.follow:
            return
        while True:
            running = still_running()
            lines, new = await asyncio.to_thread(_read_chunk, f, offset)
            if new < offset:  # truncated: start over
                new = 0
            if new > offset:
                offset = new
                for r in parser.feed(iter(lines)):
                    if q.until_ns and r.time_ns > q.until_ns:
                        return
                    if q.wants(r):
                        yield r
                continue  # more may be waiting: read again before sleeping
            if not running:
                for r in parser.flush():  # the last output, if it had no newline
                    if q.wants(r):
                        yield r
                return
            await asyncio.sleep(poll)
