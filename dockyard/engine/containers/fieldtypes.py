"""Type checks for a create request, as Go's JSON decoder makes them in dockerd.

dockerd decodes Config and HostConfig into Go structs: a field of the wrong
JSON type is a 400 (`json: cannot unmarshal string into Go struct field
ContainerConfig.Env of type []string`), `null` is the zero value, unknown
fields are ignored.  Checking types up front keeps malformed input from
reaching the service's logic.
"""

from __future__ import annotations

from typing import Any, Callable

from ...errors import InvalidParameter

Check = tuple[str, Callable[[Any], bool]]


def _str(v: Any) -> bool:
    return isinstance(v, str)


def _bool(v: Any) -> bool:
    return isinstance(v, bool)


def _int(v: Any) -> bool:  # Go's int64: a bigger number fails to decode, as in dockerd
    return isinstance(v, int) and not isinstance(v, bool) and -(1 << 63) <= v < (1 << 63)


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _obj(v: Any) -> bool:
    return isinstance(v, dict)


def _strs(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _str_or_strs(v: Any) -> bool:  # Docker's StrSlice accepts both
    return _str(v) or _strs(v)


def _str_map(v: Any) -> bool:
    return isinstance(v, dict) and all(isinstance(x, str) for x in v.values())


def _objs(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, dict) for x in v)


S: Check = ("string", _str)
B: Check = ("bool", _bool)
I: Check = ("int64", _int)
N: Check = ("float64", _num)
O: Check = ("object", _obj)
L: Check = ("[]string", _strs)
SL: Check = ("strslice.StrSlice", _str_or_strs)
M: Check = ("map[string]string", _str_map)
LO: Check = ("[]object", _objs)

CONFIG: dict[str, Check] = {
    "Hostname": S, "Domainname": S, "User": S, "AttachStdin": B, "AttachStdout": B,
    "AttachStderr": B, "ExposedPorts": O, "Tty": B, "OpenStdin": B, "StdinOnce": B, "Env": L,
    "Cmd": SL, "Healthcheck": O, "ArgsEscaped": B, "Image": S, "Volumes": O, "WorkingDir": S,
    "Entrypoint": SL, "NetworkDisabled": B, "MacAddress": S, "OnBuild": L, "Labels": M,
    "StopSignal": S, "StopTimeout": I, "Shell": L,
}

HOST_CONFIG: dict[str, Check] = {
    "CpuShares": I, "Memory": I, "CgroupParent": S, "BlkioWeight": I, "BlkioWeightDevice": LO,
    "BlkioDeviceReadBps": LO, "BlkioDeviceWriteBps": LO, "BlkioDeviceReadIOps": LO,
    "BlkioDeviceWriteIOps": LO, "CpuPeriod": I, "CpuQuota": I, "CpuRealtimePeriod": I,
    "CpuRealtimeRuntime": I, "CpusetCpus": S, "CpusetMems": S, "Devices": LO,
    "DeviceCgroupRules": L, "DeviceRequests": LO, "KernelMemoryTCP": I, "MemoryReservation": I,
    "MemorySwap": I, "MemorySwappiness": I, "NanoCpus": I, "OomKillDisable": B, "Init": B,
    "PidsLimit": I, "Ulimits": LO, "CpuCount": I, "CpuPercent": I, "IOMaximumIOps": I,
    "IOMaximumBandwidth": I, "Binds": L, "ContainerIDFile": S, "LogConfig": O, "NetworkMode": S,
    "PortBindings": O, "RestartPolicy": O, "AutoRemove": B, "VolumeDriver": S, "VolumesFrom": L,
    "Mounts": LO, "ConsoleSize": ("[2]uint", lambda v: isinstance(v, list) and len(v) == 2 and all(_int(x) and x >= 0 for x in v)),
    "Annotations": M, "CapAdd": L, "CapDrop": L, "CgroupnsMode": S, "Dns": L, "DnsOptions": L,
    "DnsSearch": L, "ExtraHosts": L, "GroupAdd": L, "IpcMode": S, "Cgroup": S, "Links": L,
    "OomScoreAdj": I, "PidMode": S, "Privileged": B, "PublishAllPorts": B, "ReadonlyRootfs": B,
    "SecurityOpt": L, "StorageOpt": M, "Tmpfs": M, "UTSMode": S, "UsernsMode": S, "ShmSize": I,
    "Sysctls": M, "Runtime": S, "Isolation": S, "MaskedPaths": L, "ReadonlyPaths": L,
}

