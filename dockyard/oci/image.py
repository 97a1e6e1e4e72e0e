"""Image configs, manifests and media types (pure data, no I/O).

An image ID is the sha256 of its config JSON, exactly as stored: we keep the
config bytes we were given (load) or produced (import) and never re-serialise
them, so IDs survive save/load round trips with Docker.
"""

from __future__ import annotations

import json
import platform as _platform
import re
import shlex
from datetime import datetime, timezone
from typing import Any

from ..errors import InvalidParameter

# Media types
OCI_LAYOUT_VERSION = "1.0.0"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
INDEX_TYPES = {OCI_INDEX, DOCKER_MANIFEST_LIST}
MANIFEST_TYPES = {OCI_MANIFEST, DOCKER_MANIFEST}

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"

DOCKER_VERSION = "28.0.0-dockyard"


def go_arch() -> str:
    m = _platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "i386": "386"}.get(m, m)


def rfc3339(dt: datetime) -> str:
    """Go's RFC3339Nano in UTC as Docker writes it (trailing zeros trimmed)."""
    s = dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".")
    return s + "Z"


def parse_time(s: str | None) -> datetime | None:
    """Parse RFC3339 with up to nanosecond precision; None when absent or bad."""
    if not s or not isinstance(s, str):
        return None
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", s)
    if not m:
        return None
    frac = (m.group(2) or ".0")[1:7].ljust(6, "0")
    tz = "+00:00" if m.group(3) == "Z" else m.group(3)
    try:
        return datetime.fromisoformat(f"{m.group(1)}.{frac}{tz}")
    except ValueError:
        return None


def parse_platform(spec: str | None) -> tuple[str, str, str | None]:
    """"linux", "linux/amd64", "linux/arm/v7" -> (os, arch, variant); only linux here."""
    if not spec:
        return "linux", go_arch(), None
    parts = spec.lower().split("/")
    if len(parts) > 3 or not all(parts):
        raise InvalidParameter(f"invalid platform: {spec!r}")
    os_ = parts[0]
    if os_ != "linux":
        raise InvalidParameter(f"operating system is not supported: {os_}")
    arch = parts[1] if len(parts) > 1 else go_arch()
    arch = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64"}.get(arch, arch)
    variant = parts[2] if len(parts) > 2 else None
    return os_, arch, variant


# ---------------------------------------------------------------- changes

CHANGE_COMMANDS = {"cmd", "entrypoint", "env", "expose", "label", "onbuild", "stopsignal",
                   "user", "volume", "workdir"}


def _json_or_shell(rest: str, shell_form: bool) -> list[str]:
    rest = rest.strip()
    if rest.startswith("["):
        try:
            val = json.loads(rest)
        except json.JSONDecodeError:
            val = None
        if isinstance(val, list) and all(isinstance(v, str) for v in val):
            return val
    return ["/bin/sh", "-c", rest] if shell_form else [rest]


def _key_values(rest: str, instr: str) -> list[tuple[str, str]]:
    """ENV/LABEL arguments: `k=v k2="v 2"` or the legacy `k v with spaces`."""
    try:
        words = shlex.split(rest, posix=True)
    except ValueError as exc:
        raise InvalidParameter(f"{instr}: {exc}") from None
    if not words:
        raise InvalidParameter(f"{instr} requires at least one argument")
    if "=" not in words[0]:
        if len(words) < 2 and instr == "ENV":
            raise InvalidParameter("ENV must have two arguments")
        key, _, value = rest.strip().partition(" ")
        return [(key, value.strip())]
    out = []
    for w in words:
        k, sep, v = w.partition("=")
        if not sep or not k:
            raise InvalidParameter(f"{instr} names can not be blank" if not k else
                                   f"Syntax error - can't find = in {w!r}. Must be of the form: name=value")
        out.append((k, v))
    return out


