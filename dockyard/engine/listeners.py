"""The API's listening sockets: unix (0660, owned by the socket group), TCP (+TLS), fd:// (systemd).

Everything that can refuse a host (bad address, unauthenticated TCP on a
network address, an unknown group, missing activated sockets) is checked by
`plan()` before the engine touches anything; `open_sockets()` then creates them.

Socket activation follows sd_listen_fds(3): the sockets are fds 3..3+LISTEN_FDS-1,
valid only when LISTEN_PID is our PID; LISTEN_FDNAMES names them (colon-separated).
The variables are removed afterwards so children (conmon, runc) never see them.
"""

from __future__ import annotations

import grp
import ipaddress
import logging
import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from ..config import EngineConfig

log = logging.getLogger(__name__)

SD_LISTEN_FDS_START = 3
DEFAULT_SOCKET_GROUP = "docker"


class ListenError(Exception):
    pass


@dataclass
class Listener:
    host: str  # as configured
    kind: str  # "unix", "tcp" or "fd"
    sock: socket.socket | None = None  # fd:// sockets are already open
    path: str | None = None  # unix
    addr: tuple[str, int] | None = None  # tcp


def activated_sockets(env: dict[str, str] | None = None) -> list[tuple[int, str]]:
    """(fd, name) of the sockets systemd passed us, per sd_listen_fds(3)."""
    env = os.environ if env is None else env
    try:
        if int(env.get("LISTEN_PID", "")) != os.getpid():
            return []
        n = int(env.get("LISTEN_FDS", ""))
    except ValueError:
        return []
    names = env.get("LISTEN_FDNAMES", "").split(":") if env.get("LISTEN_FDNAMES") else []
    return [(SD_LISTEN_FDS_START + i, names[i] if i < len(names) else "unknown") for i in range(n)]


def _forget_activation_env() -> None:
    for k in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(k, None)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def socket_gid(cfg: EngineConfig) -> int:
    """The group of the unix sockets: `group` (name or number), else docker if it exists, else root."""
    name = cfg.group or DEFAULT_SOCKET_GROUP
    if name.isdigit():
        return int(name)
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        if cfg.group and cfg.group != DEFAULT_SOCKET_GROUP:
            raise ListenError(f"group {cfg.group} not found") from None
        return 0


def plan(cfg: EngineConfig, tls: ssl.SSLContext | None) -> list[Listener]:
    out: list[Listener] = []
    activated: list[tuple[int, str]] | None = None
    for host in cfg.hosts:
        proto, _, addr = host.partition("://")
        if proto == "unix":
            out.append(Listener(host, "unix", path=addr))
        elif proto == "tcp":
            h, _, p = addr.rpartition(":")
            h = h.strip("[]") or "0.0.0.0"
            authenticated = tls is not None and tls.verify_mode == ssl.CERT_REQUIRED
            if not authenticated and not cfg.tls_opt_out and not _is_loopback(h):
                raise ListenError(
                    f"refusing to listen on {host}: without --tlsverify, anyone who can reach this "
                    "address gets root access to this machine (the API runs containers as root). "
                    "Use --tlsverify with --tlscacert, --tlscert and --tlskey, listen on a loopback "
                    "address, or accept the risk explicitly with --tls=false (or --tlsverify=false)")
            out.append(Listener(host, "tcp", addr=(h, int(p))))
        elif proto == "fd":
            if activated is None:
                activated = activated_sockets()
            if not activated:
                raise ListenError(f"{host}: no sockets found via socket activation: make sure the "
                                  "service was started by systemd (LISTEN_PID/LISTEN_FDS not set for this process)")
            if addr in ("", "*"):
                chosen = [fd for fd, _ in activated]
            else:
                fd = int(addr)
                if fd not in [f for f, _ in activated]:
                    raise ListenError(f"{host}: too few socket activated files passed in by systemd "
                                      f"(got fds {activated[0][0]}..{activated[-1][0]})")
                chosen = [fd]
            for fd in chosen:
                s = socket.socket(fileno=fd)
                s.set_inheritable(False)
                out.append(Listener(host, "fd", sock=s))
        else:
            raise ListenError(f"unsupported host {host!r}: use unix:///path, tcp://addr:port or fd://")
    if activated is not None:
        _forget_activation_env()
    return out


def prepare_unix(path: str, gid: int) -> socket.socket:
    """A unix socket at `path`, mode 0660, owned by root:gid (bound before aiohttp serves it)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if os.path.exists(path):
        os.unlink(path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)  # never world-accessible, not even for an instant
    try:
        s.bind(path)
    finally:
        os.umask(old)
    os.chown(path, 0, gid)
    os.chmod(path, 0o660)
    return s
