"""Networks through the real engine: the docker CLI and docker-py on /networks and `docker run`."""

from __future__ import annotations

import ipaddress
import json
import secrets

import docker
import pytest

from dockyard.network.firewall import Firewall

BUSYBOX = "busybox:latest"
USER_OCTET = secrets.randbelow(200) + 20


def _run(engine, *args: str) -> str:
    r = engine.cli(*args, timeout=60)
    assert r.returncode == 0, r.stderr.decode() + engine.log_tail()
    return r.stdout.decode()


def test_builtin_networks_listed_and_inspected(engine):
    names = _run(engine, "network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}}").split("\n")
    assert {"bridge bridge local", "host host local", "none null local"} <= set(names)
    [net] = json.loads(_run(engine, "network", "inspect", "bridge"))
    subnet = ipaddress.ip_interface(engine.bip).network
    assert net["IPAM"]["Config"] == [{"Subnet": str(subnet), "Gateway": engine.bip.split("/")[0]}]
    assert net["Options"]["com.docker.network.bridge.name"] == engine.bridge
    assert net["Driver"] == "bridge" and len(net["Id"]) == 64


def test_run_on_bridge_gets_address_route_and_nat(engine, cleanup_containers):
    out = _run(engine, "run", "--rm", BUSYBOX, "sh", "-c", "ip -o -4 addr show eth0; ip route")
    subnet = ipaddress.ip_interface(engine.bip).network
    addr = out.split("inet ")[1].split()[0]
    assert ipaddress.ip_interface(addr).network == subnet
    assert f"default via {engine.bip.split('/')[0]} dev eth0" in out
    # Outbound NAT for the subnet, in the engine's own chain.
    assert f"nat: -A DY-POST-{engine.bridge} -s {subnet} ! -o {engine.bridge} -j MASQUERADE" in \
        Firewall(True).bridge_lines(engine.bridge)


def test_container_to_container_by_ip_and_release(engine, client, cleanup_containers):
    server = client.containers.run(BUSYBOX, ["sleep", "60"], detach=True)
    server.reload()
    settings = server.attrs["NetworkSettings"]
    ip = settings["Networks"]["bridge"]["IPAddress"]
    assert ip and settings["Networks"]["bridge"]["Gateway"] == engine.bip.split("/")[0]
    assert settings["Networks"]["bridge"]["IPPrefixLen"] == 24
    net = client.networks.get("bridge")
    assert server.id in net.attrs["Containers"]
    assert net.attrs["Containers"][server.id]["IPv4Address"] == f"{ip}/24"
    assert net.attrs["Containers"][server.id]["Name"] == server.name
    out = _run(engine, "run", "--rm", BUSYBOX, "ping", "-c", "1", "-W", "2", ip)
    assert "1 packets received" in out
    server.remove(force=True)
    assert server.id not in client.networks.get("bridge").attrs["Containers"]


def test_none_and_host_modes(engine, cleanup_containers):
    out = _run(engine, "run", "--rm", "--network", "none", BUSYBOX, "ip", "-o", "link")
    assert [l.split(":")[1].strip() for l in out.strip().splitlines()] == ["lo"]
    out = _run(engine, "run", "--rm", "--network", "host", BUSYBOX, "ip", "-o", "link")
    assert engine.bridge in out  # the host's links, our bridge among them


def test_user_defined_network_lifecycle(engine, client, api):
    bridge = engine.bridge + "n"
    subnet = f"10.213.{USER_OCTET}.0/24"
    name = "dyt-" + secrets.token_hex(3)
    pool = docker.types.IPAMPool(subnet=subnet)
    try:
        net = client.networks.create(
            name, driver="bridge", ipam=docker.types.IPAMConfig(pool_configs=[pool]),
            options={"com.docker.network.bridge.name": bridge}, labels={"t": "1"},
        )
        attrs = api.inspect_network(net.id)
        assert attrs["Name"] == name and attrs["Labels"] == {"t": "1"}
        # dockerd shows the user's own config: no Gateway when none was given
        assert attrs["IPAM"]["Config"] == [{"Subnet": subnet}]
        assert any("MASQUERADE" in l for l in Firewall(True).bridge_lines(bridge))
        with pytest.raises(docker.errors.APIError) as exc:
            client.networks.create(name, driver="bridge")
        assert exc.value.status_code == 409
        ls = _run(engine, "network", "ls", "--filter", "type=custom", "--format", "{{.Name}}").split()
        assert name in ls and "bridge" not in ls
        _run(engine, "network", "rm", name)
        assert Firewall(True).bridge_lines(bridge) == []
        with pytest.raises(docker.errors.NotFound):
            api.inspect_network(net.id)
    finally:
        try:
            api.remove_network(name)
        except docker.errors.APIError:
            pass
        Firewall(True).remove_bridge(bridge)


def test_network_errors(engine, api):
    with pytest.raises(docker.errors.NotFound) as exc:
        api.inspect_network("no-such-network")
    assert "network no-such-network not found" in exc.value.explanation
    with pytest.raises(docker.errors.APIError) as exc:
        api.remove_network("bridge")
    assert exc.value.status_code == 403
    r = api.post(api._url("/networks/create"), data="{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "message" in r.json()
    r = api.post(api._url("/networks/create"), json={"Driver": "bridge"})
    assert r.status_code == 400 and r.json()["message"] == "network name is required"
    r = api.post(api._url("/networks/create"), json={"Name": "x" + secrets.token_hex(3), "Driver": "overlay"})
    assert r.status_code == 404 and "overlay" in r.json()["message"]
    r = api.post(api._url("/networks/create"), json={"Name": "host", "Driver": "host"})
    assert r.status_code == 403
    r = api.get(api._url("/networks"), params={"filters": json.dumps({"bogus": ["x"]})})
    assert r.status_code == 400
    r = api.post(api._url("/networks/bridge/connect"), json={"Container": "no-such-container"})
    assert r.status_code == 404 and "no-such-container" in r.json()["message"]
    assert api.prune_networks()["NetworksDeleted"] in (None, []) or all(
        n not in ("bridge", "host", "none") for n in api.prune_networks()["NetworksDeleted"]
    )


def test_parallel_network_creates_get_distinct_subnets(engine):
    """Choosing a free subnet and recording it must not interleave between requests."""
    import concurrent.futures

    api = engine.api()
    names = [f"parnet{i}" for i in range(6)]
    try:
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            list(pool.map(lambda n: engine.api().create_network(n), names))
        subnets = [api.inspect_network(n)["IPAM"]["Config"][0]["Subnet"] for n in names]
        assert len(set(subnets)) == len(names), subnets
    finally:
        for n in names:
            try:
                api.remove_network(n)
            except Exception:
                pass
