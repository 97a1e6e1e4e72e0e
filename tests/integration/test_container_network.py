"""Networking as containers see it: default bridge, none, host; NAT; cleanup of the host."""

from __future__ import annotations

import ipaddress
import os
import secrets
import subprocess

import pytest

pytestmark = pytest.mark.usefixtures("cleanup_containers")


def test_bridge_address_route_and_settings(engine, client):
    c = client.containers.run("busybox", "sleep 30", detach=True)
    ns = client.api.inspect_container(c.id)["NetworkSettings"]
    ep = ns["Networks"]["bridge"]
    net = ipaddress.ip_interface(engine.bip).network
    assert ipaddress.ip_address(ep["IPAddress"]) in net
    assert ep["Gateway"] == engine.bip.split("/")[0]
    assert ep["IPPrefixLen"] == net.prefixlen
    assert ep["MacAddress"] and ep["NetworkID"] and ep["EndpointID"]
    assert ns["IPAddress"] == ep["IPAddress"] and ns["SandboxKey"]
    r = engine.cli("run", "--rm", "busybox", "sh", "-c", "ip -4 route; ip -4 -o addr show eth0")
    text = r.stdout.decode()
    assert f"default via {ep['Gateway']}" in text
    assert "eth0" in text


def test_container_to_container_by_ip(engine, client):
    server = client.containers.run("busybox", ["sh", "-c", "echo pong | nc -l -p 7777"], detach=True)
    ip = client.api.inspect_container(server.id)["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    out = client.containers.run("busybox", ["sh", "-c", f"sleep 0.3; nc {ip} 7777 </dev/null"],
                                remove=True)
    assert out == b"pong\n"
    target = client.containers.run("busybox", "sleep 30", detach=True)
    tip = client.api.inspect_container(target.id)["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    ping = client.containers.run("busybox", ["ping", "-c", "1", "-W", "2", tip], remove=True)
    assert b"1 packets received" in ping


def test_outbound_nat_rule_for_subnet(engine, client):
    client.containers.run("busybox", "sleep 30", detach=True)
    rules = subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True).stdout
    subnet = str(ipaddress.ip_interface(engine.bip).network)
    assert any("MASQUERADE" in l and subnet in l for l in rules.splitlines()), rules


