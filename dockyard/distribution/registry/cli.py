"""`dockyard registry [--addr A] --root DIR [--config F] [--tls-cert C --tls-key K]`
and `dockyard registry gc --root DIR [--config F] [--dry-run] [--grace SECONDS]`."""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import logging
import random
import signal
import ssl
import sys
from typing import TYPE_CHECKING

from .config import ConfigError, RegistryConfig

if TYPE_CHECKING:
    from aiohttp import web

    from .service import Registry


def _serve_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dockyard registry", description="Run the OCI distribution registry")
    p.add_argument("--addr", default=None, help="HOST:PORT to listen on (default 127.0.0.1:5000)")
    p.add_argument("--root", default=None,
                   help="local state: filesystem blobs and locks (default: storage.filesystem.rootdirectory, "
                        "or /var/lib/dockyard-registry)")
    p.add_argument("--config", help="YAML configuration file (Distribution's config.yml keys)")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--log-level", default=None, help="debug, info, warn, error (default: log.level, or info)")
    p.add_argument("--access-log", action="store_true", default=None,
                   help="log every request (default: log.accesslog in the config, or off)")
    return p


def _gc_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dockyard registry gc",
                                description="Delete manifests and blobs no tag reaches")
    p.add_argument("--root", default=None)
    p.add_argument("--config")
    p.add_argument("--dry-run", action="store_true", help="only print what would be deleted")
    p.add_argument("--grace", type=float, default=None,
                   help="keep anything newer than this many seconds (default from config, 3600)")
    return p


async def _serve(cfg: RegistryConfig, access_log: bool = False) -> None:
    from aiohttp import web

    from .app import make_app
    from .service import Registry

    loop = asyncio.get_running_loop()
    loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=32,
                                                                    thread_name_prefix="registry"))
    registry = Registry(cfg)
    app = make_app(registry)
    runner = web.AppRunner(app, access_log=logging.getLogger("dockyard.registry.access") if access_log else None,
                           handle_signals=False, shutdown_timeout=cfg.http.drain_timeout or 60.0)
    await runner.setup()
    host, _, port = cfg.addr.rpartition(":")
    ssl_ctx = _tls_context(cfg)
    site = web.TCPSite(runner, host.strip("[]") or "0.0.0.0", int(port), ssl_context=ssl_ctx,
                       backlog=1024, reuse_address=True)
    await site.start()
    logging.getLogger("dockyard.registry").info("listening on %s (%s storage at %s)",
                                                cfg.addr, cfg.driver, cfg.root)
    debug_runner = await _serve_debug(cfg, registry)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    purger = asyncio.create_task(_purge_uploads(registry, stop))
    try:
        await stop.wait()
    finally:
        purger.cancel()
        if debug_runner is not None:
            await debug_runner.cleanup()
        await runner.cleanup()
        registry.close()


async def _serve_debug(cfg: RegistryConfig, registry: "Registry") -> "web.AppRunner | None":
    """http.debug.addr: /debug/health and, when enabled, Prometheus metrics."""
    from aiohttp import web

    from .debug import make_debug_app

    dbg = cfg.http.debug
    if not dbg.addr:
        return None
    app = make_debug_app(registry.health, registry.metrics, dbg.prometheus_path if dbg.prometheus else None)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    host, _, port = dbg.addr.rpartition(":")
    await web.TCPSite(runner, host.strip("[]") or "0.0.0.0", int(port), reuse_address=True).start()
    logging.getLogger("dockyard.registry").info("debug server on %s", dbg.addr)
    return runner


async def _purge_uploads(registry: "Registry", stop: asyncio.Event) -> None:
    """Distribution's storage.maintenance.uploadpurging: every `interval`, delete uploads
    older than `age`.  The first run waits a random part of the interval (at most an hour),
    so replicas started together do not all list the bucket at once."""
    cfg = registry.cfg.maintenance.uploadpurging
    if not cfg.enabled or registry.cfg.maintenance.readonly:
        return
    log = logging.getLogger("dockyard.registry.purge")
    delay = random.uniform(0, min(cfg.interval, 3600.0))
    while True:
        try:
            await asyncio.wait_for(stop.wait(), timeout=delay)
            return
        except asyncio.TimeoutError:
            pass
        delay = cfg.interval
        try:
            res = await asyncio.to_thread(registry.uploads.purge, cfg.age, cfg.dryrun)
        except Exception:
            log.exception("upload purge failed")
            continue
        verb = "would purge" if cfg.dryrun else "purged"
        for u in res.uploads:
            log.info("%s upload %s", verb, u)
        log.info("%s %d uploads older than %ds; aborted %d unfinished multipart uploads",
                 verb, len(res.uploads), cfg.age, res.multipart_aborted)


def _tls_context(cfg: RegistryConfig) -> ssl.SSLContext | None:
    if not (cfg.tls_cert and cfg.tls_key):
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cfg.tls_cert, cfg.tls_key)
    if cfg.http.minimum_tls:
        ctx.minimum_version = {"tls1.0": ssl.TLSVersion.TLSv1, "tls1.1": ssl.TLSVersion.TLSv1_1,
                               "tls1.2": ssl.TLSVersion.TLSv1_2, "tls1.3": ssl.TLSVersion.TLSv1_3,
                               }[cfg.http.minimum_tls]
    if cfg.http.client_cas:  # http.tls.clientcas: clients must present a certificate these CAs signed
        for ca in cfg.http.client_cas:
            ctx.load_verify_locations(ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def load_config(root: str, path: str | None, **overrides: object) -> RegistryConfig | None:
    """The configuration, or None after printing why it is refused."""
    try:
        return RegistryConfig.load(root, path, **overrides)
    except (OSError, ConfigError) as e:
        print(f"dockyard registry: configuration error: {e}", file=sys.stderr)
        return None


def main(argv: list[str]) -> int:
    if argv and argv[0] == "gc":
        return gc_main(argv[1:])
    a = _serve_parser().parse_args(argv)
    cfg = load_config(a.root, a.config, addr=a.addr, tls_cert=a.tls_cert, tls_key=a.tls_key)
    if cfg is None:
        return 2
    level = (a.log_level or cfg.log_level or "info").upper()
    logging.basicConfig(level="WARNING" if level == "WARN" else level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg.log_notices()
    access_log = a.access_log if a.access_log is not None else bool(cfg.access_log)
    asyncio.run(_serve(cfg, access_log))
    return 0


def gc_main(argv: list[str]) -> int:
    from .gc import collect
    from .storage import make_driver

    a = _gc_parser().parse_args(argv)
    logging.basicConfig(level="INFO", format="%(levelname)s %(name)s: %(message)s")
    cfg = load_config(a.root, a.config)
    if cfg is None:
        return 2
    cfg.log_notices()
    grace = cfg.gc_grace_period if a.grace is None else a.grace
    driver = make_driver(cfg.driver, cfg.root, cfg.driver_options)
    res = collect(driver, cfg.root, grace=grace, dry_run=a.dry_run)
    verb = "would delete" if a.dry_run else "deleted"
    for m in res.manifests_deleted:
        print(f"{verb} manifest {m}")
    for b in res.blobs_deleted:
        print(f"{verb} blob {b}")
    print(f"{verb} {len(res.manifests_deleted)} manifests, {len(res.blobs_deleted)} blobs, "
          f"{res.links_deleted} links, {res.uploads_deleted} uploads; kept {res.blobs_kept} blobs")
    driver.close()
    return 0
