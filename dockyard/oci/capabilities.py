"""Linux capabilities: names, Docker's default set, CapAdd/CapDrop and the
engine's own set.

Docker computes a container's capabilities from a fixed default list, the
request's CapAdd/CapDrop (which may name "ALL") and Privileged.  Docker's
"all" means every capability the kernel knows; on hosts whose bounding set is
reduced (this one lacks CAP_SYS_RESOURCE) runc then fails.  Dockyard's "all"
means every capability the *engine* holds, which runc can always grant.
"""

from __future__ import annotations

import os

from dockyard.errors import InvalidParameter

# Index = capability number (linux/capability.h).
CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
    "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
    "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
    "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)
CAP_NUMBER = {name: i for i, name in enumerate(CAPABILITIES)}

# Docker's default set; as a mask it is 0x00000000a80425fb.
DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
    "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)


def caps_from_mask(mask: int) -> list[str]:
    """Capability names whose bits are set in `mask` (unknown high bits ignored)."""
    return [name for i, name in enumerate(CAPABILITIES) if mask >> i & 1]


def mask_from_caps(caps: list[str] | tuple[str, ...]) -> int:
    mask = 0
    for name in caps:
        mask |= 1 << CAP_NUMBER[name]
    return mask


def engine_capabilities(status_path: str = "/proc/self/status") -> list[str]:
    """The capabilities this engine can hand to runc: its bounding set.

    A root process that execs runc gets its whole bounding set as permitted;
    anything outside it can never be granted, so `Privileged` and `CapAdd ALL`
    are limited to it.
    """
    fields: dict[str, int] = {}
    with open(status_path) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("CapBnd", "CapEff", "CapPrm"):
                fields[key] = int(value.strip(), 16)
    mask = fields.get("CapBnd", 0)
    if os.geteuid() != 0:  # a non-root engine only passes on what it holds
        mask &= fields.get("CapPrm", 0)
    return caps_from_mask(mask)


def normalize(names: list[str] | None, field: str) -> list[str]:
    """Docker's NormalizeLegacyCapabilities: case-insensitive, CAP_ prefix
    optional, "ALL" kept as is; unknown names are InvalidParameter."""
    out: list[str] = []
    for raw in names or []:
        if not isinstance(raw, str):
            raise InvalidParameter(f"invalid {field}: capability must be a string")
        name = raw.strip().upper()
        if name == "ALL":
            out.append("ALL")
            continue
        if not name.startswith("CAP_"):
            name = "CAP_" + name
        if name not in CAP_NUMBER:
            raise InvalidParameter(f'invalid {field}: unknown capability: "{name}"')
        if name not in out:
            out.append(name)
    return out


def container_capabilities(cap_add: list[str] | None, cap_drop: list[str] | None,
                           privileged: bool, engine_caps: list[str]) -> list[str]:
    """The capability list (bounding = permitted = effective) of a container.

    Follows Docker's TweakCapabilities: Privileged → everything; CapAdd ALL →
    everything minus CapDrop; CapDrop ALL → only CapAdd; otherwise defaults
    minus CapDrop plus CapAdd.  "Everything" is the engine's own set.  Naming a
    capability the engine does not hold is refused up front (runc would fail
    at start with an obscure error).
    """
    engine = [c for c in CAPABILITIES if c in set(engine_caps)]
    adds = normalize(cap_add, "CapAdd")
    drops = normalize(cap_drop, "CapDrop")
    if privileged:
        return engine
    missing = [c for c in adds if c != "ALL" and c not in engine]
    if missing:
        raise InvalidParameter(
            f"invalid CapAdd: capability {missing[0]} is not available to the engine on this host")
    if "ALL" in adds:
        caps = [c for c in engine if c not in drops]
    elif "ALL" in drops:
        caps = [c for c in adds if c != "ALL"]
    else:
        caps = [c for c in DEFAULT_CAPABILITIES if c not in drops and c in engine]
        caps += [c for c in adds if c not in caps]
    # Stable kernel order makes specs comparable and readable.
    return sorted(set(caps), key=CAP_NUMBER.__getitem__)
