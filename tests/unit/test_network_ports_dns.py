"""Pure logic of published ports (parsing, rendering) and of the embedded DNS answers."""

from __future__ import annotations

import asyncio

import dns.flags
import dns.message
import dns.rcode
import pytest

from dockyard.errors import InvalidParameter
from dockyard.network.dns import EmbeddedDns
from dockyard.network.ports import (
    PortMapping,
    PortRequest,
    docker_port_list,
    docker_port_map,
    parse_requests,
)


def test_parse_bindings_defaults_ranges_and_publish_all():
    reqs = parse_requests(
        {"80/tcp": [{"HostIp": "", "HostPort": "8080"}, {"HostIp": "127.0.0.1", "HostPort": ""}],
         "53/udp": [{"HostPort": "5300-5310"}], "9000": None},
        {"80/tcp": {}, "443/tcp": {}, "9000/tcp": {}}, publish_all=True)
    assert reqs == [
        PortRequest(80, "tcp", "0.0.0.0", 8080, 8080),
        PortRequest(80, "tcp", "127.0.0.1", 0, 0),
        PortRequest(53, "udp", "0.0.0.0", 5300, 5310),
        PortRequest(443, "tcp", "0.0.0.0", 0, 0),
        PortRequest(9000, "tcp", "0.0.0.0", 0, 0),  # a key without bindings: -P publishes it
    ]
    assert parse_requests(None, {"80/tcp": {}}, publish_all=False) == []


@pytest.mark.parametrize("bindings", [
    {"80/tcp": [{"HostPort": "70000"}]},
    {"0/tcp": [{"HostPort": "80"}]},
    {"80/icmp": []},
    {"80/sctp": [{"HostPort": "80"}]},
    {"80-81/tcp": [{"HostPort": "80"}]},
    {"80/tcp": [{"HostPort": "90-80"}]},
    {"80/tcp": [{"HostIp": "::", "HostPort": "80"}]},
    {"80/tcp": [{"HostIp": "example", "HostPort": "80"}]},
    {"80/tcp": "8080"},
    ["80/tcp"],
])
def test_bad_bindings_are_invalid_parameters(bindings):
    with pytest.raises(InvalidParameter):
        parse_requests(bindings, None, False)


def test_docker_views():
    maps = [PortMapping("tcp", 80, "0.0.0.0", 8080), PortMapping("udp", 53, "127.0.0.1", 5353)]
    pm = docker_port_map(maps, {"80/tcp": {}, "443": {}})
    assert pm == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}], "443/tcp": None,
                  "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}]}
    assert sorted(docker_port_list(pm), key=lambda p: p["PrivatePort"]) == [
        {"IP": "127.0.0.1", "PrivatePort": 53, "PublicPort": 5353, "Type": "udp"},
        {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
        {"PrivatePort": 443, "Type": "tcp"},
    ]


def _server() -> EmbeddedDns:
    table = {("c1", "web"): ["10.0.0.2", "10.0.0.3"]}
    return EmbeddedDns(None, lambda cid, name: table.get((cid, name), []),
                       lambda cid, ip: ["web.net1"] if ip == "10.0.0.2" else [], lambda cid: [])


def test_dns_answers_from_the_table():
    srv = _server()
    r = srv.answer_local("c1", dns.message.make_query("web", "A"))
    assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.RA
    assert sorted(rd.address for rd in r.answer[0]) == ["10.0.0.2", "10.0.0.3"]
    r = srv.answer_local("c1", dns.message.make_query("web", "AAAA"))
    assert r.rcode() == dns.rcode.NOERROR and not r.answer
    r = srv.answer_local("c1", dns.message.make_query("2.0.0.10.in-addr.arpa", "PTR"))
    assert r.answer[0][0].target.to_text() == "web.net1."
    # another container does not see c1's peers; unknown single labels stay local
    r = srv.answer_local("c2", dns.message.make_query("web", "A"))
    assert r.rcode() == dns.rcode.NXDOMAIN
    # names with a dot are left to the upstreams
    assert srv.answer_local("c1", dns.message.make_query("www.example.test", "A")) is None


def test_dns_forward_without_upstream_is_servfail():
    asyncio.run(_forward_without_upstream())


async def _forward_without_upstream():
    srv = _server()
    wire = await srv.handle("c1", dns.message.make_query("www.example.test", "A").to_wire(), tcp=False)
    assert dns.message.from_wire(wire).rcode() == dns.rcode.SERVFAIL
    assert await srv.handle("c1", b"not dns", tcp=False) is None
