"""Network options end to end through the docker CLI and docker-py: IPAM (subnet, gateway,
--ip-range, --aux-address, --ip), driver options (internal, icc, masquerade, mtu,
host_binding_ipv4), endpoint fields (MAC, aliases, DNSNames, link-local IPs), names,
prune filters, and dockerd's 4xx for bad input.  Traffic is checked from inside
containers with busybox ping/nc."""

from __future__ import annotations

import ipaddress
import json
import re
import secrets
import subprocess

import docker
import pytest

from dockyard.network.firewall import Firewall
from engine_harness import uniq  # noqa: E402

pytestmark = pytest.mark.usefixtures("cleanup_containers")

BUSYBOX = "busybox:latest"


def subnet24() -> str:
    return f"10.{secrets.randbelow(150) + 100}.{secrets.randbelow(256)}.0/24"


@pytest.fixture(scope="module")
def netns_engine():
    """An engine alone in a network namespace of its own (no image: networks only)."""
    from engine_harness import EngineProcess

    eng = EngineProcess(own_netns=True)
    try:
        eng.start()
        yield eng
    finally:
        eng.cleanup()


@pytest.fixture
def nets(engine):
    """Create networks (CLI args); removed with their containers afterwards."""
    made: list[str] = []

    def make(*args: str, name: str | None = None) -> str:
        name = name or uniq("dyo")
        engine.cli_ok("network", "create", *args, name)
        made.append(name)
        return name

    yield make
    api = engine.api()
    for c in api.containers(all=True):
        if set((c.get("NetworkSettings") or {}).get("Networks") or {}) & set(made):
            api.remove_container(c["Id"], force=True)
    for name in made:
        engine.cli("network", "rm", name)


def net_inspect(engine, name: str) -> dict:
    return json.loads(engine.cli_ok("network", "inspect", name))[0]


def ctr_inspect(engine, ref: str) -> dict:
    return json.loads(engine.cli_ok("inspect", ref))[0]


def pings(engine, ref: str, ip: str) -> bool:
    return engine.cli("exec", ref, "ping", "-c", "1", "-W", "2", ip).returncode == 0


def test_ipam_options_allocation_and_inspect(engine, nets):
    sub = ipaddress.ip_network(subnet24())
    base = sub.network_address
    rng = ipaddress.ip_network(f"{base + 64}/27")
    name = nets("--subnet", str(sub), "--gateway", str(base + 254), "--ip-range", str(rng),
                "--aux-address", f"router={base + 64}", "--ipam-opt", "foo=bar", "--label", "team=net",
                "--attachable")
    n = net_inspect(engine, name)
    assert n["IPAM"] == {"Driver": "default", "Options": {"foo": "bar"}, "Config": [
        {"Subnet": str(sub), "IPRange": str(rng), "Gateway": str(base + 254),
         "AuxiliaryAddresses": {"router": str(base + 64)}}]}
    assert n["Attachable"] is True and n["Labels"] == {"team": "net"} and n["EnableIPv6"] is False
    assert n["Options"] == {} and n["Internal"] is False
    # dynamic addresses come from the ip-range, skipping the aux address; --ip anywhere in the subnet
    a = engine.cli_ok("run", "-d", "--network", name, BUSYBOX, "sleep", "120").strip()
    b = engine.cli_ok("run", "-d", "--network", name, "--ip", str(base + 10), BUSYBOX, "sleep", "120").strip()
    ip_a = ctr_inspect(engine, a)["NetworkSettings"]["Networks"][name]["IPAddress"]
    assert ipaddress.ip_address(ip_a) in rng and ip_a != str(base + 64)
    nb = ctr_inspect(engine, b)["NetworkSettings"]["Networks"][name]
    assert nb["IPAddress"] == str(base + 10) and nb["Gateway"] == str(base + 254)
    assert nb["IPAMConfig"] == {"IPv4Address": str(base + 10)}
    out = engine.cli_ok("exec", b, "ip", "route")
    assert f"default via {base + 254}" in out
    assert pings(engine, b, ip_a)
    # an --ip outside every subnet is dockerd's 400, and nothing is left behind
    r = engine.cli("run", "-d", "--network", name, "--ip", "192.0.2.7", BUSYBOX, "true")
    assert r.returncode != 0 and "no configured subnet or ip-range contain the IP address 192.0.2.7" in r.stderr.decode()
    # network connect --ip, and the address already taken
    c = engine.cli_ok("run", "-d", BUSYBOX, "sleep", "120").strip()
    r = engine.cli("network", "connect", "--ip", str(base + 10), name, c)
    assert r.returncode != 0 and "Address already in use" in r.stderr.decode()
    engine.cli_ok("network", "connect", "--ip", str(base + 11), name, c)
    assert pings(engine, c, str(base + 10))


