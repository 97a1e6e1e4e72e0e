"""HostConfig.Ulimits → OCI process.rlimits, never above what the engine holds.

runc sets rlimits from inside the container's init, which inherits the
engine's limits and (here) lacks CAP_SYS_RESOURCE: asking for a hard limit
above the engine's own makes container start fail (podman does exactly that
on this machine).  So every request is clamped to the engine's hard limit.
"""

from __future__ import annotations

import resource

from dockyard.errors import InvalidParameter

# Docker's ulimit names → resource constants.
NAMES = {
    "as": "RLIMIT_AS", "core": "RLIMIT_CORE", "cpu": "RLIMIT_CPU", "data": "RLIMIT_DATA",
    "fsize": "RLIMIT_FSIZE", "locks": "RLIMIT_LOCKS", "memlock": "RLIMIT_MEMLOCK",
    "msgqueue": "RLIMIT_MSGQUEUE", "nice": "RLIMIT_NICE", "nofile": "RLIMIT_NOFILE",
    "nproc": "RLIMIT_NPROC", "rss": "RLIMIT_RSS", "rtprio": "RLIMIT_RTPRIO",
    "rttime": "RLIMIT_RTTIME", "sigpending": "RLIMIT_SIGPENDING", "stack": "RLIMIT_STACK",
}
INFINITY = 2**64 - 1  # RLIM_INFINITY as the OCI spec's uint64
DEFAULT_NOFILE = 1048576


def engine_limit(oci_type: str) -> tuple[int, int]:
    """(soft, hard) of the engine process, RLIM_INFINITY as INFINITY."""
    soft, hard = resource.getrlimit(getattr(resource, oci_type))

    def conv(v: int) -> int:
        return INFINITY if v == resource.RLIM_INFINITY or v < 0 else v
    return conv(soft), conv(hard)


def _value(v, name: str, which: str) -> int:
    try:
        value = int(v)
    except (TypeError, ValueError):
        raise InvalidParameter(f"invalid ulimit {which} value for {name}: {v!r}") from None
    if value == -1:
        return INFINITY
    if value < 0:
        raise InvalidParameter(f"invalid ulimit {which} value for {name}: {value}")
    return value


def build_rlimits(ulimits: list[dict] | None, *, limits=engine_limit) -> list[dict]:
    """Ulimits ([{Name, Soft, Hard}]) plus the nofile default, clamped."""
    wanted: dict[str, tuple[int, int]] = {}
    for ul in ulimits or []:
        if not isinstance(ul, dict):
            raise InvalidParameter("invalid ulimit: expected an object with Name, Soft and Hard")
        name = str(ul.get("Name", "")).lower()
        if name not in NAMES:
            raise InvalidParameter(f"invalid ulimit type: {ul.get('Name')}")
        soft = _value(ul.get("Soft", 0), name, "soft")
        hard = _value(ul.get("Hard", 0), name, "hard")
        if soft > hard:
            raise InvalidParameter(
                f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")
        wanted[NAMES[name]] = (soft, hard)
    if "RLIMIT_NOFILE" not in wanted:
        wanted["RLIMIT_NOFILE"] = (DEFAULT_NOFILE, DEFAULT_NOFILE)
    out = []
    for oci_type, (soft, hard) in wanted.items():
        _esoft, ehard = limits(oci_type)
        hard = min(hard, ehard)
        soft = min(soft, hard)
        out.append({"type": oci_type, "hard": hard, "soft": soft})
    return out
