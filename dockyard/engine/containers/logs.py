"""Reading the log files conmon writes (CRI "k8s-file" format).

Each line is `<RFC3339Nano time> <stdout|stderr> <F|P> <text>`: P marks a
partial line that the next record continues, F the end of a line.  We join
partials back so `docker logs` shows lines exactly as the process wrote them.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import AsyncIterator, Callable, Iterator

STDOUT = 1
STDERR = 2


@dataclass
class LogRecord:
    stream: int  # 1 stdout, 2 stderr (Docker's stream numbers)
    time_ns: int
    data: bytes  # with its trailing newline when the line was complete


def parse_time(ts: bytes) -> int:
    """RFC3339 with nanoseconds and a numeric or Z offset → ns since the epoch."""
    s = ts.decode()
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    main, _, frac_tz = s.partition(".")
    if frac_tz:
        digits = ""
        i = 0
        while i < len(frac_tz) and frac_tz[i].isdigit():
            digits += frac_tz[i]
            i += 1
        tz = frac_tz[i:]
    else:
        digits, tz = "", ""
        if "+" in main[10:] or "-" in main[10:]:
            cut = max(main.rfind("+"), main.rfind("-"))
            main, tz = main[:cut], main[cut:]
    base = datetime.fromisoformat(main + (tz or "+00:00"))
    return int(base.timestamp()) * 1_000_000_000 + int((digits + "000000000")[:9])


def format_time(ns: int) -> str:
    """Docker's timestamp: RFC3339Nano in UTC, trailing zeros of the fraction trimmed."""
    dt = datetime.fromtimestamp(ns // 1_000_000_000, tz=timezone.utc)
    frac = f"{ns % 1_000_000_000:09d}".rstrip("0")
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + "Z"


def parse_lines(lines: Iterator[bytes]) -> Iterator[LogRecord]:
    pending: dict[int, LogRecord] = {}
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
        partial = tag.startswith(b"P")
        prev = pending.pop(stream, None)
        if prev is not None:
            prev.data += text
            rec = prev
        else:
            rec = LogRecord(stream, t, text)
        if partial:
            pending[stream] = rec
        else:
            rec.data += b"\n"
            yield rec
    for rec in pending.values():
        yield rec


@dataclass
class LogQuery:
    stdout: bool = True
    stderr: bool = True
    since_ns: int = 0
    until_ns: int = 0  # 0: no bound
    tail: int | None = None  # None: all
    follow: bool = False

    def wants(self, rec: LogRecord) -> bool:
        if rec.stream == STDOUT and not self.stdout:
            return False
        if rec.stream == STDERR and not self.stderr:
            return False
        if self.since_ns and rec.time_ns < self.since_ns:
            return False
        if self.until_ns and rec.time_ns > self.until_ns:
            return False
        return True


def _read_records(f, q: LogQuery) -> tuple[list[LogRecord], int]:
    """All matching records now in the open file, and the offset where they end."""
    f.seek(0)
    data = f.read()
    end = data.rfind(b"\n") + 1  # a half-written last line is read on the next pass
    recs = [r for r in parse_lines(iter(data[:end].splitlines(keepends=True))) if q.wants(r)]
    if q.tail is not None and q.tail >= 0:
        recs = recs[-q.tail:] if q.tail else []
    return recs, end


async def follow(path: Path, q: LogQuery, still_running: Callable[[], bool],
                 poll: float = 0.05) -> AsyncIterator[LogRecord]:
    """Yield the matching records, then new ones while the container runs.

    The file stays open throughout, so an auto-removed container's last
    lines are still read after its directory is gone.
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
        recs, offset = await asyncio.to_thread(_read_records, f, q)
        for r in recs:
            yield r
        if not q.follow:
            return
        while True:
            running = still_running()
            size = os.fstat(f.fileno()).st_size
            if size < offset:  # truncated: start over
                offset = 0
            if size > offset:
                f.seek(offset)
                chunk = f.read(size - offset)
                end = chunk.rfind(b"\n") + 1
                offset += end
                for r in parse_lines(iter(chunk[:end].splitlines(keepends=True))):
                    if q.until_ns and r.time_ns > q.until_ns:
                        return
                    if q.wants(r):
                        yield r
            elif not running:
                return
            await asyncio.sleep(poll)
