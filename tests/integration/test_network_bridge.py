"""NetworkService against the real kernel: bridge, veths, netns, iptables.

Runs as root.  Every test uses its own bridge (`dyt<hex>`) and a subnet from
10.213.0.0/16 chosen per session, and a finalizer removes the bridge, its
chains and the sandboxes even when the test fails.  Nothing else on the host
is touched; snapshot comparisons ignore only what *other* dockyard engines
(running concurrently) own.  The lifecycle test, which also compares the forwarding
switch (one per network namespace, flipped by any engine), runs in a namespace of its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest
from pyroute2 import IPRoute

from dockyard.config import EngineConfig
from dockyard.engine.events import EventBus
from dockyard.errors import Conflict, Forbidden, NotFound
from dockyard.network import NetworkService, links
from dockyard.network.firewall import Firewall, chain_names
from dockyard.store.metadata import Database

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (netlink, netns, iptables)")

SESSION_OCTET = secrets.randbelow(200) + 20  # 10.213.<octet>.0/24 ... +1 for user networks
PING = ["busybox", "ping"] if shutil.which("busybox") else ["ping"]


def run(coro):
    return asyncio.run(coro)


# ------------------------------------------------------------------ snapshots


def iptables_snapshot() -> dict[str, list[str]]:
    """Table -> normalized iptables-save lines (no comments, no counters)."""
    out = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    tables: dict[str, list[str]] = {}
    cur = None
    for line in out.splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            cur = line[1:]
            tables[cur] = []
            continue
        tables[cur].append(re.sub(r" \[\d+:\d+\]$", "", line))
    return tables


def links_snapshot() -> dict[str, tuple[str | None, int | None]]:
    with IPRoute() as ipr:
        res = {}
        for l in ipr.get_links():
            info = l.get_attr("IFLA_LINKINFO")
            kind = info.get_attr("IFLA_INFO_KIND") if info else None
            res[l.get_attr("IFLA_IFNAME")] = (kind, l.get_attr("IFLA_MASTER"))
        return res


def _dockyard_rule(line: str) -> bool:
    """A rule or chain of some dockyard engine or test (named after its bridge)."""
    return "DY-" in line or "dockyard:" in line or re.search(r"(?<![\w-])(dy[\w-]*|veth\w*)(?![\w-])", line) is not None


def _dockyard_link(name: str) -> bool:
    return name.startswith(("dy", "veth"))


def assert_host_restored(before_ipt, before_links, bridge: str, our_links: set[str]):
    """What this service made is gone, and all the host had before is still there.

    Only what is ours is looked for afterwards (our bridge's chains and rules, the links we
    made or plugged into our bridge); other engines and tests on the host add and remove
    their own meanwhile, so of what was there before, only the host's own must remain.
    """
    after_ipt = iptables_snapshot()
    ours = [l for lines in after_ipt.values() for l in lines if bridge in l]  # its bridges: <bridge>[suffix]
    assert ours == [], f"rules of {bridge} left behind: {ours}"
    gone = [(t, l) for t, lines in before_ipt.items() for l in lines
            if l not in after_ipt.get(t, []) and not _dockyard_rule(l)
            and not (t not in after_ipt and l.startswith((":", "COMMIT")))]  # a table pruned whole
    assert gone == [], f"rules that were there before are gone: {gone}"

    after_links = links_snapshot()
    left = our_links & set(after_links)
    assert not left, f"links left behind: {left}"
    with IPRoute() as ipr:
        our_idx = {l["index"] for l in ipr.get_links() if l.get_attr("IFLA_IFNAME") in our_links}
    plugged = {n for n, (_kind, master) in after_links.items() if master in our_idx}
    assert not plugged, f"links still plugged into our bridge: {plugged}"
    removed = {n for n in set(before_links) - set(after_links) if not _dockyard_link(n)}
    assert removed == set(), f"links of the host removed: {removed}"


# ------------------------------------------------------------------ fixtures


class Env:
    def __init__(self, tmp: Path, octet: int) -> None:
        self.bridge = "dyt" + secrets.token_hex(4)
        self.subnet = IPv4Network(f"10.213.{octet}.0/24")
        self.gateway = self.subnet.network_address + 1
        self.config = EngineConfig(
            data_root=tmp / "data", exec_root=tmp / "exec",
            bridge=self.bridge, bip=f"{self.gateway}/24",
        )
        self.config.ensure_dirs()
        self.db = Database(self.config.db_path)
        self.events = EventBus()
        self.svc = NetworkService(self.config, self.db, self.events)
        self.created_links: set[str] = {self.bridge}

    def new_service(self) -> NetworkService:
        """A second service on the same state, as after an engine restart."""
        return NetworkService(self.config, self.db, self.events)

    def cleanup(self) -> None:
        """Last-resort removal of everything this test could have created."""
        try:
            run(self.svc.shutdown(keep=False))
        except Exception:
            pass
        with IPRoute() as ipr:
            for name in self.created_links | {self.bridge}:
                for idx in ipr.link_lookup(ifname=name):
                    try:
                        ipr.link("del", index=idx)
                    except Exception:
                        pass
        for br in self.created_links:
            Firewall(True).remove_bridge(br)
        root = self.config.exec_root / "netns"
        if root.exists():
            for p in root.iterdir():
                subprocess.run(["umount", "-l", str(p)], capture_output=True)
                p.unlink(missing_ok=True)
            subprocess.run(["umount", "-l", str(root)], capture_output=True)
        self.db.close()


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path, SESSION_OCTET)
    yield e
    e.cleanup()


def ns_exec(path: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["nsenter", f"--net={path}", *cmd], capture_output=True, text=True, check=check)


def ping(path: str, ip: str) -> bool:
    r = ns_exec(path, *PING, "-c", "1", "-W", "2", ip, check=False)
    return r.returncode == 0


def cid() -> str:
    return secrets.token_hex(32)


# ------------------------------------------------------------------ tests


# Set in the child pytest that runs a test inside a network namespace of its own.
OWN_NETNS_ENV = "DOCKYARD_TEST_OWN_NETNS"


def rerun_in_own_netns(test_id: str) -> None:
    """Run this file's `test_id` again in a child pytest inside a fresh network namespace.

    ip_forward and the iptables tables are per network namespace but host-wide inside one:
    other engines, tests and reference dockerds on the machine flip them at any moment, so a
    before/after comparison of them on the host can fail for reasons that are not ours.  In a
    namespace of its own everything the service touches is its own doing (the whole process
    enters it, so the service's worker threads and the iptables it calls are in it too).
    """
    ns = f"dyt{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        r = subprocess.run(
            ["nsenter", f"--net=/run/netns/{ns}", "--", sys.executable, "-m", "pytest", "-q", "-x",
             "-p", "no:cacheprovider", f"{__file__}::{test_id}"],
            env={**os.environ, OWN_NETNS_ENV: ns}, cwd=Path(__file__).resolve().parents[2],
            capture_output=True, text=True, timeout=600)
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    assert r.returncode == 0, f"{test_id} in netns {ns}:\n{r.stdout[-6000:]}\n{r.stderr[-2000:]}"


def test_bridge_lifecycle_restores_host(request):
    if not os.environ.get(OWN_NETNS_ENV):
        rerun_in_own_netns(request.node.name)
        return
    lifecycle_restores_host(request.getfixturevalue("env"))


def lifecycle_restores_host(env):
    ns = os.environ[OWN_NETNS_ENV]
    assert os.stat("/proc/self/ns/net").st_ino == os.stat(f"/run/netns/{ns}").st_ino, f"not in netns {ns}"
    # Our own namespace: forwarding starts off here, so turning it on and back off is seen.
    Firewall.set_ip_forward("0")
    before_ipt, before_links = iptables_snapshot(), links_snapshot()
    before_forward = Firewall.ip_forward()
    svc = env.svc
    c1, c2 = cid(), cid()

    async def scenario():
        await svc.start()
        timings = []
        eps, paths = [], []
        for c in (c1, c2):
            t0 = time.perf_counter()
            path = await svc.create_sandbox(c, "bridge")
            ep = await svc.connect(c, "bridge", path, name=f"/n{c[:4]}")
            timings.append(time.perf_counter() - t0)
            eps.append(ep)
            paths.append(path)
        return eps, paths, timings

    (e1, e2), (p1, p2), timings = run(scenario())
    env.created_links |= {e1.host_veth, e2.host_veth}
    print(f"create_sandbox+connect: {[round(t * 1000, 1) for t in timings]} ms")

    # Bridge with the gateway address, veths plugged in.
    assert links.link_exists(env.bridge)
    assert set(links.bridge_ports(env.bridge)) == {e1.host_veth, e2.host_veth}
    for ep in (e1, e2):
        assert re.fullmatch(r"veth[0-9a-f]{7}", ep.host_veth)
        assert IPv4Address(ep.ip_address) in env.subnet
        assert ep.gateway == str(env.gateway) and ep.prefix_len == 24
    assert e1.ip_address != e2.ip_address

    # Inside the sandbox: eth0 with the address and MAC, lo up, default route.
    addrs = json.loads(ns_exec(p1, "ip", "-j", "addr").stdout)
    by_name = {a["ifname"]: a for a in addrs}
    assert set(by_name) == {"lo", "eth0"}
    assert "UP" in by_name["lo"]["flags"]
    assert by_name["eth0"]["address"] == e1.mac_address
    assert [(i["local"], i["prefixlen"]) for i in by_name["eth0"]["addr_info"] if i["family"] == "inet"] == [
        (e1.ip_address, 24)
    ]
    routes = json.loads(ns_exec(p1, "ip", "-j", "route").stdout)
    assert {"dst": "default", "gateway": str(env.gateway)}.items() <= routes[0].items() or any(
        r["dst"] == "default" and r.get("gateway") == str(env.gateway) for r in routes
    )

    # Container to container and container to gateway, by IP.
    assert ping(p1, e2.ip_address)
    assert ping(p2, e1.ip_address)
    assert ping(p1, str(env.gateway))

    # Outbound NAT and forward rules exist, in our own chains.
    rules = Firewall(True).bridge_lines(env.bridge)
    c = chain_names(env.bridge)
    assert f"nat: -A {c['post']} -s {env.subnet} ! -o {env.bridge} -j MASQUERADE" in rules
    assert any(r.startswith("nat: -A POSTROUTING") and r.endswith(f"-j {c['post']}") for r in rules)
    assert any(r.startswith("filter: -A FORWARD") and r.endswith(f"-j {c['fwd']}") for r in rules)
    assert Firewall.ip_forward() == "1"

    # Docker's JSON.
    doc = e1.to_docker("bridge")
    assert doc["IPAddress"] == e1.ip_address and doc["IPPrefixLen"] == 24
    assert doc["Gateway"] == str(env.gateway) and doc["MacAddress"] == e1.mac_address
    assert doc["NetworkID"] == svc.resolve("bridge").id and len(doc["EndpointID"]) == 64
    net = svc.inspect_network("bridge")
    assert net["Driver"] == "bridge" and net["Scope"] == "local"
    assert net["IPAM"]["Config"] == [{"Subnet": str(env.subnet), "Gateway": str(env.gateway)}]
    assert net["Options"]["com.docker.network.bridge.name"] == env.bridge
    assert net["Containers"][c1] == {
        "Name": f"n{c1[:4]}", "EndpointID": e1.endpoint_id, "MacAddress": e1.mac_address,
        "IPv4Address": f"{e1.ip_address}/24", "IPv6Address": "",
    }
    settings = svc.network_settings(c1)
    assert settings["IPAddress"] == e1.ip_address and settings["SandboxKey"] == p1
    assert set(settings["Networks"]) == {"bridge"}

    # Disconnect: veth gone, address released, idempotent.
    run(svc.disconnect(c1, "bridge"))
    assert not links.link_exists(e1.host_veth)
    assert e1.ip_address not in svc.ipam.allocated(svc.resolve("bridge").id)
    assert svc.endpoints(c1) == []
    run(svc.disconnect(c1, "bridge"))
    run(svc.release_sandbox(c1))
    run(svc.release_sandbox(c1))
    assert not Path(p1).exists()
    assert not ping(p2, e1.ip_address)

    run(svc.release_sandbox(c2))
    run(svc.shutdown(keep=False))
    assert not links.link_exists(env.bridge)
    assert_host_restored(before_ipt, before_links, env.bridge, env.created_links)
    assert Firewall.ip_forward() == before_forward == "0"


def test_connect_failure_rolls_back_and_crashed_sandbox_is_adopted(env):
    run(env.svc.start())
    net_id = env.svc.resolve("bridge").id
    c = cid()
    bogus = str(env.config.exec_root / "no-such-netns")
    with pytest.raises(Exception):
        run(env.svc.connect(c, "bridge", bogus))
    assert env.svc.endpoints(c) == [] and env.svc.ipam.allocated(net_id) == {}
    assert links.bridge_ports(env.bridge) == []

    # A sandbox left by a crash, holding an eth0 no endpoint row knows about.
    path = run(env.svc.create_sandbox(c, "bridge"))

    def stale_eth0():
        with IPRoute() as ipr:
            ipr.link("add", ifname="eth0", kind="veth", peer={"ifname": "stale0"})

    env.svc.netns.run_in(path, stale_eth0)
    assert run(env.svc.create_sandbox(c, "bridge")) == path
    ep = run(env.svc.connect(c, "bridge", path))
    env.created_links.add(ep.host_veth)
    assert ep.ifname == "eth0" and ping(path, str(env.gateway))
    run(env.svc.release_sandbox(c))
    assert env.svc.ipam.allocated(net_id) == {}
    assert not links.link_exists(ep.host_veth)


def test_endpoints_survive_restart_and_start_is_idempotent(env):
    c1 = cid()

    async def first():
        await env.svc.start()
        p = await env.svc.create_sandbox(c1, "bridge")
        return p, await env.svc.connect(c1, "bridge", p)

    p1, e1 = run(first())
    env.created_links.add(e1.host_veth)
    rules_before = sorted(Firewall(True).bridge_lines(env.bridge))

    # The engine "crashes" and starts again on the same state with bridge and rules in place.
    svc2 = env.new_service()
    run(svc2.start())
    run(svc2.start())
    assert sorted(Firewall(True).bridge_lines(env.bridge)) == rules_before
    [again] = svc2.endpoints(c1)
    assert (again.endpoint_id, again.ip_address, again.mac_address, again.host_veth) == (
        e1.endpoint_id, e1.ip_address, e1.mac_address, e1.host_veth,
    )
    assert ping(p1, str(env.gateway))
    # Connecting twice is refused, not duplicated.
    with pytest.raises(Forbidden):
        run(svc2.connect(c1, "bridge", p1))
    # A live-restore shutdown keeps what the running container needs.
    run(svc2.shutdown(keep=True))
    assert links.link_exists(env.bridge) and links.link_exists(e1.host_veth)
    assert Firewall(True).bridge_lines(env.bridge)
    env.svc = svc2


def test_repair_collects_leftovers_of_vanished_containers(env):
    live, gone = cid(), cid()

    async def setup():
        await env.svc.start()
        out = {}
        for c in (live, gone):
            p = await env.svc.create_sandbox(c, "bridge")
            out[c] = (p, await env.svc.connect(c, "bridge", p))
        # A sandbox without an endpoint (crash between create_sandbox and connect).
        out["orphan"] = (await env.svc.create_sandbox("orphan" + cid()[:8], "none"), None)
        return out

    made = run(setup())
    env.created_links |= {made[c][1].host_veth for c in (live, gone)}
    # A veth on our bridge that no endpoint row knows (crash before the row was written).
    stray = "veth" + secrets.token_hex(4)[:7]
    env.created_links.add(stray)
    with IPRoute() as ipr:
        ipr.link("add", ifname=stray, kind="veth", peer={"ifname": stray + "p"})
        ipr.link("set", index=ipr.link_lookup(ifname=stray)[0],
                 master=ipr.link_lookup(ifname=env.bridge)[0])

    run(env.new_service().repair({live}))

    net_id = env.svc.resolve("bridge").id
    assert not links.link_exists(made[gone][1].host_veth)
    assert not links.link_exists(stray)
    assert not Path(made[gone][0]).exists()
    assert not Path(made["orphan"][0]).exists()
    assert made[gone][1].ip_address not in env.svc.ipam.allocated(net_id)
    # The live container is untouched.
    assert links.link_exists(made[live][1].host_veth)
    assert ping(made[live][0], str(env.gateway))
    assert [e.endpoint_id for e in env.svc.endpoints(live)] == [made[live][1].endpoint_id]


def test_none_host_and_unknown_modes(env):
    run(env.svc.start())
    c = cid()
    path = run(env.svc.create_sandbox(c, "none"))
    assert path is not None
    out = json.loads(ns_exec(path, "ip", "-j", "link").stdout)
    assert [(l["ifname"], "UP" in l["flags"]) for l in out] == [("lo", True)]
    ep = run(env.svc.connect(c, "none", path))
    assert ep.ip_address == "" and ep.to_docker("none")["NetworkID"] == env.svc.resolve("none").id
    assert c in env.svc.inspect_network("none")["Containers"]

    h = cid()
    assert run(env.svc.create_sandbox(h, "host")) is None
    run(env.svc.connect(h, "host", None))
    assert env.svc.inspect_network("host")["Driver"] == "host"
    assert env.svc.inspect_network("none")["Driver"] == "null"

    with pytest.raises(NotFound, match="network nosuchnet not found"):
        run(env.svc.create_sandbox(cid(), "nosuchnet"))
    names = sorted(n["Name"] for n in env.svc.list_networks())
    assert names == ["bridge", "host", "none"]

    run(env.svc.release_sandbox(c))
    run(env.svc.release_sandbox(h))
    assert not Path(path).exists()
    assert env.svc.inspect_network("none")["Containers"] == {}


def test_user_defined_network(env):
    before_ipt, before_links = iptables_snapshot(), links_snapshot()
    run(env.svc.start())
    ubr = env.bridge + "u"
    env.created_links.add(ubr)
    usub = f"10.213.{SESSION_OCTET + 1}.0/24"
    net = run(env.svc.create_network(
        "dyt-net", ipam={"Config": [{"Subnet": usub}]},
        options={"com.docker.network.bridge.name": ubr}, labels={"a": "b"},
    ))
    assert net.gateway == IPv4Address(f"10.213.{SESSION_OCTET + 1}.1")
    with pytest.raises(Conflict):
        run(env.svc.create_network("dyt-net", options={"com.docker.network.bridge.name": ubr + "x"}))
    with pytest.raises(Forbidden):
        run(env.svc.create_network("other", ipam={"Config": [{"Subnet": usub}]}))
    with pytest.raises(Forbidden):
        run(env.svc.remove_network("bridge"))

    c = cid()

    async def attach():
        p = await env.svc.create_sandbox(c, "dyt-net")
        return p, await env.svc.connect(c, "dyt-net", p, aliases=["web"], name="/box")

    p, ep = run(attach())
    env.created_links.add(ep.host_veth)
    assert IPv4Address(ep.ip_address) in IPv4Network(usub)
    # dockerd's order: name, aliases, short id
    assert ep.to_docker("dyt-net")["DNSNames"] == ["box", "web", c[:12]]
    assert ping(p, str(net.gateway))
    # The default bridge's subnet is another network: no route to it from here.
    assert any(r.startswith("nat: -A DY-POST-") for r in Firewall(True).bridge_lines(ubr))
    listed = env.svc.list_networks()
    assert {n["Name"] for n in listed} == {"bridge", "host", "none", "dyt-net"}
    from dockyard.engine.filters import Filters
    assert [n["Name"] for n in env.svc.list_networks(Filters({"type": ["custom"]}))] == ["dyt-net"]
    assert [n["Name"] for n in env.svc.list_networks(Filters({"label": ["a=b"]}))] == ["dyt-net"]

    with pytest.raises(Forbidden, match="active endpoints"):
        run(env.svc.remove_network("dyt-net"))
    run(env.svc.release_sandbox(c))
    assert run(env.svc.prune_networks()) == ["dyt-net"]
    assert not links.link_exists(ubr)
    assert Firewall(True).bridge_lines(ubr) == []
    with pytest.raises(NotFound):
        env.svc.inspect_network("dyt-net")
    run(env.svc.shutdown(keep=False))
    assert_host_restored(before_ipt, before_links, env.bridge, env.created_links)


def test_changed_bridge_name_after_crash_removes_the_old_bridge(env):
    run(env.svc.start())  # then "crash": no shutdown
    old = env.bridge
    assert links.link_exists(old) and Firewall(True).bridge_lines(old)
    env.bridge = "dyt" + secrets.token_hex(4)
    env.created_links.add(env.bridge)
    env.config.bridge = env.bridge
    svc = env.new_service()
    env.svc = svc
    run(svc.start())
    assert not links.link_exists(old) and Firewall(True).bridge_lines(old) == []
    assert links.link_exists(env.bridge)
    assert svc.inspect_network("bridge")["Options"]["com.docker.network.bridge.name"] == env.bridge
