"""Docker's JSON for containers: inspect, list entries, Status strings."""

from __future__ import annotations

import time
from typing import Any

from ..engine.containers.model import Container, rfc3339_to_unix
from ..engine.containers import links
from ..engine.containers.initlayer import INIT_DIR
from ..errors import DockyardError
from ..network.ports import docker_port_list


def human_duration(seconds: float) -> str:
    """Docker's units.HumanDuration."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    m = s // 60
    if m == 1:
        return "About a minute"
    if m < 60:
        return f"{m} minutes"
    h = round(s / 3600)
    if h == 1:
        return "About an hour"
    if h < 48:
        return f"{h} hours"
    if h < 24 * 7 * 2:
        return f"{h // 24} days"
    if h < 24 * 30 * 2:
        return f"{h // 24 // 7} weeks"
    if h < 24 * 365 * 2:
        return f"{h // 24 // 30} months"
    return f"{h // 24 // 365} years"


def status_text(c: Container) -> str:
    st = c.state
    now = time.time()
    if st.status == "running":
        health = {"starting": " (health: starting)", "healthy": " (healthy)",
                  "unhealthy": " (unhealthy)"}.get(st.health_status, "")
        return "Up " + human_duration(now - rfc3339_to_unix(st.started_at)) + health
    if st.status == "paused":
        return "Up " + human_duration(now - rfc3339_to_unix(st.started_at)) + " (Paused)"
    if st.status == "restarting":
        return f"Restarting ({st.exit_code}) " + human_duration(now - rfc3339_to_unix(st.finished_at)) + " ago"
    if st.status == "removing":
        return "Removal In Progress"
    if st.status == "dead":
        return "Dead"
    if st.status == "exited" or (st.status == "created" and st.finished_at[:4] != "0001"):
        if not c.has_been_started and st.status == "created":
            return "Created"
        return f"Exited ({st.exit_code}) " + human_duration(now - rfc3339_to_unix(st.finished_at)) + " ago"
    return "Created"


def _mounts(engine, c: Container) -> list[dict[str, Any]]:
    out = []
    ro_volumes = set()
    for b in c.host_config.get("Binds") or []:
        parts = b.split(":")
        if len(parts) < 2:
            continue
        src, dst = parts[0], parts[1]
        mode = parts[2] if len(parts) > 2 else ""
        if not src.startswith("/"):
            if "ro" in mode.split(","):
                ro_volumes.add(dst)
            continue
        out.append({"Type": "bind", "Source": src, "Destination": dst, "Mode": mode,
                    "RW": "ro" not in mode.split(","), "Propagation": "rprivate"})
    for m in c.host_config.get("Mounts") or []:
        if m.get("Type") == "volume":
            if m.get("ReadOnly"):
                ro_volumes.add(m.get("Target"))
            continue
        out.append({"Type": m.get("Type"), "Source": m.get("Source", ""),
                    "Destination": m.get("Target"), "Mode": "", "RW": not m.get("ReadOnly"),
                    "Propagation": "rprivate" if m.get("Type") == "bind" else ""})
    for m in c.volumes_from:  # --volumes-from
        if m["Type"] == "volume":
            if m["ReadOnly"]:
                ro_volumes.add(m["Target"])
            continue
        out.append({"Type": m["Type"], "Source": m["Source"], "Destination": m["Target"], "Mode": "",
                    "RW": not m["ReadOnly"], "Propagation": "rprivate" if m["Type"] == "bind" else ""})
    for path in (c.host_config.get("Tmpfs") or {}):
        out.append({"Type": "tmpfs", "Source": "", "Destination": path, "Mode": "",
                    "RW": True, "Propagation": ""})
    for dest, name in c.volumes.items():
        out.append({"Type": "volume", "Name": name, "Source": str(engine.volumes.root / name / "_data"),
                    "Destination": dest, "Driver": "local", "Mode": "z", "RW": dest not in ro_volumes,
                    "Propagation": ""})
    return out


# dockerd marshals the whole HostConfig struct: every field is there, zero-valued when unset
# (clients read e.g. HostConfig.Memory or .CapAdd without checking for the key).
HOST_CONFIG_ZERO: dict[str, Any] = {
    "Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": "json-file", "Config": {}},
    "NetworkMode": "default", "PortBindings": None, "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
    "AutoRemove": False, "VolumeDriver": "", "VolumesFrom": None, "ConsoleSize": [0, 0], "CapAdd": None,
    "CapDrop": None, "CgroupnsMode": "host", "Dns": None, "DnsOptions": None, "DnsSearch": None,
    "ExtraHosts": None, "GroupAdd": None, "IpcMode": "private", "Cgroup": "", "Links": None,
    "OomScoreAdj": 0, "PidMode": "", "Privileged": False, "PublishAllPorts": False, "ReadonlyRootfs": False,
    "SecurityOpt": None, "UTSMode": "", "UsernsMode": "", "ShmSize": 64 * 1024 * 1024, "Runtime": "runc",
    "Isolation": "", "CpuShares": 0, "Memory": 0, "NanoCpus": 0, "CgroupParent": "", "BlkioWeight": 0,
    "BlkioWeightDevice": None, "BlkioDeviceReadBps": None, "BlkioDeviceWriteBps": None,
    "BlkioDeviceReadIOps": None, "BlkioDeviceWriteIOps": None, "CpuPeriod": 0, "CpuQuota": 0,
    "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "", "Devices": None,
    "DeviceCgroupRules": None, "DeviceRequests": None, "MemoryReservation": 0, "MemorySwap": 0,
    "MemorySwappiness": None, "OomKillDisable": False, "PidsLimit": None, "Ulimits": None, "CpuCount": 0,
    "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0, "MaskedPaths": None, "ReadonlyPaths": None,
}


def host_config(engine, c: Container) -> dict[str, Any]:
    hc = {**HOST_CONFIG_ZERO, **{k: v for k, v in c.host_config.items() if v is not None or k not in HOST_CONFIG_ZERO}}
    if str(getattr(engine.cgroups, "version", "1")) == "2" and "CgroupnsMode" not in c.host_config:
        hc["CgroupnsMode"] = "private"
    if not hc["Privileged"]:  # what the runtime spec applies (oci/runtime_spec.py)
        from ..oci import linux_defaults

        if hc["MaskedPaths"] is None:
            hc["MaskedPaths"] = list(linux_defaults.MASKED_PATHS)
        if hc["ReadonlyPaths"] is None:
            hc["ReadonlyPaths"] = list(linux_defaults.READONLY_PATHS)
    # dockerd shows the links it holds ("/child:/parent/alias"), not the request's words
    hc["Links"] = links.inspect_links(c, engine.containers.get)
    return hc


def _ports(engine, c: Container) -> dict[str, Any]:
    """NetworkSettings.Ports: published ports, and exposed ones as null, while running."""
    if c.state.status not in ("running", "paused") or c.network_mode == "host":
        return {}
    return engine.networks.port_map(c.id, c.config.get("ExposedPorts") or {})


class ResolveCache:
    """engine.networks with `resolve` remembered, for the rows of one listing (1000 created
    containers would otherwise look the same "bridge" up 1000 times in SQLite)."""

    def __init__(self, networks: Any) -> None:
        self._networks = networks
        self._seen: dict[str, tuple[Any, BaseException | None]] = {}

    def resolve(self, key: str) -> Any:
        if key not in self._seen:
            try:
                self._seen[key] = (self._networks.resolve(key), None)
            except DockyardError as exc:
                self._seen[key] = (None, exc)
        net, err = self._seen[key]
        if err is not None:
            raise err
        return net

    def __getattr__(self, name: str) -> Any:
        return getattr(self._networks, name)


def _configured_networks(engine, c: Container, networks: Any = None) -> dict[str, dict[str, Any]]:
    """A container not running has no endpoints; dockerd still lists the networks it will
    join (its network mode's unless disconnected, and EndpointsConfig), with empty addresses."""
    from ..engine.containers.netplan import planned_networks
    from ..network.service import Endpoint

    if c.network_mode.startswith("container:"):
        return c.networks
    out: dict[str, dict[str, Any]] = {}
    for net, cfg in planned_networks(networks or engine.networks, c, fallback=False):
        ipam = cfg.get("IPAMConfig") or {}
        out[net.name] = Endpoint(container_id=c.id, network_id=net.id, endpoint_id="",
                                 aliases=list(cfg.get("Aliases") or []),
                                 requested_ip=ipam.get("IPv4Address") or None).to_docker(net.name)
    return out


def _with_endpoint_links(engine, c: Container, nets: dict[str, Any]) -> dict[str, Any]:
    """EndpointSettings.Links: the Links the container was given for each network."""
    cfgs = c.networking_config.get("EndpointsConfig") or {}
    out = dict(nets)
    for name, ep in nets.items():
        for key, cfg in cfgs.items():
            if isinstance(cfg, dict) and cfg.get("Links") and ep.get("NetworkID") \
                    and engine.networks.same_network(key, ep["NetworkID"]):
                out[name] = {**ep, "Links": list(cfg["Links"])}
    return out


def network_settings(engine, c: Container, networks: Any = None) -> dict[str, Any]:
    nets = c.networks if c.state.running else {
        k: {**v, "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
            "MacAddress": "", "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0}
        for k, v in _configured_networks(engine, c, networks).items()}
    nets = _with_endpoint_links(engine, c, nets)
    br = nets.get("bridge") or (next(iter(nets.values())) if len(nets) == 1 else {}) or {}
    return {
        "Bridge": "",
        "SandboxID": c.id if c.sandbox_path else "",
        "SandboxKey": c.sandbox_path or "",
        "HairpinMode": False,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "Ports": _ports(engine, c),
        "SecondaryIPAddresses": None,
        "SecondaryIPv6Addresses": None,
        "EndpointID": br.get("EndpointID", ""),
        "Gateway": br.get("Gateway", ""),
        "GlobalIPv6Address": br.get("GlobalIPv6Address", ""),
        "GlobalIPv6PrefixLen": br.get("GlobalIPv6PrefixLen", 0),
        "IPAddress": br.get("IPAddress", ""),
        "IPPrefixLen": br.get("IPPrefixLen", 0),
        "IPv6Gateway": br.get("IPv6Gateway", ""),
        "MacAddress": br.get("MacAddress", ""),
        "Networks": nets,
    }


def inspect(engine, c: Container, size: bool = False) -> dict[str, Any]:
    cdir = engine.containers.ctr_dir(c.id)
    try:
        lowers = engine.images.layer_dirs(c.image_id)
    except Exception:
        lowers = []
    hc = host_config(engine, c)
    d: dict[str, Any] = {
        "Id": c.id,
        "Created": c.created,
        "Path": c.path,
        "Args": c.args,
        "State": c.state.to_docker(),
        "Image": c.image_id,
        "ResolvConfPath": str(cdir / "resolv.conf"),
        "HostnamePath": str(cdir / "hostname"),
        "HostsPath": str(cdir / "hosts"),
        "LogPath": engine.containers.log_path(c),
        "Name": "/" + c.name,
        "RestartCount": c.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": engine.execs.ids_for(c.id) or None,
        "HostConfig": hc,
        "GraphDriver": {
            "Name": "overlay2",
            "Data": {
                "LowerDir": ":".join(str(p) for p in [cdir / INIT_DIR, *lowers]),
                "UpperDir": str(cdir / "upper"),
                "WorkDir": str(cdir / "work"),
                "MergedDir": str(cdir / "rootfs"),
            },
        },
        "Mounts": _mounts(engine, c),
        "Config": {"OnBuild": None, **c.config},
        "NetworkSettings": network_settings(engine, c),
    }
    if size:
        d["SizeRw"] = engine.containers.size_rw(c)
        d["SizeRootFs"] = d["SizeRw"]
    return d


def _command(c: Container) -> str:
    import shlex

    argv = [c.path, *c.args]
    return " ".join(a if a and not any(ch in a for ch in " \t\n'\"") else shlex.quote(a) for a in argv)


def list_entry(engine, c: Container, networks: Any = None) -> dict[str, Any]:
    """One `docker ps` row; `networks`: a ResolveCache shared by the rows of one listing."""
    ns = network_settings(engine, c, networks)
    return {
        "Id": c.id,
        "Names": ["/" + c.name],
        "Image": c.image_ref,
        "ImageID": c.image_id,
        "Command": _command(c),
        "Created": int(rfc3339_to_unix(c.created)),
        "Ports": docker_port_list(ns["Ports"]),
        "Labels": c.config.get("Labels") or {},
        "State": c.state.status,
        "Status": status_text(c),
        "HostConfig": {"NetworkMode": c.host_config.get("NetworkMode", "default")},
        "NetworkSettings": {"Networks": ns["Networks"]},
        "Mounts": _mounts(engine, c),
    }


def aliases_with_short_id(d: dict[str, Any]) -> None:
    """API < 1.45: Aliases on user-defined networks also hold the short container id
    (v1.45 made Aliases exactly what was submitted; DNSNames has the id)."""
    short = d["Id"][:12]
    for ep in (d.get("NetworkSettings") or {}).get("Networks", {}).values():
        if ep.get("DNSNames") is not None and short not in (ep.get("Aliases") or []):
            ep["Aliases"] = [*(ep.get("Aliases") or []), short]
