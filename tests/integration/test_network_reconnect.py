"""Disconnecting a container from the network of its NetworkMode (docker-compose does it to every
container it creates), and from `none`, as dockerd allows: through the docker CLI."""

from __future__ import annotations

import json

import pytest

from engine_harness import uniq  # noqa: E402
from test_network_connect import addrs, inspect, net  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("cleanup_containers")

BUSYBOX = "busybox:latest"


def test_created_container_leaves_and_rejoins_its_network_mode_network(engine, net):
    n1 = net()
    name = uniq("cmp")
    cid = engine.cli_ok("create", "--name", name, "--network", n1, "--network-alias", "first",
                        BUSYBOX, "sleep", "120").strip()
    def listed(net: str) -> bool:
        return cid in engine.cli_ok("ps", "-aq", "--no-trunc", "--filter", f"network={net}").split()

    net_id = json.loads(engine.cli_ok("network", "inspect", n1))[0]["Id"]
    assert listed(n1) and listed(net_id)
    engine.cli_ok("network", "disconnect", n1, name)
    assert inspect(engine, cid)["NetworkSettings"]["Networks"] == {}
    assert not listed(n1)
    assert inspect(engine, cid)["HostConfig"]["NetworkMode"] == n1  # unchanged, as dockerd
    r = engine.cli("network", "disconnect", n1, name)
    assert r.returncode != 0 and f"is not connected to network {n1}" in r.stderr.decode()
    # connected again with other aliases: those are the ones the container gets
    engine.cli_ok("network", "connect", "--alias", "second", n1, name)
    nets = inspect(engine, cid)["NetworkSettings"]["Networks"]
    assert list(nets) == [n1] and nets[n1]["Aliases"] == ["second"]
    assert listed(n1)
    engine.cli_ok("start", name)
    assert list(addrs(engine, cid)) == ["eth0"]
    assert listed(n1) and listed(net_id) and not listed("bridge")
    ip = inspect(engine, cid)["NetworkSettings"]["Networks"][n1]["IPAddress"]
    out = engine.cli_ok("run", "--rm", "--network", n1, BUSYBOX, "nslookup", "second", "127.0.0.11")
    assert ip and ip in out
    r = engine.cli("run", "--rm", "--network", n1, BUSYBOX, "nslookup", "first", "127.0.0.11")
    assert ip not in r.stdout.decode()


def test_disconnected_from_every_network_start_rejoins_network_mode(engine, net):
    n1 = net()
    cid = engine.cli_ok("create", "--network", n1, BUSYBOX, "sleep", "120").strip()
    engine.cli_ok("network", "disconnect", n1, cid)
    engine.cli_ok("start", cid)
    assert list(inspect(engine, cid)["NetworkSettings"]["Networks"]) == [n1]
    assert list(addrs(engine, cid)) == ["eth0"]


def test_stopped_container_disconnected_from_its_mode_network_stays_off_it(engine, net):
    n1, n2 = net(), net()
    cid = engine.cli_ok("run", "-d", "--network", n1, BUSYBOX, "sleep", "120").strip()
    engine.cli_ok("network", "connect", n2, cid)
    engine.cli_ok("stop", "-t", "1", cid)
    engine.cli_ok("network", "disconnect", n1, cid)
    assert list(inspect(engine, cid)["NetworkSettings"]["Networks"]) == [n2]
    engine.cli_ok("start", cid)
    assert list(inspect(engine, cid)["NetworkSettings"]["Networks"]) == [n2]
    assert len(addrs(engine, cid)) == 1


def test_none_then_a_network_once_none_is_disconnected(engine, net):
    n1 = net()
    name = uniq("solo")
    cid = engine.cli_ok("run", "-d", "--name", name, "--network", "none", BUSYBOX, "sleep", "120").strip()
    r = engine.cli("network", "connect", n1, name)
    assert r.returncode != 0
    assert ("container cannot be connected to multiple networks with one of the networks in private (none) mode"
            in r.stderr.decode())
    engine.cli_ok("network", "disconnect", "none", name)
    assert inspect(engine, cid)["NetworkSettings"]["Networks"] == {}
    engine.cli_ok("network", "connect", n1, name)
    assert list(addrs(engine, cid)) == ["eth0"]
    assert list(inspect(engine, cid)["NetworkSettings"]["Networks"]) == [n1]
    # and a created container alike, at its start
    c2 = engine.cli_ok("create", "--network", "none", BUSYBOX, "sleep", "120").strip()
    engine.cli_ok("network", "disconnect", "none", c2)
    engine.cli_ok("network", "connect", n1, c2)
    engine.cli_ok("start", c2)
    assert list(addrs(engine, c2)) == ["eth0"]
    # connecting `none` to a container on a network is refused the same way
    r = engine.cli("network", "connect", "none", c2)
    assert r.returncode != 0 and "private (none) mode" in r.stderr.decode()
