"""Links over netlink (pyroute2): the bridge, veth pairs, addresses and routes.

Every function is blocking and short (one or a few netlink round trips, no
process spawned); callers run them in a thread.  Functions meant to run
*inside* a sandbox are called through `NetnsDir.run_in`, which puts the
calling thread in that namespace, so they simply use a fresh IPRoute().
All of them are idempotent so that setup after a crash and double teardown
just work.
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import socket
import struct
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, ip_interface
from pathlib import Path

from .netlink import IPRoute, NetlinkError

DEFAULT_MTU = 1500
IFA_F_NODAD = 0x02


def random_mac() -> str:
    """A locally administered unicast MAC (so the bridge's MAC does not follow its ports)."""
    b = bytearray(secrets.token_bytes(6))
    b[0] = (b[0] & 0xFE) | 0x02
    return ":".join(f"{x:02x}" for x in b)


def veth_name() -> str:
    return "veth" + secrets.token_hex(4)[:7]


def _index(ipr: IPRoute, name: str) -> int | None:
    """The interface's index in the calling thread's namespace (where `ipr` was opened):
    one ioctl, where pyroute2's link_lookup dumps every link (0.5 ms with a dozen, and
    one more veth per running container; a start and a removal asked three times)."""
    try:
        return socket.if_nametoindex(name)
    except OSError:  # ENODEV, or a name too long to be an interface's
        return None


def link_exists(name: str) -> bool:
    with IPRoute() as ipr:
        return _index(ipr, name) is not None


def uplink_mtu() -> int:
    """MTU of the interface carrying the default route (containers use no more)."""
    with IPRoute() as ipr:
        for r in ipr.get_default_routes(family=2):
            oif = r.get_attr("RTA_OIF")
            if oif:
                links = ipr.get_links(oif)
                if links:
                    return min(DEFAULT_MTU, links[0].get_attr("IFLA_MTU") or DEFAULT_MTU)
    return DEFAULT_MTU


def host_routes() -> list[IPv4Network]:
    """IPv4 destinations routed on the host (to avoid for new subnets)."""
    out: list[IPv4Network] = []
    with IPRoute() as ipr:
        for r in ipr.get_routes(family=2, table=254):
            dst = r.get_attr("RTA_DST")
            if dst:
                out.append(IPv4Network(f"{dst}/{r['dst_len']}", strict=False))
    return out


def ensure_bridge(name: str, gateway: IPv4Interface, mtu: int, gateway6: str | None = None) -> None:
    """Create or adopt the bridge; its only IPv4 address becomes `gateway`
    (and `gateway6`, ADDRESS/PREFIX, its IPv6 one)."""
    with IPRoute() as ipr:
        idx = _index(ipr, name)
        if idx is None:
            try:
                ipr.link("add", ifname=name, kind="bridge", address=random_mac(), mtu=mtu)
            except NetlinkError as exc:
                if exc.code != errno.EEXIST:  # lost a race with ourselves: adopt
                    raise
            idx = _index(ipr, name)
            assert idx is not None
        else:
            kind = None
            for link in ipr.get_links(idx):
                info = link.get_attr("IFLA_LINKINFO")
                kind = info.get_attr("IFLA_INFO_KIND") if info else None
            if kind != "bridge":
                raise RuntimeError(f"interface {name} exists and is not a bridge")
            ipr.link("set", index=idx, mtu=mtu)
        have = {
            (a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(family=2, index=idx)
        }
        want = (str(gateway.ip), gateway.network.prefixlen)
        for addr, plen in have - {want}:  # the bip changed since last run
            ipr.addr("del", index=idx, address=addr, prefixlen=plen)
        if want not in have:
            ipr.addr("add", index=idx, address=want[0], prefixlen=want[1])
        if gateway6:
            add_address(ipr, idx, gateway6)
        ipr.link("set", index=idx, state="up")


def delete_link(name: str) -> bool:
    """Delete an interface (a veth's peer goes with it); False if it was gone."""
    with IPRoute() as ipr:
        idx = _index(ipr, name)
        if idx is None:
            return False
        try:
            ipr.link("del", index=idx)
        except NetlinkError as exc:
            if exc.code != errno.ENODEV:
                raise
            return False
        return True


def bridge_ports(bridge: str) -> list[str]:
    with IPRoute() as ipr:
        idx = _index(ipr, bridge)
        if idx is None:
            return []
        return [l.get_attr("IFLA_IFNAME") for l in ipr.get_links() if l.get_attr("IFLA_MASTER") == idx]


def add_veth(host: str, bridge: str, sandbox: Path, ifname: str, mac: str, mtu: int) -> None:
    """A veth pair: `host` enslaved to the bridge and up, its peer created directly
    inside the sandbox as `ifname` with `mac` (never visible in the host namespace,
    so `eth0` cannot clash with the host's own)."""
    fd = os.open(sandbox, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with IPRoute() as ipr:
            br = _index(ipr, bridge)
            if br is None:
                raise RuntimeError(f"bridge {bridge} does not exist")
            if _index(ipr, host) is not None:  # left over by a crash mid-connect
                ipr.link("del", ifname=host)
            ipr.link(
                "add",
                ifname=host,
                kind="veth",
                mtu=mtu,
                peer={"ifname": ifname, "address": mac, "mtu": mtu, "net_ns_fd": fd},
            )
            idx = _index(ipr, host)
            ipr.link("set", index=idx, master=br, state="up")
    finally:
        os.close(fd)


# ------------------------------------------------ run inside the sandbox


def reset_sandbox(keep: set[str]) -> None:
    """Loopback up; interfaces other than lo and `keep` deleted (stale after a crash)."""
    if [name for _, name in socket.if_nameindex()] == ["lo"]:
        # a fresh namespace, on every container start: two ioctls, not a netlink session
        # (opening pyroute2's IPRoute costs 1-8 ms)
        _loopback_up()
        return
    with IPRoute() as ipr:
        for link in ipr.get_links():
            name = link.get_attr("IFLA_IFNAME")
            if name == "lo":
                if not link["flags"] & 1:  # IFF_UP
                    ipr.link("set", index=link["index"], state="up")
            elif name not in keep:
                try:
                    ipr.link("del", index=link["index"])
                except NetlinkError as exc:
                    if exc.code != errno.ENODEV:
                        raise


SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        flags = struct.unpack("16sh", fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack("16sh", b"lo", 0)))[1]
        if not flags & IFF_UP:
            fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | IFF_UP))