def test_overlap_rules_and_default_pool(engine, nets, api):
    sub = subnet24()
    nets("--subnet", sub)
    r = engine.cli("network", "create", "--subnet", sub, uniq("dyo"))
    assert r.returncode != 0 and "Pool overlaps with other one on this address space" in r.stderr.decode()
    r = api.post(api._url("/networks/create"), json={"Name": uniq("dyo"), "IPAM": {"Config": [{"Subnet": sub}]}})
    assert r.status_code == 403
    # with an --ip-range dockerd only refuses the very same subnet and range
    rng = str(ipaddress.ip_network(sub).subnets(new_prefix=25).__next__())
    nets("--subnet", sub, "--ip-range", rng)
    # bridge networks take one IPv4 subnet
    r = api.post(api._url("/networks/create"), json={"Name": uniq("dyo"), "IPAM": {"Config": [
        {"Subnet": subnet24()}, {"Subnet": subnet24()}]}})
    assert r.status_code == 403 and r.json()["message"] == "bridge driver doesn't support multiple subnets"


@pytest.mark.parametrize("args, text", [
    (["--subnet", "garbage"], "invalid network config:\n* invalid subnet garbage: invalid CIDR block notation"),
    (["-o", "com.docker.network.driver.mtu=abc"],
     'failed to parse com.docker.network.driver.mtu value: abc (strconv.Atoi: parsing "abc": invalid syntax)'),
    (["-o", "com.docker.network.bridge.enable_icc=maybe"],
     "failed to parse com.docker.network.bridge.enable_icc value: maybe"),
])
def test_bad_input_through_the_cli(netns_engine, args, text):
    """Refused before anything is made: not a link, not a rule (compared whole in the engine's
    own network namespace, where no other engine adds or removes any meanwhile)."""
    eng = netns_engine

    def host() -> tuple[str, str, str]:
        return tuple(subprocess.run(eng.in_netns(*cmd), capture_output=True, text=True, check=True).stdout
                     for cmd in (["ip", "-o", "link"], ["iptables-save"], ["ip6tables-save"]))

    def strip(t: str) -> list[str]:
        # no times or counters in the rule dumps; no carrier flags or operstate in the links: the
        # kernel settles those of a bridge made moments ago later on its own (linkwatch: its
        # state went UNKNOWN -> DOWN, NO-CARRIER between two dumps once, the engine just started)
        t = re.sub(r"<[A-Z0-9_,-]*>", "<>", re.sub(r" state [A-Z]+ ", " ", t))
        return [re.sub(r" \[\d+:\d+\]$", "", line) for line in t.splitlines() if not line.startswith("#")]

    name = uniq("dyo")
    before = [strip(x) for x in host()]
    r = eng.cli("network", "create", *args, name)
    assert r.returncode != 0 and text in r.stderr.decode()
    assert eng.cli("network", "inspect", name).returncode != 0
    assert [strip(x) for x in host()] == before


@pytest.mark.parametrize("config, text", [
    # the CLI checks these itself; docker-py and compose send them as they are
    ({"Subnet": "10.77.0.0/24", "Gateway": "10.78.0.1"},
     "invalid gateway 10.78.0.1: parent subnet 10.77.0.0/24 doesn't contain this address"),
    ({"Subnet": "10.77.0.0/24", "IPRange": "10.78.0.0/25"},
     "invalid ip-range 10.78.0.0/25: parent subnet 10.77.0.0/24 doesn't contain ip-range"),
    ({"Subnet": "10.77.0.9/24"}, "invalid subnet 10.77.0.9/24: it should be 10.77.0.0/24"),
    ({"Subnet": "10.77.0.0/24", "AuxiliaryAddresses": {"x": "nope"}}, "invalid auxiliary address x: invalid address"),
])
def test_bad_ipam_through_the_api(engine, api, config, text):
    name = uniq("dyo")
    with pytest.raises(docker.errors.APIError) as e:
        api.create_network(name, ipam={"Driver": "default", "Config": [config]})
    assert e.value.status_code == 400 and e.value.explanation == "invalid network config:\n* " + text
    assert engine.cli("network", "inspect", name).returncode != 0


