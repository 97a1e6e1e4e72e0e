"""NetworkService: networks, sandboxes and endpoints, as the container code sees them.

Vocabulary (Docker's libnetwork, trimmed):
  network   a row in net_networks (model.py); its driver (drivers.py: `bridge`,
            `macvlan`, `ipvlan`, `host`, `null`) does the host side, IPAM (ipam.py)
            holds its subnets.
  sandbox   a persistent network namespace per container, `<exec_root>/netns/<id>`;
            runc joins it by path, so it outlives the engine and the container's
            processes until `release_sandbox`.
  endpoint  a container's attachment to one network: `ethN` inside the sandbox
            (a veth whose host side is on the bridge, or a macvlan/ipvlan link),
            addresses from IPAM, a MAC.

Crash safety: the endpoint row (with the veth name and address) is committed
before any link is created, and teardown deletes links before rows, so an
interruption at any point leaves either a row whose links may be missing
(teardown tolerates that) or nothing.  Veths on our bridges without a row and
sandboxes without a live container are collected by `repair`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import re
import socket
import time
from pathlib import Path
from datetime import datetime
from ipaddress import IPv4Address, IPv4Interface, ip_network
from typing import Any, Callable

from ..config import EngineConfig
from ..engine.events import EventBus
from ..engine.filters import Filters
from ..engine.timeutil import parse_timestamp
from ..errors import Conflict, Forbidden, InvalidParameter, NotFound, SystemError_
from ..store.metadata import Database
from . import links, parentlink, ports
from .dns import DNS_IP, EmbeddedDns
from .driveropts import ENABLE_IPV6, bridge_options, go_bool
from .drivers import BridgeDriver, NetworkDriver, NullDriver, ParentLinkDriver
from .firewall import Firewall, PortRule
from .hoststate import HostState
from .loopback6 import Loopback6
from .model import (ENDPOINT_COLUMNS, NETWORK_COLUMNS, PREDEFINED, SCHEMA, Endpoint,
                    Network, new_id, now_rfc3339)
from .ipam import DEFAULT_POOLS_V6, Ipam, Pool, mac_for, parse_gateway_cidr, pick_subnet
from .ipamconfig import check_bridge_ipv6, parse_default_pools, parse_ipam, plan_pools
from .netns import NetnsDir
from .views import match_network, render_network

log = logging.getLogger(__name__)

class NetworkService:
    def __init__(self, config: EngineConfig, db: Database, events: EventBus) -> None:
        self.config = config
        self.db = db
        self.events = events
        db.ensure_schema(SCHEMA)
        db.ensure_columns("net_networks", NETWORK_COLUMNS)
        db.ensure_columns("net_endpoints", ENDPOINT_COLUMNS)
        self.ipam = Ipam(db)
        self.netns = NetnsDir(config.exec_root / "netns")
        self.firewall = Firewall(config.iptables)
        self.firewall6 = Firewall(config.iptables, family=6)
        self.hoststate = HostState(
            {4: self.firewall, 6: self.firewall6}, self._state, self._set_state,
            lambda keys: self.db.execute(f"DELETE FROM net_state WHERE key IN ({','.join('?' * len(keys))})", tuple(keys)),
            forward=config.ip_forward)  # `ip-forward: false` leaves the host's forwarding switches alone
        self.mtu = links.DEFAULT_MTU
        self._pending: set[asyncio.Task] = set()  # background veth deletions
        # Set by the engine so `network inspect` shows current container names.
        self.container_name: Callable[[str], str | None] | None = None
        # (container ID, network ID) -> [(alias, linked container ID)]: the endpoint's legacy
        # Links, names only that container resolves (given by the container service)
        self.endpoint_links: Callable[[str, str], list[tuple[str, str]]] = lambda cid, nid: []
        # choosing a free subnet and recording it must not interleave
        self._create_lock = asyncio.Lock()
        # endpoint id -> the sockets reserving its published host ports
        self._port_socks: dict[str, list[socket.socket]] = {}
        self.loopback6 = Loopback6()
        bridge = BridgeDriver({4: self.firewall, 6: self.firewall6}, self.hoststate, config.iptables,
                              self.netns.run_in, lambda: self.mtu, self.ipam.pools, self._port_rules)
        self.drivers: dict[str, NetworkDriver] = {
            "bridge": bridge, "null": NullDriver(), "host": NullDriver(),
            **{k: ParentLinkDriver(k, self.netns.run_in) for k in parentlink.KINDS}}
        self.dns = EmbeddedDns(self.netns, self._dns_lookup, self._dns_reverse, self._dns_upstreams)

    # ================================================================ lifecycle

    async def start(self) -> None:
        gw = parse_gateway_cidr(self.config.bip)
        self.mtu = await asyncio.to_thread(links.uplink_mtu)
        stale = self._stale_default_bridge()
        self._ensure_builtin(gw)
        if stale is not None:
            # --bridge changed after a crash: the old bridge and its chains go.
            await self.drivers["bridge"].delete(stale)
        await self._record_host_state()
        for net in self._networks(driver="bridge"):
            await self.drivers["bridge"].create(net)

    async def shutdown(self, keep: bool) -> None:
        """Tear down what no container needs any more; everything when keep is False."""
        self.dns.close_all()
        self.loopback6.close_all()
        if not keep:
            for cid in {e.container_id for e in self._all_endpoints()}:
                await self.release_sandbox(cid)
        await self.drain()
        remaining = False
        for net in self._networks(driver="bridge"):
            if keep and self._endpoint_rows(network_id=net.id):
                remaining = True
                continue
            await self.drivers["bridge"].delete(net)
        if not remaining:
            await self._restore_host_state()
            await asyncio.to_thread(self.netns.release_root)
        for socks in self._port_socks.values():
            for s in socks:
                s.close()
        self._port_socks.clear()

    async def repair(self, live_ids: set[str]) -> None:
        """Collect what containers that no longer exist left behind (after a crash)."""
        for cid in {e.container_id for e in self._all_endpoints()} - live_ids:
            log.info("releasing network resources of vanished container %s", cid[:12])
            await self.release_sandbox(cid)
        for name in set(self.netns.names()) - live_ids:
            await asyncio.to_thread(self.netns.remove, name)
        await self.drain()
        known = {e.host_veth for e in self._all_endpoints() if e.host_veth}
        for net in self._networks(driver="bridge"):
            for port in await asyncio.to_thread(links.bridge_ports, net.bridge):
                if port not in known:
                    log.info("deleting stray interface %s on %s", port, net.bridge)
                    await asyncio.to_thread(links.delete_link, port)
            owners = {e.endpoint_id for e in self._all_endpoints()}
            for addr, owner in self.ipam.allocated(net.id).items():
                if owner not in owners:
                    self.ipam.release(net.id, addr)
        owners = {e.endpoint_id for e in self._all_endpoints()}
        self.db.execute("DELETE FROM net_dns WHERE container_id NOT IN (SELECT container_id FROM net_endpoints)")
        stale_ports = {r["network_id"] for r in self.db.query("SELECT network_id, endpoint_id FROM net_ports")
                       if r["endpoint_id"] not in owners}
        if stale_ports:
            self.db.execute("DELETE FROM net_ports WHERE endpoint_id NOT IN (SELECT endpoint_id FROM net_endpoints)")
            for nid in stale_ports:
                net = self._network_by_id(nid)
                if net is not None and net.driver == "bridge":
                    await self._apply_firewall(net)
        # Running containers keep their ports and names across engine restarts:
        # re-reserve the host ports, re-open the DNS listeners.
        held = set(self._port_socks)
        for r in self.db.query("SELECT * FROM net_ports ORDER BY rowid"):
            if r["endpoint_id"] in held:
                continue
            m = _mapping(r)
            sock = await asyncio.to_thread(ports.rebind, m)
            if sock is None:
                log.warning("host port %s:%s/%s of container %s is taken by another program",
                            m.host_ip, m.host_port, m.proto, r["container_id"][:12])
            else:
                self._port_socks.setdefault(r["endpoint_id"], []).append(sock)
        for endpoint_id in {r["endpoint_id"] for r in self.db.query("SELECT endpoint_id FROM net_ports")}:
            await self._open_loopback6(endpoint_id)
        for ep in self._all_endpoints():
            net = self._network_by_id(ep.network_id)
            if net and _has_dns(net) and ep.sandbox and ep.container_id in live_ids:
                try:
                    await self.dns.open(ep.container_id, ep.sandbox)
                except OSError as exc:
                    log.warning("embedded DNS for %s: %s", ep.container_id[:12], exc)

    # ================================================================ sandboxes

    async def create_sandbox(self, container_id: str, mode: str) -> str | None:
        net = self.resolve("bridge" if mode == "default" else mode)
        if net.driver == "host":
            return None
        # Adopting a sandbox left by a crash: drop interfaces no endpoint row knows.
        keep = {e.ifname for e in self.endpoints(container_id) if e.ifname}
        path, _ = await asyncio.to_thread(
            self.netns.create, container_id, lambda: links.reset_sandbox(keep)
        )
        return str(path)

    async def release_sandbox(self, container_id: str) -> None:
        # Deleting a veth costs the kernel an RCU grace period (~30 ms here);
        # the container is gone, so nobody needs to wait for it: the rows and
        # addresses go now, the links in the background (`drain` waits).
        for ep in self.endpoints(container_id):
            await self._disconnect(ep, wait=False)
        self.dns.close(container_id)
        self.db.execute("DELETE FROM net_dns WHERE container_id=?", (container_id,))
        await asyncio.to_thread(self.netns.remove, container_id)

    async def drain(self) -> None:
        """Wait for background link deletions."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    def sandbox_path(self, container_id: str) -> str | None:
        p = self.netns.path(container_id)
        return str(p) if p.exists() else None

    # ================================================================ endpoints

    async def connect(
        self,
        container_id: str,
        network: str,
        sandbox_path: str | None,
        *,
        mac: str | None = None,
        ip: str | None = None,
        aliases: list[str] = [],
        name: str = "",
        ip6: str | None = None,
        link_local: list[str] | tuple[str, ...] = (),
        hostname: str = "",
    ) -> Endpoint:
        ep, net = self.reserve(container_id, network, sandbox_path, mac=mac, ip=ip, aliases=aliases, name=name,
                               ip6=ip6, link_local=link_local, hostname=hostname)
        return await self.plug(ep, net)

    def reserve(
        self,
        container_id: str,
        network: str,
        sandbox_path: str | None,
        *,
        mac: str | None = None,
        ip: str | None = None,
        aliases: list[str] = [],
        name: str = "",
        ip6: str | None = None,
        link_local: list[str] | tuple[str, ...] = (),
        hostname: str = "",
    ) -> tuple[Endpoint, Network]:
        """The first half of connect: the checks, the addresses and the endpoint's record.

        What the container's files and spec need is known from here; `plug` (the interface)
        may then run beside the runtime's create, as long as it ends before the process starts.
        """
        net = self.resolve("bridge" if network == "default" else network)
        if self.db.query_one(
            "SELECT 1 FROM net_endpoints WHERE container_id=? AND network_id=?", (container_id, net.id)
        ):
            raise Forbidden(f"endpoint with name {name or container_id[:12]} already exists in network {net.name}")
        if net.driver == "host" and sandbox_path:
            raise InvalidParameter("a container with its own network namespace cannot join the host network")
        if net.driver != "host" and not sandbox_path:
            raise InvalidParameter(f"network {net.name} needs a network sandbox")
        ep = Endpoint(
            container_id=container_id, network_id=net.id, endpoint_id=new_id(),
            sandbox=sandbox_path, aliases=list(aliases), name=name, requested_ip=ip or None,
            requested_ip6=ip6 or None, link_local=list(link_local), hostname=hostname or "",
        )
        if net.driver in ("host", "null"):
            self._insert_endpoint(ep)
            return self._decorate(ep, net), net

        self.check_endpoint(net, {"IPAMConfig": {"IPv4Address": ip or "", "IPv6Address": ip6 or "",
                                                 "LinkLocalIPs": list(link_local)},
                                  "MacAddress": mac or "", "Aliases": list(aliases)})
        taken_ifnames = {e.ifname for e in self.endpoints(container_id)}
        ep.ifname = next(f"eth{i}" for i in range(64) if f"eth{i}" not in taken_ifnames)
        ep.host_veth = self._unused_veth_name() if net.driver == "bridge" else None
        with self.db.transaction():
            pools = self.ipam.pools(net.id)
            addr = self.ipam.allocate(net.id, ep.endpoint_id, ip or None, 4)
            pool = next(p for p in pools if p.version == 4 and addr in p.subnet)
            ep.ip_address, ep.prefix_len, ep.gateway = str(addr), pool.subnet.prefixlen, str(pool.gateway)
            if net.enable_ipv6:
                addr6 = self.ipam.allocate(net.id, ep.endpoint_id, ip6 or None, 6)
                if addr6 is not None:
                    pool6 = next(p for p in pools if p.version == 6 and addr6 in p.subnet)
                    ep.ip6_address, ep.prefix_len6 = str(addr6), pool6.subnet.prefixlen
                    ep.gateway6 = str(pool6.gateway)
            ep.mac_address = (mac or mac_for(addr)).lower().replace("-", ":")
            self._insert_endpoint(ep)
        return self._decorate(ep, net), net

    async def plug(self, ep: Endpoint, net: Network) -> Endpoint:
        """The second half of connect: the driver's interface, the embedded DNS server, the event.
        On failure the endpoint is disconnected (its record and addresses released)."""
        container_id, sandbox_path = ep.container_id, ep.sandbox
        if net.driver in ("host", "null"):
            self._publish("connect", net, container_id)
            return ep
        try:
            await asyncio.to_thread(self.driver(net).join, ep, net)
        except Exception as exc:
            await self._disconnect(ep)
            if isinstance(exc, InvalidParameter):  # the driver's own 4xx (a parent gone, no kernel support)
                raise
            raise SystemError_(f"failed to set up network for container {container_id[:12]}: {exc}") from exc
        if _has_dns(net):
            try:
                await self.dns.open(container_id, sandbox_path)
            except OSError as exc:
                await self._disconnect(ep)
                raise SystemError_(f"failed to start the embedded DNS server for container {container_id[:12]}: {exc}") from exc
        self._publish("connect", net, container_id)
        return self._decorate(ep, net)

    def check_endpoint(self, net: Network | str, cfg: dict[str, Any]) -> None:
        """dockerd's endpoint settings checks (static addresses in a configured subnet, MAC format)."""
        from .ipamconfig import check_endpoint

        if isinstance(net, str):
            net = self.resolve("bridge" if net == "default" else net)
        if net.driver in ("host", "null"):
            return
        check_endpoint(cfg, self.ipam.pools(net.id), not net.builtin)

    async def disconnect(self, container_id: str, network: str) -> None:
        """Idempotent: disconnecting what is not connected does nothing."""
        row = self.db.query_one(
            "SELECT e.* FROM net_endpoints e JOIN net_networks n ON n.id = e.network_id"
            " WHERE e.container_id=? AND (n.name=? OR n.id=?)",
            (container_id, network, network),
        )
        if row is not None:
            await self._disconnect(Endpoint.from_row(row))

    async def _disconnect(self, ep: Endpoint, wait: bool = True) -> None:
        published = self.db.query("SELECT * FROM net_ports WHERE endpoint_id=?", (ep.endpoint_id,))
        if published:
            # Rules first (rebuilt without this endpoint's rows), then the reservations.
            self.db.execute("DELETE FROM net_ports WHERE endpoint_id=?", (ep.endpoint_id,))
            net = self._network_by_id(ep.network_id)
            if net is not None:
                await self._apply_firewall(net)
            for r in published:
                if r["proto"] == "udp" and ep.ip_address and self.config.iptables:
                    try:
                        await asyncio.to_thread(self.firewall.forget_udp_flows, ep.ip_address, r["container_port"])
                    except Exception as exc:  # conntrack support missing: entries time out alone
                        log.info("conntrack cleanup for %s: %s", ep.ip_address, exc)
        for s in self._port_socks.pop(ep.endpoint_id, []):
            s.close()
        self.loopback6.close(ep.endpoint_id)
        net = self._network_by_id(ep.network_id)
        if net is not None and wait:
            await asyncio.to_thread(self.driver(net).leave, ep, net)
        elif net is not None and ep.host_veth:
            # The row goes first: a crash now leaves a stray port on our
            # bridge, which `repair` collects.
            task = asyncio.create_task(asyncio.to_thread(self.driver(net).leave, ep, net))
            self._pending.add(task)
            task.add_done_callback(self._link_deleted)
        with self.db.transaction() as c:
            self.ipam.release_owner(ep.endpoint_id)
            c.execute("DELETE FROM net_endpoints WHERE endpoint_id=?", (ep.endpoint_id,))
        net = self._network_by_id(ep.network_id)
        if net is not None:
            self._publish("disconnect", net, ep.container_id)

    def _link_deleted(self, task: asyncio.Task) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("deleting a veth failed: %s", task.exception())

    def endpoints(self, container_id: str) -> list[Endpoint]:
        out = []
        for r in self._endpoint_rows(container_id=container_id):
            ep = Endpoint.from_row(r)
            net = self._network_by_id(ep.network_id)
            out.append(self._decorate(ep, net) if net else ep)
        return out

    # ================================================================ published ports

    async def publish(self, container_id: str, network: str, port_bindings: Any,
                      exposed_ports: Any = None, publish_all: bool = False) -> dict[str, Any]:
        """Publish HostConfig.PortBindings (and ExposedPorts with -P) of a connected container.

        Host ports are reserved first (a conflict fails here, before any rule),
        then recorded, then the bridge's chains are rebuilt.  Returns
        NetworkSettings.Ports.  Host and none networks publish nothing (as Docker).
        """
        reqs = ports.parse_requests(port_bindings, exposed_ports, publish_all)
        net = self.resolve("bridge" if network == "default" else network)
        if not reqs or net.driver != "bridge" or net.internal:
            return self.port_map(container_id)
        binding = bridge_options(net.options).host_binding_ipv4  # where "-p 80" binds on this network
        reqs = [dataclasses.replace(r, host_ip=binding) if r.host_ip == "0.0.0.0" else r for r in reqs]
        row = self.db.query_one(
            "SELECT * FROM net_endpoints WHERE container_id=? AND network_id=?", (container_id, net.id))
        if row is None:
            raise NotFound(f"container {container_id[:12]} is not connected to network {net.name}")
        ep = Endpoint.from_row(row)
        held: list[tuple[ports.PortMapping, socket.socket]] = []
        try:
            for req in reqs:
                port, sock = await asyncio.to_thread(ports.reserve, req)
                held.append((ports.PortMapping(req.proto, req.container_port, req.host_ip, port), sock))
        except BaseException as exc:
            for _, s in held:
                s.close()
            if isinstance(exc, Conflict):
                raise Conflict(
                    f"driver failed programming external connectivity on endpoint {ep.name or container_id[:12]}"
                    f" ({ep.endpoint_id}): {exc.message}") from None
            raise
        with self.db.transaction() as c:
            for m, _ in held:
                c.execute(
                    "INSERT INTO net_ports(endpoint_id, container_id, network_id, proto, container_port,"
                    " host_ip, host_port) VALUES (?,?,?,?,?,?,?)",
                    (ep.endpoint_id, container_id, net.id, m.proto, m.container_port, m.host_ip, m.host_port),
                )
        self._port_socks.setdefault(ep.endpoint_id, []).extend(s for _, s in held)
        try:
            await self._apply_firewall(net)
        except Exception as exc:
            raise SystemError_(f"failed to publish ports of container {container_id[:12]}: {exc}") from exc
        await self._open_loopback6(ep.endpoint_id)
        return self.port_map(container_id)

    async def _open_loopback6(self, endpoint_id: str) -> None:
        """[::1]:<port> for the endpoint's TCP and UDP ports published on every address (loopback6.py)."""
        row = self.db.query_one("SELECT ip, ip6 FROM net_endpoints WHERE endpoint_id=?", (endpoint_id,))
        if row is None or self.loopback6.has(endpoint_id):
            return
        for r in self.db.query("SELECT * FROM net_ports WHERE endpoint_id=? AND proto IN ('tcp', 'udp')"
                               " ORDER BY rowid", (endpoint_id,)):
            if r["host_ip"] in ("0.0.0.0", "::") and (row["ip6"] or row["ip"]):
                await self.loopback6.open(endpoint_id, r["proto"], r["host_port"], row["ip6"] or row["ip"],
                                          r["container_port"])

    def port_mappings(self, container_id: str) -> list[ports.PortMapping]:
        return [_mapping(r) for r in self.db.query(
            "SELECT * FROM net_ports WHERE container_id=? ORDER BY rowid", (container_id,))]

    def port_map(self, container_id: str, exposed: Any = ()) -> dict[str, Any]:
        """Docker's NetworkSettings.Ports; `exposed` adds unpublished ports as null."""
        return ports.docker_port_map(self.port_mappings(container_id), exposed or ())

    def _port_rules(self, network_id: str, family: int = 4) -> list[PortRule]:
        rows = self.db.query(
            "SELECT p.*, e.ip, e.ip6 FROM net_ports p JOIN net_endpoints e ON e.endpoint_id = p.endpoint_id"
            " WHERE p.network_id=? ORDER BY p.rowid", (network_id,))
        if family == 6:  # ports published on every address reach the container's IPv6 address too
            return [PortRule(r["proto"], "::", r["host_port"], r["ip6"], r["container_port"])
                    for r in rows if r["ip6"] and r["host_ip"] in ("0.0.0.0", "::")]
        return [PortRule(r["proto"], r["host_ip"], r["host_port"], r["ip"], r["container_port"])
                for r in rows if r["ip"] and ":" not in r["host_ip"]]

    async def _apply_firewall(self, net: Network) -> None:
        await self.driver(net).refresh(net)

    def driver(self, net: Network) -> NetworkDriver:
        return self.drivers.get(net.driver, self.drivers["null"])

    # ================================================================ name resolution

    def dns_servers(self, container_id: str, upstreams: list[str] | None = None) -> list[str] | None:
        """The nameservers for the container's resolv.conf: the embedded DNS server on
        user-defined networks (which forwards to `upstreams`, HostConfig.Dns, or the
        host's resolvers), None elsewhere (the caller keeps Docker's usual file)."""
        for d in upstreams or []:
            try:
                IPv4Address(d)
            except ValueError:
                if ":" not in d:
                    raise InvalidParameter(f"{d} is not an ip address") from None
        if not any(_has_dns(n) for n in self._container_networks(container_id)):
            return None
        self.db.execute(
            "INSERT INTO net_dns(container_id, upstreams) VALUES (?,?)"
            " ON CONFLICT(container_id) DO UPDATE SET upstreams=excluded.upstreams",
            (container_id, json.dumps([d for d in upstreams or [] if ":" not in d])),
        )
        return [DNS_IP]

    def _container_networks(self, container_id: str) -> list[Network]:
        rows = self.db.query(
            "SELECT n.* FROM net_networks n JOIN net_endpoints e ON e.network_id = n.id WHERE e.container_id=?",
            (container_id,))
        return [Network.from_row(r) for r in rows]

    def _peer_endpoints(self, container_id: str) -> list[tuple[Network, Endpoint]]:
        """Endpoints on the user-defined networks the container is attached to (its own included)."""
        out = []
        for net in self._container_networks(container_id):
            if not _has_dns(net):
                continue
            out += [(net, Endpoint.from_row(r)) for r in self._endpoint_rows(network_id=net.id)]
        return out

    def _dns_names(self, ep: Endpoint) -> set[str]:
        names = {ep.container_id[:12], ep.container_id, self._container_name(ep).lower()}
        names.update(a.lower() for a in [*ep.aliases, ep.hostname])
        names.discard("")
        return names

    def _dns_lookup(self, container_id: str, name: str) -> list[str]:
        out: list[str] = []
        peers = self._peer_endpoints(container_id)
        for net, ep in peers:  # the asker's own links first: an alias names the linked container
            if ep.container_id != container_id:
                continue
            for alias, target in self.endpoint_links(container_id, net.id):
                if alias.lower() == name:
                    for n, p in peers:
                        if n.id == net.id and p.container_id == target:
                            out += [a for a in (p.ip_address, p.ip6_address) if a and a not in out]
        if out:
            return out
        for _, ep in peers:
            if name in self._dns_names(ep):  # A and AAAA records
                out += [a for a in (ep.ip_address, ep.ip6_address) if a and a not in out]
        return out

    def _dns_reverse(self, container_id: str, ip: str) -> list[str]:
        return [f"{self._container_name(ep)}.{net.name}" for net, ep in self._peer_endpoints(container_id)
                if ep.ip_address == ip]

    def _dns_upstreams(self, container_id: str) -> list[str]:
        raw = self.db.scalar("SELECT upstreams FROM net_dns WHERE container_id=?", (container_id,))
        chosen = json.loads(raw) if raw else []
        if chosen:
            return chosen
        try:
            text = Path("/etc/resolv.conf").read_text()
        except OSError:
            return []
        out = []
        for line in text.splitlines():
            parts = line.split()
            if len(parts) > 1 and parts[0] == "nameserver":
                try:
                    out.append(str(IPv4Address(parts[1])))
                except ValueError:
                    continue
        return out

    def network_settings(self, container_id: str, sandbox_key: str | None = None) -> dict[str, Any]:
        """Docker's whole NetworkSettings block for a container (Ports left to the caller)."""
        nets: dict[str, Any] = {}
        primary: Endpoint | None = None
        for ep in self.endpoints(container_id):
            net = self._network_by_id(ep.network_id)
            if net is None:
                continue
            nets[net.name] = ep.to_docker(net.name)
            if net.is_default_bridge:
                primary = ep
        key = sandbox_key if sandbox_key is not None else (self.sandbox_path(container_id) or "")
        return {
            "Bridge": "",
            "SandboxID": hashlib.sha256(f"sandbox:{container_id}".encode()).hexdigest() if nets else "",
            "SandboxKey": key,
            "Ports": {},
            "HairpinMode": False,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "SecondaryIPAddresses": None,
            "SecondaryIPv6Addresses": None,
            "EndpointID": primary.endpoint_id if primary else "",
            "Gateway": primary.gateway if primary else "",
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "IPAddress": primary.ip_address if primary else "",
            "IPPrefixLen": primary.prefix_len if primary else 0,
            "IPv6Gateway": "",
            "MacAddress": primary.mac_address if primary else "",
            "Networks": nets,
        }

    # ================================================================ networks

    def resolve(self, name_or_id: str) -> Network:
        """By exact name, then full id, then unique id prefix (Docker's order)."""
        if not name_or_id:
            raise NotFound("network  not found")
        row = self.db.query_one("SELECT * FROM net_networks WHERE name=?", (name_or_id,))
        if row is None:
            row = self.db.query_one("SELECT * FROM net_networks WHERE id=?", (name_or_id,))
        if row is None and re.fullmatch(r"[0-9a-f]{1,63}", name_or_id):
            rows = self.db.query("SELECT * FROM net_networks WHERE id LIKE ?", (name_or_id + "%",))
            if len(rows) > 1:
                raise InvalidParameter(f"network {name_or_id} is ambiguous ({len(rows)} matches found based on ID prefix)")
            row = rows[0] if rows else None
        if row is None:
            raise NotFound(f"network {name_or_id} not found")
        return Network.from_row(row)

    def same_network(self, ref: str, network_id: str) -> bool:
        """Does `ref` (a name, id, id prefix or "default") name the network `network_id`?"""
        try:
            return self.resolve("bridge" if ref == "default" else ref).id == network_id
        except (NotFound, InvalidParameter):
            return False

    def list_networks(self, filters: Filters | None = None) -> list[dict[str, Any]]:
        filters = filters or Filters()
        filters.validate({"driver", "id", "label", "name", "scope", "type", "dangling"})
        out = []
        for net in self._networks():
            if not self._match(net, filters):
                continue
            out.append(self._render(net, containers=False))
        return out

    def inspect_network(self, name_or_id: str, verbose: bool = False) -> dict[str, Any]:
        return self._render(self.resolve(name_or_id), containers=True)

    async def create_network(
        self,
        name: str,
        *,
        driver: str = "bridge",
        internal: bool = False,
        attachable: bool = False,
        enable_ipv6: bool | None = None,
        ipam: dict[str, Any] | None = None,
        options: dict[str, str] | None = None,
        labels: dict[str, str] | None = None,
    ) -> Network:
        """A user-defined network (bridge, macvlan or ipvlan) and its pools.

        Checked in dockerd's order: pre-defined names, driver, IPAM config,
        driver options (all 4xx before anything exists), then the name and the
        pools' overlap under the create lock."""
        if not name:
            raise InvalidParameter("network name is required")
        if name in PREDEFINED:
            raise Forbidden(f"{name} is a pre-defined network and cannot be created")
        driver = driver or "bridge"
        if driver in ("host", "null"):
            raise Forbidden(f'only one instance of "{driver}" network is allowed')
        if driver not in ("bridge", *parentlink.KINDS):
            raise NotFound(f'plugin "{driver}" not found')
        options = {str(k): str(v) for k, v in (options or {}).items()}
        labels = {str(k): str(v) for k, v in (labels or {}).items()}
        if enable_ipv6 is None:
            enable_ipv6 = go_bool(ENABLE_IPV6, options[ENABLE_IPV6]) if ENABLE_IPV6 in options else False
        req = parse_ipam(ipam, enable_ipv6)
        if driver == "bridge":  # driver options too: 400s before anything is made
            bridge_options(options)
            check_bridge_ipv6(req)
        else:
            parentlink.options(driver, options)
        net = Network(
            id=new_id(), name=name, driver=driver, bridge=None, subnet=None, gateway=None,
            created=now_rfc3339(), internal=internal, attachable=attachable, enable_ipv6=enable_ipv6,
            options=options, labels=labels, ipam_options=req.options,
        )
        drv = self.drivers[driver]
        async with self._create_lock:  # the name, bridge and subnet checks must not interleave
            others = [(n.id, n.driver, n.options, n.bridge) for n in self._networks()]
            await asyncio.to_thread(drv.prepare, net, req, others)
            if self.db.query_one("SELECT 1 FROM net_networks WHERE name=?", (name,)):
                raise Conflict(f"network with name {name} already exists")
            routes = await asyncio.to_thread(links.host_routes) if driver == "bridge" else []
            pools = plan_pools(req, enable_ipv6, self.ipam.pairs(), routes,
                               parse_default_pools(getattr(self.config, "default_address_pools", None)))
            v4 = next(p for p in pools if p.version == 4)
            net.subnet, net.gateway = v4.subnet, v4.gateway
            with self.db.transaction():
                self._insert_network(net)
                self.ipam.set_pools(net.id, pools)
        try:
            await drv.create(net)
        except Exception as exc:
            await drv.delete(net)
            self._delete_network_rows(net)
            log.error("creating network %s failed", name, exc_info=True)
            raise SystemError_(f"failed to create network {name}: {str(exc) or repr(exc)}") from exc
        self._publish("create", net)
        return net

    async def remove_network(self, name_or_id: str) -> None:
        net = self.resolve(name_or_id)
        if net.builtin:
            raise Forbidden(f"{net.name} is a pre-defined network and cannot be removed")
        if self._endpoint_rows(network_id=net.id):
            raise Forbidden(f"error while removing network: network {net.name} id {net.id} has active endpoints")
        await self.driver(net).delete(net)
        self._delete_network_rows(net)
        self._publish("destroy", net)

    async def prune_networks(self, filters: Filters | None = None) -> list[str]:
        filters = filters or Filters()
        filters.validate({"until", "label", "label!"})
        until = None
        if filters.get("until"):
            until = parse_timestamp(filters.get("until")[-1])
        deleted = []
        for net in self._networks():
            if net.builtin or self._endpoint_rows(network_id=net.id):
                continue
            if not filters.match_labels(net.labels):
                continue
            if filters.excluded_by_labels(net.labels):
                continue
            if until is not None and _created_ts(net.created) >= until:
                continue
            await self.remove_network(net.id)
            deleted.append(net.name)
        return deleted

    # ================================================================ internals

    def _ensure_builtin(self, gw: IPv4Interface) -> None:
        bridge_opts = {
            "com.docker.network.bridge.default_bridge": "true",
            "com.docker.network.bridge.enable_icc": "true",
            "com.docker.network.bridge.enable_ip_masquerade": "true",
            "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
            "com.docker.network.bridge.name": self.config.bridge,
            "com.docker.network.driver.mtu": str(self.mtu),
        }
        wanted = [
            ("bridge", "bridge", self.config.bridge, gw.network, gw.ip, bridge_opts),
            ("host", "host", None, None, None, {}),
            ("none", "null", None, None, None, {}),
        ]
        with self.db.transaction() as c:
            for name, driver, bridge, subnet, gateway, opts in wanted:
                row = c.execute("SELECT * FROM net_networks WHERE name=?", (name,)).fetchone()
                if row is None:
                    self._insert_network(Network(
                        id=new_id(), name=name, driver=driver, bridge=bridge, subnet=subnet,
                        gateway=gateway, created=now_rfc3339(), builtin=True, options=opts,
                    ))
                    net_id = c.execute("SELECT id FROM net_networks WHERE name=?", (name,)).fetchone()[0]
                else:
                    net_id = row["id"]
                    # --bridge/--bip may differ from the last run.
                    c.execute(
                        "UPDATE net_networks SET bridge=?, subnet=?, gateway=?, options=? WHERE id=?",
                        (bridge, str(subnet) if subnet else None, str(gateway) if gateway else None,
                         json.dumps(opts), net_id),
                    )
                if subnet is not None and gateway is not None:
                    pools = [Pool(subnet, gateway, static=False), *self._default_bridge_v6(net_id)]
                    self.ipam.set_pools(net_id, pools)
                    c.execute("UPDATE net_networks SET enable_ipv6=? WHERE id=?", (int(len(pools) > 1), net_id))

    def _default_bridge_v6(self, net_id: str) -> list[Pool]:
        """--ipv6 [--fixed-cidr-v6]: the default bridge's IPv6 pool (a free ULA /64 without a CIDR)."""
        if not getattr(self.config, "ipv6", False):
            return []
        cidr = getattr(self.config, "fixed_cidr_v6", None)
        if cidr:
            subnet = ip_network(cidr, strict=False)
        else:
            mine = [p.subnet for p in self.ipam.pools(net_id) if p.version == 6]
            others = [n for n in self.ipam.subnets(6) if n not in mine]
            subnet = mine[0] if mine else pick_subnet(others, DEFAULT_POOLS_V6)
        return [Pool(subnet, type(subnet.network_address)(int(subnet.network_address) + 1), static=False)]

    def _stale_default_bridge(self) -> Network | None:
        row = self.db.query_one("SELECT * FROM net_networks WHERE name='bridge' AND builtin=1")
        if row is None or row["bridge"] in (None, self.config.bridge):
            return None
        if self._endpoint_rows(network_id=row["id"]):
            return None  # its containers still run: leave it to repair/shutdown
        return Network.from_row(row)

    async def _record_host_state(self) -> None:
        if self.config.iptables:
            await self.hoststate.record(4)

    async def _restore_host_state(self) -> None:
        if self.config.iptables:
            await self.hoststate.restore(self.config.bridge)

    def _unused_veth_name(self) -> str:
        for _ in range(16):
            name = links.veth_name()
            if not self.db.query_one("SELECT 1 FROM net_endpoints WHERE host_veth=?", (name,)):
                return name
        raise SystemError_("could not pick a free veth name")

    def _insert_network(self, n: Network) -> None:
        self.db.execute(
            "INSERT INTO net_networks(id, name, driver, bridge, subnet, gateway, created, internal,"
            " attachable, enable_ipv6, icc, masquerade, builtin, options, labels, ipam_options)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (n.id, n.name, n.driver, n.bridge, str(n.subnet) if n.subnet else None,
             str(n.gateway) if n.gateway else None, n.created, int(n.internal), int(n.attachable),
             int(n.enable_ipv6), int(n.icc), int(n.masquerade), int(n.builtin),
             json.dumps(n.options), json.dumps(n.labels), json.dumps(n.ipam_options)),
        )

    def _delete_network_rows(self, net: Network) -> None:
        with self.db.transaction() as c:
            self.ipam.remove_pool(net.id)
            c.execute("DELETE FROM net_networks WHERE id=?", (net.id,))

    def _insert_endpoint(self, ep: Endpoint) -> None:
        self.db.execute(
            "INSERT INTO net_endpoints(container_id, network_id, endpoint_id, name, sandbox, ifname,"
            " host_veth, ip, prefix_len, gateway, mac, aliases, requested_ip, created, ip6, prefix_len6,"
            " gateway6, requested_ip6, link_local, hostname)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (ep.container_id, ep.network_id, ep.endpoint_id, ep.name, ep.sandbox, ep.ifname,
             ep.host_veth, ep.ip_address or None, ep.prefix_len, ep.gateway or None,
             ep.mac_address or None, json.dumps(ep.aliases), ep.requested_ip, time.time(),
             ep.ip6_address or None, ep.prefix_len6, ep.gateway6 or None, ep.requested_ip6,
             json.dumps(ep.link_local), ep.hostname),
        )

    def _endpoint_rows(self, *, container_id: str | None = None, network_id: str | None = None):
        if container_id is not None:
            return self.db.query(
                "SELECT * FROM net_endpoints WHERE container_id=? ORDER BY created", (container_id,)
            )
        return self.db.query("SELECT * FROM net_endpoints WHERE network_id=? ORDER BY created", (network_id,))

    def _all_endpoints(self) -> list[Endpoint]:
        return [Endpoint.from_row(r) for r in self.db.query("SELECT * FROM net_endpoints")]

    def _networks(self, driver: str | None = None) -> list[Network]:
        rows = self.db.query("SELECT * FROM net_networks ORDER BY builtin DESC, created")
        nets = [Network.from_row(r) for r in rows]
        return [n for n in nets if driver is None or n.driver == driver]

    def _network_by_id(self, network_id: str) -> Network | None:
        row = self.db.query_one("SELECT * FROM net_networks WHERE id=?", (network_id,))
        return Network.from_row(row) if row else None

    def _decorate(self, ep: Endpoint, net: Network) -> Endpoint:
        if _has_dns(net):
            # dockerd's buildEndpointDNSNames: name, aliases, short id, deduplicated
            names = [ep.name.lstrip("/"), *ep.aliases, ep.container_id[:12], ep.hostname]
            ep.dns_names = [n for i, n in enumerate(names) if n and n not in names[:i]]
        return ep

    def _container_name(self, ep: Endpoint) -> str:
        if self.container_name is not None:
            try:
                current = self.container_name(ep.container_id)
            except Exception:  # a vanished container: keep what we stored
                current = None
            if current:
                return current.lstrip("/")
        return ep.name.lstrip("/")

    def _render(self, net: Network, *, containers: bool) -> dict[str, Any]:
        eps = [Endpoint.from_row(r) for r in self._endpoint_rows(network_id=net.id)] if containers else None
        return render_network(net, self.ipam.pools(net.id), eps, self._container_name)

    def _match(self, net: Network, f: Filters) -> bool:
        return match_network(net, f, lambda: bool(self._endpoint_rows(network_id=net.id)))

    def _publish(self, action: str, net: Network, container_id: str | None = None) -> None:
        attrs = {"name": net.name}
        if container_id:
            attrs["container"] = container_id
        ev = self.events.publish("network", action, net.id, **attrs)
        # EventBus.publish's own first parameter is called `type`, so Docker's
        # `type` attribute is added afterwards (before any subscriber runs).
        ev.attributes["type"] = net.driver

    def _state(self, key: str) -> str | None:
        return self.db.scalar("SELECT value FROM net_state WHERE key=?", (key,))

    def _set_state(self, key: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO net_state(key, value) VALUES (?,?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, value),
        )


def _has_dns(net: Network) -> bool:
    """User-defined networks of every driver get the embedded DNS; the default bridge does not."""
    return net.driver in ("bridge", *parentlink.KINDS) and not net.is_default_bridge


def _mapping(r) -> ports.PortMapping:
    return ports.PortMapping(r["proto"], r["container_port"], r["host_ip"], r["host_port"])



def _created_ts(created: str) -> float:
    return datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()
