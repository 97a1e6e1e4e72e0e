"""IPAM of network create and endpoint settings: dockerd's checks and texts, pools, ip-range, aux, IPv6."""

from ipaddress import IPv4Address, IPv6Address, ip_network

import pytest

from dockyard.errors import Conflict, Forbidden, InvalidParameter, NotFound
from dockyard.network.ipam import Ipam, Pool
from dockyard.network.driveropts import bridge_options
from dockyard.network.ipamconfig import (check_bridge_ipv6, check_endpoint, parse_default_pools, parse_ipam,
                                       plan_pools)
from dockyard.store.metadata import Database


def cfg(**kw):
    return {"Config": [kw]}


def test_unparsable_ip_range_and_gateway_are_reported_not_raised():
    """They were reported, then parsed again for the result: a ValueError, a 500 (fuzz)."""
    with pytest.raises(InvalidParameter) as e:
        parse_ipam(cfg(Subnet="10.1.0.0/24", IPRange="x", Gateway="10.1.0.1/24"), False)
    assert e.value.message.splitlines() == [
        "invalid network config:",
        "* invalid ip-range x: invalid CIDR block notation",
        "* invalid gateway 10.1.0.1/24: invalid address",
    ]


@pytest.mark.parametrize("subnet, text", [
    ("ff00::/8", "multicast subnet 'ff00::/8' is not allowed"),
    ("::/0", "'::/0' clashes with the Link-Local prefix 'fe80::/64'"),
    ("fe80::/10", "'fe80::/10' clashes with the Link-Local prefix 'fe80::/64'"),
])
def test_bridge_refuses_ipv6_subnets_the_kernel_would(subnet, text):
    with pytest.raises(InvalidParameter) as e:
        check_bridge_ipv6(parse_ipam(cfg(Subnet=subnet), True))
    assert e.value.message == text
    check_bridge_ipv6(parse_ipam(cfg(Subnet="fe80::/64"), True))  # exactly the link-local prefix: dockerd allows it
    check_bridge_ipv6(parse_ipam(cfg(Subnet="fd00:1::/64"), True))


def test_bridge_mtu_bounds():
    assert bridge_options({"com.docker.network.driver.mtu": "65535"}).mtu == 65535
    for value in ("65536", "99999999999999999999"):
        with pytest.raises(InvalidParameter, match="the maximum is 65535"):
            bridge_options({"com.docker.network.driver.mtu": value})


def test_validate_ipam_texts_joined_like_dockerd():
    with pytest.raises(InvalidParameter) as e:
        parse_ipam(cfg(Subnet="garbage"), False)
    assert e.value.message == "invalid network config:\n* invalid subnet garbage: invalid CIDR block notation"
    with pytest.raises(InvalidParameter) as e:
        parse_ipam(cfg(Subnet="10.1.0.5/24", Gateway="10.2.0.1", IPRange="10.3.0.0/24",
                       AuxiliaryAddresses={"a": "x"}), False)
    assert e.value.message.splitlines() == [
        "invalid network config:",
        "* invalid subnet 10.1.0.5/24: it should be 10.1.0.0/24",
        "* invalid ip-range 10.3.0.0/24: parent subnet 10.1.0.0/24 doesn't contain ip-range",
        "* invalid gateway 10.2.0.1: parent subnet 10.1.0.0/24 doesn't contain this address",
        "* invalid auxiliary address a: invalid address",
    ]
    with pytest.raises(InvalidParameter, match="CIDR block is bigger than its parent subnet"):
        parse_ipam(cfg(Subnet="10.1.0.0/24", IPRange="10.1.0.0/16"), False)
    with pytest.raises(InvalidParameter, match="parent subnet is an IPv4 block"):
        parse_ipam(cfg(Subnet="10.1.0.0/24", Gateway="fd00::1"), False)
    with pytest.raises(NotFound):
        parse_ipam({"Driver": "other"}, False)


