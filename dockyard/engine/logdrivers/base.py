"""What every log driver shares: the record, the query, the container facts, the interface.

A driver is one container's log sink.  The log daemon (`logd.py`) creates one per
running container and calls `write` for every record conmon captured, `close`
when the container stops.  Drivers that keep files (json-file, local) also read
them back for `docker logs`: the engine opens a reader with `read_files`, which
needs no driver instance and so works whether or not the container runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Protocol

STDOUT = 1
STDERR = 2
STREAM_NAMES = {STDOUT: "stdout", STDERR: "stderr"}


@dataclass
class LogRecord:
    stream: int  # 1 stdout, 2 stderr (Docker's stream numbers)
    time_ns: int
    data: bytes  # with its trailing newline when the line was complete
    attrs: dict[str, str] | None = None  # read back from the file (labels/env/tag opts)


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


@dataclass
class ContainerInfo:
    """The container facts drivers use for tags and attributes (logger.Info in dockerd)."""

    id: str
    name: str  # without the leading slash
    image_id: str = ""
    image_name: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    env: list[str] = field(default_factory=list)
    daemon_name: str = "docker"
    entrypoint: str = ""  # the container's Path
    args: list[str] = field(default_factory=list)
    created: str = ""  # RFC 3339, as inspect's Created
    log_path: str = ""

    def to_json(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, d: dict) -> "ContainerInfo":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


class LogDriver(Protocol):
    """One container's log sink: write records, rotate, close."""

    name: str

    def write(self, rec: LogRecord) -> None:
        """Store or send one record; never blocks for long (a slow receiver drops records)."""

    def close(self) -> None:
        """Flush and release files and connections."""


def format_details(attrs: dict[str, str] | None) -> bytes:
    """`docker logs --details`' prefix: sorted key=value pairs, query-escaped as Go's url.QueryEscape."""
    from urllib.parse import quote_plus

    return ",".join(f"{quote_plus(k, safe='~')}={quote_plus(v, safe='~')}"
                    for k, v in sorted((attrs or {}).items())).encode()


def format_time(ns: int) -> str:
    """Docker's timestamp: RFC3339Nano in UTC, trailing zeros of the fraction trimmed."""
    dt = datetime.fromtimestamp(ns // 1_000_000_000, tz=timezone.utc)
    frac = f"{ns % 1_000_000_000:09d}".rstrip("0")
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + "Z"


def parse_time(ts: bytes | str) -> int:
    """RFC3339 with nanoseconds and a numeric or Z offset → ns since the epoch."""
    s = ts.decode() if isinstance(ts, bytes) else ts
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    main, _, frac_tz = s.partition(".")
    if frac_tz:
        i = 0
        while i < len(frac_tz) and frac_tz[i].isdigit():
            i += 1
        digits, tz = frac_tz[:i], frac_tz[i:]
    else:
        digits, tz = "", ""
        if "+" in main[10:] or "-" in main[10:]:
            cut = max(main.rfind("+"), main.rfind("-"))
            main, tz = main[:cut], main[cut:]
    base = datetime.fromisoformat(main + (tz or "+00:00"))
    return int(base.timestamp()) * 1_000_000_000 + int((digits + "000000000")[:9])
