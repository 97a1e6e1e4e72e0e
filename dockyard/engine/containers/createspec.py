"""Validate a create request and merge it with the image's config, as Docker does."""

from __future__ import annotations

import re
import signal as _signal
from typing import Any

from ...errors import InvalidParameter

RESTART_POLICIES = ("", "no", "always", "unless-stopped", "on-failure")


def merge_env(image_env: list[str] | None, env: list[str] | None) -> list[str]:
    out: dict[str, str] = {}
    order: list[str] = []
    for e in (image_env or []) + (env or []):
        if not isinstance(e, str):
            raise InvalidParameter("invalid environment variable: must be a string")
        key = e.split("=", 1)[0]
        if not key:
            raise InvalidParameter(f"invalid environment variable: {e}")
        if key not in out:
            order.append(key)
        out[key] = e
    return [out[k] for k in order]


def _as_list(v: Any, field: str) -> list[str] | None:
    if v is None:
        return None
    if isinstance(v, str):
        return [v]
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return v
    raise InvalidParameter(f"invalid {field}: expected a list of strings")


def parse_signal(sig: str | int | None, default: int = _signal.SIGTERM) -> int:
    if sig is None or sig == "":
        return default
    if isinstance(sig, int) or (isinstance(sig, str) and sig.isdigit()):
        n = int(sig)
        if n <= 0 or n > 64:
            raise InvalidParameter(f"Invalid signal: {sig}")
        return n
    s = sig.upper()
    if not s.startswith("SIG"):
        s = "SIG" + s
    m = re.match(r"^SIGRTMIN\+(\d+)$", s)
    if m:
        return _signal.SIGRTMIN + int(m.group(1))
    try:
        return int(getattr(_signal.Signals, s))
    except AttributeError:
        raise InvalidParameter(f"Invalid signal: {sig}") from None


def merge_config(body: dict[str, Any], image_config: dict[str, Any]) -> dict[str, Any]:
    """The container's Config: the request's fields, defaults from the image."""
    icfg = (image_config or {}).get("config") or {}
    cfg: dict[str, Any] = {}
    for k, v in body.items():
        if k in ("HostConfig", "NetworkingConfig"):
            continue
        cfg[k] = v
    entrypoint = _as_list(body.get("Entrypoint"), "Entrypoint")
    cmd = _as_list(body.get("Cmd"), "Cmd")
    if entrypoint is None:
        entrypoint = icfg.get("Entrypoint")
        if cmd is None or cmd == []:
            cmd = icfg.get("Cmd")
    elif entrypoint == [""] or entrypoint == []:
        entrypoint = None  # `--entrypoint ""` resets the image's
    cfg["Entrypoint"] = entrypoint
    cfg["Cmd"] = cmd
    if not (entrypoint or cmd):
        raise InvalidParameter("no command specified")
    cfg["Env"] = merge_env(icfg.get("Env"), _as_list(body.get("Env"), "Env"))
    for key in ("WorkingDir", "User", "StopSignal"):
        if not body.get(key):
            cfg[key] = icfg.get(key) or ""
    if cfg.get("WorkingDir") and not cfg["WorkingDir"].startswith("/"):
        raise InvalidParameter(
            f"the working directory '{cfg['WorkingDir']}' is invalid, it needs to be an absolute path")
    if cfg.get("StopSignal"):
        parse_signal(cfg["StopSignal"])
    labels = dict(icfg.get("Labels") or {})
    if body.get("Labels") is not None and not isinstance(body.get("Labels"), dict):
        raise InvalidParameter("invalid Labels: expected an object")
    labels.update(body.get("Labels") or {})
    cfg["Labels"] = labels
    exposed = dict(icfg.get("ExposedPorts") or {})
    exposed.update(body.get("ExposedPorts") or {})
    if exposed:
        cfg["ExposedPorts"] = exposed
    vols = dict(icfg.get("Volumes") or {})
    vols.update(body.get("Volumes") or {})
    cfg["Volumes"] = vols or None
    if icfg.get("Healthcheck") and not body.get("Healthcheck"):
        cfg["Healthcheck"] = icfg["Healthcheck"]
    if icfg.get("OnBuild"):
        cfg["OnBuild"] = icfg["OnBuild"]
    cfg.setdefault("Hostname", "")
    cfg.setdefault("Domainname", "")
    for b in ("AttachStdin", "AttachStdout", "AttachStderr", "Tty", "OpenStdin", "StdinOnce"):
        cfg[b] = bool(cfg.get(b, False))
    st = cfg.get("StopTimeout")
    if st is not None and not isinstance(st, int):
        raise InvalidParameter("invalid StopTimeout: expected an integer")
    return cfg


def normalize_host_config(hc: dict[str, Any] | None) -> dict[str, Any]:
    hc = dict(hc or {})
    rp = hc.get("RestartPolicy") or {}
    name = rp.get("Name", "") or ""
    if name not in RESTART_POLICIES:
        raise InvalidParameter(f"invalid restart policy '{name}'")
    retries = int(rp.get("MaximumRetryCount") or 0)
    if retries and name != "on-failure":
        raise InvalidParameter("invalid restart policy: maximum retry count can only be used with 'on-failure'")
    if retries < 0:
        raise InvalidParameter("invalid restart policy: maximum retry count cannot be negative")
    hc["RestartPolicy"] = {"Name": name or "no", "MaximumRetryCount": retries}
    if hc.get("AutoRemove") and name not in ("", "no"):
        raise InvalidParameter("can't create 'AutoRemove' container with restart policy")
    nm = hc.get("NetworkMode") or "default"
    hc["NetworkMode"] = nm
    for key in ("Binds", "Dns", "DnsOptions", "DnsSearch", "ExtraHosts", "CapAdd", "CapDrop",
                "SecurityOpt", "Links", "GroupAdd", "VolumesFrom"):
        if hc.get(key) is not None and not isinstance(hc[key], list):
            raise InvalidParameter(f"invalid {key}: expected a list")
    for key in ("Memory", "MemorySwap", "MemoryReservation", "NanoCpus", "CpuShares", "CpuQuota",
                "CpuPeriod", "ShmSize", "PidsLimit", "BlkioWeight"):
        v = hc.get(key)
        if v is not None and not isinstance(v, int):
            raise InvalidParameter(f"invalid {key}: expected an integer")
    if (hc.get("ShmSize") or 0) < 0:
        raise InvalidParameter("SHM size can not be less than 0")
    if hc.get("Memory") and hc["Memory"] < 6 * 1024 * 1024:
        raise InvalidParameter("Minimum memory limit allowed is 6MB")
    if hc.get("NanoCpus") and (hc.get("CpuQuota") or hc.get("CpuPeriod")):
        raise InvalidParameter("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    # LogConfig: the container service fills in the daemon's default driver and checks it
    return hc


def network_mode(hc: dict[str, Any]) -> str:
    nm = hc.get("NetworkMode") or "default"
    return "bridge" if nm == "default" else nm
