"""Docker's time arguments: unix seconds[.nanos], RFC3339 dates, or Go durations ago."""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone

from ..errors import InvalidParameter

_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def parse_timestamp(value: str, now: float | None = None) -> float:
    """Return seconds since the epoch."""
    v = value.strip()
    if not v:
        raise InvalidParameter("empty timestamp")
    if re.fullmatch(r"\d+(\.\d+)?", v):
        return float(v)
    if _DURATION.match(v):
        secs = sum(float(n) * _UNIT[u] for n, _, u in re.findall(r"(\d+(\.\d+)?)(ns|us|µs|ms|s|m|h)", v))
        return (now if now is not None else time.time()) - secs
    try:
        s = v.replace("Z", "+00:00")
        if "." in s:
            head, frac = s.split(".", 1)
            m = re.match(r"(\d+)(.*)", frac)
            if m:
                s = f"{head}.{m.group(1)[:6]}{m.group(2)}"
        dt = datetime.fromisoformat(s)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        return dt.timestamp()
    except ValueError:
        raise InvalidParameter(f"invalid timestamp or duration: {value!r}") from None


def parse_timestamp_ns(value: str, now: float | None = None) -> int:
    """Nanoseconds since the epoch; exact for the CLI's `seconds.nanoseconds` form (a float
    would be off by hundreds of ns, and log records stamped at that instant fall outside)."""
    m = re.fullmatch(r"(\d+)(?:\.(\d{1,9}))?", value.strip())
    if m:
        return int(m.group(1)) * 1_000_000_000 + int((m.group(2) or "").ljust(9, "0"))
    return int(parse_timestamp(value, now) * 1e9)