def test_network_names_dockerd_accepts_and_predefined(engine, nets, api):
    name = nets(name="test 01 " + secrets.token_hex(2))
    assert net_inspect(engine, name)["Name"] == name
    r = api.post(api._url("/networks/create"), json={"Name": "bridge"})
    assert r.status_code == 403 and r.json()["message"] == "bridge is a pre-defined network and cannot be created"


def test_internal_network_isolated_both_ways(engine, nets):
    inner = nets("--internal", "--subnet", subnet24())
    outer = nets("--subnet", subnet24())
    a = engine.cli_ok("run", "-d", "--network", inner, BUSYBOX, "sleep", "120").strip()
    b = engine.cli_ok("run", "-d", "--network", inner, BUSYBOX, "sleep", "120").strip()
    o = engine.cli_ok("run", "-d", "--network", outer, BUSYBOX, "sleep", "120").strip()
    ip = lambda c, n: ctr_inspect(engine, c)["NetworkSettings"]["Networks"][n]["IPAddress"]
    assert net_inspect(engine, inner)["Internal"] is True
    assert pings(engine, a, ip(b, inner))          # inside the internal network: fine
    assert not pings(engine, o, ip(a, inner))      # from another network into it: dropped
    assert not pings(engine, a, ip(o, outer))      # out of it: dropped
    assert "default" not in engine.cli_ok("exec", a, "ip", "route")


def test_icc_masquerade_mtu_and_host_binding(engine, nets):
    br = "dyo" + secrets.token_hex(4)
    name = nets("--subnet", subnet24(), "-o", f"com.docker.network.bridge.name={br}",
                "-o", "com.docker.network.bridge.enable_icc=false",
                "-o", "com.docker.network.bridge.enable_ip_masquerade=false",
                "-o", "com.docker.network.driver.mtu=1300",
                "-o", "com.docker.network.bridge.host_binding_ipv4=127.0.0.1")
    n = net_inspect(engine, name)
    assert n["Options"]["com.docker.network.driver.mtu"] == "1300"
    assert n["Options"]["com.docker.network.bridge.name"] == br
    a = engine.cli_ok("run", "-d", "--network", name, "-p", "80", BUSYBOX,
                      "sh", "-c", "echo hi | nc -l -p 80; sleep 120").strip()
    b = engine.cli_ok("run", "-d", "--network", name, BUSYBOX, "sleep", "120").strip()
    # mtu on the bridge and on both ends of the veth
    assert "mtu 1300" in subprocess.run(["ip", "link", "show", br], capture_output=True, text=True).stdout
    assert "mtu 1300" in engine.cli_ok("exec", b, "ip", "link", "show", "eth0")
    # icc=false: containers on the network cannot reach each other
    ip_a = ctr_inspect(engine, a)["NetworkSettings"]["Networks"][name]["IPAddress"]
    assert not pings(engine, b, ip_a)
    # no masquerade rule for the subnet
    assert not any("MASQUERADE" in l and "! -o" in l for l in Firewall(True).bridge_lines(br))
    # "-p 80" binds the network's host_binding_ipv4
    ports = ctr_inspect(engine, a)["NetworkSettings"]["Ports"]["80/tcp"]
    assert ports[0]["HostIp"] == "127.0.0.1"
    out = subprocess.run(["busybox", "nc", "-w", "5", "127.0.0.1", ports[0]["HostPort"]],
                         capture_output=True, text=True, timeout=30).stdout
    assert "hi" in out