def apply_changes(config: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    """Apply Dockerfile lines (`docker import --change`, `docker commit --change`) to a container config."""
    cfg = dict(config)
    for line in changes:
        line = line.strip()
        if not line:
            continue
        instr, _, rest = line.partition(" ")
        if "\t" in instr:
            instr, _, more = instr.partition("\t")
            rest = more + " " + rest
        cmd = instr.lower()
        if cmd not in CHANGE_COMMANDS:
            raise InvalidParameter(f"{instr} is not a valid change command")
        rest = rest.strip()
        if not rest and cmd not in ("cmd", "entrypoint"):
            raise InvalidParameter(f"{instr.upper()} requires at least one argument")
        if cmd == "cmd":
            cfg["Cmd"] = _json_or_shell(rest, True) if rest else None
        elif cmd == "entrypoint":
            cfg["Entrypoint"] = _json_or_shell(rest, True) if rest else None
        elif cmd == "env":
            env = list(cfg.get("Env") or [])
            for k, v in _key_values(rest, "ENV"):
                # As Docker: a variable already set is replaced where it stands.
                keys = [e.partition("=")[0] for e in env]
                if k in keys:
                    env[keys.index(k)] = f"{k}={v}"
                else:
                    env.append(f"{k}={v}")
            cfg["Env"] = env
        elif cmd == "label":
            labels = dict(cfg.get("Labels") or {})
            for k, v in _key_values(rest, "LABEL"):
                labels[k] = v
            cfg["Labels"] = labels
        elif cmd == "expose":
            ports = dict(cfg.get("ExposedPorts") or {})
            for p in rest.split():
                ports[_port_spec(p)] = {}
            cfg["ExposedPorts"] = ports
        elif cmd == "volume":
            vols = dict(cfg.get("Volumes") or {})
            paths = _json_or_shell(rest, False) if rest.startswith("[") else rest.split()
            for v in paths:
                if not v.strip():
                    raise InvalidParameter("VOLUME specified can not be an empty string")
                vols[v] = {}
            cfg["Volumes"] = vols
        elif cmd == "workdir":
            cfg["WorkingDir"] = rest
        elif cmd == "user":
            cfg["User"] = rest
        elif cmd == "stopsignal":
            cfg["StopSignal"] = rest
        elif cmd == "onbuild":
            trigger = rest.split(None, 1)[0].upper()
            if trigger in ("ONBUILD", "FROM", "MAINTAINER"):
                raise InvalidParameter(f"{trigger} isn't allowed as an ONBUILD trigger")
            cfg["OnBuild"] = list(cfg.get("OnBuild") or []) + [rest]
    return cfg


def _port_spec(p: str) -> str:
    port, _, proto = p.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp", "sctp"):
        raise InvalidParameter(f"invalid proto: {proto}")
    lo, _, hi = port.partition("-")
    for x in (lo, hi) if hi else (lo,):
        if not x.isdigit() or not 0 < int(x) <= 65535:
            raise InvalidParameter(f"invalid containerPort: {port}")
    return f"{port}/{proto}"


# ---------------------------------------------------------------- configs

def empty_container_config() -> dict[str, Any]:
    """The container config Docker writes into an imported image."""
    return {
        "Hostname": "", "Domainname": "", "User": "",
        "AttachStdin": False, "AttachStdout": False, "AttachStderr": False,
        "Tty": False, "OpenStdin": False, "StdinOnce": False,
        "Env": None, "Cmd": None, "Image": "", "Volumes": None, "WorkingDir": "",
        "Entrypoint": None, "OnBuild": None, "Labels": None,
    }


def import_config(diff_ids: list[str], changes: list[str], message: str, created: datetime,
                  platform: str | None = None) -> dict[str, Any]:
    """The config of `docker import`: one layer, one history entry, changes applied."""
    os_, arch, variant = parse_platform(platform)
    cfg: dict[str, Any] = {
        "architecture": arch,
        "config": apply_changes(empty_container_config(), changes),
        "created": rfc3339(created),
        "docker_version": DOCKER_VERSION,
        "history": [{"created": rfc3339(created), "comment": message}],
        "os": os_,
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
    }
    if variant:
        cfg["variant"] = variant
    return cfg


def encode(obj: Any) -> bytes:
    """Compact JSON as Go's encoding/json writes it (no spaces, no HTML escaping)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def validate_config(raw: bytes) -> dict[str, Any]:
    """Parse an image config blob; InvalidParameter if it is not one."""
    try:
        cfg = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidParameter(f"invalid image config: {exc}") from None
    if not isinstance(cfg, dict):
        raise InvalidParameter("invalid image config: not a JSON object")
    rootfs = cfg.get("rootfs")
    if not isinstance(rootfs, dict) or rootfs.get("type") != "layers":
        raise InvalidParameter("invalid image config: rootfs.type must be \"layers\"")
    diff_ids = rootfs.get("diff_ids") or []
    if not isinstance(diff_ids, list) or not all(
        isinstance(d, str) and re.match(r"^sha256:[a-f0-9]{64}$", d) for d in diff_ids
    ):
        raise InvalidParameter("invalid image config: bad rootfs.diff_ids")
    if cfg.get("config") is not None and not isinstance(cfg.get("config"), dict):
        raise InvalidParameter("invalid image config: config must be an object")
    return cfg


def diff_ids_of(cfg: dict[str, Any]) -> list[str]:
    return list((cfg.get("rootfs") or {}).get("diff_ids") or [])


def oci_manifest(config_digest: str, config_size: int, layers: list[tuple[str, int]]) -> dict[str, Any]:
    """An OCI manifest for uncompressed layers (what `docker save` writes since 25.0)."""
    return {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": OCI_LAYER, "digest": d, "size": s} for d, s in layers],
    }
