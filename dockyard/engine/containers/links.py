"""Legacy container links (`--link name:alias`) on the default bridge, as dockerd has them.

At create a link names a container (the child) and an alias; it is kept by the child's ID so
a rename does not break it. At start, for a parent on the default bridge, each running child
gives the parent an /etc/hosts line ("IP alias hostname [name]") and the environment
variables of moby's daemon/links (ALIAS_PORT…, ALIAS_NAME=/parent/alias, ALIAS_ENV_…).
Inspect shows HostConfig.Links as "/child:/parent/alias". On user-defined networks dockerd
ignores HostConfig.Links: the endpoint's Links are aliases of its embedded DNS instead.
"""

from __future__ import annotations

from typing import Any, Callable

from ...errors import Conflict, InvalidParameter, NotFound
from .model import Container

HOST_NET_LINKS = ("conflicting options: host type networking can't be used with links. "
                  "This would result in undefined behavior")
CONTAINER_NET_LINKS = ("conflicting options: container type network can't be used with links. "
                       "This would result in undefined behavior")


def parse_link(spec: str) -> tuple[str, str]:
    """moby's opts.ParseLink: "name[:alias]" -> (name, alias)."""
    if not isinstance(spec, str) or not spec:
        raise InvalidParameter("empty string specified for links")
    parts = spec.split(":")
    if len(parts) > 2:
        raise InvalidParameter(f"bad format for links: {spec}")
    name = parts[0].lstrip("/")
    alias = parts[1] if len(parts) == 2 else name
    return name, alias.lstrip("/")


def register(host_config: dict[str, Any], network_mode: str, user_defined: bool,
             get: Callable[[str], Container]) -> list[dict[str, str]]:
    """HostConfig.Links -> [{"id": child ID, "alias": alias}] for the default bridge."""
    specs = host_config.get("Links") or []
    if not specs:
        return []
    if network_mode == "host":
        raise InvalidParameter(HOST_NET_LINKS)
    if network_mode.startswith("container:"):
        raise InvalidParameter(CONTAINER_NET_LINKS)
    if user_defined:
        return []  # dockerd: legacy links do not apply on user-defined networks
    out: list[dict[str, str]] = []
    for spec in specs:
        name, alias = parse_link(spec)
        try:
            child = get(name)
            while child.network_mode.startswith("container:"):  # link to whom owns the network
                child = get(child.network_mode.split(":", 1)[1])
        except NotFound as exc:
            raise InvalidParameter(f"could not get container for {name}: {exc.message}") from None
        if child.network_mode == "host":
            raise InvalidParameter(HOST_NET_LINKS)
        out = [link for link in out if link["alias"] != alias]
        out.append({"id": child.id, "alias": alias})
    return out


def inspect_links(c: Container, get: Callable[[str], Container]) -> list[str] | None:
    """HostConfig.Links as dockerd shows them: "/child:/parent/alias"."""
    out = []
    for link in c.links:
        try:
            child = get(link["id"])
        except NotFound:
            continue  # the child is gone: so is the link
        out.append(f"/{child.name}:/{c.name}/{link['alias']}")
    return sorted(out) or None


def active_links(c: Container, get: Callable[[str], Container],
                 bridge_ip: Callable[[Container], str | None]) -> list[tuple[str, Container, str]]:
    """(alias, child, child IP) for a starting parent; dockerd's start errors otherwise."""
    out = []
    for link in c.links:
        try:
            child = get(link["id"])
        except NotFound:
            continue
        if child.state.status not in ("running", "paused"):
            raise Conflict(f"Cannot link to a non running container: /{child.name} AS /{c.name}/{link['alias']}")
        ip = bridge_ip(child)
        if not ip:
            raise InvalidParameter(f"Cannot link to /{child.name}, as it does not belong to the default network")
        out.append((link["alias"], child, ip))
    return out


def hosts_entries(links: list[tuple[str, Container, str]]) -> list[tuple[str, str]]:
    """/etc/hosts lines (names, IP): the alias, the child's hostname, its name if different."""
    out = []
    for alias, child, ip in links:
        names = [alias, child.config.get("Hostname") or child.id[:12]]
        if alias != child.name:
            names.append(child.name)
        out.append((" ".join(names), ip))
    return out