def test_address_released_on_stop_and_reused(engine, client):
    c = client.containers.run("busybox", "sleep 30", detach=True)
    ip = client.api.inspect_container(c.id)["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    veths_before = subprocess.run(["ip", "-o", "link", "show", "master", engine.bridge],
                                  capture_output=True, text=True).stdout
    assert veths_before.strip()
    c.stop(timeout=1)
    ns = client.api.inspect_container(c.id)["NetworkSettings"]
    assert ns["IPAddress"] == "" and ns["SandboxKey"] == ""
    assert ns["Networks"]["bridge"]["IPAddress"] == ""
    veths_after = subprocess.run(["ip", "-o", "link", "show", "master", engine.bridge],
                                 capture_output=True, text=True).stdout
    assert len(veths_after.splitlines()) == len(veths_before.splitlines()) - 1
    listed = client.networks.get("bridge").attrs["Containers"] or {}
    assert c.id not in listed
    assert ip not in [v["IPv4Address"].split("/")[0] for v in listed.values()]
    c.start()  # gets an address again
    assert client.api.inspect_container(c.id)["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]


def test_network_none_and_host(engine, client):
    out = client.containers.run("busybox", ["sh", "-c", "ls /sys/class/net | sort | tr '\\n' ' '"],
                                network_mode="none", remove=True)
    assert out.decode().split() == ["lo"]
    before = set(os.listdir("/sys/class/net"))
    out = client.containers.run("busybox", ["sh", "-c", "readlink /proc/self/ns/net; ls /sys/class/net"],
                                network_mode="host", remove=True).decode().split()
    after = set(os.listdir("/sys/class/net"))
    # the host's own network namespace (the engine's is the host's: engine_harness)...
    assert out[0] == os.readlink("/proc/self/ns/net")
    # ...and so its links, while other engines and tests on the host add and remove theirs: all
    # that stayed is seen, and nothing that was never on the host but links of the kinds they
    # make (veths, dy* bridges and parents) made and gone in between
    seen = set(out[1:])
    assert before & after <= seen, sorted((before & after) - seen)
    assert all(n in before | after or n.startswith(("veth", "dy")) for n in seen), sorted(seen - before - after)
    c = client.containers.run("busybox", "sleep 30", network_mode="none", detach=True)
    nets = client.api.inspect_container(c.id)["NetworkSettings"]["Networks"]
    assert list(nets) == ["none"]


def test_network_list_and_inspect(engine, client):
    names = {n.name for n in client.networks.list()}
    assert {"bridge", "host", "none"} <= names
    br = client.networks.get("bridge")
    assert br.attrs["Driver"] == "bridge"
    assert br.attrs["IPAM"]["Config"][0]["Subnet"] == str(ipaddress.ip_interface(engine.bip).network)
    assert br.attrs["Options"]["com.docker.network.bridge.name"] == engine.bridge


def test_unknown_network_is_404(client):
    import docker.errors
    with pytest.raises(docker.errors.NotFound):
        client.containers.create("busybox", "true", network="nosuchnet")


def test_host_left_as_it_was_after_engine_stops():
    """A private engine: run containers on every kind of network, stop everything, compare
    links, iptables and ip6tables rules, nf_tables tables and the sysctls it changed with before.

    The engine runs in a network namespace of its own, so all of these are its own doing and
    are compared whole: other engines on the host (CI shares its cores) cannot disturb them.
    """
    from engine_harness import EngineProcess

    eng = EngineProcess(extra_args=["--ipv6", "--fixed-cidr-v6", "fd5e:%x::/64" % secrets.randbelow(65536)],
                        own_netns=True)

    def sh(*cmd: str) -> str:
        return subprocess.run(eng.in_netns(*cmd), capture_output=True, text=True, check=True).stdout

    def snapshot() -> tuple[str, ...]:
        links = "\n".join(sorted(l.split(":")[1].strip().split("@")[0] for l in sh("ip", "-o", "link").splitlines()))
        strip = lambda s: "\n".join(l for l in s.splitlines() if not l.startswith("#") and not l.startswith(":") or l.startswith(":DOCKYARD"))
        rules = [strip(sh(tool, "-t", t)) for tool in ("iptables-save", "ip6tables-save") for t in ("nat", "filter")]
        tables = sh("nft", "list", "tables")
        sysctls = [sh("cat", p) for p in ("/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding")]
        return (links, *rules, tables, *sysctls)

    parent = "dyhp" + secrets.token_hex(3)
    try:
        sh("ip", "link", "set", "lo", "up")  # as on any host
        sh("sysctl", "-qw", "net.ipv4.ip_forward=0", "net.ipv6.conf.all.forwarding=0")  # so turning them on shows
        before = snapshot()
        eng.start()
        import tempfile, pathlib
        from dockyard.testing.busybox import make_busybox_rootfs_tar
        with tempfile.TemporaryDirectory() as td:
            tar = make_busybox_rootfs_tar(pathlib.Path(td) / "r.tar")
            assert eng.cli("import", str(tar), "busybox").returncode == 0
        cli = eng.client()
        for _ in range(3):
            cli.containers.run("busybox", "sleep 30", detach=True)
        # a published port (DNAT chain, reservation, [::1] listener), user-defined networks (their own
        # bridges and chains, an embedded DNS listener), IPv6 (ip6tables), internal and macvlan networks
        web = cli.containers.run("busybox", "sleep 30", detach=True, ports={"80/tcp": None, "81/udp": None})
        hostport = cli.api.inspect_container(web.id)["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"]
        cli.networks.create("dyt-left-" + eng.bridge)
        cli.containers.run("busybox", "sleep 30", detach=True, network="dyt-left-" + eng.bridge)
        eng.cli_ok("network", "create", "--ipv6", "--subnet", "fd5f:%x::/64" % secrets.randbelow(65536), "v6net")
        eng.cli_ok("network", "create", "--internal", "inner")
        eng.cli_ok("run", "-d", "--network", "v6net", "-p", "8080", "busybox", "sleep", "30")
        eng.cli_ok("run", "-d", "--network", "inner", "busybox", "sleep", "30")
        sh("ip", "link", "add", parent, "type", "veth", "peer", "name", parent + "p")
        eng.cli_ok("network", "create", "-d", "macvlan", "-o", f"parent={parent}", "--subnet", "10.251.%d.0/24"
                   % secrets.randbelow(256), "mv")
        eng.cli_ok("run", "-d", "--network", "mv", "busybox", "sleep", "30")
        assert "veth" in sh("ip", "-o", "link", "show", "master", eng.bridge)
        during = snapshot()
        assert during != before
        assert f"--dport {hostport} -j DNAT" in during[1]
        assert "MASQUERADE" in during[3] and during[-1].strip() == "1" and during[-2].strip() == "1"
        for c in cli.containers.list(all=True):
            c.remove(force=True)
        assert eng.stop() == 0
        assert eng.all_mounts() == []
        sh("ip", "link", "del", parent)
        after = snapshot()
        assert after == before, [i for i, (a, b) in enumerate(zip(after, before)) if a != b]
    finally:
        eng.cleanup()
