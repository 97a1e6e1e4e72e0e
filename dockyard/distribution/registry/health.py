"""Health checks as Distribution's `health.storagedriver`: every `interval` the driver is asked
to stat "/" (a missing path still means the backend answered); after `threshold`
consecutive failures the check reports the last error, and until a success clears it:

- GET /debug/health (on the debug address) answers 503 with {"storagedriver_<driver>": "<error>"}
  (200 with {} when healthy), as Distribution's health package does;
- every API request answers 503 UNAVAILABLE "health check failed: please see /debug/health".
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .config import HealthConfig
from .errors import RegistryError
from .storage.driver import PathNotFound

log = logging.getLogger("dockyard.registry.health")


class HealthChecks:
    def __init__(self, cfg: HealthConfig, driver: Any, driver_name: str) -> None:
        self.cfg = cfg
        self.driver = driver
        self.name = f"storagedriver_{driver_name}"
        self._failures = 0
        self._error: str | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.cfg.storagedriver and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._poll())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    def status(self) -> dict[str, str]:
        """Failing checks by name; empty when healthy."""
        if self._error is not None and self._failures >= self.cfg.threshold:
            return {self.name: self._error}
        return {}

    def check_request(self) -> None:
        if self.status():
            raise RegistryError("UNAVAILABLE", detail="health check failed: please see /debug/health")

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.interval)
            try:
                await asyncio.to_thread(self._stat_root)
                self._failures, self._error = 0, None
            except Exception as e:  # any failure to answer is the backend's ill health
                self._failures += 1
                self._error = str(e) or type(e).__name__
                log.error("storage driver health check: %s", self._error)

    def _stat_root(self) -> None:
        try:
            self.driver.stat("/")
        except PathNotFound:
            pass  # the backend answered; the root just has nothing yet