NESTED: dict[str, dict[str, Check]] = {
    "RestartPolicy": {"Name": S, "MaximumRetryCount": I},
    "LogConfig": {"Type": S, "Config": M},
}

ITEMS: dict[str, dict[str, Check]] = {
    "Mounts": {"Target": S, "Source": S, "Type": S, "ReadOnly": B, "Consistency": S,
               "BindOptions": O, "VolumeOptions": O, "TmpfsOptions": O},
    "Ulimits": {"Name": S, "Soft": I, "Hard": I},
    "Devices": {"PathOnHost": S, "PathInContainer": S, "CgroupPermissions": S},
}


def go_keys(body: dict[str, Any], fields: Any) -> dict[str, Any]:
    """`body` with its keys spelt as `fields` spells them, as Go's JSON decoder matches struct
    fields: an exact name wins, else any letter case (docker-py sends `detachKeys`)."""
    canon = {f.lower(): f for f in fields}
    out: dict[str, Any] = {}
    for key, value in body.items():
        name = key if key in fields else canon.get(key.lower(), key)
        if name not in out or key == name:
            out[name] = value
    return out


def _fail(struct: str, field: str, want: str, value: Any) -> None:
    got = {bool: "bool", int: "number", float: "number", str: "string", list: "array",
           dict: "object"}.get(type(value), type(value).__name__)
    raise InvalidParameter(
        f"json: cannot unmarshal {got} into Go struct field {struct}.{field} of type {want}")


def check_struct(struct: str, body: Any, fields: dict[str, Check]) -> None:
    if body is None:
        return
    if not isinstance(body, dict):
        _fail("ContainerCreateRequest", struct, "object", body)
    for key, (want, ok) in fields.items():
        v = body.get(key)
        if v is not None and not ok(v):
            _fail(struct, key, want, v)
        if v is not None and key in NESTED:
            check_struct(f"{struct}.{key}", v, NESTED[key])
        if v is not None and key in ITEMS:
            for item in v:
                check_struct(f"{struct}.{key}", item, ITEMS[key])


def check_create(body: dict[str, Any]) -> None:
    check_struct("ContainerConfig", body, CONFIG)
    check_struct("HostConfig", body.get("HostConfig"), HOST_CONFIG)
    nc = body.get("NetworkingConfig")
    check_struct("NetworkingConfig", nc, {"EndpointsConfig": O})
    for name, ep in ((nc or {}).get("EndpointsConfig") or {}).items():
        check_endpoint_settings(ep)


ENDPOINT_SETTINGS: dict[str, Check] = {"IPAMConfig": O, "Links": L, "Aliases": L, "MacAddress": S, "DriverOpts": M,
                                       "NetworkID": S, "EndpointID": S, "Gateway": S, "IPAddress": S,
                                       "IPPrefixLen": I, "IPv6Gateway": S, "GlobalIPv6Address": S,
                                       "GlobalIPv6PrefixLen": I, "GwPriority": I, "DNSNames": L}
ENDPOINT_IPAM: dict[str, Check] = {"IPv4Address": S, "IPv6Address": S, "LinkLocalIPs": L}


def check_endpoint_settings(ep: Any) -> None:
    """An EndpointSettings (create's EndpointsConfig values, connect's EndpointConfig)."""
    check_struct("EndpointSettings", ep, ENDPOINT_SETTINGS)
    if isinstance(ep, dict):
        check_struct("EndpointSettings.IPAMConfig", ep.get("IPAMConfig"), ENDPOINT_IPAM)


def check_update(body: dict[str, Any]) -> None:
    """`docker update` decodes into UpdateConfig{Resources, RestartPolicy}: same field types."""
    check_struct("UpdateConfig", body, HOST_CONFIG)
