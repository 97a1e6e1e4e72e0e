"""What a start writes before the monitor runs: the /etc files and the OCI config.json.

Kept apart from the lifecycle code: this is where a container's Docker
settings meet the host (resolvers, cgroups, volumes, init binary), and it is
the one place to look when a container does not see what it should.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Callable

from ...errors import Conflict, DockyardError, InvalidParameter, NotFound
from ...oci import runtime_spec, users
from ...oci.linux_defaults import DEFAULT_SHM_SIZE
from ...runtime.cgroups import DEFAULT_PARENT as DEFAULT_CGROUP_PARENT
from ...config import EngineConfig
from . import daemondefaults, etcfiles, ipcshare, links, volumeplan
from .model import Container

log = logging.getLogger(__name__)

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class BundleWriter:
    def __init__(self, networks: Any, volumes: Any, cgroups: Any,
                 ctr_dir: Callable[[str], Path], get: Callable[[str], Container],
                 config: EngineConfig) -> None:
        self.config = config
        self.networks = networks
        self.volumes = volumes
        self.cgroups = cgroups
        self.ctr_dir = ctr_dir
        self.get = get

    def prepare(self, c: Container, rootfs: Path, netns: str | None,
                ip: str | None, gateway: str | None) -> dict[str, Any]:
        """Write the /etc files, then return the runtime spec (blocking: run it in a thread)."""
        linked = self.active_links(c)
        link_env = [v for alias, child, child_ip in linked
                    for v in links.link_env(c.name, alias, child_ip, child.config.get("ExposedPorts"),
                                            child.config.get("Env"))]
        return self.spec(c, rootfs, netns, self.etc_files(c, ip, gateway, linked), link_env)

    def write(self, c: Container, bundle: Path, rootfs: Path, netns: str | None,
              ip: str | None, gateway: str | None) -> None:
        """The /etc files and `<bundle>/config.json` (blocking: one thread hop for both)."""
        spec = self.prepare(c, rootfs, netns, ip, gateway)
        (bundle / "config.json").write_text(json.dumps(spec))

    def refresh_etc_files(self, c: Container) -> None:
        """Rewrite a running container's /etc files in place (its links changed)."""
        ep = c.networks.get("bridge") or {}
        try:
            linked = self.active_links(c)
        except DockyardError as exc:  # another child is down: its line stays as it was
            log.info("links of %s not refreshed: %s", c.id[:12], exc)
            return
        try:
            self.etc_files(c, ep.get("IPAddress") or None, ep.get("Gateway") or None, linked, live=True)
        except OSError as exc:
            log.warning("could not rewrite the /etc files of %s: %s", c.id[:12], exc)

    def active_links(self, c: Container) -> list[tuple[str, Container, str]]:
        """The legacy links a parent on the default bridge gets at start."""
        if not c.links or c.network_mode not in ("bridge", "default"):
            return []
        return links.active_links(c, self.get, _bridge_ip)

    def etc_files(self, c: Container, ip: str | None, gateway: str | None,
                  linked: list[tuple[str, Container, str]] = (), live: bool = False) -> dict[str, str]:
        """Container path -> host file, for /etc/hosts, /etc/resolv.conf, /etc/hostname.

        live: the container runs with them mounted, so they are rewritten in place."""
        write = etcfiles.write_in_place if live else etcfiles.write_atomic
        cdir = self.ctr_dir(c.id)
        cfg, hc = c.config, c.host_config
        host_net = c.network_mode == "host"
        if c.network_mode.startswith("container:"):
            od = self.ctr_dir(self.get(c.network_mode.split(":", 1)[1]).id)
            etc = {"/etc/hosts": str(od / "hosts"), "/etc/resolv.conf": str(od / "resolv.conf")}
        else:
            extra = etcfiles.parse_extra_hosts(hc.get("ExtraHosts"), gateway)
            extra += [(names, addr) for names, addr in links.hosts_entries(list(linked))]
            if host_net:
                hosts = _read("/etc/hosts") or etcfiles.HOSTS_HEADER
                hosts += "".join(f"{a}\t{h}\n" for h, a in extra)
            else:
                hosts = etcfiles.hosts_file(cfg["Hostname"], cfg.get("Domainname", ""), ip, extra)
            write(cdir / "hosts", hosts)
            # user-defined networks: the embedded DNS server (it forwards to hc Dns)
            servers, search, options = daemondefaults.dns(hc, self.config)
            embedded = None if host_net else self.networks.dns_servers(c.id, servers)
            write(cdir / "resolv.conf", etcfiles.resolv_conf(
                _read("/etc/resolv.conf"), embedded or servers, search,
                options or (["ndots:0"] if embedded else None),
                host_network=host_net))
            etc = {"/etc/hosts": str(cdir / "hosts"), "/etc/resolv.conf": str(cdir / "resolv.conf")}
        write(cdir / "hostname", cfg["Hostname"] + "\n")
        etc["/etc/hostname"] = str(cdir / "hostname")
        return etc

    def spec(self, c: Container, rootfs: Path, netns: str | None, etc: dict[str, str],
             link_env: list[str] = ()) -> dict[str, Any]:
        cfg, hc = c.config, c.host_config
        resolved = users.resolve_user(str(rootfs), cfg.get("User") or "", hc.get("GroupAdd") or [])
        init_path = None
        if daemondefaults.wants_init(hc, self.config):
            init_path = daemondefaults.init_binary(self.config)
            if not init_path:
                raise InvalidParameter("--init requested but no init binary (tini) is installed")
        hc = {**hc, "Ulimits": daemondefaults.ulimits(hc, self.config),
              "ShmSize": hc.get("ShmSize") or self.config.default_shm_size}
        cg_path = self.cgroups.oci_cgroups_path(c.id) if self.cgroups else f"{DEFAULT_CGROUP_PARENT}/{c.id}"
        resources = self.cgroups.resources(hc) if self.cgroups else {}
        volume_paths: dict[str, str] = {}
        # volumes taken with --volumes-from keep their content: no copy-up (dockerd's CopyData false)
        nocopy = volumeplan.nocopy_destinations(hc, cfg) | {m["Target"] for m in c.volumes_from}
        for dest, name in c.volumes.items():
            volume_paths[name] = self.volumes.path_for_use(name)
            if dest not in nocopy:
                self.volumes.copy_up(name, rootfs, dest)
        ipc_ns, shm_source = ipcshare.plan(c, int(hc["ShmSize"] or DEFAULT_SHM_SIZE), self.get, self.ctr_dir)
        return runtime_spec.build_spec(
            cfg, volumeplan.spec_host_config(hc, c.volumes, c.anonymous_volumes, c.volumes_from),
            pid_ns_path=self._pid_namespace(hc.get("PidMode") or ""),
            ipc_ns_path=ipc_ns, shm_source=shm_source,
            rootfs=str(rootfs), hostname=cfg["Hostname"], netns_path=netns,
            volume_paths=volume_paths, etc_files=etc, cgroups_path=cg_path,
            cgroup_resources=resources, user=resolved.as_tuple(),
            env=process_env(cfg, resolved.home, list(link_env)), args=[c.path, *c.args],
            cwd=cfg.get("WorkingDir") or "/", init_path=init_path,
        )

    def _pid_namespace(self, pid_mode: str) -> str | None:
        """PidMode container:<ref> (compose's `pid: service:x`): the running container's namespace."""
        if not pid_mode.startswith("container:"):
            return None
        ref = pid_mode.split(":", 1)[1]
        try:
            other = self.get(ref)
        except NotFound as exc:
            raise NotFound(f"cannot join PID of a non running container: {ref}: {exc.message}") from None
        if not other.state.running or not other.state.pid:
            raise Conflict(f"container {other.id} is not running")  # dockerd's checkContainer
        return f"/proc/{other.state.pid}/ns/pid"


def process_env(cfg: dict[str, Any], home: str, link_env: list[str] = ()) -> list[str]:
    """Docker's additions to the container's environment: PATH, HOSTNAME, HOME, TERM, and the
    variables of legacy links (the container's own Env wins over those)."""
    env = list(cfg.get("Env") or [])
    own = {e.partition("=")[0] for e in env}
    env += [e for e in link_env if e.partition("=")[0] not in own]
    if not any(e.startswith("PATH=") for e in env):
        env.insert(0, DEFAULT_PATH)
    if not any(e.startswith("HOSTNAME=") for e in env):
        env.insert(1, f"HOSTNAME={cfg['Hostname']}")
    if not any(e.startswith("HOME=") for e in env):
        env.append(f"HOME={home or '/'}")
    if cfg.get("Tty") and not any(e.startswith("TERM=") for e in env):
        env.append("TERM=xterm")
    return env


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _bridge_ip(c: Container) -> str | None:
    """The container's address on the default bridge, from its last start."""
    for key in ("bridge", "default"):
        ip = (c.networks.get(key) or {}).get("IPAddress")
        if ip:
            return ip
    return None
