"""Network drivers: what one kind of network does on the host, behind one small interface.

The service owns the rows, IPAM, the embedded DNS and published-port
bookkeeping; a driver owns links and firewall rules:

  prepare(net, req, others)  check the driver options against the request and the
                             other networks, fill in what the driver decides (the
                             bridge name): 4xx here, before any row exists
  create(net)                the host side of a network (again at each engine
                             start): a bridge and its chains, or nothing
  delete(net)                undo `create`, exactly
  join(ep, net)              blocking: the endpoint's interface inside its sandbox,
                             addressed and routed (called in a thread)
  leave(ep, net)             blocking: remove that interface
  refresh(net)               rewrite the network's firewall rules (published ports)

Drivers: `bridge` (a Linux bridge, veths, NAT), `macvlan` and `ipvlan`
(sub-interfaces of a parent, parentlink.py), `null` and `host` (nothing to
plumb).  tests/integration/test_network_drivers.py runs one suite on all of them.
"""

from __future__ import annotations

import asyncio
import re
from ipaddress import IPv4Address, IPv4Interface
from typing import TYPE_CHECKING, Callable, Protocol

from ..errors import Conflict, Forbidden, InvalidParameter
from . import links, parentlink
from .driveropts import bridge_options
from .firewall import BridgePolicy, Firewall, PortRule
from .hoststate import HostState
from .ipam import Pool
from .ipamconfig import IpamRequest

if TYPE_CHECKING:
    from .model import Endpoint, Network

Others = list[tuple[str, str, dict[str, str], "str | None"]]  # (id, driver, options, bridge) of other networks


class NetworkDriver(Protocol):
    def prepare(self, net: "Network", req: IpamRequest, others: Others) -> None: ...
    async def create(self, net: "Network") -> None: ...
    async def delete(self, net: "Network") -> None: ...
    def join(self, ep: "Endpoint", net: "Network") -> None: ...
    def leave(self, ep: "Endpoint", net: "Network") -> None: ...
    async def refresh(self, net: "Network") -> None: ...


def _addresses(ep: "Endpoint") -> tuple[list[str], str | None, str | None]:
    """The endpoint's extra addresses (IPv6, link-local) and its gateways."""
    extra = ([f"{ep.ip6_address}/{ep.prefix_len6}"] if ep.ip6_address else []) + list(ep.link_local)
    return extra, ep.gateway or None, ep.gateway6 if ep.ip6_address else None


class NullDriver:
    """`null` and `host`: no interface of ours (loopback only, or the host's own)."""

    def prepare(self, net, req, others) -> None:
        raise Forbidden(f'only one instance of "{net.driver}" network is allowed')

    async def create(self, net) -> None:
        return None

    async def delete(self, net) -> None:
        return None

    def join(self, ep, net) -> None:
        return None

    def leave(self, ep, net) -> None:
        return None

    async def refresh(self, net) -> None:
        return None


