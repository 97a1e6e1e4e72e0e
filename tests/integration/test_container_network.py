"""Networking as containers see it: default bridge, none, host; NAT; cleanup of the host."""

from __future__ import annotations

import ipaddress
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
    host_links = subprocess.run(["ls", "/sys/class/net"], capture_output=True, text=True).stdout.split()
    out = client.containers.run("busybox", ["ls", "/sys/class/net"], network_mode="host", remove=True)
    assert sorted(out.decode().split()) == sorted(host_links)
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
    """A private engine: run containers, stop everything, compare links and iptables with before."""
    from engine_harness import EngineProcess

    def snapshot() -> tuple[str, str, str]:
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        links = "\n".join(sorted(l.split(":")[1].strip().split("@")[0] for l in links.splitlines()))
        nat = subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True).stdout
        flt = subprocess.run(["iptables-save", "-t", "filter"], capture_output=True, text=True).stdout
        strip = lambda s: "\n".join(l for l in s.splitlines() if not l.startswith("#") and not l.startswith(":") or l.startswith(":DOCKYARD"))
        return links, strip(nat), strip(flt)

    before = snapshot()
    eng = EngineProcess()
    try:
        eng.start()
        import tempfile, pathlib
        from dockyard.testing.busybox import make_busybox_rootfs_tar
        with tempfile.TemporaryDirectory() as td:
            tar = make_busybox_rootfs_tar(pathlib.Path(td) / "r.tar")
            assert eng.cli("import", str(tar), "busybox").returncode == 0
        cli = eng.client()
        for _ in range(3):
            cli.containers.run("busybox", "sleep 30", detach=True)
        # a published port (DNAT chain, reservation) and a user-defined network (its own
        # bridge and chains, an embedded DNS listener) must go as well
        web = cli.containers.run("busybox", "sleep 30", detach=True, ports={"80/tcp": None, "81/udp": None})
        hostport = cli.api.inspect_container(web.id)["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"]
        cli.networks.create("dyt-left-" + eng.bridge)
        cli.containers.run("busybox", "sleep 30", detach=True, network="dyt-left-" + eng.bridge)
        assert snapshot() != before
        assert f"--dport {hostport} -j DNAT" in snapshot()[1]
        for c in cli.containers.list(all=True):
            c.remove(force=True)
        assert eng.stop() == 0
        assert eng.all_mounts() == []
        assert snapshot() == before
    finally:
        eng.cleanup()
