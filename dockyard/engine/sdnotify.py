"""sd_notify(3) for `Type=notify` units: READY=1 once the API listens, RELOADING=1/READY=1 around
a SIGHUP reload, STOPPING=1 at shutdown.  Without NOTIFY_SOCKET (not under systemd) it does nothing."""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


def notify(state: str) -> bool:
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr.startswith("@"):  # abstract namespace
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.sendto(state.encode(), addr)
        return True
    except OSError as exc:
        log.warning("sd_notify(%s) to %s failed: %s", state, addr, exc)
        return False
