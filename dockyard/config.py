"""One settings object for the engine: paths, sockets, runtime, network."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class EngineConfig:
    data_root: Path = Path("/var/lib/dockyard")
    # Runtime state (bundles, monitor sockets, runc state).  Kept apart from
    # data_root so that it can live on tmpfs, as dockerd's exec-root does.
    exec_root: Path = Path("/run/dockyard")
    hosts: list[str] = field(default_factory=lambda: ["unix:///var/run/dockyard.sock"])
    bridge: str = "dockyard0"
    bip: str = "172.29.0.1/16"
    log_level: str = "info"
    runtime: str = "runc"
    conmon: str = "conmon"
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_cacert: str | None = None
    tls_verify: bool = False
    # Live-restore is the default: a clean stop leaves containers running.
    stop_containers_on_shutdown: bool = False
    iptables: bool = True
    # daemon.json's default-address-pools: [{"base": "10.10.0.0/16", "size": 24}]
    default_address_pools: list[dict] = field(default_factory=list)
    # IPv6 on the default bridge (dockerd's --ipv6 / --fixed-cidr-v6)
    ipv6: bool = False
    fixed_cidr_v6: str | None = None

    @property
    def db_path(self) -> Path:
        return self.data_root / "metadata.db"

    def ensure_dirs(self) -> None:
        for p in (self.data_root, self.exec_root):
            p.mkdir(parents=True, exist_ok=True)
            os.chmod(p, 0o711)
