"""Which networks a container joins at start (engine/containers/netplan.py)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from dockyard.engine.containers.model import Container
from dockyard.engine.containers.netplan import is_planned, network_refs, planned_networks
from dockyard.errors import NotFound


@dataclass
class Net:
    id: str
    name: str


class Networks:
    """Name or id -> network, as NetworkService.resolve / same_network answer."""

    def __init__(self, *names: str) -> None:
        self.nets = {n: Net(f"id-{n}", n) for n in names}

    def resolve(self, ref: str) -> Net:
        for n in self.nets.values():
            if ref in (n.name, n.id):
                return n
        raise NotFound(f"network {ref} not found")

    def same_network(self, ref: str, network_id: str) -> bool:
        try:
            return self.resolve("bridge" if ref == "default" else ref).id == network_id
        except NotFound:
            return False


def ctr(mode: str, cfgs: dict | None = None, detached: bool = False) -> Container:
    return Container(id="c" * 64, name="c", created="", image_id="", image_ref="", path="sh", args=[],
                     config={}, host_config={}, networking_config={"EndpointsConfig": cfgs or {}},
                     network_mode=mode, primary_detached=detached)


NETS = Networks("bridge", "none", "host", "front", "back", "gone-later")


def names(plan) -> list[str]:
    return [n.name for n, _ in plan]


def test_network_mode_first_then_endpoints_config_once_each():
    c = ctr("front", {"id-front": {"Aliases": ["a"]}, "back": {"Aliases": ["b"]}})
    plan = planned_networks(NETS, c)
    assert names(plan) == ["front", "back"]
    assert plan[0][1] == {"Aliases": ["a"]}  # the mode's settings, found under its id


def test_detached_from_the_mode_network():
    c = ctr("front", {"back": {}}, detached=True)
    assert names(planned_networks(NETS, c)) == ["back"]
    assert not is_planned(NETS, c, "id-front")
    # with nothing left, start joins the mode's network again (dockerd); "connected now" is empty
    c = ctr("front", {}, detached=True)
    assert names(planned_networks(NETS, c)) == ["front"]
    assert planned_networks(NETS, c, fallback=False) == []


@pytest.mark.parametrize("mode", ["none", "host"])
def test_private_modes_join_nothing_else(mode):
    assert names(planned_networks(NETS, ctr(mode, {"back": {}}))) == [mode]


def test_none_left_for_a_network():
    c = ctr("none", {"front": {}}, detached=True)
    assert names(planned_networks(NETS, c)) == ["front"]


def test_removed_networks_and_shared_namespaces():
    assert names(planned_networks(NETS, ctr("bridge", {"no-such": {}}))) == ["bridge"]
    assert planned_networks(NETS, ctr("container:" + "a" * 64)) == []


def test_network_refs_for_the_ps_filter():
    c = ctr("front", {"back": {}})
    assert network_refs(NETS, c) == {"front", "id-front", "back", "id-back"}
    c.state.status, c.sandbox_path = "running", "/run/netns/x"
    c.networks = {"back": {"NetworkID": "id-back"}}  # what it is on now, not the plan
    assert network_refs(NETS, c) == {"back", "id-back"}
