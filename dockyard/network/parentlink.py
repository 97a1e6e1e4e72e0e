"""macvlan and ipvlan networks: containers get a sub-interface of a host
interface (the network's `-o parent=IF`) and addresses on that interface's
segment.  No bridge, no NAT, no firewall: the parent's segment routes them.

One small driver shape for both kinds: `check` (options, parent present, not
used by another network - before anything is recorded) and `plumb` (the
container's link, run when it connects).  Address allocation is IPAM's, as for
bridges; the link is created on the host, moved into the sandbox at once and
only then named ethN, so it never clashes with a host interface.  It dies with
the sandbox; `unplumb` removes it from a running container.
"""

from __future__ import annotations

import errno
import os
import secrets
from ipaddress import ip_interface
from pathlib import Path
from typing import Callable

from ..errors import Forbidden, InvalidParameter
from . import links
from .netlink import IPRoute, NetlinkError
from .driveropts import ParentOptions, ipvlan_options, macvlan_options

KINDS = ("macvlan", "ipvlan")
IPVLAN_MODE = {"l2": 0, "l3": 1, "l3s": 2}
IPVLAN_FLAG = {"bridge": 0, "private": 1, "vepa": 2}


def options(kind: str, opts: dict[str, str]) -> ParentOptions:
    return macvlan_options(opts) if kind == "macvlan" else ipvlan_options(opts)


def check(kind: str, opts: dict[str, str], others: list[tuple[str, str, dict[str, str]]]) -> ParentOptions:
    """Options of a new network; `others`: (id, driver, options) of existing networks."""
    po = options(kind, opts)
    if not links.link_exists(po.parent):
        raise InvalidParameter(f"-o parent interface was not found on the host: {po.parent}")
    for nid, driver, o in others:
        if driver in KINDS and options(driver, o).parent == po.parent:
            raise Forbidden(f"network {nid[:12]} is already using parent interface {po.parent}")
    return po


def plumb(kind: str, po: ParentOptions, sandbox: str, ifname: str, mac: str | None, mtu: int,
          addresses: list[str], gateway: str | None, gateway6: str | None,
          run_in: Callable[[str, Callable[[], None]], None]) -> None:
    """The container's sub-interface of the parent, addressed inside the sandbox."""
    tmp = "dyl" + secrets.token_hex(4)
    fd = os.open(sandbox, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with IPRoute() as ipr:
            parent = ipr.link_lookup(ifname=po.parent)
            if not parent:
                raise InvalidParameter(f"-o parent interface was not found on the host: {po.parent}")
            kw: dict = {"macvlan_mode": po.mode} if kind == "macvlan" else {
                "ipvlan_mode": IPVLAN_MODE[po.mode], "ipvlan_flags": IPVLAN_FLAG[po.flag]}
            try:
                ipr.link("add", ifname=tmp, kind=kind, link=parent[0], **kw)
            except NetlinkError as exc:
                if exc.code == errno.EOPNOTSUPP or "Unknown" in str(exc):
                    raise InvalidParameter(f"the kernel has no {kind} support: {exc}") from None
                raise
            idx = ipr.link_lookup(ifname=tmp)[0]
            try:
                ipr.link("set", index=idx, net_ns_fd=fd)
            except Exception:
                ipr.link("del", index=idx)
                raise
    finally:
        os.close(fd)

    def inside() -> None:
        with IPRoute() as ipr:
            idx = ipr.link_lookup(ifname=tmp)[0]
            attrs: dict = {"ifname": ifname}
            if mtu:
                attrs["mtu"] = mtu
            if mac and kind == "macvlan":  # ipvlan links share the parent's MAC
                attrs["address"] = mac
            ipr.link("set", index=idx, **attrs)
        first = ip_interface(addresses[0])
        links.configure_interface(ifname, first, first.ip.__class__(gateway) if gateway else None,
                                  addresses[1:], gateway6)

    run_in(sandbox, inside)


def unplumb(sandbox: str, ifname: str, run_in: Callable[[str, Callable[[], None]], None]) -> None:
    if Path(sandbox).exists():
        run_in(sandbox, lambda: links.delete_link(ifname))
