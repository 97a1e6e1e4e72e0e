"""The Engine object that wires stores, drivers and services, and the daemon's main loop."""

from __future__ import annotations

import asyncio
import functools
import logging
import os

import signal
import socket
import ssl
import time
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from ..config import EngineConfig
from ..errors import DockyardError
from .listeners import prepare_unix
from .sdnotify import notify
from ..store.metadata import Database
from .events import EventBus

if TYPE_CHECKING:
    from ..daemonconfig import Loaded
    from .containers.archive import ContainerFiles
    from .distribution import DistributionService

log = logging.getLogger(__name__)


class Engine:
    """Every service of one engine instance; the API reaches them through this."""

    def __init__(self, config: EngineConfig) -> None:
        from ..network.service import NetworkService
        from ..runtime import cgroups
        from ..runtime.conmon import Monitor
        from ..runtime.runc import OCIRuntime
        from .containers.service import ContainerService
        from .containers.health import HealthChecker
        from .exec import ExecService
        from .volumes import VolumeService
        from .images import ImageService

        self.config = config
        self.started = time.time()
        config.ensure_dirs()
        self.db = Database(config.db_path)
        self.events = EventBus()
        self.images = ImageService(config, self.db, self.events)
        self.networks = NetworkService(config, self.db, self.events)
        self.runtime = OCIRuntime(config.runtime, config.exec_root / "runc", self.runtime_binary)
        self.monitor = Monitor(config.conmon, self.runtime.binary, self.runtime.root,
                               config.exec_root / "exits", self.runtime_binary)
        self.cgroups = cgroups.detect(cgroups.engine_parent(config.exec_root))
        self.volumes = VolumeService(config.data_root, self.db, self.events)
        self.containers = ContainerService(config, self.db, self.events, self.images, self.networks,
                                           self.runtime, self.monitor, self.cgroups, self.volumes)
        self.execs = ExecService(self.containers, self.monitor, config.exec_root / "exec")
        self.containers.on_remove.append(self.execs.forget_container)
        self.containers.health = HealthChecker(self.containers, self.execs)
        self.metrics = None  # set by serve() with metrics-addr (engine/metrics.py)

    # made by their first use, so an idle engine holds neither the registry client nor the tar code
    @functools.cached_property
    def distribution(self) -> "DistributionService":
        from .distribution import DistributionService

        return DistributionService(self.images, self.config)

    @functools.cached_property
    def files(self) -> "ContainerFiles":
        from .containers.archive import ContainerFiles

        return ContainerFiles(self.containers)

    @functools.cached_property
    def builder(self):  # type: ignore[no-untyped-def]
        """The build service, made by the first build: its Dockerfile frontend is not idle-engine weight."""
        from .build import BuildService

        return BuildService(self)

    def runtime_binary(self, cid: str) -> str:
        """The runtime binary of a container (by id), as `runtimes` and its HostConfig.Runtime say."""
        from .containers.daemondefaults import runtime_binary

        name = None
        if hasattr(self, "containers"):  # runc calls made while the engine is being built use runc
            try:
                name = self.containers.get(cid).host_config.get("Runtime")  # a full id: a dict lookup
            except DockyardError:
                pass
        return runtime_binary(name, self.config)

    async def start(self) -> None:
        await self.images.start()
        await self.networks.start()
        await self.containers.start_service()

    async def shutdown(self) -> None:
        await self.containers.shutdown()
        running = any(c.state.running for c in self.containers.all())
        await self.networks.shutdown(keep=running)
        if not running:
            self.volumes.unmount_all()
            self.cgroups.remove_parent()  # the host as it was: no empty dockyard-<hash> left
            await self.containers.logging.daemon.shutdown()  # nothing left to log for
        else:
            self.containers.logging.daemon.close()  # it goes on logging for them
        self.db.close()


def _release_start_garbage() -> None:
    import gc

    from .memory import release_freed

    gc.collect()
    release_freed()


def build_app(engine: Engine) -> web.Application:
    from ..api import app as api_app

    return api_app.create_app(engine)


