"""ContainerService: create, start, stop, attach, wait, remove — and survive the engine.

Where state lives:
- SQLite (table `containers`): the Docker-visible record, written before any
  side effect is acted on, so a crash leaves a record the next start repairs.
- `<data_root>/containers/<id>/`: the writable layer (upper, work), the
  rootfs mount point, conmon's log spool and the log driver's files, /etc files.
- `<exec_root>/containers/<id>/`: the OCI bundle and conmon's sockets, fifos,
  pid files and exit files (runtime state, gone after a reboot).

The engine never is the parent of a container: conmon is.  The engine learns
of an exit through a pidfd on conmon (no polling), and after its own restart
re-adopts every conmon still alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal as _signal
import socket
import time
from pathlib import Path
from typing import Any, AsyncIterator, Callable

from ...config import EngineConfig
from ...errors import Conflict, DockyardError, InvalidParameter, NotFound, NotModified, SystemError_
from ...runtime.conmon import Monitor
from ...runtime.runc import OCIRuntime
from ...network import ports
from ...network.ipamconfig import check_mac
from ...store import mounts
from ...store.usage import dir_size
from ...store.metadata import Database
from ..events import EventBus
from ..filters import Filters
from ..timeutil import parse_timestamp
from . import daemondefaults, links, listing, mountpoints, names, netsetup, restartpolicy, volumeplan
from .starterrors import exit_code_for, is_users_fault
from .bundle import BundleWriter
from .attach import AttachStream
from .fieldtypes import check_create, check_endpoint_settings, check_update
from .initlayer import mount_rootfs, sweep_templates
from .createspec import merge_config, network_mode, normalize_host_config, parse_signal
from .netplan import is_planned, network_refs, planned_networks
from .logs import LogQuery, LogRecord
from .logwiring import ContainerLogs
from .model import ZERO_TIME, Container, now_rfc3339, rfc3339_to_unix
from . import ipcshare

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS containers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created REAL NOT NULL,
    data TEXT NOT NULL
);
"""


