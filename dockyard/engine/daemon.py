"""The Engine object that wires stores, drivers and services, and the daemon's main loop."""

from __future__ import annotations

import asyncio
import logging
import os

import signal
import ssl
import time
from pathlib import Path

from aiohttp import web

from ..config import EngineConfig
from ..store.metadata import Database
from .events import EventBus

log = logging.getLogger(__name__)


class Engine:
    """Every service of one engine instance; the API reaches them through this."""

    def __init__(self, config: EngineConfig) -> None:
        from ..network.service import NetworkService
        from ..runtime import cgroups
        from ..runtime.conmon import Monitor
        from ..runtime.runc import OCIRuntime
        from .containers.service import ContainerService
        from .containers.archive import ContainerFiles
        from .containers.health import HealthChecker
        from .build import BuildService
        from .distribution import DistributionService
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
        self.runtime = OCIRuntime(config.runtime, config.exec_root / "runc")
        self.monitor = Monitor(config.conmon, self.runtime.binary, self.runtime.root,
                               config.exec_root / "exits")
        self.cgroups = cgroups.detect()
        self.volumes = VolumeService(config.data_root, self.db, self.events)
        self.containers = ContainerService(config, self.db, self.events, self.images, self.networks,
                                           self.runtime, self.monitor, self.cgroups, self.volumes)
        self.execs = ExecService(self.containers, self.monitor, config.exec_root / "exec")
        self.containers.on_remove.append(self.execs.forget_container)
        self.containers.health = HealthChecker(self.containers, self.execs)
        self.files = ContainerFiles(self.containers)
        self.distribution = DistributionService(self.images)
        self.builder = BuildService(self)

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
            await self.containers.logging.daemon.shutdown()  # nothing left to log for
        else:
            self.containers.logging.daemon.close()  # it goes on logging for them
        self.db.close()


def build_app(engine: Engine) -> web.Application:
    from ..api import app as api_app

    return api_app.create_app(engine)


async def serve(config: EngineConfig, stop: asyncio.Event) -> None:
    # settings errors end the start before anything touches the host
    ctx = _tls_context(config)
    for host in config.hosts:
        if not host.startswith(("unix://", "tcp://", "http://", "https://")):
            raise SystemExit(f"unsupported host {host!r}: use unix:///path or tcp://addr:port")
    engine = Engine(config)
    await engine.start()
    app = build_app(engine)
    runner = web.AppRunner(app, handle_signals=False, access_log=None,
                           shutdown_timeout=1.0)
    await runner.setup()
    sites = []
    for host in config.hosts:
        if host.startswith("unix://"):
            path = host[len("unix://"):]
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            if os.path.exists(path):
                os.unlink(path)
            site = web.UnixSite(runner, path)
            await site.start()
            os.chmod(path, 0o660)
        elif host.startswith(("tcp://", "http://", "https://")):
            addr = host.split("://", 1)[1]
            h, _, p = addr.rpartition(":")
            site = web.TCPSite(runner, h or "127.0.0.1", int(p or (2376 if ctx else 2375)),
                               ssl_context=ctx)
            await site.start()
        else:
            raise SystemExit(f"unsupported host {host!r}: use unix:///path or tcp://addr:port")
        sites.append(site)
    log.info("dockyard engine listening on %s", ", ".join(config.hosts))
    engine.events.publish("daemon", "start", "dockyard")
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        await runner.cleanup()
        await engine.shutdown()
        for host in config.hosts:
            if host.startswith("unix://"):
                try:
                    os.unlink(host[len("unix://"):])
                except FileNotFoundError:
                    pass


def _tls_context(config: EngineConfig) -> ssl.SSLContext | None:
    if not (config.tls_cert and config.tls_key):
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(config.tls_cert, config.tls_key)
    if config.tls_verify and not config.tls_cacert:
        # dockerd refuses this too: "verify" without a CA would accept any client
        raise SystemExit("--tlsverify needs --tlscacert to check client certificates against")
    if config.tls_verify:
        ctx.load_verify_locations(config.tls_cacert)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def run_daemon(config: EngineConfig) -> int:
    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(config, stop)

    asyncio.run(main())
    return 0
