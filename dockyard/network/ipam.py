"""IP address management: which address each endpoint holds, persisted in SQLite.

IPAM is apart from the network drivers and serves IPv4 and IPv6 alike: a
network has pools (one per subnet: its gateway, an optional `--ip-range` that
dynamic addresses come from, named `--aux-address`es kept out of allocation);
an endpoint asks for one address per family.  The arithmetic (`next_free`,
`pick_subnet`, `mac_for`) is pure and unit-tested; `Ipam` stores pools and
allocations in two tables so that an engine restart (or crash) never hands
out an address twice.

Allocation follows Docker's habit: scan forward from the last address handed
out and wrap around, so a just-released address is not reused at once (peers'
ARP caches and conntrack entries may still point at the old owner).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from ipaddress import (IPv4Address, IPv4Interface, IPv4Network, IPv6Network, ip_address,
                       ip_network)
from typing import Any, Iterable, Union

from ..errors import Conflict, InvalidParameter, NotFound, Unavailable
from ..store.metadata import Database

IPNetwork = Union[IPv4Network, IPv6Network]

SCHEMA = """
CREATE TABLE IF NOT EXISTS net_ipam_subnets (
    network_id   TEXT NOT NULL,
    subnet       TEXT NOT NULL,
    gateway      TEXT,
    ip_range     TEXT,
    aux          TEXT NOT NULL DEFAULT '{}',  -- name -> address, kept out of allocation
    static       INTEGER NOT NULL DEFAULT 1,  -- the user chose the subnet (inspect shows their config)
    user_gateway INTEGER NOT NULL DEFAULT 0,  -- the user chose the gateway
    last         TEXT,                        -- last address handed out
    PRIMARY KEY (network_id, subnet)
);
CREATE TABLE IF NOT EXISTS net_ipam_addrs (
    network_id TEXT NOT NULL,
    address    TEXT NOT NULL,
    owner      TEXT NOT NULL,     -- endpoint id
    PRIMARY KEY (network_id, address)
);
CREATE INDEX IF NOT EXISTS net_ipam_addrs_owner ON net_ipam_addrs(owner);
"""

# Docker's default address pools for networks created without a subnet:
# 172.17-31/16, then 192.168/16 cut into /20s; IPv6 from the ULA fd00::/8 in /64s.
DEFAULT_POOLS: list[tuple[IPNetwork, int]] = [
    *((IPv4Network(f"172.{i}.0.0/16"), 16) for i in range(17, 32)),
    (IPv4Network("192.168.0.0/16"), 20),
]
DEFAULT_POOLS_V6: list[tuple[IPNetwork, int]] = [(IPv6Network("fd00::/8"), 64)]


@dataclass
class Pool:
    """One subnet of a network."""

    subnet: IPNetwork
    gateway: Any = None  # IPv4Address | IPv6Address | None
    ip_range: IPNetwork | None = None
    aux: dict[str, str] = field(default_factory=dict)
    static: bool = True
    user_gateway: bool = False

    @property
    def version(self) -> int:
        return self.subnet.version

    def to_docker(self) -> dict[str, Any]:
        """IPAM.Config entry as dockerd shows it: the user's own config for a
        subnet they chose (no Gateway when they gave none), the allocated
        subnet and gateway otherwise."""
        out: dict[str, Any] = {"Subnet": str(self.subnet)}
        if not self.static:
            if self.gateway is not None:
                out["Gateway"] = str(self.gateway)
            return out
        if self.ip_range is not None:
            out["IPRange"] = str(self.ip_range)
        if self.user_gateway and self.gateway is not None:
            out["Gateway"] = str(self.gateway)
        if self.aux:
            out["AuxiliaryAddresses"] = dict(self.aux)
        return out


# ---------------------------------------------------------------- pure logic


def parse_subnet(value: str) -> IPNetwork:
    try:
        net = ip_network(value.strip(), strict=False)
    except ValueError:
        raise InvalidParameter(f"invalid subnet {value!r}") from None
    if net.max_prefixlen - net.prefixlen < 2:
        raise InvalidParameter(f"subnet {value} is too small: a /{net.max_prefixlen - 2} or larger is needed")
    return net


def parse_gateway_cidr(value: str) -> IPv4Interface:
    """`--bip 172.29.0.1/16`: the bridge's own address and the subnet's prefix."""
    try:
        iface = IPv4Interface(value)
    except ValueError:
        raise InvalidParameter(f"invalid bridge IP {value!r}: expected ADDRESS/PREFIX") from None
    parse_subnet(str(iface.network))
    if iface.ip in (iface.network.network_address, iface.network.broadcast_address):
        raise InvalidParameter(f"invalid bridge IP {value}: not a host address of its subnet")
    return iface


def host_bounds(subnet: IPNetwork) -> tuple[int, int]:
    """First and last usable host address: the network address (IPv4 and the
    IPv6 subnet-router anycast) and the IPv4 broadcast address excluded."""
    last = int(subnet.broadcast_address) - (1 if subnet.version == 4 else 0)
    return int(subnet.network_address) + 1, last


def next_free(subnet: IPNetwork, used: set[int], last: int | None,
              within: IPNetwork | None = None) -> Any:
    """The first address after `last` (wrapping) that is a host address of
    `subnet`, inside `within` (an --ip-range) when given, and not in `used`."""
    lo, hi = host_bounds(subnet)
    if within is not None:
        lo, hi = max(lo, int(within.network_address)), min(hi, int(within.broadcast_address))
    size = hi - lo + 1
    if size <= 0:
        return None
    start = lo if last is None or not (lo <= last <= hi) else last + 1
    if len(used) >= size and sum(1 for u in used if lo <= u <= hi) >= size:
        return None
    for i in range(size):
        cand = lo + (start - lo + i) % size
        if cand not in used:
            return type(subnet.network_address)(cand)
    return None


def pick_subnet(
    taken: Iterable[IPNetwork],
    pools: list[tuple[IPNetwork, int]] = DEFAULT_POOLS,
) -> IPNetwork:
    """The first pool subnet that overlaps nothing in `taken` (our networks and host routes)."""
    pools = list(pools)
    version = pools[0][0].version if pools else 4
    taken = [t for t in taken if t.prefixlen > 0 and t.version == version]  # a default route overlaps everything
    for base, prefix in pools:
        if base.version != version:
            continue
        for cand in base.subnets(new_prefix=prefix):
            if not any(cand.overlaps(t) for t in taken):
                return cand
    raise Unavailable("could not find an available, non-overlapping IPv%d address pool among the defaults"
                      " to assign to the network" % version)


def mac_for(ip: IPv4Address) -> str:
    """Docker's classic MAC scheme: 02:42 followed by the IPv4 address.

    A fixed IP-to-MAC mapping keeps peers' ARP caches right when an address is
    reused by another container.
    """
    b = ip.packed
    return "02:42:" + ":".join(f"{x:02x}" for x in b)


def _pool_from_row(r) -> Pool:
    return Pool(
        subnet=ip_network(r["subnet"]), gateway=ip_address(r["gateway"]) if r["gateway"] else None,
        ip_range=ip_network(r["ip_range"]) if r["ip_range"] else None, aux=json.loads(r["aux"]),
        static=bool(r["static"]), user_gateway=bool(r["user_gateway"]),
    )


def _reserved(pool: Pool) -> set[int]:
    """Addresses of a pool that are never handed out: gateway and aux addresses."""
    out = {int(ip_address(a)) for a in pool.aux.values()}
    if pool.gateway is not None:
        out.add(int(pool.gateway))
    return out


# ------------------------------------------------------------- persistence


class Ipam:
    def __init__(self, db: Database) -> None:
        self.db = db
        db.ensure_schema(SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        """Engines before multi-subnet IPAM kept one pool per network in net_ipam_pools."""
        if not self.db.query_one("SELECT 1 FROM sqlite_master WHERE type='table' AND name='net_ipam_pools'"):
            return
        with self.db.transaction() as c:
            c.execute("INSERT OR IGNORE INTO net_ipam_subnets(network_id, subnet, gateway, static, user_gateway)"
                      " SELECT network_id, subnet, gateway, 1, 1 FROM net_ipam_pools")
            c.execute("INSERT OR IGNORE INTO net_ipam_addrs(network_id, address, owner)"
                      " SELECT network_id, address, owner FROM net_ipam_addresses")
            c.execute("DROP TABLE net_ipam_addresses")
            c.execute("DROP TABLE net_ipam_pools")

    def set_pools(self, network_id: str, pools: list[Pool]) -> None:
        """Record the network's pools (replacing any: the bip may change between runs)."""
        with self.db.transaction() as c:
            old = {r["subnet"]: r["last"] for r in c.execute(
                "SELECT subnet, last FROM net_ipam_subnets WHERE network_id=?", (network_id,))}
            c.execute("DELETE FROM net_ipam_subnets WHERE network_id=?", (network_id,))
            for p in pools:
                c.execute(
                    "INSERT INTO net_ipam_subnets(network_id, subnet, gateway, ip_range, aux, static,"
                    " user_gateway, last) VALUES (?,?,?,?,?,?,?,?)",
                    (network_id, str(p.subnet), str(p.gateway) if p.gateway is not None else None,
                     str(p.ip_range) if p.ip_range is not None else None, json.dumps(p.aux),
                     int(p.static), int(p.user_gateway), old.get(str(p.subnet))),
                )

    def add_pool(self, network_id: str, subnet: IPNetwork, gateway: Any) -> None:
        """One pool with a gateway (the default bridge's, from --bip)."""
        if gateway not in subnet:
            raise InvalidParameter(f"gateway {gateway} is not in subnet {subnet}")
        self.set_pools(network_id, [Pool(subnet, gateway, static=False)])

    def remove_pool(self, network_id: str) -> None:
        with self.db.transaction() as c:
            c.execute("DELETE FROM net_ipam_addrs WHERE network_id=?", (network_id,))
            c.execute("DELETE FROM net_ipam_subnets WHERE network_id=?", (network_id,))

    def pools(self, network_id: str) -> list[Pool]:
        rows = self.db.query("SELECT * FROM net_ipam_subnets WHERE network_id=? ORDER BY rowid", (network_id,))
        return [_pool_from_row(r) for r in rows]

    def pool(self, network_id: str, version: int = 4) -> Pool:
        for p in self.pools(network_id):
            if p.version == version:
                return p
        raise NotFound(f"no IPv{version} address pool for network {network_id}")

    def allocate(self, network_id: str, owner: str, requested: str | None = None, version: int = 4) -> Any:
        """An address of the given family for `owner` (the requested one when given);
        None when the network has no pool of that family."""
        with self.db.transaction() as c:
            rows = c.execute("SELECT rowid, * FROM net_ipam_subnets WHERE network_id=? ORDER BY rowid",
                             (network_id,)).fetchall()
            pools = [(r["rowid"], r["last"], _pool_from_row(r)) for r in rows]
            pools = [p for p in pools if p[2].version == version]
            if not pools:
                if requested:
                    raise InvalidParameter(f"no IPv{version} subnet on network {network_id[:12]} for address {requested}")
                return None
            used = {int(ip_address(r[0])) for r in c.execute(
                "SELECT address FROM net_ipam_addrs WHERE network_id=?", (network_id,))}
            if requested:
                try:
                    addr = ip_address(requested)
                except ValueError:
                    raise InvalidParameter(f"invalid IPv{version} address: {requested}") from None
                pool = next((p for _, _, p in pools if addr in p.subnet), None)
                if pool is None or addr.version != version:
                    raise InvalidParameter("requested address is out of range")
                lo, hi = host_bounds(pool.subnet)
                if not lo <= int(addr) <= hi or int(addr) in used | _reserved(pool):
                    raise Conflict(f"Address already in use: {addr}")
            else:
                addr = None
                for rowid, last, pool in pools:
                    found = next_free(pool.subnet, used | _reserved(pool),
                                      int(ip_address(last)) if last else None, pool.ip_range)
                    if found is not None:
                        addr = found
                        c.execute("UPDATE net_ipam_subnets SET last=? WHERE rowid=?", (str(addr), rowid))
                        break
                if addr is None:
                    raise Unavailable(f"no available IPv{version} addresses on network {network_id[:12]}")
            c.execute("INSERT INTO net_ipam_addrs(network_id, address, owner) VALUES (?,?,?)",
                      (network_id, str(addr), owner))
            return addr

    def release(self, network_id: str, address: Any) -> None:
        self.db.execute("DELETE FROM net_ipam_addrs WHERE network_id=? AND address=?",
                        (network_id, str(address)))

    def release_owner(self, owner: str) -> None:
        self.db.execute("DELETE FROM net_ipam_addrs WHERE owner=?", (owner,))

    def allocated(self, network_id: str) -> dict[str, str]:
        """address -> owner."""
        return {
            r["address"]: r["owner"]
            for r in self.db.query("SELECT address, owner FROM net_ipam_addrs WHERE network_id=?", (network_id,))
        }

    def subnets(self, version: int | None = None) -> list[IPNetwork]:
        """Every subnet of every network (to avoid for new ones)."""
        out = []
        for r in self.db.query("SELECT subnet FROM net_ipam_subnets"):
            n = ip_network(r["subnet"])
            if version is None or n.version == version:
                out.append(n)
        return out

    def pairs(self) -> list[tuple[IPNetwork, IPNetwork | None]]:
        """(subnet, ip_range) of every pool of every network."""
        return [(ip_network(r["subnet"]), ip_network(r["ip_range"]) if r["ip_range"] else None)
                for r in self.db.query("SELECT subnet, ip_range FROM net_ipam_subnets")]
