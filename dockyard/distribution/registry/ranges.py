"""A blob GET's `Range: bytes=a-b` header, as Go's http.ServeContent reads one range."""

from __future__ import annotations

import re

_RANGE_RE = re.compile(r"^bytes=([0-9]*)-([0-9]*)\Z")


def parse_range(value: str, size: int) -> "tuple[int, int] | str | None":
    """One `bytes=a-b` range -> (start, end) inclusive; "unsatisfiable"; or None to ignore it."""
    mr = _RANGE_RE.match(value.strip())
    if not mr or not (mr.group(1) or mr.group(2)):
        return None
    a, b = mr.groups()
    if a:
        start = int(a)
        end = min(int(b), size - 1) if b else size - 1
        if b and int(b) < start:
            return "unsatisfiable"  # bytes=500-0: 416, as Go's ServeContent and the OCI conformance suite
    else:
        if int(b) == 0:
            return "unsatisfiable"
        start, end = max(0, size - int(b)), size - 1
    if start >= size:
        return "unsatisfiable"
    return start, end
