"""IP address management: which address each endpoint holds, persisted in SQLite.

The arithmetic (`next_free`, `pick_subnet`, `mac_for`) is pure and unit-tested;
`Ipam` stores pools and allocations in two tables so that an engine restart
(or crash) never hands out an address twice.

Allocation follows Docker's habit: scan forward from the last address handed
out and wrap around, so a just-released address is not reused at once (peers'
ARP caches and conntrack entries may still point at the old owner).
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Iterable

from ..errors import Conflict, InvalidParameter, NotFound, Unavailable
from ..store.metadata import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS net_ipam_pools (
    network_id TEXT PRIMARY KEY,
    subnet     TEXT NOT NULL,
    gateway    TEXT NOT NULL,
    last       INTEGER            -- last address handed out, as an integer
);
CREATE TABLE IF NOT EXISTS net_ipam_addresses (
    network_id TEXT NOT NULL REFERENCES net_ipam_pools(network_id) ON DELETE CASCADE,
    address    TEXT NOT NULL,
    owner      TEXT NOT NULL,     -- endpoint id
    PRIMARY KEY (network_id, address)
);
CREATE INDEX IF NOT EXISTS net_ipam_addresses_owner ON net_ipam_addresses(owner);
"""

# Docker's default address pools for user-defined networks: 172.17-31/16 then
# 192.168/16 cut into /20s.
DEFAULT_POOLS: list[tuple[IPv4Network, int]] = [
    *((IPv4Network(f"172.{i}.0.0/16"), 16) for i in range(17, 32)),
    (IPv4Network("192.168.0.0/16"), 20),
]


# ---------------------------------------------------------------- pure logic


def parse_subnet(value: str) -> IPv4Network:
    try:
        net = IPv4Network(value, strict=False)
    except ValueError:
        raise InvalidParameter(f"invalid subnet {value!r}") from None
    if net.prefixlen > 30:
        raise InvalidParameter(f"subnet {value} is too small: a /30 or larger is needed")
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


def host_bounds(subnet: IPv4Network) -> tuple[int, int]:
    """First and last usable host address (network and broadcast excluded)."""
    return int(subnet.network_address) + 1, int(subnet.broadcast_address) - 1


def next_free(subnet: IPv4Network, used: set[int], last: int | None) -> IPv4Address | None:
    """The first address after `last` (wrapping) that is a host address not in `used`."""
    lo, hi = host_bounds(subnet)
    size = hi - lo + 1
    if size <= 0:
        return None
    start = lo if last is None or not (lo <= last <= hi) else last + 1
    if len(used) >= size and all(lo <= u <= hi for u in used):
        return None
    for i in range(size):
        cand = lo + (start - lo + i) % size
        if cand not in used:
            return IPv4Address(cand)
    return None


def pick_subnet(
    taken: Iterable[IPv4Network],
    pools: list[tuple[IPv4Network, int]] = DEFAULT_POOLS,
) -> IPv4Network:
    """The first pool subnet that overlaps nothing in `taken` (our networks and host routes)."""
    taken = [t for t in taken if t.prefixlen > 0]  # a default route overlaps everything
    for base, prefix in pools:
        for cand in base.subnets(new_prefix=prefix):
            if not any(cand.overlaps(t) for t in taken):
                return cand
    raise Unavailable("could not find an available, non-overlapping IPv4 address pool")


def mac_for(ip: IPv4Address) -> str:
    """Docker's classic MAC scheme: 02:42 followed by the IPv4 address.

    A fixed IP-to-MAC mapping keeps peers' ARP caches right when an address is
    reused by another container.
    """
    b = ip.packed
    return "02:42:" + ":".join(f"{x:02x}" for x in b)


# ------------------------------------------------------------- persistence


class Ipam:
    def __init__(self, db: Database) -> None:
        self.db = db
        db.ensure_schema(SCHEMA)

    def add_pool(self, network_id: str, subnet: IPv4Network, gateway: IPv4Address) -> None:
        """Create or update a pool (idempotent; the bip may change between runs)."""
        if gateway not in subnet:
            raise InvalidParameter(f"gateway {gateway} is not in subnet {subnet}")
        with self.db.transaction() as c:
            c.execute(
                "INSERT INTO net_ipam_pools(network_id, subnet, gateway, last) VALUES (?,?,?,NULL)"
                " ON CONFLICT(network_id) DO UPDATE SET subnet=excluded.subnet, gateway=excluded.gateway",
                (network_id, str(subnet), str(gateway)),
            )

    def remove_pool(self, network_id: str) -> None:
        with self.db.transaction() as c:
            c.execute("DELETE FROM net_ipam_addresses WHERE network_id=?", (network_id,))
            c.execute("DELETE FROM net_ipam_pools WHERE network_id=?", (network_id,))

    def pool(self, network_id: str) -> tuple[IPv4Network, IPv4Address]:
        row = self.db.query_one(
            "SELECT subnet, gateway FROM net_ipam_pools WHERE network_id=?", (network_id,)
        )
        if row is None:
            raise NotFound(f"no address pool for network {network_id}")
        return IPv4Network(row["subnet"]), IPv4Address(row["gateway"])

    def allocate(self, network_id: str, owner: str, requested: str | None = None) -> IPv4Address:
        with self.db.transaction() as c:
            row = c.execute(
                "SELECT subnet, gateway, last FROM net_ipam_pools WHERE network_id=?", (network_id,)
            ).fetchone()
            if row is None:
                raise NotFound(f"no address pool for network {network_id}")
            subnet, gateway = IPv4Network(row["subnet"]), IPv4Address(row["gateway"])
            used = {
                int(IPv4Address(r[0]))
                for r in c.execute(
                    "SELECT address FROM net_ipam_addresses WHERE network_id=?", (network_id,)
                )
            }
            used.add(int(gateway))
            if requested:
                try:
                    addr = IPv4Address(requested)
                except ValueError:
                    raise InvalidParameter(f"invalid IPv4 address {requested!r}") from None
                lo, hi = host_bounds(subnet)
                if not lo <= int(addr) <= hi:
                    raise InvalidParameter(f"address {addr} is not a host address of subnet {subnet}")
                if int(addr) in used:
                    raise Conflict(f"Address already in use: {addr}")
            else:
                found = next_free(subnet, used, row["last"])
                if found is None:
                    raise Unavailable(f"no available IPv4 addresses on network subnet {subnet}")
                addr = found
                c.execute(
                    "UPDATE net_ipam_pools SET last=? WHERE network_id=?", (int(addr), network_id)
                )
            c.execute(
                "INSERT INTO net_ipam_addresses(network_id, address, owner) VALUES (?,?,?)",
                (network_id, str(addr), owner),
            )
            return addr

    def release(self, network_id: str, address: str | IPv4Address) -> None:
        self.db.execute(
            "DELETE FROM net_ipam_addresses WHERE network_id=? AND address=?",
            (network_id, str(address)),
        )

    def release_owner(self, owner: str) -> None:
        self.db.execute("DELETE FROM net_ipam_addresses WHERE owner=?", (owner,))

    def allocated(self, network_id: str) -> dict[str, str]:
        """address -> owner."""
        return {
            r["address"]: r["owner"]
            for r in self.db.query(
                "SELECT address, owner FROM net_ipam_addresses WHERE network_id=?", (network_id,)
            )
        }

    def subnets(self) -> list[IPv4Network]:
        return [IPv4Network(r[0]) for r in self.db.query("SELECT subnet FROM net_ipam_pools")]

