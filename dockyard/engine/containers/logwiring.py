"""How a container's log driver is chosen, set up at start, read back and closed.

The glue between the container service, conmon (which spools the output) and
the log daemon (which runs the driver); see engine/logdrivers/ for both.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterable

from ...config import EngineConfig
from .. import logdrivers
from ..logdrivers import LogQuery, LogRecord
from ..logdrivers.base import ContainerInfo
from ..logdrivers.client import LogDaemonClient
from ..logdrivers.logd import write_config
from ..logdrivers.reader import read_logs
from ..logdrivers.spool import SPOOL_NAME, spool_max
from .model import Container

LEGACY_LOG = "container.log"  # conmon's CRI file, read directly, from engines before log drivers


class ContainerLogs:
    def __init__(self, config: EngineConfig, ctr_dir: Callable[[str], Path]) -> None:
        self.config = config
        self.ctr_dir = ctr_dir
        self.daemon = LogDaemonClient(config.data_root, config.exec_root)

    async def resume(self, cids: Iterable[str]) -> None:
        """At engine start: adopt a log daemon that outlived the last engine, and start one only
        if a spool waits for it.  Otherwise the first container to log starts it (its first
        request does, see LogDaemonClient.request): an engine running no container holds no
        log daemon, a Python process of ~18 MiB."""
        if any((self.ctr_dir(cid) / SPOOL_NAME).exists() for cid in cids):
            await self.daemon.ensure()
        else:
            await self.daemon.adopt()

    def merge(self, host_config: dict[str, Any]) -> None:
        """At create: the daemon default filled in, every option checked (400s, nothing created)."""
        host_config["LogConfig"] = logdrivers.merge_log_config(
            host_config.get("LogConfig"), self.config.log_driver, self.config.log_opts)

    @staticmethod
    def driver_of(c: Container) -> tuple[str, dict[str, str]]:
        lc = c.host_config.get("LogConfig") or {}
        return lc.get("Type") or "json-file", dict(lc.get("Config") or {})

    async def prepare_start(self, c: Container, image_name: str) -> tuple[Path | None, int]:
        """Before conmon starts: (spool path for conmon or None for no log, spool size cap)."""
        driver, opts = self.driver_of(c)
        if driver == "none":
            return None, 0
        if driver == "syslog":
            await asyncio.to_thread(logdrivers.check_reachable, driver, opts)
        info = ContainerInfo(id=c.id, name=c.name, image_id=c.image_id, image_name=image_name,
                             labels=dict(c.config.get("Labels") or {}), env=list(c.config.get("Env") or []),
                             entrypoint=c.path, args=list(c.args), created=c.created,
                             log_path=self.inspect_path(c))
        d = self.ctr_dir(c.id)
        write_config(d, driver, opts, info)
        return d / SPOOL_NAME, spool_max(logdrivers.total_limit(driver, opts))

    def started(self, c: Container) -> None:
        if self.driver_of(c)[0] != "none":
            self.daemon.notify("watch", c.id)

    async def stopped(self, cid: str) -> None:
        """The container's conmon is gone: the daemon writes the rest and closes the driver."""
        if (self.ctr_dir(cid) / SPOOL_NAME).exists():
            await self.daemon.request("stop", cid)

    def inspect_path(self, c: Container) -> str:
        return logdrivers.inspect_log_path(self.driver_of(c)[0], self.ctr_dir(c.id), c.id)

    def read(self, c: Container, q: LogQuery, still_running: Callable[[], bool]) -> AsyncIterator[LogRecord]:
        """`docker logs`: the driver's file, or dual logging's cache; refused (501) as dockerd
        refuses it when there is neither."""
        driver, opts = self.driver_of(c)
        d = self.ctr_dir(c.id)
        live = logdrivers.log_file(driver, d, c.id, opts)  # 501 for none and cache-disabled
        if not live.exists() and (d / LEGACY_LOG).exists():
            from .logs import follow

            return follow(d / LEGACY_LOG, q, still_running)
        return self._read(c.id, live, logdrivers.codec(driver), q, still_running)

    async def _read(self, cid: str, live: Path, codec, q: LogQuery,
                    still_running: Callable[[], bool]) -> AsyncIterator[LogRecord]:
        if (self.ctr_dir(cid) / SPOOL_NAME).exists():
            await self.daemon.request("sync", cid)  # what conmon spooled so far is in the file
        async for r in read_logs(live, codec, q, still_running):
            yield r
