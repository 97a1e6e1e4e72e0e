"""Notifications, as Distribution's `notifications.endpoints`: every push, pull, mount and
delete becomes an event in Distribution's envelope, POSTed to each endpoint that does not
ignore it.

The queue is durable and local: a SQLite database in the registry's root directory
(`notifications.db`), one row per (endpoint, event), written before the request is
answered.  A sink that is down gets its events later, in order, after it comes back,
also across a registry restart.  Why local and not in the storage backend: each replica
of a fleet delivers the events of the requests it served; a queue in the bucket would need
leases between replicas to deliver each event once and in order, and every event would
cost several object-store round trips.  A replica whose disk is lost loses its undelivered
events (Distribution keeps them in memory only, so loses them at every restart).

Registry processes sharing one root directory share the queue; one of them at a time (an
flock on `notifications.lock`) delivers, so each sink still sees one ordered stream, and
another takes over when it stops.  Idle deliverers look at the queue every second, so events
queued by another process on the same root are not left waiting.

Delivery, per endpoint: oldest first, up to 100 events per POST; a 2xx/3xx answer removes
them from the queue; a failure (error status, timeout, refused connection) is retried, after
`backoff` once `threshold` consecutive attempts have failed (Distribution's breaker).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import fcntl
import json
import logging
import os
import socket
import sqlite3
import threading
import uuid
from typing import Any

import aiohttp
from multidict import CIMultiDict

from .config import EndpointConfig

log = logging.getLogger("dockyard.registry.notifications")

EVENTS_MEDIA_TYPE = "application/vnd.docker.distribution.events.v1+json"
_BATCH = 100
_RETRY = 0.1  # seconds between attempts before the breaker opens
_POLL = 1.0  # seconds between looks at an idle queue (or at another process's lock)


class EventQueue:
    """Per-endpoint FIFO queues in one SQLite file; every method is blocking."""

    def __init__(self, path: str) -> None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
                         "endpoint TEXT NOT NULL, event TEXT NOT NULL)")
        self._db.execute("CREATE INDEX IF NOT EXISTS events_endpoint ON events (endpoint, seq)")
        self._lock = threading.Lock()

    def push(self, endpoints: list[str], event: dict[str, Any]) -> None:
        body = json.dumps(event, separators=(",", ":"))
        with self._lock:
            self._db.executemany("INSERT INTO events (endpoint, event) VALUES (?, ?)",
                                 [(e, body) for e in endpoints])

    def peek(self, endpoint: str, limit: int = _BATCH) -> list[tuple[int, dict[str, Any]]]:
        with self._lock:
            rows = self._db.execute("SELECT seq, event FROM events WHERE endpoint = ? ORDER BY seq LIMIT ?",
                                    (endpoint, limit)).fetchall()
        return [(seq, json.loads(body)) for seq, body in rows]

    def ack(self, endpoint: str, upto: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM events WHERE endpoint = ? AND seq <= ?", (endpoint, upto))

    def pending(self, endpoint: str) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM events WHERE endpoint = ?", (endpoint,)).fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z")


class _DeliveryLock:
    """Which process on a root delivers: a non-blocking flock, retried until held."""

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self.held = False

    def try_acquire(self) -> bool:
        if not self.held:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self.held = True
            except BlockingIOError:
                pass
        return self.held

    def close(self) -> None:
        os.close(self._fd)  # releases the lock


class Notifier:
    def __init__(self, endpoints: list[EndpointConfig], root: str, listen_addr: str, metrics: Any) -> None:
        self.endpoints = [e for e in endpoints if not e.disabled]
        self.metrics = metrics
        self.instance_id = str(uuid.uuid4())
        port = listen_addr.rpartition(":")[2]
        self.source_addr = f"{socket.gethostname()}:{port}"
        self.queue = EventQueue(os.path.join(root, "notifications.db")) if self.endpoints else None
        self._lock = _DeliveryLock(os.path.join(root, "notifications.lock")) if self.endpoints else None
        self._wake: dict[str, asyncio.Event] = {}
        self._gauge_lock = threading.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.endpoints)

    def _wants(self, ep: EndpointConfig, action: str, media_type: str | None) -> bool:
        if action in ep.ignore_actions:
            return False
        return not (media_type and media_type in ep.ignored_media_types)

    def event(self, action: str, target: dict[str, Any], request: dict[str, Any], actor: str | None,
              ) -> dict[str, Any]:
        return {"id": str(uuid.uuid4()), "timestamp": _now(), "action": action, "target": target,
                "request": request, "actor": {"name": actor} if actor else {},
                "source": {"addr": self.source_addr, "instanceID": self.instance_id}}

    def emit(self, event: dict[str, Any]) -> None:
        """Blocking: queue the event durably for every endpoint that wants it."""
        if self.queue is None:
            return
        names = [e.name for e in self.endpoints
                 if self._wants(e, event["action"], event["target"].get("mediaType"))]
        if not names:
            return
        self.queue.push(names, event)
        for n in names:
            self._set_pending(n)
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._wake[n].set)

    # --- delivery ------------------------------------------------------------------

    async def start(self) -> None:
        if self.queue is None:
            return
        self._loop = asyncio.get_running_loop()
        self._session = aiohttp.ClientSession()
        for ep in self.endpoints:
            self._wake[ep.name] = asyncio.Event()
            await self._refresh_pending(ep)
            self._tasks.append(self._loop.create_task(self._deliver(ep)))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._session is not None:
            await self._session.close()
        if self.queue is not None:
            self.queue.close()
        if self._lock is not None:
            self._lock.close()

    async def _deliver(self, ep: EndpointConfig) -> None:
        assert self.queue is not None and self._lock is not None
        wake = self._wake[ep.name]
        failures = 0
        while True:
            wake.clear()
            if not self._lock.try_acquire():
                await self._refresh_pending(ep)
                await asyncio.sleep(_POLL)  # another process on this root delivers
                continue
            batch = await asyncio.to_thread(self.queue.peek, ep.name)
            if not batch:
                try:
                    await asyncio.wait_for(wake.wait(), _POLL)
                except asyncio.TimeoutError:
                    pass  # look again: another process on this root may have queued events
                continue
            if await self._post(ep, [e for _, e in batch]):
                await asyncio.to_thread(self.queue.ack, ep.name, batch[-1][0])
                self.metrics.deliveries.labels(ep.name, "success").inc(len(batch))
                await self._refresh_pending(ep)
                failures = 0
                continue
            failures += 1
            self.metrics.deliveries.labels(ep.name, "failure").inc(len(batch))
            await asyncio.sleep(ep.backoff if failures >= ep.threshold else min(_RETRY, ep.backoff))

    async def _refresh_pending(self, ep: EndpointConfig) -> None:
        await asyncio.to_thread(self._set_pending, ep.name)

    def _set_pending(self, endpoint: str) -> None:
        """The gauge is the queue's count, read and set under one lock so that an older count
        never overwrites a newer one."""
        assert self.queue is not None
        with self._gauge_lock:
            self.metrics.pending.labels(endpoint).set(self.queue.pending(endpoint))

    async def _post(self, ep: EndpointConfig, events: list[dict[str, Any]]) -> bool:
        assert self._session is not None
        headers = CIMultiDict({"Content-Type": EVENTS_MEDIA_TYPE})
        for name, values in ep.headers.items():
            for v in values:
                headers.add(name, v)
        body = json.dumps({"events": events}).encode()
        try:
            async with self._session.post(ep.url, data=body, headers=headers,
                                          timeout=aiohttp.ClientTimeout(total=ep.timeout)) as r:
                await r.read()
                if 200 <= r.status < 400:
                    return True
                log.warning("notification endpoint %s answered %d", ep.name, r.status)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
            log.info("notification endpoint %s unreachable: %s", ep.name, e or type(e).__name__)
        return False