def test_endpoint_fields_mac_aliases_dnsnames(engine, nets, client):
    name = nets("--subnet", subnet24())
    c = client.containers.run(BUSYBOX, ["sleep", "120"], detach=True, name=uniq("ep"),
                              network=name, mac_address="02:42:ac:11:00:99")
    engine.cli_ok("network", "disconnect", name, c.id)
    engine.cli_ok("network", "connect", "--alias", "web", "--link-local-ip", "169.254.7.7", name, c.id)
    ep = ctr_inspect(engine, c.id)["NetworkSettings"]["Networks"][name]
    assert ep["Aliases"] == ["web"]
    assert ep["DNSNames"] == [c.name, "web", c.id[:12]]
    assert ep["IPAMConfig"] == {"LinkLocalIPs": ["169.254.7.7"]}
    # API < 1.45: Aliases also hold the short id (CHANGELOG v1.45)
    old = docker.APIClient(base_url=f"unix://{engine.socket}", version="1.44")
    assert old.inspect_container(c.id)["NetworkSettings"]["Networks"][name]["Aliases"] == ["web", c.id[:12]]
    assert "169.254.7.7" in engine.cli_ok("exec", c.id, "ip", "addr", "show", "eth0")
    d = engine.cli_ok("run", "-d", "--network", name, "--mac-address", "02:42:ac:11:00:42",
                      "--hostname", "webhost", BUSYBOX, "sleep", "120").strip()
    ep = ctr_inspect(engine, d)["NetworkSettings"]["Networks"][name]
    # dockerd's DNSNames: name, aliases, short id, hostname; the hostname resolves too
    assert ep["DNSNames"][-2:] == [d[:12], "webhost"]
    assert ep["IPAddress"] in engine.cli_ok("exec", c.id, "nslookup", "webhost", "127.0.0.11")
    assert ep["MacAddress"] == "02:42:ac:11:00:42"
    assert "02:42:ac:11:00:42" in engine.cli_ok("exec", d, "ip", "link", "show", "eth0")
    assert net_inspect(engine, name)["Containers"][d]["MacAddress"] == "02:42:ac:11:00:42"
    r = engine.api().post(engine.api()._url("/containers/create"), json={
        "Image": BUSYBOX, "Cmd": ["true"], "NetworkingConfig": {"EndpointsConfig": {name: {"MacAddress": "02:42"}}}})
    assert r.status_code == 400 and r.json()["message"] == "invalid MAC address 02:42"


def test_container_network_sharing(engine, nets):
    name = nets("--subnet", subnet24())
    a = engine.cli_ok("run", "-d", "--network", name, BUSYBOX, "sleep", "120").strip()
    out = engine.cli_ok("run", "--rm", "--network", f"container:{a}", BUSYBOX, "ip", "-o", "-4", "addr", "show", "eth0")
    assert ctr_inspect(engine, a)["NetworkSettings"]["Networks"][name]["IPAddress"] in out


def test_prune_filters(engine, api):
    keep, gone = uniq("dyk"), uniq("dyp")
    engine.cli_ok("network", "create", "--label", "keep=1", keep)
    engine.cli_ok("network", "create", "--label", "tmp=1", gone)
    try:
        out = engine.cli_ok("network", "prune", "-f", "--filter", "label=tmp=1")
        assert gone in out and keep not in out
        out = engine.cli_ok("network", "prune", "-f", "--filter", "label!=keep", "--filter", "until=1h")
        assert keep not in out
        assert engine.cli("network", "inspect", keep).returncode == 0
    finally:
        engine.cli("network", "rm", keep)
        engine.cli("network", "rm", gone)


def test_default_address_pools(private_engine):
    octet = secrets.randbelow(100) + 120
    eng = private_engine(["--default-address-pool", f"base=10.{octet}.0.0/16,size=24"])
    name = uniq("dyd")
    eng.cli_ok("network", "create", name)
    n = json.loads(eng.cli_ok("network", "inspect", name))[0]
    [cfg] = n["IPAM"]["Config"]
    sub = ipaddress.ip_network(cfg["Subnet"])
    assert sub.prefixlen == 24 and sub.subnet_of(ipaddress.ip_network(f"10.{octet}.0.0/16"))
    assert cfg["Gateway"] == str(sub.network_address + 1)
    second = uniq("dyd")
    eng.cli_ok("network", "create", second)
    sub2 = ipaddress.ip_network(json.loads(eng.cli_ok("network", "inspect", second))[0]["IPAM"]["Config"][0]["Subnet"])
    assert sub2 != sub and sub2.subnet_of(ipaddress.ip_network(f"10.{octet}.0.0/16"))