def test_plan_pools_overlap_rules_and_defaults():
    req = parse_ipam(cfg(Subnet="10.1.0.0/24", IPRange="10.1.0.128/25", AuxiliaryAddresses={"r": "10.1.0.200"}), False)
    [p] = plan_pools(req, False, [], [])
    assert p.to_docker() == {"Subnet": "10.1.0.0/24", "IPRange": "10.1.0.128/25",
                             "AuxiliaryAddresses": {"r": "10.1.0.200"}}
    assert p.gateway == IPv4Address("10.1.0.128")  # first address of the range, as libnetwork
    taken = [(ip_network("10.1.0.0/16"), None)]
    with pytest.raises(Forbidden, match="Pool overlaps with other one on this address space"):
        plan_pools(parse_ipam(cfg(Subnet="10.1.2.0/24"), False), False, taken, [])
    # with an ip-range dockerd checks only the exact same subnet and range
    plan_pools(parse_ipam(cfg(Subnet="10.1.2.0/24", IPRange="10.1.2.0/25"), False), False, taken, [])
    pools = parse_default_pools([{"base": "10.77.0.0/16", "size": 24}])
    [p] = plan_pools(parse_ipam(None, False), False, [(ip_network("10.77.0.0/24"), None)], [], pools)
    assert p.subnet == ip_network("10.77.1.0/24") and p.to_docker() == {"Subnet": "10.77.1.0/24", "Gateway": "10.77.1.1"}
    v4, v6 = plan_pools(parse_ipam(None, True), True, [], [])
    assert v6.subnet.version == 6 and v6.gateway == IPv6Address(int(v6.subnet.network_address) + 1)


def test_allocation_stays_in_ip_range_and_skips_aux(tmp_path):
    ipam = Ipam(Database(tmp_path / "m.db"))
    req = parse_ipam({"Config": [{"Subnet": "10.5.0.0/24", "IPRange": "10.5.0.8/30", "Gateway": "10.5.0.1",
                                  "AuxiliaryAddresses": {"x": "10.5.0.9"}},
                                 {"Subnet": "fd00:5::/64"}]}, True)
    ipam.set_pools("n", plan_pools(req, True, [], []))
    got = [str(ipam.allocate("n", f"e{i}")) for i in range(3)]
    assert got == ["10.5.0.8", "10.5.0.10", "10.5.0.11"]
    with pytest.raises(Exception):
        ipam.allocate("n", "e4")
    assert str(ipam.allocate("n", "e5", "10.5.0.50")) == "10.5.0.50"  # static: anywhere in the subnet
    with pytest.raises(Conflict):
        ipam.allocate("n", "e6", "10.5.0.9")  # an aux address
    assert str(ipam.allocate("n", "e1", None, 6)) == "fd00:5::2"  # ::1 is the gateway
    assert str(ipam.allocate("n", "e2", "fd00:5::99", 6)) == "fd00:5::99"


def test_endpoint_settings_checks():
    pools = [Pool(ip_network("10.6.0.0/24"), IPv4Address("10.6.0.1"))]
    check_endpoint({"IPAMConfig": {"IPv4Address": "10.6.0.7"}, "MacAddress": "02:42:0a:06:00:07"}, pools, True)
    with pytest.raises(InvalidParameter) as e:
        check_endpoint({"IPAMConfig": {"IPv4Address": "10.7.0.7"}}, pools, True)
    assert e.value.message == ("invalid endpoint settings:\n"
                               "* no configured subnet or ip-range contain the IP address 10.7.0.7")
    with pytest.raises(InvalidParameter, match="user specified IP address is supported on user defined networks only"):
        check_endpoint({"IPAMConfig": {"IPv4Address": "10.6.0.7"}}, pools, False)
    with pytest.raises(InvalidParameter, match="^invalid MAC address 02:42$"):
        check_endpoint({"MacAddress": "02:42"}, pools, True)
    dyn = [Pool(ip_network("10.6.0.0/24"), IPv4Address("10.6.0.1"), static=False)]
    with pytest.raises(InvalidParameter, match="only when connecting to networks with user configured subnets"):
        check_endpoint({"IPAMConfig": {"IPv4Address": "10.6.0.7"}}, dyn, True)


def test_old_single_pool_tables_are_migrated(tmp_path):
    db = Database(tmp_path / "m.db")
    db.ensure_schema("""
        CREATE TABLE net_ipam_pools (network_id TEXT PRIMARY KEY, subnet TEXT NOT NULL, gateway TEXT NOT NULL, last INTEGER);
        CREATE TABLE net_ipam_addresses (network_id TEXT NOT NULL, address TEXT NOT NULL, owner TEXT NOT NULL,
                                         PRIMARY KEY (network_id, address));
        INSERT INTO net_ipam_pools VALUES ('n', '10.8.0.0/24', '10.8.0.1', NULL);
        INSERT INTO net_ipam_addresses VALUES ('n', '10.8.0.2', 'ep');
    """)
    ipam = Ipam(db)
    assert ipam.allocated("n") == {"10.8.0.2": "ep"}
    assert str(ipam.allocate("n", "ep2")) == "10.8.0.3"
