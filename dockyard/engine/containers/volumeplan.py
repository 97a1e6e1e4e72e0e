"""Which volumes a container uses: named ones, and the anonymous ones Docker makes.

Pure: from a create request to a list of (destination, name or None, read-only),
and from a stored container back to the HostConfig the spec builder takes,
with every anonymous volume given its generated name.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any

from ...oci.runtime_spec import parse_bind
from ...errors import InvalidParameter


@dataclass(frozen=True)
class VolumeUse:
    destination: str
    name: str | None  # None: anonymous, a name is generated
    read_only: bool = False
    nocopy: bool = False


def own_destinations(host_config: dict[str, Any]) -> set[str]:
    """Where the container mounts something itself (Binds, Mounts, Tmpfs): these win over
    what `--volumes-from` would give it there."""
    dests = {posixpath.normpath(spec.split(":")[1] if ":" in spec else spec)
             for spec in host_config.get("Binds") or [] if isinstance(spec, str) and spec}
    dests.update(posixpath.normpath(m.get("Target") or "/") for m in host_config.get("Mounts") or []
                 if isinstance(m, dict))
    dests.update(posixpath.normpath(p) for p in host_config.get("Tmpfs") or {})
    return dests


def plan(host_config: dict[str, Any], config: dict[str, Any],
         inherited: set[str] = frozenset()) -> list[VolumeUse]:
    """The container's own volumes; an image VOLUME where `--volumes-from` (`inherited`)
    mounts something gets no anonymous volume."""
    uses: list[VolumeUse] = []
    taken: set[str] = set(inherited)
    for spec in host_config.get("Binds") or []:
        if ":" not in spec:
            if not spec.startswith("/"):
                raise InvalidParameter(f"invalid volume specification: '{spec}'")
            dest = posixpath.normpath(spec)
            uses.append(VolumeUse(dest, None))
        else:
            b = parse_bind(spec)
            dest = b["destination"]
            if b["named"]:
                mode = spec.split(":")[2] if spec.count(":") >= 2 else ""
                uses.append(VolumeUse(dest, b["source"], b["read_only"], "nocopy" in mode.split(",")))
        taken.add(dest)
    for m in host_config.get("Mounts") or []:
        target = m.get("Target") or ""
        if not target.startswith("/"):
            continue  # the spec builder reports it with Docker's words
        dest = posixpath.normpath(target)
        if m.get("Type") == "volume":
            vo = m.get("VolumeOptions") or {}
            uses.append(VolumeUse(dest, m.get("Source") or None, bool(m.get("ReadOnly")), bool(vo.get("NoCopy"))))
        taken.add(dest)
    taken.update(posixpath.normpath(p) for p in (host_config.get("Tmpfs") or {}))
    for dest in (config.get("Volumes") or {}):
        if not isinstance(dest, str) or not dest.startswith("/"):
            raise InvalidParameter(f"invalid volume specification: '{dest}'")
        d = posixpath.normpath(dest)
        if d not in taken:
            uses.append(VolumeUse(d, None))
            taken.add(d)
    return uses


def nocopy_destinations(host_config: dict[str, Any], config: dict[str, Any]) -> set[str]:
    """Volume mount points that asked not to take the image's content (`nocopy`)."""
    return {u.destination for u in plan(host_config, config) if u.nocopy}


def spec_host_config(host_config: dict[str, Any], volumes: dict[str, str],
                     anonymous: list[str], inherited: list[dict[str, Any]] = ()) -> dict[str, Any]:
    """HostConfig with anonymous volumes as named `volume` mounts, and the mounts taken with
    `--volumes-from`, for the spec builder."""
    hc = dict(host_config)
    anon = set(anonymous)
    hc["Binds"] = [b for b in (host_config.get("Binds") or []) if ":" in b]
    mounts_out = []
    covered: set[str] = set()
    for m in host_config.get("Mounts") or []:
        if m.get("Type") == "volume" and not m.get("Source"):
            dest = posixpath.normpath(m.get("Target") or "/")
            m = {**m, "Source": volumes.get(dest, "")}
            covered.add(dest)
        mounts_out.append(m)
    for dest, name in volumes.items():
        if name in anon and dest not in covered:
            mounts_out.append({"Type": "volume", "Source": name, "Target": dest})
    mounts_out.extend(dict(m) for m in inherited if m["Type"] in ("volume", "bind"))
    hc["Mounts"] = mounts_out
    return hc
