"""Seccomp: turn a Docker-format profile into the OCI `linux.seccomp` object.

Docker profiles carry rules that apply only for some capabilities,
architectures or kernels (`includes`/`excludes`).  They are resolved here, at
spec-build time, against the container's final capability list — the same
way dockerd does — so runc receives a plain OCI filter.
"""

from __future__ import annotations

import json
import os
import platform

from dockyard.errors import InvalidParameter
from dockyard.oci import kernel_abi
from dockyard.oci.seccomp_default import DEFAULT_PROFILE

# uname machine → (Go arch name used in profiles' "arches", libseccomp arch).
_MACHINES = {
    "x86_64": ("amd64", "SCMP_ARCH_X86_64"),
    "aarch64": ("arm64", "SCMP_ARCH_AARCH64"),
    "arm64": ("arm64", "SCMP_ARCH_AARCH64"),
    "i686": ("386", "SCMP_ARCH_X86"),
    "i386": ("386", "SCMP_ARCH_X86"),
    "armv7l": ("arm", "SCMP_ARCH_ARM"),
    "s390x": ("s390x", "SCMP_ARCH_S390X"),
    "ppc64le": ("ppc64le", "SCMP_ARCH_PPC64LE"),
    "riscv64": ("riscv64", "SCMP_ARCH_RISCV64"),
}
# Docker also accepts the Go names "x86" for 386 in includes; keep aliases.
_ARCH_ALIASES = {"386": {"386", "x86"}}

ACTIONS = {"SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
           "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG",
           "SCMP_ACT_NOTIFY"}
OPERATORS = {"SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE",
             "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"}


def _kernel_version(release: str | None = None) -> tuple[int, int]:
    release = release or os.uname().release
    parts = (release.split("-")[0].split(".") + ["0", "0"])[:2]
    out = []
    for p in parts:
        digits = "".join(ch for ch in p if ch.isdigit())
        out.append(int(digits or 0))
    return out[0], out[1]


def _version(text: str) -> tuple[int, int]:
    try:
        return _kernel_version(text)
    except ValueError:
        raise InvalidParameter(f"invalid minKernel in seccomp profile: {text!r}") from None


def _arch_matches(arches: list[str], goarch: str) -> bool:
    names = _ARCH_ALIASES.get(goarch, {goarch})
    return any(a in names for a in arches)


def to_oci(profile: dict, caps: list[str], *, machine: str | None = None,
           kernel: str | None = None, x32: bool | None = None) -> dict:
    """Resolve a Docker-format seccomp profile for one container.

    An `archMap`'s x32 sub-architecture is left out where the kernel runs no x32 calls (`x32`,
    probed when None: kernel_abi.py says why); a profile's own `architectures` are kept as given."""
    machine = machine or platform.machine()
    goarch, native = _MACHINES.get(machine, (machine, ""))
    kver = _kernel_version(kernel)
    if not isinstance(profile, dict):
        raise InvalidParameter("Decoding seccomp profile failed: profile must be a JSON object")
    default_action = profile.get("defaultAction")
    if default_action not in ACTIONS:
        raise InvalidParameter(f"Decoding seccomp profile failed: invalid defaultAction {default_action!r}")
    out: dict = {"defaultAction": default_action}
    if profile.get("defaultErrnoRet") is not None:
        out["defaultErrnoRet"] = int(profile["defaultErrnoRet"])
    if profile.get("architectures"):
        out["architectures"] = list(profile["architectures"])
    else:
        for entry in profile.get("archMap") or []:
            if entry.get("architecture") == native:
                subs = list(entry.get("subArchitectures") or [])
                if "SCMP_ARCH_X32" in subs and not (kernel_abi.runs_x32() if x32 is None else x32):
                    subs.remove("SCMP_ARCH_X32")
                out["architectures"] = [native, *subs]
    for key in ("flags", "listenerPath", "listenerMetadata"):
        if profile.get(key):
            out[key] = profile[key]
    have = set(caps)
    syscalls = []
    for rule in profile.get("syscalls") or []:
        inc = rule.get("includes") or {}
        exc = rule.get("excludes") or {}
        if inc.get("arches") and not _arch_matches(inc["arches"], goarch):
            continue
        if inc.get("caps") and not all(c in have for c in inc["caps"]):
            continue
        if inc.get("minKernel") and kver < _version(inc["minKernel"]):
            continue
        if exc.get("arches") and _arch_matches(exc["arches"], goarch):
            continue
        if exc.get("caps") and any(c in have for c in exc["caps"]):
            continue
        if exc.get("minKernel") and kver >= _version(exc["minKernel"]):
            continue
        names = list(rule.get("names") or ([rule["name"]] if rule.get("name") else []))
        action = rule.get("action")
        if not names:
            raise InvalidParameter("Decoding seccomp profile failed: a rule has no syscall names")
        if action not in ACTIONS:
            raise InvalidParameter(f"Decoding seccomp profile failed: invalid action {action!r}")
        oci_rule: dict = {"names": names, "action": action}
        if rule.get("errnoRet") is not None:
            oci_rule["errnoRet"] = int(rule["errnoRet"])
        args = []
        for a in rule.get("args") or []:
            if a.get("op") not in OPERATORS:
                raise InvalidParameter(f"Decoding seccomp profile failed: invalid operator {a.get('op')!r}")
            args.append({"index": int(a["index"]), "value": int(a.get("value", 0)),
                         "valueTwo": int(a.get("valueTwo", 0)), "op": a["op"]})
        if args:
            oci_rule["args"] = args
        syscalls.append(oci_rule)
    out["syscalls"] = syscalls
    return out


def default_profile(caps: list[str], **kw) -> dict:
    """Docker's default filter for a container holding `caps`."""
    return to_oci(DEFAULT_PROFILE, caps, **kw)


def load_profile(value: str) -> dict:
    """The value of `--security-opt seccomp=...`: the profile's JSON (what
    the docker CLI sends after reading the file) or a path on the engine host."""
    text = value
    if not value.lstrip().startswith("{"):
        try:
            with open(value) as f:
                text = f.read()
        except OSError as e:
            raise InvalidParameter(f"opening seccomp profile ({value}) failed: {e.strerror}") from None
    try:
        profile = json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidParameter(f"Decoding seccomp profile failed: {e}") from None
    if not isinstance(profile, dict):
        raise InvalidParameter("Decoding seccomp profile failed: profile must be a JSON object")
    return profile
