"""One settings object for the engine: paths, sockets, runtime, network.

Filled from flags and daemon.json by `dockyard.daemonconfig` (the one table of
keys); everything else only reads it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_CONFIG_FILE = Path("/etc/dockyard/daemon.json")
DEFAULT_SHM_SIZE = 64 * 1024 * 1024


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
    debug: bool = False
    log_format: str = "text"
    # the path of the "runc" runtime; more runtimes by name in `runtimes`
    runtime: str = "runc"
    conmon: str = "conmon"
    tls: bool | None = None  # None: not said; False said explicitly allows TCP without TLS
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_cacert: str | None = None
    tls_verify: bool = False
    # --tls=false or --tlsverify=false said explicitly: unauthenticated TCP on a
    # network address is then accepted (dockerd's "let me shoot myself in the foot")
    tls_opt_out: bool = False
    # Live-restore is the default: a clean stop leaves containers running.
    live_restore: bool = True
    shutdown_timeout: int = 15
    iptables: bool = True
    ip_forward: bool = True
    default_address_pools: list[dict] = field(default_factory=list)  # [{"base": cidr, "size": n}]
    # IPv6 on the default bridge (dockerd's --ipv6 / --fixed-cidr-v6)
    ipv6: bool = False
    fixed_cidr_v6: str | None = None
    # Where daemon.json was read from; its directory holds certs.d/ (as /etc/docker does).
    config_file: Path | None = None
    config_dir: Path = DEFAULT_CONFIG_FILE.parent
    pidfile: Path | None = None  # None: <exec-root>/dockyard.pid
    group: str | None = None  # None: "docker" if that group exists, else root
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    dns_opts: list[str] = field(default_factory=list)
    log_driver: str = "json-file"
    log_opts: dict[str, str] = field(default_factory=dict)
    insecure_registries: list[str] = field(default_factory=list)
    registry_mirrors: list[str] = field(default_factory=list)
    max_concurrent_downloads: int = 3
    max_concurrent_uploads: int = 5
    # Compression of layers that `docker push` has to compress: "gzip" (Docker schema2
    # manifests, what every registry takes) or "zstd" (OCI manifests with tar+zstd layers).
    push_compression: str = "gzip"
    default_ulimits: dict[str, dict] = field(default_factory=dict)  # name -> {Name, Soft, Hard}
    default_shm_size: int = DEFAULT_SHM_SIZE
    runtimes: dict[str, dict] = field(default_factory=dict)  # name -> {"path": ..., "runtimeArgs": [...]}
    default_runtime: str = "runc"
    init: bool = False
    init_path: str | None = None
    labels: list[str] = field(default_factory=list)
    metrics_addr: str | None = None

    @property
    def stop_containers_on_shutdown(self) -> bool:
        return not self.live_restore

    @property
    def db_path(self) -> Path:
        return self.data_root / "metadata.db"

    @property
    def pidfile_path(self) -> Path:
        return self.pidfile or self.exec_root / "dockyard.pid"

    @property
    def certs_dir(self) -> Path:
        return self.config_dir / "certs.d"

    def runtime_path(self, name: str) -> str | None:
        """The binary of a runtime by name ("runc" is the built-in one)."""
        if name == "runc":
            return self.runtime
        rt = self.runtimes.get(name)
        return rt.get("path") if rt else None

    def runtime_names(self) -> list[str]:
        return ["runc", *sorted(self.runtimes)]

    def ensure_dirs(self) -> None:
        for p in (self.data_root, self.exec_root):
            p.mkdir(parents=True, exist_ok=True)
            os.chmod(p, 0o711)