class BridgeDriver:
    def __init__(self, firewalls: dict[int, Firewall], hoststate: HostState, iptables: bool,
                 run_in: Callable, default_mtu: Callable[[], int],
                 pools: Callable[[str], list[Pool]], port_rules: Callable[[str, int], list[PortRule]]) -> None:
        self.firewalls, self.hoststate, self.iptables = firewalls, hoststate, iptables
        self.run_in, self.default_mtu = run_in, default_mtu
        self.pools, self.port_rules = pools, port_rules
        self._fw_lock = asyncio.Lock()  # rebuilding a bridge's chains must not interleave

    def mtu(self, net: "Network") -> int:
        """The network's com.docker.network.driver.mtu, else the uplink's."""
        return bridge_options(net.options).mtu or self.default_mtu()

    def prepare(self, net: "Network", req: IpamRequest, others: Others) -> None:
        opts = bridge_options(net.options)
        if sum(c["Subnet"].version == 4 for c in req.configs) > 1 or \
                sum(c["Subnet"].version == 6 for c in req.configs) > 1:
            raise Forbidden("bridge driver doesn't support multiple subnets")
        bridge = opts.name or f"dy-{net.id[:12]}"
        if len(bridge) > 15 or not re.fullmatch(r"[A-Za-z0-9_.-]+", bridge):
            raise InvalidParameter(f"invalid bridge name {bridge!r}")
        if any(b == bridge for _, _, _, b in others):
            raise Conflict(f"bridge name {bridge} is used by another network")
        if links.link_exists(bridge):
            # a host interface (eth0, docker0, another engine's bridge): adopting it would hand it
            # to this network's teardown, which deletes the bridge with the network
            raise Conflict(f"bridge name {bridge} is already in use by a host interface")
        net.bridge, net.icc, net.masquerade = bridge, opts.icc, opts.masquerade

    async def create(self, net: "Network") -> None:
        assert net.bridge and net.subnet and net.gateway
        iface = IPv4Interface(f"{net.gateway}/{net.subnet.prefixlen}")
        v6 = next((p for p in self.pools(net.id) if p.version == 6), None)
        gw6 = f"{v6.gateway}/{v6.subnet.prefixlen}" if v6 is not None else None
        if v6 is not None and self.iptables:
            await self.hoststate.record(6)  # IPv6 forwarding on, ip6tables' tables noted
        await asyncio.to_thread(links.ensure_bridge, net.bridge, iface, self.mtu(net), gw6)
        if self.iptables and not net.internal:
            await asyncio.to_thread(self.firewalls[4].set_route_localnet, net.bridge)
        await self.refresh(net)

    async def delete(self, net: "Network") -> None:
        assert net.bridge
        for port in await asyncio.to_thread(links.bridge_ports, net.bridge):
            await asyncio.to_thread(links.delete_link, port)
        await asyncio.to_thread(links.delete_link, net.bridge)
        for fw in self.firewalls.values():
            await asyncio.to_thread(fw.remove_bridge, net.bridge)

    async def refresh(self, net: "Network") -> None:
        assert net.bridge and net.subnet
        v6 = next((p for p in self.pools(net.id) if p.version == 6), None)
        async with self._fw_lock:
            for family, subnet in ((4, net.subnet), (6, v6 and v6.subnet)):
                if subnet is not None:
                    policy = BridgePolicy(net.bridge, subnet, masquerade=net.masquerade, icc=net.icc,
                                          internal=net.internal)
                    await asyncio.to_thread(self.firewalls[family].ensure_bridge, policy,
                                            self.port_rules(net.id, family))

    def join(self, ep: "Endpoint", net: "Network") -> None:
        assert ep.sandbox and ep.host_veth and ep.ifname and net.bridge
        links.add_veth(ep.host_veth, net.bridge, ep.sandbox, ep.ifname, ep.mac_address, self.mtu(net))
        iface = IPv4Interface(f"{ep.ip_address}/{ep.prefix_len}")
        extra, gw, gw6 = _addresses(ep)
        gw4 = None if net.internal or not gw else IPv4Address(gw)
        gw6 = None if net.internal else gw6
        self.run_in(ep.sandbox, lambda: links.configure_interface(ep.ifname, iface, gw4, extra, gw6))

    def leave(self, ep: "Endpoint", net: "Network") -> None:
        if ep.host_veth:
            links.delete_link(ep.host_veth)  # its peer in the sandbox goes with it


class ParentLinkDriver:
    """macvlan or ipvlan (see parentlink.py)."""

    def __init__(self, kind: str, run_in: Callable) -> None:
        self.kind, self.run_in = kind, run_in

    def prepare(self, net: "Network", req: IpamRequest, others: Others) -> None:
        parentlink.check(self.kind, net.options, [(i, d, o) for i, d, o, _ in others])

    async def create(self, net) -> None:
        return None  # the links come with each container

    async def delete(self, net) -> None:
        return None

    async def refresh(self, net) -> None:
        return None

    def join(self, ep: "Endpoint", net: "Network") -> None:
        assert ep.sandbox and ep.ifname
        extra, gw, gw6 = _addresses(ep)
        po = parentlink.options(self.kind, net.options)
        parentlink.plumb(self.kind, po, ep.sandbox, ep.ifname, ep.mac_address, bridge_options(net.options).mtu,
                         [f"{ep.ip_address}/{ep.prefix_len}", *extra], None if net.internal else gw,
                         None if net.internal else gw6, self.run_in)

    def leave(self, ep: "Endpoint", net: "Network") -> None:
        if ep.sandbox and ep.ifname:
            parentlink.unplumb(ep.sandbox, ep.ifname, self.run_in)
