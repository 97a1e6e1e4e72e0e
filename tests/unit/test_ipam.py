"""IPAM: pure allocation arithmetic and its SQLite persistence."""

from ipaddress import IPv4Address, IPv4Network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockyard.errors import Conflict, InvalidParameter, Unavailable
from dockyard.network.ipam import (
    Ipam,
    host_bounds,
    mac_for,
    next_free,
    parse_gateway_cidr,
    parse_subnet,
    pick_subnet,
)
from dockyard.store.metadata import Database


@pytest.fixture
def ipam(tmp_path):
    db = Database(tmp_path / "meta.db")
    yield Ipam(db)
    db.close()


NET = IPv4Network("10.9.0.0/29")  # hosts .1-.6


def test_host_bounds_exclude_network_and_broadcast():
    assert host_bounds(NET) == (int(IPv4Address("10.9.0.1")), int(IPv4Address("10.9.0.6")))


def test_next_free_scans_forward_from_last_and_wraps():
    used = {int(IPv4Address("10.9.0.1"))}
    assert next_free(NET, used, None) == IPv4Address("10.9.0.2")
    assert next_free(NET, used, int(IPv4Address("10.9.0.3"))) == IPv4Address("10.9.0.4")
    # After the last host address it wraps to the first free one.
    assert next_free(NET, used, int(IPv4Address("10.9.0.6"))) == IPv4Address("10.9.0.2")


def test_next_free_full_subnet():
    used = {int(IPv4Address(f"10.9.0.{i}")) for i in range(1, 7)}
    assert next_free(NET, used, None) is None


@settings(max_examples=200)
@given(
    prefix=st.integers(min_value=24, max_value=30),
    used_offsets=st.sets(st.integers(min_value=0, max_value=255)),
    last_offset=st.one_of(st.none(), st.integers(min_value=0, max_value=255)),
)
def test_next_free_property(prefix, used_offsets, last_offset):
    net = IPv4Network(f"10.1.0.0/{prefix}")
    lo, hi = host_bounds(net)
    used = {int(net.network_address) + o for o in used_offsets}
    last = None if last_offset is None else int(net.network_address) + last_offset
    got = next_free(net, used, last)
    free = [a for a in range(lo, hi + 1) if a not in used]
    if not free:
        assert got is None
    else:
        assert got is not None
        assert lo <= int(got) <= hi and int(got) not in used
        # It is the first free address at or after last+1, cyclically.
        start = lo if last is None or not lo <= last <= hi else last + 1
        order = sorted(free, key=lambda a: (a - start) % (hi - lo + 1))
        assert int(got) == order[0]


def test_pick_subnet_skips_overlaps_and_ignores_default_route():
    taken = [IPv4Network("0.0.0.0/0"), IPv4Network("172.17.0.0/16"), IPv4Network("172.18.5.0/24")]
    assert pick_subnet(taken) == IPv4Network("172.19.0.0/16")
    pools = [(IPv4Network("10.0.0.0/23"), 24)]
    with pytest.raises(Unavailable):
        pick_subnet([IPv4Network("10.0.0.0/23")], pools)


def test_mac_for_follows_docker_scheme():
    assert mac_for(IPv4Address("172.17.0.2")) == "02:42:ac:11:00:02"


def test_parse_helpers_reject_bad_input():
    assert parse_gateway_cidr("172.29.0.1/16").network == IPv4Network("172.29.0.0/16")
    for bad in ("172.29.0.0/16", "nonsense", "172.29.0.1"):
        with pytest.raises(InvalidParameter):
            parse_gateway_cidr(bad)
    with pytest.raises(InvalidParameter):
        parse_subnet("10.0.0.0/31")


def test_allocate_release_and_persistence(tmp_path):
    db = Database(tmp_path / "meta.db")
    ipam = Ipam(db)
    ipam.add_pool("n1", NET, IPv4Address("10.9.0.1"))
    a = ipam.allocate("n1", "ep-a")
    b = ipam.allocate("n1", "ep-b")
    assert (a, b) == (IPv4Address("10.9.0.2"), IPv4Address("10.9.0.3"))
    ipam.release_owner("ep-a")
    # Not reused at once: the scan continues after the last address handed out.
    assert ipam.allocate("n1", "ep-c") == IPv4Address("10.9.0.4")
    db.close()
    # A new process sees the same allocations.
    db2 = Database(tmp_path / "meta.db")
    ipam2 = Ipam(db2)
    assert ipam2.allocated("n1") == {"10.9.0.3": "ep-b", "10.9.0.4": "ep-c"}
    assert ipam2.allocate("n1", "ep-d") == IPv4Address("10.9.0.5")
    db2.close()


def test_allocate_requested_address(ipam):
    ipam.add_pool("n1", NET, IPv4Address("10.9.0.1"))
    assert ipam.allocate("n1", "ep-a", "10.9.0.5") == IPv4Address("10.9.0.5")
    with pytest.raises(Conflict):
        ipam.allocate("n1", "ep-b", "10.9.0.5")
    with pytest.raises(Conflict):  # the gateway
        ipam.allocate("n1", "ep-b", "10.9.0.1")
    with pytest.raises(Conflict):  # the broadcast address is never handed out (dockerd: already in use)
        ipam.allocate("n1", "ep-b", "10.9.0.7")
    with pytest.raises(InvalidParameter):
        ipam.allocate("n1", "ep-b", "10.10.0.2")
    with pytest.raises(InvalidParameter):
        ipam.allocate("n1", "ep-b", "not-an-ip")


def test_pool_exhaustion_and_unknown_pool(ipam):
    ipam.add_pool("n1", NET, IPv4Address("10.9.0.1"))
    got = {ipam.allocate("n1", f"ep{i}") for i in range(5)}
    assert len(got) == 5 and IPv4Address("10.9.0.1") not in got
    with pytest.raises(Unavailable):
        ipam.allocate("n1", "one-too-many")
    assert ipam.allocate("nope", "x") is None  # no pool of that family: no address


def test_remove_pool_drops_allocations(ipam):
    ipam.add_pool("n1", NET, IPv4Address("10.9.0.1"))
    ipam.allocate("n1", "ep")
    ipam.remove_pool("n1")
    assert ipam.allocated("n1") == {}
    assert ipam.subnets() == []