def _port_key(port: str) -> tuple[int, int]:
    number, _, proto = port.partition("/")
    return int(number), 0 if (proto or "tcp").lower() == "tcp" else 1


def link_env(parent_name: str, alias: str, child_ip: str, exposed_ports: dict[str, Any] | None,
             child_env: list[str] | None) -> list[str]:
    """moby's links.Link.ToEnv, variable for variable."""
    name = f"/{parent_name}/{alias}"
    a = alias.upper().replace("-", "_")
    ports = sorted((p if "/" in p else p + "/tcp" for p in (exposed_ports or {})), key=_port_key)
    env: list[str] = []

    def parts(p: str) -> tuple[str, str]:
        number, _, proto = p.partition("/")
        return number, proto

    if ports:
        number, proto = parts(ports[0])
        env.append(f"{a}_PORT={proto}://{child_ip}:{number}")
    i = 0
    while i < len(ports):
        j = _next_contiguous(ports, i)
        if j > i + 1:
            number, proto = parts(ports[i])
            up = proto.upper()
            q_number, q_proto = parts(ports[j])
            env += [f"{a}_PORT_{number}_{up}_START={proto}://{child_ip}:{number}",
                    f"{a}_PORT_{number}_{up}_ADDR={child_ip}",
                    f"{a}_PORT_{number}_{up}_PROTO={proto}",
                    f"{a}_PORT_{number}_{up}_PORT_START={number}",
                    f"{a}_PORT_{number}_{q_proto.upper()}_END={q_proto}://{child_ip}:{q_number}",
                    f"{a}_PORT_{number}_{q_proto.upper()}_PORT_END={q_number}"]
            i = j + 1
            continue
        i += 1
    for p in ports:
        number, proto = parts(p)
        up = proto.upper()
        env += [f"{a}_PORT_{number}_{up}={proto}://{child_ip}:{number}",
                f"{a}_PORT_{number}_{up}_ADDR={child_ip}",
                f"{a}_PORT_{number}_{up}_PORT={number}",
                f"{a}_PORT_{number}_{up}_PROTO={proto}"]
    env.append(f"{a}_NAME={name}")
    for v in child_env or []:
        key, sep, val = v.partition("=")
        if not sep or key in ("HOME", "PATH"):
            continue
        env.append(f"{a}_ENV_{key}={val}")
    return env


def _next_contiguous(ports: list[str], index: int) -> int:
    if index + 1 == len(ports):
        return index
    value = _port_key(ports[index])[0]
    for i in range(index + 1, len(ports)):
        if _port_key(ports[i])[0] > value + 1:
            return i - 1
        value += 1
    return len(ports) - 1


def endpoint_links(c: Container, network_id: str, same_network: Callable[[str, str], bool],
                   get: Callable[[str], Container]) -> list[tuple[str, str]]:
    """EndpointSettings.Links of a container on a network: [(alias, linked container ID)]."""
    out = []
    for key, cfg in (c.networking_config.get("EndpointsConfig") or {}).items():
        if not isinstance(cfg, dict) or not same_network(key, network_id):
            continue
        for spec in cfg.get("Links") or []:
            try:
                name, alias = parse_link(spec)
                out.append((alias, get(name).id))
            except (InvalidParameter, NotFound):
                continue  # a link to a container that is gone resolves nothing
    return out


def running_parents(containers: Any, child_id: str) -> list[Container]:
    return [p for p in containers if p.id != child_id and p.state.status in ("running", "paused")
            and any(link["id"] == child_id for link in p.links)]


def remove_link(name: str, get: Callable[[str], Container]) -> tuple[Container, str]:
    """`DELETE /containers/parent/alias?link=1`: the parent, and the alias to drop."""
    name = "/" + name.lstrip("/")
    parent, _, alias = name.rpartition("/")
    if not parent:
        raise Conflict("Conflict, cannot remove the default link name of the container")
    try:
        c = get(parent.lstrip("/"))
    except NotFound:
        raise NotFound(f"Cannot get parent {parent} for link name {name}") from None
    return c, alias
