"""One suite every network driver runs (bridge, macvlan, ipvlan; null and host for what they
allow): create with IPAM options, inspect, two containers that reach each other, disconnect and
reconnect with a chosen address, removal that leaves no link behind.  macvlan and ipvlan hang
off one end of a veth pair the test creates (the other end sits in a test-made namespace):
never the host's real interfaces."""

from __future__ import annotations

import json
import secrets
import subprocess

import pytest

from engine_harness import uniq  # noqa: E402

pytestmark = pytest.mark.usefixtures("cleanup_containers")

BUSYBOX = "busybox:latest"


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, check=check)


def kernel_can(kind: str) -> bool:
    """Can this kernel create a `kind` link?  (Probed on a throwaway veth.)"""
    probe = "dyk" + secrets.token_hex(3)
    sh("ip", "link", "add", probe, "type", "veth", "peer", "name", probe + "p")
    try:
        return sh("ip", "link", "add", "link", probe, probe + "x", "type", kind, check=False).returncode == 0
    finally:
        sh("ip", "link", "del", probe + "x", check=False)
        sh("ip", "link", "del", probe, check=False)


@pytest.fixture
def parent():
    """A veth end on the host whose peer lives in a test-made namespace."""
    tag = secrets.token_hex(3)
    host, peer, ns = f"dyp{tag}", f"dyq{tag}", f"dyns{tag}"
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "link", "add", host, "type", "veth", "peer", "name", peer)
        sh("ip", "link", "set", peer, "netns", ns)
        sh("ip", "-n", ns, "link", "set", peer, "up")
        sh("ip", "link", "set", host, "up")
        yield host
    finally:
        sh("ip", "link", "del", host, check=False)
        sh("ip", "netns", "del", ns, check=False)


def driver_args(driver: str, parent: str) -> list[str]:
    if driver == "bridge":
        return ["-o", "com.docker.network.bridge.name=dyd" + secrets.token_hex(4)]
    return ["-o", f"parent={parent}"]


@pytest.mark.parametrize("driver", ["bridge", "macvlan", "ipvlan"])
def test_driver_suite(engine, parent, driver):
    if driver != "bridge" and not kernel_can(driver):
        pytest.skip(f"the {driver} module does not load on this kernel (creating a {driver} link failed)")
    prefix = f"10.{secrets.randbelow(150) + 100}.{secrets.randbelow(256)}."
    name = uniq(driver[:3])
    args = driver_args(driver, parent)
    engine.cli_ok("network", "create", "-d", driver, *args, "--subnet", prefix + "0/24",
                  "--gateway", prefix + "1", "--ip-range", prefix + "64/26", "--label", "suite=1", name)
    try:
        n = json.loads(engine.cli_ok("network", "inspect", name))[0]
        assert n["Driver"] == driver and n["Labels"] == {"suite": "1"} and n["Scope"] == "local"
        assert n["IPAM"]["Config"] == [{"Subnet": prefix + "0/24", "IPRange": prefix + "64/26", "Gateway": prefix + "1"}]
        assert n["Options"][args[1].split("=")[0]] == args[1].split("=", 1)[1]
        a = engine.cli_ok("run", "-d", "--network", name, BUSYBOX, "sleep", "120").strip()
        b = engine.cli_ok("run", "-d", "--network", name, BUSYBOX, "sleep", "120").strip()
        ip = lambda c: json.loads(engine.cli_ok("inspect", c))[0]["NetworkSettings"]["Networks"][name]["IPAddress"]
        ip_a, ip_b = ip(a), ip(b)
        assert 64 <= int(ip_a.rsplit(".", 1)[1]) < 128 and ip_a != ip_b
        assert engine.cli("exec", a, "ping", "-c", "1", "-W", "3", ip_b).returncode == 0
        # the embedded DNS serves every user-defined network, whatever its driver
        b_name = json.loads(engine.cli_ok("inspect", b))[0]["Name"].lstrip("/")
        assert ip_b in engine.cli_ok("exec", a, "nslookup", b_name, "127.0.0.11")
        assert f"default via {prefix}1" in engine.cli_ok("exec", a, "ip", "route")
        assert json.loads(engine.cli_ok("network", "inspect", name))[0]["Containers"].keys() == {a, b}
        # a running container leaves and comes back with a chosen address
        engine.cli_ok("network", "disconnect", name, b)
        assert "eth0" not in engine.cli_ok("exec", b, "ip", "-o", "link")
        engine.cli_ok("network", "connect", "--ip", prefix + "200", name, b)
        assert ip(b) == prefix + "200"
        assert engine.cli("exec", a, "ping", "-c", "1", "-W", "3", prefix + "200").returncode == 0
        r = engine.cli("network", "rm", name)
        assert r.returncode != 0 and "has active endpoints" in r.stderr.decode()
        engine.cli_ok("rm", "-f", a, b)
    finally:
        engine.cli("network", "rm", name)
    links = sh("ip", "-o", "link").stdout
    assert f"@{parent}" not in links
    if driver == "bridge":
        assert args[1].split("=")[1] not in links


@pytest.mark.parametrize("driver, links", [("null", ["lo"]), ("host", None)])
def test_null_and_host_drivers(engine, driver, links):
    r = engine.cli("network", "create", "-d", driver, uniq(driver))
    assert r.returncode != 0 and f'only one instance of "{driver}" network is allowed' in r.stderr.decode()
    out = engine.cli_ok("run", "--rm", "--network", "none" if driver == "null" else "host", BUSYBOX,
                        "ls", "/sys/class/net").split()
    if links is not None:
        assert out == links
    else:
        assert "lo" in out and len(out) > 1