class ContainerService:
    def __init__(self, config: EngineConfig, db: Database, events: EventBus, images: Any,
                 networks: Any, runtime: OCIRuntime, monitor: Monitor, cgroups: Any = None,
                 volumes: Any = None) -> None:
        self.config = config
        self.db = db
        self.events = events
        self.images = images
        self.networks = networks
        self.runtime = runtime
        self.monitor = monitor
        self.cgroups = cgroups
        self.volumes = volumes
        self.data_dir = config.data_root / "containers"
        self.run_dir = config.exec_root / "containers"
        self.init_templates = config.exec_root / "init-layers"  # see initlayer.ensure_init_layer
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        db.ensure_schema(SCHEMA)
        self._ctrs: dict[str, Container] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._exit_waiters: dict[str, list[asyncio.Future]] = {}
        self._remove_waiters: dict[str, list[asyncio.Future]] = {}
        self._pending_attach: dict[str, list[AttachStream]] = {}
        self._live_attach: dict[str, list[AttachStream]] = {}
        self._watch_fds: dict[str, int] = {}
        self._restart_tasks: dict[str, asyncio.Task] = {}
        # User operations (start, stop, restart, remove, pause) on one container run one
        # at a time; the state lock (_lock) is held only for state transitions, so exit
        # handling can run while a stop waits for the exit.
        self._op_locks: dict[str, asyncio.Lock] = {}
        # containers being restarted by hand: their stop is not an exit to act on
        self._manual_restart: set[str] = set()
        self._backoff: dict[str, float] = {}
        # containers whose runtime state is gone (not started since): teardown is skipped
        self._torn_down: set[str] = set()
        # file access (cp, export, diff, build) holding the rootfs mount of a container
        self._rootfs_users: dict[str, int] = {}
        # records start_service could not read: their files are kept
        self._unreadable: set[str] = set()
        # called with a container id once it is removed (exec sessions, ...)
        self.on_remove: list[Callable[[str], None]] = []
        self.health: Any = None  # HealthChecker, set by the Engine (it needs the exec service)
        self._bg: set[asyncio.Task] = set()
        self._closing = False
        images.set_usage_checker(self._image_users)
        self.logging = ContainerLogs(config, self.ctr_dir)
        self.bundles = BundleWriter(networks, volumes, cgroups, self.ctr_dir, self.get, config)
        networks.container_name = self._name_of
        networks.endpoint_links = self._endpoint_links
        volumes.users = self.volume_users

    # ------------------------------------------------------------------ store
    def save(self, c: Container) -> None:
        self._save(c)

    def _save(self, c: Container) -> None:
        if c.id not in self._ctrs:
            return  # removed meanwhile: never write its record back
        self.db.execute(
            "INSERT INTO containers(id, name, created, data) VALUES(?,?,?,?) "
            "ON CONFLICT(id) DO UPDATE SET name=excluded.name, data=excluded.data",
            (c.id, c.name, rfc3339_to_unix(c.created), json.dumps(c.to_row())),
        )

    def _lock(self, cid: str) -> asyncio.Lock:
        return self._locks.setdefault(cid, asyncio.Lock())

    def _op_lock(self, cid: str) -> asyncio.Lock:
        return self._op_locks.setdefault(cid, asyncio.Lock())

    async def _settle(self, c: Container) -> None:
        """Wait for an automatic start or an exit being handled, so state is final."""
        async with self._lock(c.id):
            pass

    def ctr_dir(self, cid: str) -> Path:
        return self.data_dir / cid

    def bundle_dir(self, cid: str) -> Path:
        return self.run_dir / cid

    def log_path(self, c: Container) -> str:
        """`LogPath` in inspect (json-file only, as dockerd)."""
        return self.logging.inspect_path(c)

    def get(self, ref: str) -> Container:
        """By full id, name (with or without /), or unique id prefix: Docker's order."""
        if not ref:
            raise NotFound("No such container: ")
        c = self._ctrs.get(ref)
        if c:
            return c
        name = ref.lstrip("/")
        for c in self._ctrs.values():
            if c.name == name:
                return c
        matches = [c for c in self._ctrs.values() if c.id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidParameter(f"multiple IDs found with provided prefix: {ref}")
        raise NotFound(f"No such container: {ref}")

    def all(self) -> list[Container]:
        return sorted(self._ctrs.values(), key=lambda c: c.created, reverse=True)

    def _name_of(self, cid: str) -> str | None:
        c = self._ctrs.get(cid)
        return c.name if c else None

    def _image_users(self, image_id: str) -> list[tuple[str, bool]]:
        return [(c.id, c.state.running) for c in self._ctrs.values() if c.image_id == image_id]

    # --------------------------------------------------------------- lifecycle
    async def start_service(self) -> None:
        """Load every container and reconcile it with what is really running."""
        for row in self.db.query("SELECT id, data FROM containers"):
            try:
                c = Container.from_row(json.loads(row["data"]))
            except (TypeError, ValueError, KeyError) as exc:
                # keep its files: a newer engine may read it, a person may repair it
                log.error("skipping unreadable record of container %s: %s", row["id"], exc)
                self._unreadable.add(row["id"])
                continue
            self._ctrs[c.id] = c
        await self.logging.resume(self._ctrs)  # the log daemon that outlived us, or one if spools wait
        live: set[str] = set()
        exited_while_away: list[Container] = []
        for c in list(self._ctrs.values()):
            if c.state.status == "removing":
                await self._finish_remove(c)
                continue
            if c.state.status in ("running", "paused") and self._conmon_alive(c):
                self._watch(c)
                if self.health is not None:
                    self.health.start(c)
                live.add(c.id)
                continue
            if c.state.status in ("running", "paused"):
                # exited while we were away: record how, tidy up
                await self._handle_exit(c, engine_restart=True)
                exited_while_away.append(c)
            elif c.state.status == "restarting":
                c.state.status = "exited"
                self._save(c)
        await self._repair_leftovers(live)
        for c in list(self._ctrs.values()):
            if c.id in live or c.id not in self._ctrs:
                continue
            if c in exited_while_away:
                await self._after_exit(c)
                continue
            if c.state.status == "exited" and restartpolicy.at_engine_start(
                    c.host_config.get("RestartPolicy") or {}, c.has_been_started, c.state.stopped_by_user):
                self._schedule_restart(c, delay=0)
            elif c.host_config.get("AutoRemove") and c.state.status in ("created", "exited", "dead"):
                # as dockerd's restore: an auto-removed container that is not running goes (one
                # created and never started, or one whose exit an engine stopped before removing)
                await self._remove_quietly(c.id)

    async def _repair_leftovers(self, live: set[str]) -> None:
        """Remove what a crash left: runc state, mounts and bundles of dead containers."""
        for cid in self.runtime.list_ids():
            if cid not in live:
                await self.runtime.delete(cid, force=True)
        for d in list(self.run_dir.iterdir()):
            if d.name not in live:
                shutil.rmtree(d, ignore_errors=True)
        sweep_templates(self.init_templates)
        for mp in mounts.mounts_under(self.data_dir):
            cid = Path(mp).parent.name
            if cid not in live:
                mounts.unmount(mp)
        for d in list(self.data_dir.iterdir()):
            if d.name not in self._ctrs and d.name not in self._unreadable:
                shutil.rmtree(d, ignore_errors=True)
        for pid, cid in _monitors_under(self.run_dir):
            if cid not in live:
                try:
                    os.kill(pid, _signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self.cgroups:
            for cid in _safe(lambda: self.cgroups.leftovers(live), []):
                _safe(lambda: self.cgroups.remove(cid), None)
        await self.networks.repair(live)

    async def shutdown(self) -> None:
        self._closing = True
        for t in list(self._restart_tasks.values()):
            t.cancel()
        if self.health is not None:
            self.health.stop_all()
        if not self.config.live_restore:
            await self._stop_all_for_shutdown()
        loop = asyncio.get_running_loop()
        for cid, fd in list(self._watch_fds.items()):
            loop.remove_reader(fd)
            os.close(fd)
        self._watch_fds.clear()

    async def _stop_all_for_shutdown(self) -> None:
        """live-restore off: each container stops with its own stop timeout, all within shutdown-timeout."""
        running = [c.id for c in self._ctrs.values() if c.state.running]
        limit = self.config.shutdown_timeout
        stops = asyncio.gather(*(self.stop(cid, by_user=False) for cid in running), return_exceptions=True)
        try:
            await asyncio.wait_for(stops, None if limit < 0 else limit)
        except asyncio.TimeoutError:
            log.warning("containers did not stop within shutdown-timeout (%ss): killing them", limit)
            await asyncio.gather(*(self.kill(cid, "SIGKILL") for cid in running
                                   if self._ctrs.get(cid) and self._ctrs[cid].state.running),
                                 return_exceptions=True)

    def _spawn(self, coro) -> asyncio.Task:
        t = asyncio.get_running_loop().create_task(coro)
        self._bg.add(t)
        t.add_done_callback(self._bg.discard)
        return t

    # ------------------------------------------------------------------ create
    async def create(self, name: str | None, body: dict[str, Any]) -> tuple[Container, list[str]]:
        if not isinstance(body, dict):
            raise InvalidParameter("invalid container config")
        check_create(body)
        image_ref = body.get("Image")
        if not image_ref or not isinstance(image_ref, str):
            raise InvalidParameter("No image was specified (config.Image is empty)")
        taken = {c.name for c in self._ctrs.values()}
        if name:
            name = names.validate(name)
            if name in taken:
                other = next(c for c in self._ctrs.values() if c.name == name)
                raise Conflict(
                    f'Conflict. The container name "/{name}" is already in use by container '
                    f'"{other.id}". You have to remove (or rename) that container to be able to reuse that name.')
        else:
            name = names.generate(taken)
        image = self.images.resolve(image_ref)
        config = merge_config(body, image.config)
        config["Image"] = image_ref
        host_config = daemondefaults.at_create(normalize_host_config(body.get("HostConfig")), self.config)
        self.logging.merge(host_config)
        ipcshare.resolve_at_create(host_config, self.get)
        mode = network_mode(host_config)
        if mode.startswith("container:"):
            target = self.get(mode.split(":", 1)[1])
            mode = f"container:{target.id}"
        elif mode not in ("bridge", "host", "none"):
            mode = self.networks.resolve(mode).name  # 404 for an unknown network
        for key, ep_cfg in ((body.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}).items():
            if isinstance(ep_cfg, dict):  # addresses outside the subnets, bad MACs: 400 now, not at start
                self.networks.check_endpoint(key, ep_cfg)
        if config.get("MacAddress"):  # the container-wide (pre-1.44) MAC goes to the same interface
            check_mac(config["MacAddress"])
        if mode == "host" and config.get("Hostname"):
            pass  # Docker allows it and keeps the host's UTS namespace
        user_defined = mode not in ("bridge", "host", "none") and not mode.startswith("container:")
        container_links = links.register(host_config, mode, user_defined, self.get)
        self._validate_mounts(host_config)
        volumeplan.plan(host_config, config)  # bad volume specs are 400s before anything is made
        ports.parse_requests(host_config.get("PortBindings"), config.get("ExposedPorts"),
                             bool(host_config.get("PublishAllPorts")))  # and bad port bindings
        if self.cgroups:
            from ...runtime.cgroups import normalize_resources

            # Docker checks resources at create and shows the normalised values
            host_config = normalize_resources(
                host_config, swap_accounting=self.cgroups.swap_accounting(),
                available_cpus=self.cgroups.available_cpus(), available_mems=self.cgroups.available_mems())
        cid = secrets.token_hex(32)
        while cid[:12].isdigit() or cid in self._ctrs:
            cid = secrets.token_hex(32)
        if not config.get("Hostname"):
            config["Hostname"] = socket.gethostname() if mode == "host" else cid[:12]
        entry = config.get("Entrypoint") or []
        cmd = config.get("Cmd") or []
        argv = list(entry) + list(cmd)
        c = Container(
            id=cid, name=name, created=now_rfc3339(), image_id=image.id, image_ref=image_ref,
            path=argv[0], args=argv[1:], config=config, host_config=host_config,
            networking_config=body.get("NetworkingConfig") or {}, network_mode=mode,
            links=container_links,
        )
        d = self.ctr_dir(cid)
        for sub in ("upper", "work", "rootfs"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        self._ctrs[cid] = c
        try:
            self._attach_volumes(c)
            self._save(c)
        except Exception:
            self._ctrs.pop(cid, None)
            shutil.rmtree(d, ignore_errors=True)
            raise
        self.events.publish("container", "create", cid, image=image_ref, name=name)
        warnings: list[str] = []
        return c, warnings

    def _validate_mounts(self, hc: dict[str, Any]) -> None:
        """What Docker checks at create; the spec builder checks the rest at start."""
        for m in hc.get("Mounts") or []:
            t = m.get("Type")
            if t not in ("bind", "tmpfs", "volume"):
                raise InvalidParameter(f"mount type {t!r} is not supported")
            if not str(m.get("Target", "")).startswith("/"):
                raise InvalidParameter("invalid mount config: Target must be an absolute path")
            if t == "bind":
                src = m.get("Source") or ""
                if not src.startswith("/"):
                    raise InvalidParameter("invalid mount config for type \"bind\": invalid mount path")
                if not os.path.exists(src) and not (m.get("BindOptions") or {}).get("CreateMountpoint"):
                    raise InvalidParameter(
                        f'invalid mount config for type "bind": bind source path does not exist: {src}')

    def _attach_volumes(self, c: Container) -> None:
        """Create (or find) every volume the container names, and its anonymous ones; take
        the mounts of the `--volumes-from` containers."""
        c.volumes_from = mountpoints.inherit(c.host_config.get("VolumesFrom"), self.get,
                                             volumeplan.own_destinations(c.host_config), own_id=c.id)
        for use in volumeplan.plan(c.host_config, c.config, {m["Target"] for m in c.volumes_from}):
            v = self.volumes.create(use.name)
            c.volumes[use.destination] = v.name
            if use.name is None:
                c.anonymous_volumes.append(v.name)
        for m in c.volumes_from:
            if m["Type"] == "volume":
                c.volumes[m["Target"]] = self.volumes.create(m["Source"]).name

    def _endpoint_links(self, cid: str, network_id: str) -> list[tuple[str, str]]:
        c = self._ctrs.get(cid)
        return links.endpoint_links(c, network_id, self.networks.same_network, self.get) if c else []

    def _refresh_link_parents(self, child: Container) -> None:
        """A linked child came up (maybe with a new address): its running parents' /etc/hosts
        follow, as dockerd updates the parents' hosts files."""
        for p in links.running_parents(self._ctrs.values(), child.id):
            self.bundles.refresh_etc_files(p)

    def remove_link(self, name: str) -> None:
        """`docker rm --link parent/alias`: the parent loses the link (its /etc/hosts too)."""
        c, alias = links.remove_link(name, self.get)
        c.links = [link for link in c.links if link["alias"] != alias]
        self._save(c)
        if c.state.status in ("running", "paused"):
            self.bundles.refresh_etc_files(c)

    def volume_users(self, name: str) -> list[str]:
        return [c.id for c in self._ctrs.values() if name in c.volumes.values()]

    # ------------------------------------------------------------------- start
    async def start(self, ref: str) -> None:
        c = self.get(ref)
        async with self._op_lock(c.id), self._lock(c.id):
            if c.id not in self._ctrs:
                raise NotFound(f"No such container: {ref}")
            if c.state.status == "paused":
                raise Conflict("cannot start a paused container, try unpause instead")
            if c.state.status in ("running", "restarting") and c.id not in self._restart_tasks:
                raise NotModified("container already started")
            if c.state.status == "removing":
                raise Conflict(f"container {c.id} is marked for removal and cannot be started")
            t = self._restart_tasks.pop(c.id, None)
            if t:
                t.cancel()
            c.state.stopped_by_user = False
            c.restart_count = 0
            self._backoff.pop(c.id, None)
            await self._start_locked(c)

    async def _start_locked(self, c: Container) -> None:
        cid = c.id
        bundle = self.bundle_dir(cid)
        cdir = self.ctr_dir(cid)
        rootfs = cdir / "rootfs"
        stage = "mount"
        net = netsetup.StartNetwork()
        self._torn_down.discard(cid)
        mounting: asyncio.Future | None = None
        try:
            bundle.mkdir(parents=True, exist_ok=True)
            if not mounts.is_mount_point(rootfs):
                # `run --rm`: the layer is deleted at exit, a crash included: never synced (as Podman);
                # mounted beside the network's setup (the two share nothing; the spec needs both)
                mounting = asyncio.ensure_future(asyncio.to_thread(
                    mount_rootfs, cdir, self.images.layer_dirs(c.image_id), self.init_templates,
                    bool(c.host_config.get("AutoRemove"))))
            stage = "network"
            try:
                await netsetup.setup(self.networks, c, self.get, net)
            finally:
                if mounting is not None:
                    await asyncio.wait([mounting])  # settled before anything is undone
            if mounting is not None:
                stage = "mount"
                mounting.result()
            stage = "spec"
            await asyncio.to_thread(self.bundles.write, c, bundle, rootfs, net.netns, net.ip, net.gateway)
            stage = "logging"
            spool, spool_max = await self.logging.prepare_start(c, c.image_ref)
            stage = "runtime"
            cfg = c.config
            net.begin_plugging()  # its first step comes after conmon's spawn, in monitor.create
            handle = await self.monitor.create(
                cid, c.name, bundle, spool,
                terminal=bool(cfg.get("Tty")), stdin=bool(cfg.get("OpenStdin")),
                leave_stdin_open=not cfg.get("StdinOnce") or bool(cfg.get("Tty")),
                log_size_max=spool_max,
            )
            c.state.pid = handle.container_pid
            c.state.conmon_pid = handle.conmon_pid
            # attach clients connect before the process runs, so no output is lost
            for st in self._pending_attach.pop(cid, []):
                try:
                    st.connect(bundle)
                    self._live_attach.setdefault(cid, []).append(st)
                except OSError:
                    st.end()
            stage = "network"
            await net.plugged()
            stage = "runtime"
            await self.runtime.start(cid, handle.container_pid)
        except BaseException as exc:
            if mounting is not None and mounting.done() and not mounting.cancelled():
                mounting.exception()  # retrieved: the network's error, raised first, is the one reported
            await net.settle()  # an interface being plugged ends before anything is undone
            await self._rollback_start(c, exc, stage)
            raise
        self.logging.started(c)
        c.state.status = "running"
        c.state.started_at = now_rfc3339()
        c.state.finished_at = ZERO_TIME if not c.has_been_started else c.state.finished_at
        c.state.error = ""
        c.state.exit_code = 0
        c.state.oom_killed = False
        c.has_been_started = True
        if self.health is not None:
            self.health.start(c)
        self._save(c)
        self._watch(c)
        self._refresh_link_parents(c)
        self.events.publish("container", "start", cid, image=c.image_ref, name=c.name)

    async def _rollback_start(self, c: Container, exc: BaseException, stage: str) -> None:
        msg = exc.message if isinstance(exc, DockyardError) else str(exc)
        log.info("start of %s failed at %s: %s", c.short_id, stage, msg)
        try:
            await self.runtime.delete(c.id, force=True)
        except Exception:
            pass
        conmon_pid = c.state.conmon_pid
        if conmon_pid and self._conmon_alive(c):
            try:
                os.kill(conmon_pid, _signal.SIGKILL)
            except ProcessLookupError:
                pass
        for st in self._pending_attach.pop(c.id, []) + self._live_attach.pop(c.id, []):
            st.close()
        await self._teardown_runtime(c)
        await self.logging.stopped(c.id)
        c.state.pid = 0
        c.state.conmon_pid = 0
        c.state.error = msg
        c.state.exit_code = exit_code_for(msg)
        if c.state.status not in ("exited", "created"):
            c.state.status = "exited" if c.has_been_started else "created"
        self._save(c)
        self.events.publish("container", "die", c.id, exitCode=str(c.state.exit_code),
                            image=c.image_ref, name=c.name)
        # whoever waits for this container to stop (a forced remove, `wait`) has its answer:
        # e.g. a remove that killed it between `runc create` and `runc start`
        self._resolve_exit_waiters(c.id)
        if c.host_config.get("AutoRemove"):
            # `docker run --rm` waits for the removal even when start failed
            self._spawn(self._remove_quietly(c.id))
        if is_users_fault(exc):
            # the user's command is at fault: Docker answers 400 for it
            raise InvalidParameter(msg) from exc

    async def connect_network(self, ref: str, network: str, endpoint_config: dict[str, Any]) -> None:
        """`docker network connect`: at once when running, at the next start otherwise."""
        from ...errors import Forbidden

        c = self.get(ref)
        if not isinstance(endpoint_config, dict):
            raise InvalidParameter("invalid EndpointConfig: expected an object")
        check_endpoint_settings(endpoint_config)  # Go's decoder: a wrong JSON type is a 400
        aliases = endpoint_config.get("Aliases") or []
        ipam = endpoint_config.get("IPAMConfig") or {}
        net = self.networks.resolve(network)
        if net.driver == "host" or c.network_mode == "host":
            raise InvalidParameter("container cannot be disconnected from host network or connected to host network")
        self.networks.check_endpoint(net, endpoint_config)
        if c.network_mode.startswith("container:"):
            raise InvalidParameter(
                "container sharing network namespace with another container or host cannot be connected to any other network")
        async with self._lock(c.id):
            running = c.state.status in ("running", "paused") and c.sandbox_path
            current = ([self.networks.resolve(n) for n in c.networks] if running
                       else [n for n, _ in planned_networks(self.networks, c, fallback=False)])
            if any(n.id == net.id for n in current):
                raise Forbidden(f"endpoint with name {c.name} already exists in network {net.name}")
            if current and (net.driver == "null" or any(n.driver == "null" for n in current)):
                # Docker's ErrConflictNoNetwork, once `none` itself is disconnected it no longer applies
                raise InvalidParameter(
                    "container cannot be connected to multiple networks with one of the networks in private (none) mode")
            if running:
                ep = await self.networks.connect(
                    c.id, net.name, c.sandbox_path, mac=endpoint_config.get("MacAddress") or None,
                    ip=ipam.get("IPv4Address") or None, aliases=list(aliases), name=c.name,
                    ip6=ipam.get("IPv6Address") or None, link_local=ipam.get("LinkLocalIPs") or (),
                    hostname=c.config.get("Hostname") or "")
                c.networks[net.name] = ep.to_docker(net.name)
            cfgs = {k: v for k, v in (c.networking_config.get("EndpointsConfig") or {}).items()
                    if not self.networks.same_network(k, net.id)}
            cfgs[net.name] = endpoint_config
            c.networking_config = {**c.networking_config, "EndpointsConfig": cfgs}
            self._save(c)

    async def disconnect_network(self, ref: str, network: str, force: bool = False) -> None:
        """`docker network disconnect`: the interface goes at once; the container will not rejoin."""
        from ...errors import Forbidden

        c = self.get(ref)
        net = self.networks.resolve(network)
        if net.driver == "host" or c.network_mode == "host":
            raise InvalidParameter("container cannot be disconnected from host network or connected to host network")
        async with self._lock(c.id):
            running = c.state.status in ("running", "paused") and c.sandbox_path
            if not (net.name in c.networks if running else is_planned(self.networks, c, net.id)):
                raise Forbidden(f"container {c.id} is not connected to network {net.name}")
            if running:
                await self.networks.disconnect(c.id, net.name)
            c.networks.pop(net.name, None)
            cfgs = {k: v for k, v in (c.networking_config.get("EndpointsConfig") or {}).items()
                    if not self.networks.same_network(k, net.id)}
            c.networking_config = {**c.networking_config, "EndpointsConfig": cfgs}
            if self.networks.same_network(c.network_mode, net.id):
                c.primary_detached = True  # not rejoined at the next start
            self._save(c)

    @contextlib.asynccontextmanager
    async def rootfs_in_use(self, c: Container) -> AsyncIterator[Path]:
        """The container's rootfs, mounted while the caller needs it (stopped containers too).

        Counted, and changed under the container's state lock, so a concurrent
        copy, a start or a stop never unmounts it under another user.
        """
        rootfs = self.ctr_dir(c.id) / "rootfs"
        async with self._lock(c.id):
            if c.id not in self._ctrs:
                raise NotFound(f"No such container: {c.id}")
            self._rootfs_users[c.id] = self._rootfs_users.get(c.id, 0) + 1
            try:
                if not mounts.is_mounted(rootfs):
                    cdir = self.ctr_dir(c.id)
                    await asyncio.to_thread(mount_rootfs, cdir, self.images.layer_dirs(c.image_id),
                                            self.init_templates)
            except BaseException:
                self._rootfs_users[c.id] -= 1
                raise
        try:
            yield rootfs
        finally:
            async with self._lock(c.id):
                left = self._rootfs_users.get(c.id, 1) - 1
                if left:
                    self._rootfs_users[c.id] = left
                else:
                    self._rootfs_users.pop(c.id, None)
                    if c.state.status not in ("running", "paused", "restarting"):
                        await asyncio.to_thread(_unmount_now, rootfs)

    # ------------------------------------------------------------ exit watching
    def _conmon_alive(self, c: Container) -> bool:
        pid = c.state.conmon_pid
        if not pid:
            return False
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            return False
        return bool(argv) and argv[0].endswith(b"conmon") and c.id.encode() in argv

    def _watch(self, c: Container) -> None:
        if c.id in self._watch_fds:
            return
        try:
            fd = os.pidfd_open(c.state.conmon_pid)
        except ProcessLookupError:
            self._spawn(self._on_monitor_exit(c.id))
            return
        self._watch_fds[c.id] = fd
        asyncio.get_running_loop().add_reader(fd, self._monitor_exited, c.id)

    def _monitor_exited(self, cid: str) -> None:
        fd = self._watch_fds.pop(cid, None)
        if fd is not None:
            asyncio.get_running_loop().remove_reader(fd)
            os.close(fd)
        self._spawn(self._on_monitor_exit(cid))

    async def _on_monitor_exit(self, cid: str) -> None:
        c = self._ctrs.get(cid)
        if c is None:
            return
        async with self._lock(cid):
            if c.state.status not in ("running", "paused"):
                return
            await self._handle_exit(c)
        await self._after_exit(c)

    async def _handle_exit(self, c: Container, engine_restart: bool = False) -> None:
        if self.health is not None:  # no check of a dead container while its undos run
            self.health.stop(c.id)
        # what conmon recorded, read before the undos take the bundle and the cgroups
        code = self.monitor.exit_code(c.id)
        bundle = self.bundle_dir(c.id)
        oom_killed = self.monitor.oom_killed(bundle) or (
            bool(self.cgroups) and _safe(lambda: self.cgroups.oom_killed(c.id), False))
        finished_at = self.monitor.exit_time(c.id)
        # the undos run while the log daemon writes the last output; the exit file stays
        # until the exit is saved (a crash before that handles the exit again at start)
        undo = asyncio.ensure_future(self._teardown_runtime(c, keep_exit=True))
        try:
            # conmon is gone: the log daemon writes its last output before anyone sees the
            # exit (a `logs -f` ends once the state says exited)
            await self.logging.stopped(c.id)
        finally:
            if not undo.done():
                await asyncio.wait([undo])
        c.state.oom_killed = oom_killed
        if code is None:
            code = 137 if c.state.oom_killed else 255
            if not c.state.error and engine_restart:
                c.state.error = "container monitor exited without an exit status"
        c.state.exit_code = code
        c.state.status = "exited"
        c.state.pid = 0
        c.state.conmon_pid = 0
        # the monitor stamped the exit: right even when we were down at the time
        c.state.finished_at = finished_at or now_rfc3339()
        self._save(c)
        for st in self._live_attach.pop(c.id, []):
            st.ended.set()
        await undo  # its error, as before, once the exit is saved
        self.monitor.clear_exit(c.id)
        self._save(c)
        self.events.publish("container", "die", c.id, exitCode=str(code), image=c.image_ref, name=c.name)
        self._resolve_exit_waiters(c.id)

    def _resolve_exit_waiters(self, cid: str) -> None:
        for fut in self._exit_waiters.pop(cid, []):
            if not fut.done():
                fut.set_result(None)

    async def _teardown_runtime(self, c: Container, keep_exit: bool = False) -> None:
        """Undo what start did: runc state, network, rootfs mount, bundle (once per start);
        conmon's exit file too, unless `keep_exit` (the exit is not saved yet)."""
        ipcshare.release(c, self.ctr_dir(c.id))  # a shareable /dev/shm (idempotent)
        if c.id in self._torn_down:
            return
        # independent undos, side by side (each waits on the kernel, the disk or runc)
        steps = [self._delete_runtime_state(c), self._discard(self.bundle_dir(c.id))]
        if not c.network_mode.startswith("container:"):
            # disconnects every endpoint; veths are deleted in the background
            steps.append(_quiet(self.networks.release_sandbox(c.id)))
        if not self._rootfs_users.get(c.id):  # `docker cp` or export still reading it
            steps.append(asyncio.to_thread(mounts.unmount, self.ctr_dir(c.id) / "rootfs"))
        failed = [r for r in await asyncio.gather(*steps, return_exceptions=True) if isinstance(r, BaseException)]
        c.sandbox_path = None
        if failed:
            raise failed[0]
        if not keep_exit:
            self.monitor.clear_exit(c.id)
        self._torn_down.add(c.id)

    async def _discard(self, d: Path) -> None:
        """Remove a directory of ours: renamed now, deleted after the reply (`run --rm` waits for
        "removed"). A crash leaves the renamed one, which engine start removes (it names no container)."""
        trash = d.with_name(f".removed-{d.name}-{secrets.token_hex(4)}")
        try:
            os.rename(d, trash)  # one metadata write, as the log config's: no thread hop (~0.3 ms)
        except FileNotFoundError:
            return
        except OSError:
            await asyncio.to_thread(shutil.rmtree, d, True)
        else:
            self._spawn(asyncio.to_thread(shutil.rmtree, trash, True))

    async def _delete_runtime_state(self, c: Container) -> None:
        try:
            await self.runtime.delete(c.id, force=True)
        except Exception as exc:
            log.warning("runc delete %s: %s", c.short_id, exc)
        if self.cgroups:
            _safe(lambda: self.cgroups.remove(c.id), None)

    async def _after_exit(self, c: Container) -> None:
        if c.id in self._manual_restart:
            return  # `docker restart` starts it again itself
        if c.host_config.get("AutoRemove"):
            await self._remove_quietly(c.id)
            return
        if self._should_restart(c):
            self._schedule_restart(c)

    # ---------------------------------------------------------- restart policy
    def _should_restart(self, c: Container) -> bool:
        return not self._closing and restartpolicy.after_exit(
            c.host_config.get("RestartPolicy") or {}, c.state.exit_code, c.restart_count,
            c.state.stopped_by_user)

    def _schedule_restart(self, c: Container, delay: float | None = None) -> None:
        if delay is None:
            ran = time.time() - rfc3339_to_unix(c.state.started_at)
            delay, self._backoff[c.id] = restartpolicy.backoff(ran, self._backoff.get(c.id))
        c.state.status = "restarting"
        self._save(c)
        self._restart_tasks[c.id] = self._spawn(self._restart_after(c, delay))

    async def _restart_after(self, c: Container, delay: float) -> None:
        try:
            await asyncio.sleep(delay)
            async with self._lock(c.id):
                if self._restart_tasks.get(c.id) is not asyncio.current_task():
                    return
                self._restart_tasks.pop(c.id, None)
                if c.id not in self._ctrs or c.state.status not in ("restarting", "exited"):
                    return
                c.restart_count += 1
                try:
                    await self._start_locked(c)
                except DockyardError as exc:
                    log.warning("restart of %s failed: %s", c.short_id, exc.message)
                    c.state.status = "exited"
                    self._save(c)
                    if self._should_restart(c):
                        self._schedule_restart(c)
                    return
            self.events.publish("container", "restart", c.id, image=c.image_ref, name=c.name)
        except asyncio.CancelledError:
            pass

    # ------------------------------------------------------- stop, kill, pause
    async def stop(self, ref: str, timeout: int | None = None, sig: str | None = None,
                   by_user: bool = True) -> None:
        c = self.get(ref)
        async with self._op_lock(c.id):
            await self._stop(c, timeout, sig, by_user)

    async def _stop(self, c: Container, timeout: int | None, sig: str | None, by_user: bool) -> None:
        t = self._restart_tasks.pop(c.id, None)
        if t:
            t.cancel()
        await self._settle(c)  # an automatic restart in flight finishes first
        if c.state.status == "restarting":  # waiting out its back-off: no process to stop
            c.state.status = "exited"
            c.state.stopped_by_user = by_user
            self._save(c)
            return
        if not c.state.running:
            raise NotModified("container already stopped")
        c.state.stopped_by_user = by_user
        self._save(c)
        signo = parse_signal(sig or c.config.get("StopSignal") or None)
        if timeout is None:
            st = c.config.get("StopTimeout")
            timeout = 10 if st is None else int(st)
        waiter = self._exit_future(c.id)
        if c.state.status == "paused":
            await _quiet(self.runtime.resume(c.id))
        try:
            await self.runtime.kill(c.id, signo)
        except DockyardError:
            pass
        self.events.publish("container", "kill", c.id, signal=str(signo), image=c.image_ref, name=c.name)
        try:
            if timeout < 0:
                await asyncio.shield(waiter)
            else:
                await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except asyncio.TimeoutError:
            await self._kill_hard(c)
            await asyncio.wait_for(asyncio.shield(waiter), 30)
        self.events.publish("container", "stop", c.id, image=c.image_ref, name=c.name)

    async def _kill_hard(self, c: Container) -> None:
        try:
            await self.runtime.kill(c.id, _signal.SIGKILL, all_processes=True)
        except DockyardError:
            if c.state.pid:
                try:
                    os.kill(c.state.pid, _signal.SIGKILL)
                except ProcessLookupError:
                    pass

    async def kill(self, ref: str, sig: str | None = None) -> None:
        c = self.get(ref)
        signo = parse_signal(sig, default=_signal.SIGKILL)
        if c.state.status not in ("running", "paused"):
            raise Conflict(f"Cannot kill container: {ref}: Container {c.id} is not running")
        if signo == _signal.SIGKILL:
            c.state.stopped_by_user = True
            self._save(c)
        await self.runtime.kill(c.id, signo, all_processes=signo == _signal.SIGKILL)
        self.events.publish("container", "kill", c.id, signal=str(signo), image=c.image_ref, name=c.name)

    async def restart(self, ref: str, timeout: int | None = None, sig: str | None = None) -> None:
        c = self.get(ref)
        async with self._op_lock(c.id):
            self._manual_restart.add(c.id)  # no auto-remove, no restart policy for this stop
            try:
                if c.state.running:
                    try:
                        await self._stop(c, timeout, sig, by_user=True)
                    except NotModified:
                        pass
                async with self._lock(c.id):
                    if c.id not in self._ctrs:
                        raise NotFound(f"No such container: {ref}")
                    if not c.state.running:
                        c.state.stopped_by_user = False
                        await self._start_locked(c)
            finally:
                self._manual_restart.discard(c.id)
        self.events.publish("container", "restart", c.id, image=c.image_ref, name=c.name)

    async def pause(self, ref: str) -> None:
        c = self.get(ref)
        async with self._op_lock(c.id), self._lock(c.id):
            if c.state.status == "paused":
                raise Conflict(f"Container {c.id} is already paused")
            if c.state.status != "running":
                raise Conflict(f"Container {c.id} is not running")
            await self.runtime.pause(c.id)
            c.state.status = "paused"
            self._save(c)
        self.events.publish("container", "pause", c.id, image=c.image_ref, name=c.name)

    async def unpause(self, ref: str) -> None:
        c = self.get(ref)
        async with self._op_lock(c.id), self._lock(c.id):
            if c.state.status != "paused":
                raise Conflict(f"Container {c.id} is not paused")
            await self.runtime.resume(c.id)
            c.state.status = "running"
            self._save(c)
        self.events.publish("container", "unpause", c.id, image=c.image_ref, name=c.name)

    # -------------------------------------------------------------------- wait
    def _exit_future(self, cid: str) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        self._exit_waiters.setdefault(cid, []).append(fut)
        return fut

    def register_wait(self, ref: str, condition: str) -> Callable[[], Any]:
        """Register now (before the response headers go out); await the result later."""
        c = self.get(ref)
        if condition not in ("", "not-running", "next-exit", "removed"):
            raise InvalidParameter(f"invalid condition: \"{condition}\"")
        condition = condition or "not-running"
        if condition == "removed":
            fut = asyncio.get_running_loop().create_future()
            self._remove_waiters.setdefault(c.id, []).append(fut)
        elif condition == "not-running" and not c.state.running:
            fut = asyncio.get_running_loop().create_future()
            fut.set_result(None)
        else:
            fut = self._exit_future(c.id)

        async def result() -> dict[str, Any]:
            await fut
            if condition != "removed" and c.state.status == "restarting":
                pass
            err = {"Message": c.state.error} if c.state.error else None
            return {"StatusCode": c.state.exit_code, "Error": err}

        return result

    # ------------------------------------------------------------------ remove
    async def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        c = self.get(ref)
        async with self._op_lock(c.id):
            if c.id not in self._ctrs:
                return  # removed while we waited (auto-remove)
            if c.state.status == "removing":
                raise Conflict(f"removal of container {c.id} is already in progress")
            if not force and c.state.running:
                what = {"paused": "is paused and must be unpaused first",
                        "restarting": "is restarting: stop the container before removing or force remove",
                        }.get(c.state.status, "is running: stop the container before removing or force remove")
                raise Conflict(f"cannot remove container \"/{c.name}\": container {what}")
            t = self._restart_tasks.pop(c.id, None)
            if t:
                t.cancel()
            await self._settle(c)  # an automatic start in flight ends first: then it can be killed
            if c.state.status in ("running", "paused"):
                waiter = self._exit_future(c.id)
                c.state.stopped_by_user = True
                if c.state.status == "paused":
                    await _quiet(self.runtime.resume(c.id))
                await self._kill_hard(c)
                try:
                    await asyncio.wait_for(asyncio.shield(waiter), 30)
                except asyncio.TimeoutError:
                    raise SystemError_(f"could not kill running container {c.id}, cannot remove") from None
            async with self._lock(c.id):
                if c.id not in self._ctrs:
                    return
                c.state.status = "removing"
                self._save(c)
                await self._finish_remove(c)
        self._op_locks.pop(c.id, None)
        if volumes:
            for name in c.anonymous_volumes:
                try:
                    self.volumes.remove(name)
                except (NotFound, Conflict):
                    pass  # gone already, or another container mounts it too

    async def _remove_quietly(self, cid: str) -> None:
        try:
            await self.remove(cid, force=True, volumes=True)  # as dockerd's AutoRemove
        except DockyardError as exc:
            log.warning("auto-remove of %s: %s", cid[:12], exc.message)

    async def _finish_remove(self, c: Container) -> None:
        for st in self._pending_attach.pop(c.id, []) + self._live_attach.pop(c.id, []):
            st.end()  # attach clients waiting for a start that will never come
        await self._teardown_runtime(c)
        await self.logging.stopped(c.id)
        await self._discard(self.ctr_dir(c.id))
        self.db.execute("DELETE FROM containers WHERE id=?", (c.id,))
        self._ctrs.pop(c.id, None)
        self._backoff.pop(c.id, None)
        self._torn_down.discard(c.id)
        self.images.release_container(c.id)
        for hook in self.on_remove:
            hook(c.id)
        self._locks.pop(c.id, None)
        self.events.publish("container", "destroy", c.id, image=c.image_ref, name=c.name)
        for fut in self._remove_waiters.pop(c.id, []) + self._exit_waiters.pop(c.id, []):
            if not fut.done():
                fut.set_result(None)

    async def prune(self, filters: Filters) -> tuple[list[str], int]:
        filters.validate({"until", "label", "label!"})
        until = parse_timestamp(filters.get("until")[-1]) if filters.get("until") else None
        deleted, space = [], 0
        for c in list(self._ctrs.values()):
            if c.state.running or c.state.status == "removing":
                continue
            if until is not None and rfc3339_to_unix(c.created) >= until:
                continue
            if not filters.match_labels(c.config.get("Labels")):
                continue
            if filters.excluded_by_labels(c.config.get("Labels")):
                continue
            space += await asyncio.to_thread(dir_size, self.ctr_dir(c.id) / "upper")
            await self.remove(c.id)
            deleted.append(c.id)
        self.events.publish("container", "prune", "", reclaimed=str(space))
        return deleted, space

    # --------------------------------------------------------- rename, update
    async def rename(self, ref: str, new: str) -> None:
        c = self.get(ref)
        if not new:
            raise InvalidParameter("Neither old nor new names may be empty")
        new = names.validate(new)
        if new == c.name:
            raise InvalidParameter("Renaming a container with the same name as its current name")
        if any(o.name == new for o in self._ctrs.values()):
            other = next(o for o in self._ctrs.values() if o.name == new)
            raise Conflict(f'Conflict. The container name "/{new}" is already in use by container '
                           f'"{other.id}". You have to remove (or rename) that container to be able to reuse that name.')
        old = c.name
        c.name = new
        self._save(c)
        self.events.publish("container", "rename", c.id, oldName=f"/{old}", name=new, image=c.image_ref)

    async def update(self, ref: str, body: dict[str, Any]) -> list[str]:
        from ...runtime import update as rupdate

        c = self.get(ref)
        check_update(body)
        cg = self.cgroups
        swap = cg.swap_accounting() if cg else True
        merged = rupdate.merge_update(
            c.host_config, body, swap_accounting=swap,
            available_cpus=cg.available_cpus() if cg else None, available_mems=cg.available_mems() if cg else None)
        hc = normalize_host_config({**c.host_config, **merged})
        if hc["RestartPolicy"]["Name"] not in ("no", "") and hc.get("AutoRemove"):
            raise InvalidParameter(
                "Restart policy cannot be updated because AutoRemove is enabled for the container")
        if c.state.status in ("running", "paused"):
            res = rupdate.runc_update_resources(
                hc, body, version=int(getattr(cg, "version", 1)) if cg else 1,
                blkio_weight=cg.blkio_weight_supported() if cg else False, swap_accounting=swap)
            if res:
                try:
                    await self.runtime.update(c.id, res)
                except SystemError_ as exc:
                    # the kernel refused the client's values (e.g. a real-time runtime the parent
                    # cgroup has no budget for): their input, so a 400, with runc's reason
                    raise InvalidParameter(f"Cannot update container {c.id}: {exc.message}") from None
        c.host_config = hc
        self._save(c)
        self.events.publish("container", "update", c.id, image=c.image_ref, name=c.name)
        return []

    async def commit(self, ref: str, *, repo: str | None, tag: str | None, comment: str, author: str,
                     pause: bool, changes: list[str], config: dict[str, Any] | None) -> str:
        """`docker commit`: a new image from the container's writable layer."""
        c = self.get(ref)
        if config is not None:
            check_create(config)
        cfg = {**c.config, **{k: v for k, v in (config or {}).items() if v is not None}}
        # no start, stop, pause or removal in between; the snapshot is consistent
        async with self._op_lock(c.id):
            paused = pause and await self._freeze_for_commit(c)
            try:
                image = await self.images.commit_layer(
                    self.ctr_dir(c.id) / "upper", c.image_id, cfg, container_id=c.id,
                    created_by=" ".join([c.path, *c.args]), repo=repo, tag=tag, changes=changes,
                    comment=comment, author=author)
            finally:
                if paused:
                    await _quiet(self.runtime.resume(c.id))
        self.events.publish("container", "commit", c.id, image=c.image_ref, name=c.name)
        return image.id

    async def _freeze_for_commit(self, c: Container) -> bool:
        """Pause a running container for a commit; False when there is nothing to pause.

        The process may end between our look at the state and runc's pause (its exit not yet
        recorded): then nothing writes to the layer any more and the commit goes on unpaused.
        """
        async with self._lock(c.id):
            if c.state.status != "running":
                return False
            try:
                await self.runtime.pause(c.id)
                return True
            except (Conflict, NotFound):
                st = await self.runtime.state(c.id)
                if st is not None and st.get("status") in ("running", "paused"):
                    raise
                return False

    # ------------------------------------------------------- attach and logs
    async def attach(self, ref: str, *, stdin: bool, stdout: bool, stderr: bool,
                     detach_keys: bytes) -> tuple[Container, AttachStream]:
        c = self.get(ref)
        st = AttachStream(stdin=stdin and bool(c.config.get("OpenStdin")), stdout=stdout,
                          stderr=stderr, tty=bool(c.config.get("Tty")), detach_keys=detach_keys)
        if c.state.conmon_pid:  # the monitor is up (also between `runc create` and `runc start`)
            try:
                st.connect(self.bundle_dir(c.id))
                self._live_attach.setdefault(c.id, []).append(st)
            except OSError:
                st.end()
        else:
            self._pending_attach.setdefault(c.id, []).append(st)
        return c, st

    def detach(self, cid: str, st: AttachStream) -> None:
        for table in (self._pending_attach, self._live_attach):
            lst = table.get(cid)
            if lst and st in lst:
                lst.remove(st)
        st.close()

    def resize(self, ref: str, height: int, width: int) -> None:
        c = self.get(ref)
        if c.state.status not in ("running", "paused"):
            raise Conflict(f"Container {c.id} is not running")
        if height < 0 or width < 0 or height > 1000 or width > 1000:
            raise InvalidParameter("invalid terminal size")
        self.monitor.resize(self.bundle_dir(c.id), height, width)

    def logs(self, ref: str, q: LogQuery) -> tuple[Container, AsyncIterator[LogRecord]]:
        c = self.get(ref)
        return c, self.logging.read(c, q, lambda: c.state.running and c.id in self._ctrs)

    # ----------------------------------------------------------------- listing
    def list(self, *, all: bool = False, limit: int = -1, filters: Filters | None = None) -> list[Container]:
        return listing.select(self._ctrs.values(), filters or Filters(), all=all, limit=limit,
                              get=self.get, image_id=self._ancestor_id,
                              networks_of=lambda c: network_refs(self.networks, c))

    def _ancestor_id(self, ref: str) -> str | None:
        try:
            return self.images.resolve(ref).id
        except NotFound:
            return None

    def size_rw(self, c: Container) -> int:
        return dir_size(self.ctr_dir(c.id) / "upper")

    def counts(self) -> dict[str, int]:
        out = {"running": 0, "paused": 0, "stopped": 0}
        for c in self._ctrs.values():
            if c.state.status == "paused":
                out["paused"] += 1
            elif c.state.status in ("running", "restarting"):
                out["running"] += 1
            else:
                out["stopped"] += 1
        return out



def _unmount_now(target: Path) -> None:
    """A full unmount (the next mount of the same upper dir must not overlap this one)."""
    try:
        mounts.unmount(target, lazy=False)
    except OSError:
        mounts.unmount(target, lazy=True)


def _monitors_under(run_dir: Path) -> list[tuple[int, str]]:
    """(pid, container id) of every conmon whose bundle lies in our run dir."""
    marker = str(run_dir).encode() + b"/"
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if not argv or not argv[0].endswith(b"conmon"):
            continue
        for i, a in enumerate(argv[:-1]):
            if a == b"-b" and argv[i + 1].startswith(marker):
                out.append((int(d), argv[i + 1][len(marker):].decode().split("/")[0]))
    return out




def _safe(fn, default):
    try:
        return fn()
    except Exception:
        return default


async def _quiet(coro) -> None:
    try:
        await coro
    except Exception as exc:
        log.debug("ignored during teardown: %s", exc)
