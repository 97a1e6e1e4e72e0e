"""Which networks a container joins at its next start, with which endpoint settings.

Docker keeps one list per container (NetworkSettings.Networks): the network of its
NetworkMode and those given at create or by `network connect`.  `network disconnect`
drops an entry, even the NetworkMode's one (docker-compose disconnects a created
container from its project network and connects it again with aliases); a container
left with no network rejoins its NetworkMode's at start, as dockerd does.
"""

from __future__ import annotations

from typing import Any

from ...errors import DockyardError
from .model import Container


def planned_networks(networks, c: Container, fallback: bool = True) -> list[tuple[Any, dict[str, Any]]]:
    """(Network, endpoint config) pairs, the first one the primary (ports, gateway).

    Empty for containers sharing another's namespace.  Keys of EndpointsConfig that no
    longer name a network (removed since) are skipped.  With `fallback`, a container
    disconnected from everything gets its network mode's network (what start joins);
    without, the list is what the container is connected to now.
    """
    if c.network_mode.startswith("container:"):
        return []
    cfgs = c.networking_config.get("EndpointsConfig") or {}
    out: list[tuple[Any, dict[str, Any]]] = []
    seen: set[str] = set()
    if c.primary_detached:
        keys = list(cfgs)
    elif c.network_mode in ("host", "none"):
        keys = [c.network_mode]  # private modes join nothing else (connect refuses it)
    else:
        keys = [c.network_mode, *cfgs]
    for key in keys:
        try:
            net = networks.resolve("bridge" if key == "default" else key)
        except DockyardError:
            continue
        if net.id in seen:
            continue
        seen.add(net.id)
        cfg = next((v or {} for k, v in cfgs.items() if networks.same_network(k, net.id)), {})
        out.append((net, cfg))
    if not out and fallback:
        out.append((networks.resolve(c.network_mode), {}))
    return out


def is_planned(networks, c: Container, network_id: str) -> bool:
    return any(net.id == network_id for net, _ in planned_networks(networks, c, fallback=False))


def network_refs(networks, c: Container) -> set[str]:
    """Names and IDs of the networks a container is on (running) or will join (otherwise):
    what `docker ps --filter network=` matches, as NetworkSettings.Networks shows them."""
    if c.state.status in ("running", "paused") and c.sandbox_path:
        return set(c.networks) | {ep.get("NetworkID") for ep in c.networks.values() if ep.get("NetworkID")}
    return {ref for net, _ in planned_networks(networks, c, fallback=False) for ref in (net.name, net.id)}
