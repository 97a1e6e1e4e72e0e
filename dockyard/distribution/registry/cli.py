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

from .config import RegistryConfig

if TYPE_CHECKING:
    from .service import Registry


def _serve_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dockyard registry", description="Run the OCI distribution registry")
    p.add_argument("--addr", default=None, help="HOST:PORT to listen on (default 127.0.0.1:5000)")
    p.add_argument("--root", required=True, help="storage root (blobs, repositories, locks)")
    p.add_argument("--config", help="YAML configuration file")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--log-level", default="info")
    p.add_argument("--access-log", action="store_true", help="log every request")
    return p


def _gc_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dockyard registry gc",
                                description="Delete manifests and blobs no tag reaches")
    p.add_argument("--root", required=True)
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
                           handle_signals=False)
    await runner.setup()
    host, _, port = cfg.addr.rpartition(":")
    ssl_ctx = None
    if cfg.tls_cert and cfg.tls_key:
        ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_ctx.load_cert_chain(cfg.tls_cert, cfg.tls_key)
    site = web.TCPSite(runner, host.strip("[]") or "0.0.0.0", int(port), ssl_context=ssl_ctx,
                       backlog=1024, reuse_address=True)
    await site.start()
    logging.getLogger("dockyard.registry").info("listening on %s (%s storage at %s)",
                                                cfg.addr, cfg.driver, cfg.root)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    purger = asyncio.create_task(_purge_uploads(registry, stop))
    try:
        await stop.wait()
    finally:
        purger.cancel()
        await runner.cleanup()
        registry.close()


async def _purge_uploads(registry: "Registry", stop: asyncio.Event) -> None:
    """Distribution's storage.maintenance.uploadpurging: every `interval`, delete uploads
    older than `age`.  The first run waits a random part of the interval (at most an hour),
    so replicas started together do not all list the bucket at once."""
    cfg = registry.cfg.upload_purging
    if not cfg.enabled or registry.cfg.readonly:
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
            res = await asyncio.to_thread(registry.uploads.purge, cfg.age, cfg.dry_run)
        except Exception:
            log.exception("upload purge failed")
            continue
        verb = "would purge" if cfg.dry_run else "purged"
        for u in res.uploads:
            log.info("%s upload %s", verb, u)
        log.info("%s %d uploads older than %ds; aborted %d unfinished multipart uploads",
                 verb, len(res.uploads), cfg.age, res.multipart_aborted)


def main(argv: list[str]) -> int:
    if argv and argv[0] == "gc":
        return gc_main(argv[1:])
    a = _serve_parser().parse_args(argv)
    logging.basicConfig(level=a.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = RegistryConfig.load(a.root, a.config, addr=a.addr, tls_cert=a.tls_cert, tls_key=a.tls_key)
    except (OSError, ValueError) as e:
        print(f"dockyard registry: {e}", file=sys.stderr)
        return 2
    asyncio.run(_serve(cfg, a.access_log))
    return 0


def gc_main(argv: list[str]) -> int:
    from .gc import collect
    from .storage import make_driver

    a = _gc_parser().parse_args(argv)
    logging.basicConfig(level="INFO", format="%(levelname)s %(name)s: %(message)s")
    cfg = RegistryConfig.load(a.root, a.config)
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