async def serve(loaded: "Loaded", stop: asyncio.Event, reload_requests: asyncio.Queue) -> None:
    from . import listeners
    from .pidfile import PidFile

    config = loaded.config
    # settings errors end the start before anything touches the host
    ctx = _tls_context(config)
    try:
        planned = listeners.plan(config, ctx)
        gid = listeners.socket_gid(config) if any(p.kind == "unix" for p in planned) else 0
    except listeners.ListenError as exc:
        raise SystemExit(str(exc)) from None
    pid = PidFile(config.pidfile_path)
    pid.acquire()
    try:
        await _serve(loaded, stop, reload_requests, planned, gid, ctx)
    finally:
        pid.release()


async def _serve(loaded, stop, reload_requests, planned, gid, ctx) -> None:
    from .reload import Reloader

    config = loaded.config
    engine = Engine(config)
    if config.metrics_addr:  # (not reloadable) prometheus_client stays out of other engines
        from .metrics import Metrics

        engine.metrics = Metrics(engine)
    await engine.start()
    app = build_app(engine)
    runner = web.AppRunner(app, handle_signals=False, access_log=None,
                           shutdown_timeout=1.0)
    await runner.setup()
    unix_paths = []
    for lst in planned:
        if lst.kind == "unix":
            sock = prepare_unix(lst.path, gid)
            unix_paths.append(lst.path)
            site = web.SockSite(runner, sock, backlog=listen_backlog())
        elif lst.kind == "tcp":
            site = web.TCPSite(runner, lst.addr[0], lst.addr[1], ssl_context=ctx,
                               backlog=listen_backlog())
        else:  # fd://: TLS applies to activated TCP sockets, as for tcp://
            tcp = lst.sock.family in (socket.AF_INET, socket.AF_INET6)
            site = web.SockSite(runner, lst.sock, ssl_context=ctx if tcp else None,
                                 backlog=listen_backlog())
        await site.start()
    metrics_runner = await engine.metrics.serve(config.metrics_addr) if config.metrics_addr else None
    log.info("dockyard engine listening on %s", ", ".join(config.hosts))
    engine.events.publish("daemon", "start", "dockyard")
    notify(f"READY=1\nMAINPID={os.getpid()}")
    # start-up's garbage (import and compile temporaries, the reconcile) back to the kernel: ~2 MiB
    await asyncio.to_thread(_release_start_garbage)
    reloader = Reloader(engine, loaded.flags)
    reloading = asyncio.get_running_loop().create_task(reloader.run(reload_requests))
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        notify("STOPPING=1")
        reloading.cancel()
        if metrics_runner is not None:
            await metrics_runner.cleanup()
        await runner.cleanup()
        await engine.shutdown()
        for path in unix_paths:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


def listen_backlog() -> int:
    """The kernel's somaxconn, as dockerd listens (aiohttp's default of 128 turned
    clients away with EAGAIN when a few hundred `docker run` arrived at once)."""
    try:
        return max(128, int(Path("/proc/sys/net/core/somaxconn").read_text()))
    except (OSError, ValueError):
        return 4096


def _tls_context(config: EngineConfig) -> ssl.SSLContext | None:
    if not (config.tls_cert and config.tls_key) or config.tls is False:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(config.tls_cert, config.tls_key)
        if config.tls_verify and not config.tls_cacert:
            # dockerd refuses this too: "verify" without a CA would accept any client
            raise SystemExit("--tlsverify needs --tlscacert to check client certificates against")
        if config.tls_verify:
            ctx.load_verify_locations(config.tls_cacert)
            ctx.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise SystemExit(f"could not load the TLS certificates: {exc}") from None
    return ctx


def run_daemon(loaded: "Loaded") -> int:
    from .memory import one_arena

    one_arena()

    async def main() -> None:
        stop = asyncio.Event()
        reloads: asyncio.Queue = asyncio.Queue()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, reloads.put_nowait, None)
        await serve(loaded, stop, reloads)

    asyncio.run(main())
    return 0
