"""A container's mount points, as dockerd's `container.MountPoints`: one list for every user.

Its own binds, `--mount`s and volumes (named and anonymous), then what `--volumes-from`
gave it, by destination (its own win). `docker cp` resolves paths through them and
`--volumes-from` copies them; the spec builder still reads HostConfig.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any, Callable

from ...errors import InvalidParameter, NotFound
from ...oci.runtime_spec import parse_bind
from .model import Container


@dataclass(frozen=True)
class MountPoint:
    destination: str
    type: str  # "volume", "bind" or "tmpfs"
    source: str  # a volume's name, a host path, "" for tmpfs
    read_only: bool = False

    def holds(self, path: str) -> bool:
        """`path` (clean, absolute, as seen in the container) is this mount or under it."""
        return path == self.destination or path.startswith(self.destination.rstrip("/") + "/")


def mount_points(c: Container) -> list[MountPoint]:
    own: dict[str, MountPoint] = {}
    ro_volumes: set[str] = set()
    hc = c.host_config
    for spec in hc.get("Binds") or []:
        if ":" not in spec:
            continue  # an anonymous volume: in c.volumes
        b = parse_bind(spec)
        dest = posixpath.normpath(b["destination"])
        if b["named"]:
            if b["read_only"]:
                ro_volumes.add(dest)
        else:
            own[dest] = MountPoint(dest, "bind", b["source"], b["read_only"])
    for m in hc.get("Mounts") or []:
        dest = posixpath.normpath(m.get("Target") or "/")
        if m.get("Type") == "volume":
            if m.get("ReadOnly"):
                ro_volumes.add(dest)
        elif m.get("Type") in ("bind", "tmpfs"):
            own[dest] = MountPoint(dest, m["Type"], m.get("Source") or "", bool(m.get("ReadOnly")))
    for path in hc.get("Tmpfs") or {}:
        dest = posixpath.normpath(path)
        own[dest] = MountPoint(dest, "tmpfs", "", False)
    for m in c.volumes_from:  # inherited volumes are in c.volumes too (they are in use here)
        if m["Type"] == "volume" and m["ReadOnly"]:
            ro_volumes.add(m["Target"])
        elif m["Type"] != "volume":
            own.setdefault(m["Target"], MountPoint(m["Target"], m["Type"], m["Source"], m["ReadOnly"]))
    for dest, name in c.volumes.items():
        own.setdefault(dest, MountPoint(dest, "volume", name, dest in ro_volumes))
    return sorted(own.values(), key=lambda mp: mp.destination)


def _parse_volumes_from(spec: str) -> tuple[str, bool | None]:
    """"container[:mode]" -> (container, read-only? or None to keep each mount's own)."""
    ref, _, mode = spec.partition(":")
    read_only: bool | None = None
    for part in mode.split(",") if mode else []:
        if part in ("ro", "rw") and read_only is None:
            read_only = part == "ro"
        elif part not in ("z", "Z"):
            raise InvalidParameter(f"invalid mode: {mode}")
    if not ref:
        raise InvalidParameter(f"invalid mode: {mode}")
    return ref, read_only


def inherit(specs: list[str] | None, get: Callable[[str], Container],
            own_destinations: set[str], own_id: str = "") -> list[dict[str, Any]]:
    """`HostConfig.VolumesFrom` -> the mounts taken from those containers (dockerd's rules: a
    mount keeps its read-only flag unless `:ro` is given; the container's own mounts win)."""
    out: dict[str, dict[str, Any]] = {}
    for spec in specs or []:
        ref, read_only = _parse_volumes_from(spec)
        src = get(ref)  # "No such container: …"
        if own_id and src.id == own_id:
            # the container itself: dockerd registers it only after this, so it is not found
            raise NotFound(f"No such container: {ref}")
        for mp in mount_points(src):
            if mp.destination in own_destinations:
                continue
            out[mp.destination] = {"Type": mp.type, "Source": mp.source, "Target": mp.destination,
                                   "ReadOnly": mp.read_only or bool(read_only)}
    return [out[d] for d in sorted(out)]
