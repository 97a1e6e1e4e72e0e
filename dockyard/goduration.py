"""Go's time.ParseDuration, which Docker's and Distribution's settings are written in."""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
            "m": 60_000_000_000, "h": 3_600_000_000_000}


def parse_ns(text: str) -> int | None:
    """"1h30m", "500ms", "0" -> nanoseconds; None when Go would refuse the text."""
    s = text.strip()
    if s == "0":
        return 0
    pos, total = 0, 0.0
    for m in _PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT_NS[m.group(2)]
        pos = m.end()
    if not s or pos != len(s):
        return None
    return int(total)