def configure_interface(ifname: str, address: IPv4Interface, gateway: IPv4Address | None,
                        extra: list[str] = (), gateway6: str | None = None) -> None:
    """Address the interface (`extra`: more ADDRESS[/PREFIX], IPv6 or link-local),
    bring it up and, when the sandbox has none yet, add the default routes
    through `gateway` and `gateway6`."""
    with IPRoute() as ipr:
        idx = _index(ipr, ifname)
        if idx is None:
            raise RuntimeError(f"interface {ifname} missing in sandbox")
        for a in [str(address), *extra]:
            add_address(ipr, idx, a)
        ipr.link("set", index=idx, state="up")
        if gateway is not None and not ipr.get_default_routes(family=2):
            ipr.route("add", dst="0.0.0.0/0", gateway=str(gateway), oif=idx)
        if gateway6 and not ipr.get_default_routes(family=10):
            ipr.route("add", dst="::/0", gateway=gateway6, oif=idx, family=10)


def add_address(ipr: IPRoute, idx: int, cidr: str) -> None:
    """Add ADDRESS[/PREFIX] to a link (idempotent); IPv6 ones skip duplicate
    address detection (the subnet is ours), as Docker does."""
    iface = ip_interface(cidr)
    kw = {"flags": IFA_F_NODAD} if iface.version == 6 else {}
    try:
        ipr.addr("add", index=idx, address=str(iface.ip), prefixlen=iface.network.prefixlen, **kw)
    except NetlinkError as exc:
        if exc.code != errno.EEXIST:
            raise


def sandbox_interfaces() -> list[str]:
    with IPRoute() as ipr:
        return [l.get_attr("IFLA_IFNAME") for l in ipr.get_links()]
