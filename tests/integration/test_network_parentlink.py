"""macvlan and ipvlan networks through the docker CLI: containers get addresses on the parent
interface's segment.  The parent is one end of a veth pair the test creates; the other end
sits in a test-made namespace with an address on the same subnet (the "LAN"), so traffic
never touches the host's real interfaces.  Everything is removed even when a test fails."""

from __future__ import annotations

import json
import secrets
import subprocess

import docker
import pytest

from engine_harness import uniq  # noqa: E402
from test_network_drivers import kernel_can  # noqa: E402

pytestmark = pytest.mark.usefixtures("cleanup_containers")

BUSYBOX = "busybox:latest"


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, check=check)


@pytest.fixture
def lan():
    """(parent interface, peer namespace, subnet prefix "10.a.b.") for one test."""
    tag = secrets.token_hex(3)
    parent, peer, ns = f"dyp{tag}", f"dyq{tag}", f"dylan{tag}"
    prefix = f"10.{secrets.randbelow(150) + 100}.{secrets.randbelow(256)}."
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "link", "add", parent, "type", "veth", "peer", "name", peer)
        sh("ip", "link", "set", peer, "netns", ns)
        sh("ip", "-n", ns, "addr", "add", prefix + "2/24", "dev", peer)
        sh("ip", "-n", ns, "link", "set", peer, "up")
        sh("ip", "link", "set", parent, "up")
        yield parent, ns, prefix
    finally:
        sh("ip", "link", "del", parent, check=False)
        sh("ip", "netns", "del", ns, check=False)


@pytest.mark.parametrize("kind, mode", [("macvlan", "bridge"), ("macvlan", "private"), ("ipvlan", "l2")])
def test_containers_on_the_parents_segment(engine, lan, kind, mode):
    if not kernel_can(kind):
        pytest.skip(f"this kernel cannot create {kind} links (module missing)")
    parent, ns, prefix = lan
    name = uniq(kind)
    engine.cli_ok("network", "create", "-d", kind, "-o", f"parent={parent}", "-o", f"{kind}_mode={mode}",
                  "--subnet", prefix + "0/24", "--gateway", prefix + "1", "--ip-range", prefix + "128/25", name)
    try:
        n = json.loads(engine.cli_ok("network", "inspect", name))[0]
        assert n["Driver"] == kind and n["Options"] == {"parent": parent, f"{kind}_mode": mode}
        cid = engine.cli_ok("run", "-d", "--network", name, BUSYBOX, "sleep", "120").strip()
        ip = json.loads(engine.cli_ok("inspect", cid))[0]["NetworkSettings"]["Networks"][name]["IPAddress"]
        assert ip.startswith(prefix) and int(ip.rsplit(".", 1)[1]) >= 128
        # the LAN peer and the container reach each other over the parent
        assert engine.cli("exec", cid, "ping", "-c", "1", "-W", "3", prefix + "2").returncode == 0
        assert sh("ip", "netns", "exec", ns, "busybox", "ping", "-c", "1", "-W", "3", ip, check=False).returncode == 0
        assert f"default via {prefix}1" in engine.cli_ok("exec", cid, "ip", "route")
        # a second network on the same parent is refused, as dockerd does
        r = engine.cli("network", "create", "-d", kind, "-o", f"parent={parent}", uniq(kind))
        assert r.returncode != 0 and f"is already using parent interface {parent}" in r.stderr.decode()
        engine.cli_ok("rm", "-f", cid)
    finally:
        engine.cli("network", "rm", name)
    # nothing left on the parent
    assert "@" + parent not in sh("ip", "-o", "link").stdout


def test_bad_parent_and_mode(engine):
    name = uniq("mv")
    r = engine.cli("network", "create", "-d", "macvlan", "-o", "parent=dynosuch0", name)
    assert r.returncode != 0 and "-o parent interface was not found on the host: dynosuch0" in r.stderr.decode()
    r = engine.cli("network", "create", "-d", "macvlan", "-o", "parent=lo", "-o", "macvlan_mode=bogus", name)
    assert r.returncode != 0 and "requested macvlan mode 'bogus' is not valid" in r.stderr.decode()
    assert engine.cli("network", "inspect", name).returncode != 0


def test_ipvlan_where_the_module_is_missing(engine, lan):
    """This machine's kernel has no ipvlan module: the network is created (options are
    valid) but a container cannot join it, with a clear 4xx and nothing half-made."""
    if kernel_can("ipvlan"):
        pytest.skip("the ipvlan module loads here: test_containers_on_the_parents_segment covers ipvlan")
    parent, _, prefix = lan
    name = uniq("ipv")
    engine.cli_ok("network", "create", "-d", "ipvlan", "-o", f"parent={parent}", "--subnet", prefix + "0/24", name)
    try:
        r = engine.api().create_container(BUSYBOX, "true", host_config=engine.api().create_host_config(network_mode=name))
        with pytest.raises(docker.errors.APIError) as e:
            engine.api().start(r["Id"])
        assert e.value.status_code == 400 and "no ipvlan support" in e.value.explanation
        assert "@" + parent not in sh("ip", "-o", "link").stdout
    finally:
        engine.cli("network", "rm", name)


def test_macvlan_with_several_subnets(engine, lan):
    """macvlan (unlike bridge) takes several IPv4 subnets; --ip picks one, dynamic addresses the first."""
    if not kernel_can("macvlan"):
        pytest.skip("this kernel cannot create macvlan links (module missing)")
    parent, _, prefix = lan
    second = f"10.{secrets.randbelow(150) + 100}.{secrets.randbelow(256)}."
    name = uniq("mv2")
    engine.cli_ok("network", "create", "-d", "macvlan", "-o", f"parent={parent}", "--subnet", prefix + "0/24",
                  "--subnet", second + "0/24", name)
    try:
        cfg = json.loads(engine.cli_ok("network", "inspect", name))[0]["IPAM"]["Config"]
        # the CLI sends its --subnet list in Go map order (random): the engine keeps what it got
        subnets = [c["Subnet"] for c in cfg]
        assert sorted(subnets) == sorted([prefix + "0/24", second + "0/24"])
        first = subnets[0].removesuffix("0/24")
        a = engine.cli_ok("run", "-d", "--network", name, "--ip", second + "9", BUSYBOX, "sleep", "60").strip()
        b = engine.cli_ok("run", "-d", "--network", name, BUSYBOX, "sleep", "60").strip()
        addr = lambda c: json.loads(engine.cli_ok("inspect", c))[0]["NetworkSettings"]["Networks"][name]
        assert addr(a)["IPAddress"] == second + "9" and addr(a)["Gateway"] == second + "1"
        assert addr(b)["IPAddress"].startswith(first) and addr(b)["IPAddress"] != second + "9"
        engine.cli_ok("rm", "-f", a, b)
    finally:
        engine.cli("network", "rm", name)
    # through the API, in a known order: inspect shows it as given
    api = engine.api()
    given = [second + "0/24", prefix + "0/24"]
    net = api.create_network(name, driver="macvlan", options={"parent": parent},
                             ipam={"Driver": "default", "Config": [{"Subnet": x} for x in given]})
    try:
        assert [c["Subnet"] for c in api.inspect_network(net["Id"])["IPAM"]["Config"]] == given
    finally:
        api.remove_network(net["Id"])
