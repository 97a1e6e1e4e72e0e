"""Pure pieces of the builder's config handling: Go-style formatting, durations, EXPOSE, HEALTHCHECK."""

from __future__ import annotations

import json
from typing import Any

from ... import goduration
from ...errors import InvalidParameter


def go_list(items: list[str]) -> str:
    """Go's %q of a []string, as dockerd writes CMD/ENTRYPOINT into history."""
    return "[" + " ".join(json.dumps(i) for i in items) + "]"


def parse_duration(text: str, flag: str) -> int:
    """Go's time.ParseDuration -> nanoseconds."""
    ns = goduration.parse_ns(text)
    if ns is None:
        raise InvalidParameter(f"invalid value {text!r} for --{flag}: time: invalid duration \"{text}\"")
    return ns


def exposed_ports(specs: list[str]) -> list[str]:
    """EXPOSE arguments -> ExposedPorts keys ("80/tcp"); ranges expand."""
    out: list[str] = []
    for spec in specs:
        port, _, proto = spec.partition("/")
        proto = (proto or "tcp").lower()
        if proto not in ("tcp", "udp", "sctp"):
            raise InvalidParameter(f"invalid proto: {proto}")
        lo, dash, hi = port.partition("-")
        try:
            start, end = int(lo), int(hi) if dash else int(lo)
        except ValueError:
            raise InvalidParameter(f"invalid containerPort: {port}") from None
        if not (0 < start <= end <= 65535):
            raise InvalidParameter(f"invalid port range: {port}")
        out += [f"{p}/{proto}" for p in range(start, end + 1)]
    return out


def healthcheck(args: list[str], exec_form: bool, flags: dict[str, str | None]) -> dict[str, Any]:
    """HEALTHCHECK [flags] CMD ... | NONE -> Config.Healthcheck (durations in ns; zeros left out)."""
    if args[0].upper() == "NONE":
        return {"Test": ["NONE"]}
    test = ["CMD", *args[1:]] if exec_form else ["CMD-SHELL", args[1]]
    hc: dict[str, Any] = {"Test": test}
    for flag, key in (("interval", "Interval"), ("timeout", "Timeout"),
                      ("start-period", "StartPeriod"), ("start-interval", "StartInterval")):
        raw = flags.get(flag)
        if raw is None:
            continue
        ns = parse_duration(raw, flag)
        if 0 < ns < 1_000_000:
            raise InvalidParameter(f"{key} in HEALTHCHECK cannot be less than 1ms")
        if ns:
            hc[key] = ns
    raw = flags.get("retries")
    if raw is not None:
        try:
            retries = int(raw)
        except ValueError:
            raise InvalidParameter(f"invalid value {raw!r} for --retries") from None
        if retries < 0:
            raise InvalidParameter("--retries cannot be negative")
        if retries:
            hc["Retries"] = retries
    return hc
