"""Health checks, as Distribution's `health` section.  Each check runs every `interval`; after
`threshold` consecutive failures it reports its last error, until a success clears it:

- storagedriver: the driver stats "/" (a missing path still means the backend answered);
  named `storagedriver_<driver>`;
- file: fails while the file exists (an operator's way to drain a replica); named by the path;
- http: a GET of the URI must answer `statuscode` (default 200) within `timeout`; named by the URI;
- tcp: a connection to host:port must open within `timeout`; named by the address.

While any check fails, GET /debug/health (on the debug address) answers 503 with
{"<name>": "<error>", ...} (200 with {} when healthy), and every API request answers 503
UNAVAILABLE "health check failed: please see /debug/health", as Distribution does.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import aiohttp
from multidict import CIMultiDict

from .config import CheckConfig, HealthConfig
from .errors import RegistryError
from .storage.driver import PathNotFound

log = logging.getLogger("dockyard.registry.health")

Probe = Callable[[], Awaitable[None]]  # raises with the reason when unhealthy


@dataclass
class _Check:
    name: str
    probe: Probe
    interval: float
    threshold: int
    failures: int = 0
    error: str | None = None

    def status(self) -> str | None:
        return self.error if self.error is not None and self.failures >= self.threshold else None


class HealthChecks:
    def __init__(self, cfg: HealthConfig, driver: Any, driver_name: str) -> None:
        self.driver = driver
        self.checks: list[_Check] = []
        if cfg.storagedriver:
            self.checks.append(_Check(f"storagedriver_{driver_name}", self._storage, cfg.interval, cfg.threshold))
        for c in cfg.checks:
            self.checks.append(_Check(c.target, _probe(c), c.interval, c.threshold))
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if not self._tasks:
            loop = asyncio.get_running_loop()
            self._tasks = [loop.create_task(self._poll(c)) for c in self.checks]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def status(self) -> dict[str, str]:
        """Failing checks by name; empty when healthy."""
        return {c.name: err for c in self.checks if (err := c.status()) is not None}

    def check_request(self) -> None:
        if any(c.status() is not None for c in self.checks):
            raise RegistryError("UNAVAILABLE", detail="health check failed: please see /debug/health")

    async def _poll(self, check: _Check) -> None:
        while True:
            await asyncio.sleep(check.interval)
            try:
                await check.probe()
                check.failures, check.error = 0, None
            except Exception as e:  # any failure to answer is ill health, reported by name
                check.failures += 1
                check.error = str(e) or type(e).__name__
                log.error("health check %s: %s", check.name, check.error)

    async def _storage(self) -> None:
        def stat_root() -> None:
            try:
                self.driver.stat("/")
            except PathNotFound:
                pass  # the backend answered; the root just has nothing yet

        await asyncio.to_thread(stat_root)


def _probe(c: CheckConfig) -> Probe:
    if c.kind == "file":
        async def file_absent() -> None:
            if os.path.exists(c.target):
                raise RuntimeError("file exists")
        return file_absent
    if c.kind == "tcp":
        async def tcp_open() -> None:
            host, _, port = c.target.rpartition(":")
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(host.strip("[]"), int(port)), c.timeout)
            except (OSError, asyncio.TimeoutError):
                raise RuntimeError(f"connection to {c.target} failed") from None
            writer.close()
        return tcp_open

    async def http_status() -> None:
        headers: CIMultiDict[str] = CIMultiDict()
        for name, values in c.headers.items():
            for v in values:
                headers.add(name, v)
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=c.timeout)) as s, \
                    s.get(c.target, headers=headers, allow_redirects=False) as r:
                status = r.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
            raise RuntimeError(f"error while checking: {c.target}: {e or type(e).__name__}") from None
        if status != c.status:
            raise RuntimeError(f"downstream service returned unexpected status: {status}")
    return http_status
