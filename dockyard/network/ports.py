"""Published ports: parsing Docker's PortBindings, reserving host ports, rendering them.

`-p 8080:80` arrives as HostConfig.PortBindings {"80/tcp": [{"HostIp": "",
"HostPort": "8080"}]}; `-p 80` leaves HostPort empty (the engine picks one);
`-P` (PublishAllPorts) publishes every ExposedPorts entry on an ephemeral port.

A host port is *reserved* by binding a socket to it in the engine (as
docker-proxy does, without listening): the kernel then refuses the port to
any other program and to a second container, which gives the conflict error
at start, and binding port 0 lets the kernel choose an ephemeral port.  The
traffic itself never reaches these sockets: the DNAT rules rewrite it first.
"""

from __future__ import annotations

import errno
import random
import socket
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any, Iterable

from ..errors import Conflict, InvalidParameter

PROTOS = ("tcp", "udp")


@dataclass(frozen=True)
class PortRequest:
    """One host binding wanted for one container port."""

    container_port: int
    proto: str
    host_ip: str  # "0.0.0.0" when unspecified
    host_lo: int  # 0: ephemeral
    host_hi: int


@dataclass(frozen=True)
class PortMapping:
    """A binding that holds: what the DNAT rules and `docker port` show."""

    proto: str
    container_port: int
    host_ip: str
    host_port: int

    @property
    def key(self) -> str:
        return f"{self.container_port}/{self.proto}"


# ------------------------------------------------------------------ parsing


def _port(value: Any, what: str, allow_zero: bool = False) -> int:
    try:
        n = int(str(value).strip())
    except ValueError:
        raise InvalidParameter(f"invalid {what}: {value!r}") from None
    if not (0 if allow_zero else 1) <= n <= 65535:
        raise InvalidParameter(f"invalid {what}: {value!r}")
    return n


def parse_port_key(key: str) -> tuple[int, str]:
    """"80/tcp" -> (80, "tcp"); a missing protocol means tcp."""
    if not isinstance(key, str) or not key:
        raise InvalidParameter(f"invalid port specification: {key!r}")
    port, _, proto = key.partition("/")
    proto = (proto or "tcp").lower()
    if proto == "sctp":
        raise InvalidParameter(f"invalid port specification {key!r}: sctp ports are not supported")
    if proto not in PROTOS:
        raise InvalidParameter(f"invalid proto: {proto}")
    if "-" in port:
        raise InvalidParameter(f"invalid port specification {key!r}: expected one container port")
    return _port(port, "containerPort"), proto


def _host_range(value: Any) -> tuple[int, int]:
    text = "" if value is None else str(value).strip()
    if not text:
        return 0, 0
    lo, sep, hi = text.partition("-")
    a = _port(lo, "hostPort", allow_zero=True)
    b = _port(hi, "hostPort", allow_zero=True) if sep else a
    if b < a:
        raise InvalidParameter(f"invalid hostPort range: {text}")
    return a, b


def _host_ip(value: Any) -> str:
    text = "" if value is None else str(value).strip().strip("[]")
    if not text:
        return "0.0.0.0"
    try:
        return str(IPv4Address(text))
    except ValueError:
        if ":" in text:
            raise InvalidParameter(f"invalid host IP {text!r}: IPv6 port bindings are not supported") from None
        raise InvalidParameter(f"invalid host IP {text!r}") from None


def parse_requests(bindings: Any, exposed: Any, publish_all: bool) -> list[PortRequest]:
    """PortBindings (+ ExposedPorts when PublishAllPorts) -> the bindings to make."""
    if bindings is None:
        bindings = {}
    if not isinstance(bindings, dict):
        raise InvalidParameter("invalid PortBindings: expected an object")
    out: list[PortRequest] = []
    bound: set[tuple[int, str]] = set()
    for key, lst in bindings.items():
        port, proto = parse_port_key(key)
        if lst is None:
            lst = []
        if not isinstance(lst, list):
            raise InvalidParameter(f"invalid PortBindings for {key}: expected a list")
        for b in lst:
            if b is None:
                b = {}
            if not isinstance(b, dict):
                raise InvalidParameter(f"invalid PortBindings for {key}: expected objects")
            lo, hi = _host_range(b.get("HostPort"))
            out.append(PortRequest(port, proto, _host_ip(b.get("HostIp")), lo, hi))
            bound.add((port, proto))
    if publish_all:
        for key in exposed or {}:
            port, proto = parse_port_key(key)
            if (port, proto) not in bound:
                out.append(PortRequest(port, proto, "0.0.0.0", 0, 0))
                bound.add((port, proto))
    return out


def normalize_key(key: str) -> str:
    return key if "/" in key else f"{key}/tcp"


# -------------------------------------------------------------- reservation


def reserve(req: PortRequest) -> tuple[int, socket.socket]:
    """Bind a socket for the request; the port it got and the socket holding it."""
    kind = socket.SOCK_STREAM if req.proto == "tcp" else socket.SOCK_DGRAM
    if req.host_lo == 0 and req.host_hi == 0:
        candidates: Iterable[int] = [0]
    else:
        ports = list(range(max(req.host_lo, 1), req.host_hi + 1))
        if len(ports) > 1:
            random.shuffle(ports)  # Docker picks any free port of a range
        candidates = ports
    last_err: OSError | None = None
    tried = 0
    for port in candidates:
        tried = port
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind((req.host_ip, port))
        except OSError as exc:
            s.close()
            last_err = exc
            if exc.errno == errno.EADDRINUSE:
                continue
            if exc.errno == errno.EADDRNOTAVAIL:
                raise InvalidParameter(
                    f"cannot bind {req.host_ip}:{port}/{req.proto}: {req.host_ip} is not an address of this host"
                ) from None
            raise
        return s.getsockname()[1], s
    shown = f"{req.host_lo}-{req.host_hi}" if req.host_hi != req.host_lo else str(tried)
    if last_err is not None and last_err.errno == errno.EADDRINUSE:
        raise Conflict(f"Bind for {req.host_ip}:{shown} failed: port is already allocated")
    raise Conflict(f"Bind for {req.host_ip}:{shown} failed: {last_err}")


def rebind(m: PortMapping) -> socket.socket | None:
    """Re-reserve a mapping after an engine restart (None when someone took it meanwhile)."""
    try:
        return reserve(PortRequest(m.container_port, m.proto, m.host_ip, m.host_port, m.host_port))[1]
    except Conflict:
        return None


# ---------------------------------------------------------------- rendering


def docker_port_map(mappings: Iterable[PortMapping], exposed: Iterable[str] = ()) -> dict[str, Any]:
    """NetworkSettings.Ports: {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}], "443/tcp": None}."""
    out: dict[str, Any] = {normalize_key(k): None for k in exposed}
    for m in sorted(mappings, key=lambda m: (m.container_port, m.proto, m.host_ip, m.host_port)):
        lst = out.get(m.key) or []
        lst.append({"HostIp": m.host_ip, "HostPort": str(m.host_port)})
        out[m.key] = lst
    return out


def docker_port_list(port_map: dict[str, Any]) -> list[dict[str, Any]]:
    """The `Ports` array of GET /containers/json, from a NetworkSettings.Ports map."""
    out: list[dict[str, Any]] = []
    for key, lst in port_map.items():
        port, _, proto = key.partition("/")
        if not lst:
            out.append({"PrivatePort": int(port), "Type": proto or "tcp"})
            continue
        for b in lst:
            out.append({"IP": b["HostIp"], "PrivatePort": int(port), "PublicPort": int(b["HostPort"]),
                        "Type": proto or "tcp"})
    return out
