"""`docker ps` filters over container records: pure, so every filter is unit-testable."""

from __future__ import annotations

import re
from typing import Callable, Iterable

from ...errors import InvalidParameter
from ..filters import Filters
from .model import Container

FILTERS = {"id", "name", "label", "status", "exited", "ancestor", "before", "since", "network",
           "health", "is-task", "volume", "publish", "expose"}
STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")
HEALTH = ("starting", "healthy", "unhealthy", "none")
_UP = ("running", "paused", "restarting")  # listed without `all`


def select(ctrs: Iterable[Container], f: Filters, *, all: bool, limit: int,
           get: Callable[[str], Container], image_id: Callable[[str], str | None],
           networks_of: Callable[[Container], set[str]] = lambda c: set(c.networks)) -> list[Container]:
    """Containers newest first, as `GET /containers/json` lists them.

    `networks_of`: the names and IDs of the networks a container is on (or will join)."""
    f.validate(FILTERS)
    for s in f.get("status"):
        if s not in STATUSES:
            raise InvalidParameter(f"invalid filter 'status={s}'")
    for h in f.get("health"):
        if h not in HEALTH:
            raise InvalidParameter(f"Unrecognised filter value for health: {h}")
    for code in f.get("exited"):
        if not code.lstrip("-").isdigit():
            raise InvalidParameter(f"invalid filter 'exited={code}'")
    publish = {_port_key(p) for p in f.get("publish")}
    expose = {_port_key(p) for p in f.get("expose")}
    # Docker shows stopped containers whenever a filter or limit asks about them
    only_running = not all and limit <= 0 and not any(f.get(k) for k in ("status", "before", "since", "exited"))
    before = get(f.get("before")[0]).created if f.get("before") else None
    since = get(f.get("since")[0]).created if f.get("since") else None
    ancestors = {image_id(a) for a in f.get("ancestor")} - {None}
    task = f.bool_value("is-task")
    ordered = sorted(ctrs, key=_created, reverse=True)
    if not f.values:  # plain `docker ps [-a]`: nothing to test per container
        out = [c for c in ordered if not only_running or c.state.status in _UP]
        return out[:limit] if limit and limit > 0 else out
    out = []
    for c in ordered:
        if only_running and c.state.status not in _UP:
            continue
        if f.get("id") and not any(c.id.startswith(v) for v in f.get("id")):
            continue
        if f.get("name") and not any(name_matches(v, c.name) for v in f.get("name")):
            continue
        if f.get("status") and c.state.status not in f.get("status"):
            continue
        if f.get("exited") and (c.state.status != "exited" or str(c.state.exit_code) not in f.get("exited")):
            continue
        if not f.match_labels(c.config.get("Labels")):
            continue
        if f.get("ancestor") and c.image_id not in ancestors:
            continue
        if before is not None and c.created >= before:
            continue
        if since is not None and c.created <= since:
            continue
        if f.get("network") and not set(f.get("network")) & networks_of(c):
            continue
        if f.get("volume") and not any(v in c.volumes.values() or v in c.volumes or v in _bind_sources(c)
                                       for v in f.get("volume")):
            continue
        if publish and not publish & {_port_key(p) for p in (c.host_config.get("PortBindings") or {})}:
            continue
        if expose and not expose & {_port_key(p) for p in (c.config.get("ExposedPorts") or {})}:
            continue
        if f.get("health") and c.state.health_status not in f.get("health"):
            continue
        if task is True:
            continue  # no swarm tasks here
        out.append(c)
    return out[:limit] if limit and limit > 0 else out


def _created(c: Container) -> str:
    return c.created


def name_matches(pattern: str, name: str) -> bool:
    """Docker matches names as a regular expression (a plain substring when it is not one)."""
    try:
        return re.search(pattern.lstrip("/"), name) is not None
    except re.error:
        return pattern.lstrip("/") in name


def _port_key(spec: str) -> str:
    port, _, proto = spec.partition("/")
    if not port.isdigit():
        raise InvalidParameter(f"invalid port filter: {spec!r}")
    return f"{int(port)}/{proto or 'tcp'}"


def _bind_sources(c: Container) -> set[str]:
    out = set()
    for b in c.host_config.get("Binds") or []:
        parts = b.split(":")
        out.update(parts[:2])
    for m in c.host_config.get("Mounts") or []:
        out.update(x for x in (m.get("Source"), m.get("Target")) if x)
    return out
