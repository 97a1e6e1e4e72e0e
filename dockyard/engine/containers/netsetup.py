"""A starting container's network: its sandbox and endpoints, the interface plumbing overlapped.

Everything the container's files and runtime spec need (the namespace's path, the
addresses, the endpoint records, published ports) is settled before the runtime is
called.  The primary network's interface (a veth pair moved into the namespace, its
addresses and routes, the embedded DNS server: ~10 ms of netlink) is plugged meanwhile,
beside conmon and `runc create`, which only enter the namespace; the start awaits it
before the process runs.  The plugging begins once conmon is spawned, not before: it is
Python work in a thread, and beside the rootfs mount, the spec and the /etc files it
took the interpreter lock from them in turns (the start reached conmon ~5 ms later).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from ...errors import Conflict
from .model import Container
from .netplan import planned_networks


@dataclass
class StartNetwork:
    netns: str | None = None
    ip: str | None = None
    gateway: str | None = None
    plugging: asyncio.Future | None = None  # the primary interface, being plugged
    plug: Callable[[], Awaitable[Any]] | None = None  # the primary interface, to plug

    def begin_plugging(self) -> None:
        """Start plugging the interface (once), to run beside what the start does next."""
        if self.plug is not None and self.plugging is None:
            self.plugging = asyncio.ensure_future(self.plug())

    async def plugged(self) -> None:
        """Wait for the interface; its error (the endpoint already released) is raised."""
        self.begin_plugging()
        if self.plugging is not None:
            await self.plugging

    async def settle(self) -> None:
        """Let the plumbing end, whatever its outcome: before anything is undone (one not
        begun yet is plugged first: the undo then is the same as ever, events included)."""
        self.begin_plugging()
        if self.plugging is not None:
            await asyncio.wait([self.plugging])
            if not self.plugging.cancelled():
                self.plugging.exception()  # retrieved: the start reports its own error


async def setup(networks: Any, c: Container, get: Callable[[str], Container], into: StartNetwork) -> None:
    """Join the container's networks as its start needs them, filling `into` (which the
    caller settles on failure: a plug may be running)."""
    mode = c.network_mode
    if mode.startswith("container:"):
        other = get(mode.split(":", 1)[1])
        if not other.state.running or not other.state.pid:
            raise Conflict(f"cannot join network of a non running container: {other.id}")
        # dockerd: the container takes the other's hostname with its network namespace
        c.config["Hostname"], c.config["Domainname"] = other.config["Hostname"], other.config.get("Domainname", "")
        into.netns = f"/proc/{other.state.pid}/ns/net"
        return
    netns = await networks.create_sandbox(c.id, mode)
    c.sandbox_path = into.netns = netns
    plan = planned_networks(networks, c)
    primary, ep_cfg = plan[0]
    ipam = ep_cfg.get("IPAMConfig") or {}
    ep, net = networks.reserve(
        c.id, primary.name, netns, mac=c.config.get("MacAddress") or ep_cfg.get("MacAddress") or None,
        ip=ipam.get("IPv4Address") or None, aliases=list(ep_cfg.get("Aliases") or []),
        name=c.name, ip6=ipam.get("IPv6Address") or None, link_local=ipam.get("LinkLocalIPs") or (),
        hostname=c.config.get("Hostname") or "")
    into.plug = lambda: networks.plug(ep, net)
    c.networks = {primary.name: ep.to_docker(primary.name)}
    into.ip, into.gateway = ep.ip_address or None, ep.gateway or None
    hc = c.host_config
    # published ports go to the primary network (host and none publish nothing)
    await networks.publish(c.id, primary.name, hc.get("PortBindings"), c.config.get("ExposedPorts"),
                           bool(hc.get("PublishAllPorts")))
    if len(plan) > 1 or any(k.startswith("net.") for k in hc.get("Sysctls") or {}):
        # one interface at a time in the namespace; and runc writes the sysctls at create,
        # a `net.ipv4.conf.eth0.*` one needs eth0 there
        await into.plugged()
    # more networks: several --network at create, or `docker network connect` while stopped
    for net, extra in plan[1:]:
        xe = await networks.connect(
            c.id, net.name, netns, mac=extra.get("MacAddress") or None,
            ip=(extra.get("IPAMConfig") or {}).get("IPv4Address") or None,
            aliases=list(extra.get("Aliases") or []), name=c.name,
            ip6=(extra.get("IPAMConfig") or {}).get("IPv6Address") or None,
            link_local=(extra.get("IPAMConfig") or {}).get("LinkLocalIPs") or (),
            hostname=c.config.get("Hostname") or "")
        c.networks[net.name] = xe.to_docker(net.name)

