"""The engine's configuration as it reaches containers (daemon.json defaults).

At create (visible in `docker inspect`, as with dockerd): the runtime (checked
against `runtimes`, defaulting to `default-runtime`) and the /dev/shm size
(`default-shm-size` when the container names none).
At start (so a changed default applies to the next start, as with dockerd):
`default-ulimits` under the container's own Ulimits, `init`/`init-path`, and
`dns`/`dns-search`/`dns-opts` when the container sets none.
"""

from __future__ import annotations

import shutil
from typing import Any

from ...config import EngineConfig
from ...errors import InvalidParameter


def at_create(hc: dict[str, Any], cfg: EngineConfig) -> dict[str, Any]:
    hc = dict(hc)
    runtime = hc.get("Runtime") or cfg.default_runtime
    if cfg.runtime_path(runtime) is None:
        raise InvalidParameter(f"unknown or invalid runtime name: {runtime}")
    hc["Runtime"] = runtime
    if not hc.get("ShmSize"):
        hc["ShmSize"] = cfg.default_shm_size
    return hc


def ulimits(hc: dict[str, Any], cfg: EngineConfig) -> list[dict]:
    """The container's Ulimits, plus the daemon's defaults for names it does not set."""
    own = list(hc.get("Ulimits") or [])
    named = {str(u.get("Name", "")).lower() for u in own if isinstance(u, dict)}
    return own + [dict(u) for name, u in sorted(cfg.default_ulimits.items()) if name not in named]


def wants_init(hc: dict[str, Any], cfg: EngineConfig) -> bool:
    init = hc.get("Init")
    return cfg.init if init is None else bool(init)


def init_binary(cfg: EngineConfig) -> str | None:
    """`init-path`, else Debian's tini (dockerd's docker-init is tini too)."""
    if cfg.init_path:
        return str(cfg.init_path)
    return shutil.which("tini-static") or shutil.which("tini") or shutil.which("docker-init")


def dns(hc: dict[str, Any], cfg: EngineConfig) -> tuple[list[str] | None, list[str] | None, list[str] | None]:
    """(servers, search, options): the container's own, else the daemon's (dockerd's order)."""
    return (hc.get("Dns") or cfg.dns or None, hc.get("DnsSearch") or cfg.dns_search or None,
            hc.get("DnsOptions") or cfg.dns_opts or None)


def runtime_binary(name: str | None, cfg: EngineConfig) -> str:
    """The binary of a container's runtime; a runtime removed by a reload falls back to runc."""
    path = cfg.runtime_path(name or cfg.default_runtime) or cfg.runtime
    return shutil.which(path) or path
