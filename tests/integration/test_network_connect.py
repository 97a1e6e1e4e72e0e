"""`docker network connect/disconnect`: running containers get or lose an interface at once,
created or stopped ones at their next start."""

from __future__ import annotations

import ipaddress
import json
import secrets

import pytest

from engine_harness import uniq  # noqa: E402

pytestmark = pytest.mark.usefixtures("cleanup_containers")

BUSYBOX = "busybox:latest"


def inspect(engine, ref: str) -> dict:
    return json.loads(engine.cli_ok("inspect", ref))[0]


def addrs(engine, ref: str) -> dict[str, str]:
    """Interface -> IPv4 address/prefix inside the container."""
    out = engine.cli_ok("exec", ref, "ip", "-o", "-4", "addr")
    return {l.split()[1]: l.split()[3] for l in out.splitlines() if l.split()[1] != "lo"}


@pytest.fixture
def net(engine):
    made: list[str] = []

    def make(*args: str) -> str:
        name = uniq("dyc")
        engine.cli_ok("network", "create", *args, name)
        made.append(name)
        return name

    yield make
    api = engine.api()
    for c in api.containers(all=True):
        nets = (c.get("NetworkSettings") or {}).get("Networks") or {}
        if set(nets) & set(made):
            api.remove_container(c["Id"], force=True)
    for name in made:
        engine.cli("network", "rm", name)


def test_connect_and_disconnect_a_running_container(engine, net):
    n1 = net()
    peer = uniq("peer")
    engine.cli_ok("run", "-d", "--name", peer, "--network", n1, BUSYBOX, "sleep", "120")
    name = uniq("box")
    cid = engine.cli_ok("run", "-d", "--name", name, BUSYBOX, "sleep", "120").strip()
    assert list(addrs(engine, cid)) == ["eth0"]

    engine.cli_ok("network", "connect", "--alias", "second", n1, name)
    got = addrs(engine, cid)
    assert set(got) == {"eth0", "eth1"}
    nets = inspect(engine, cid)["NetworkSettings"]["Networks"]
    assert set(nets) == {"bridge", n1}
    assert got["eth1"] == f"{nets[n1]['IPAddress']}/{nets[n1]['IPPrefixLen']}"
    assert "second" in nets[n1]["Aliases"] and nets[n1]["EndpointID"]
    members = json.loads(engine.cli_ok("network", "inspect", n1))[0]["Containers"]
    assert cid in members and members[cid]["Name"] == name
    # reachable on the new network, by address and (from its peers) by name and alias
    out = engine.cli_ok("exec", peer, "ping", "-c1", "-W3", nets[n1]["IPAddress"])
    assert "1 packets received" in out
    for who in (name, "second"):
        out = engine.cli_ok("exec", peer, "nslookup", who, "127.0.0.11")
        assert nets[n1]["IPAddress"] in out
    # the default route stays on the first network
    assert "default via " + nets["bridge"]["Gateway"] in engine.cli_ok("exec", cid, "ip", "route")

    # connecting twice is refused
    r = engine.cli("network", "connect", n1, name)
    assert r.returncode != 0 and "already exists" in r.stderr.decode()

    engine.cli_ok("network", "disconnect", n1, name)
    assert list(addrs(engine, cid)) == ["eth0"]
    assert set(inspect(engine, cid)["NetworkSettings"]["Networks"]) == {"bridge"}
    assert cid not in json.loads(engine.cli_ok("network", "inspect", n1))[0]["Containers"]
    r = engine.cli("run", "--rm", "--network", n1, BUSYBOX, "nslookup", name, "127.0.0.11")
    assert r.returncode != 0
    # disconnecting again: not connected
    r = engine.cli("network", "disconnect", n1, name)
    assert r.returncode != 0 and "is not connected" in r.stderr.decode()
    # the container stays on bridge only after a restart
    engine.cli_ok("restart", "-t", "1", cid)
    assert list(addrs(engine, cid)) == ["eth0"]


def test_connect_created_container_takes_effect_at_start(engine, net):
    n1 = net()
    name = uniq("later")
    cid = engine.cli_ok("create", "--name", name, BUSYBOX, "sleep", "120").strip()
    engine.cli_ok("network", "connect", "--alias", "lateralias", n1, name)
    nets = inspect(engine, cid)["NetworkSettings"]["Networks"]
    assert set(nets) == {"bridge", n1} and nets[n1]["IPAddress"] == ""
    engine.cli_ok("start", cid)
    nets = inspect(engine, cid)["NetworkSettings"]["Networks"]
    assert set(nets) == {"bridge", n1}
    got = addrs(engine, cid)
    assert set(got) == {"eth0", "eth1"}
    subnet = ipaddress.ip_network(json.loads(engine.cli_ok("network", "inspect", n1))[0]["IPAM"]["Config"][0]["Subnet"])
    assert ipaddress.ip_interface(got["eth1"]).ip in subnet
    assert nets[n1]["IPAddress"] == str(ipaddress.ip_interface(got["eth1"]).ip)
    out = engine.cli_ok("run", "--rm", "--network", n1, BUSYBOX, "nslookup", "lateralias", "127.0.0.11")
    assert nets[n1]["IPAddress"] in out
    # stop and start again: still on both networks
    engine.cli_ok("stop", "-t", "1", cid)
    engine.cli_ok("start", cid)
    assert set(addrs(engine, cid)) == {"eth0", "eth1"}


def test_connect_with_a_chosen_address_and_bad_requests(engine, net):
    # a chosen address needs a subnet the user configured (dockerd's rule)
    n1 = net("--subnet", f"10.{secrets.randbelow(150) + 100}.{secrets.randbelow(256)}.0/24")
    subnet = ipaddress.ip_network(json.loads(engine.cli_ok("network", "inspect", n1))[0]["IPAM"]["Config"][0]["Subnet"])
    want = str(subnet.network_address + 77)
    name = uniq("ip")
    cid = engine.cli_ok("run", "-d", "--name", name, BUSYBOX, "sleep", "120").strip()
    engine.cli_ok("network", "connect", "--ip", want, n1, name)
    assert addrs(engine, cid)["eth1"].split("/")[0] == want
    # host and none cannot be joined; unknown networks and containers are 404s
    r = engine.cli("network", "connect", "host", name)
    assert r.returncode != 0 and "host network" in r.stderr.decode()
    r = engine.cli("network", "connect", "none", name)
    assert r.returncode != 0
    r = engine.cli("network", "connect", "no-such-net-x", name)
    assert r.returncode != 0 and "not found" in r.stderr.decode()
    r = engine.cli("network", "connect", n1, "no-such-container-x")
    assert r.returncode != 0 and "No such container" in r.stderr.decode()
    solo = engine.cli_ok("run", "-d", "--network", "none", BUSYBOX, "sleep", "60").strip()
    r = engine.cli("network", "connect", n1, solo)
    assert r.returncode != 0 and "none" in r.stderr.decode()
