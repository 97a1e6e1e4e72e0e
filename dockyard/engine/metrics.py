"""Prometheus metrics on `metrics-addr`, with dockerd's names (moby daemon/metrics.go) where they apply.

- engine_daemon_container_actions_seconds{action}: create, start, stop, restart, kill,
  pause, unpause, delete, changes, commit — timed at the API, as dockerd times its
  backend calls (a failed action is timed too).
- engine_daemon_image_actions_seconds{action}: pull, push, delete, tag, load, build.
- engine_daemon_network_actions_seconds{action}: create, delete, connect, disconnect.
- engine_daemon_container_states_containers{state}: running, paused, stopped (read at scrape).
- engine_daemon_engine_info{...} = 1, engine_daemon_engine_cpus_cpus, engine_daemon_engine_memory_bytes.
- engine_daemon_events_total, engine_daemon_events_subscribers_total,
  engine_daemon_health_checks_total, engine_daemon_health_checks_failed_total.
- dockyard_http_requests_total{method, route, status} and
  dockyard_http_request_duration_seconds{method, route}: every API request, by route
  pattern (/containers/{id}/start), never by raw path, so the label set stays small.

Each engine has its own registry (tests run several engines in one process tree).
"""

from __future__ import annotations

import os
import platform
import re
import time
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .. import __version__

_VERSIONED = re.compile(r"^/v\{api_version\}")

# (method, route pattern without version prefix) -> (family, action)
ACTIONS: dict[tuple[str, str], tuple[str, str]] = {
    ("POST", "/containers/create"): ("container", "create"),
    ("POST", "/containers/{id}/start"): ("container", "start"),
    ("POST", "/containers/{id}/stop"): ("container", "stop"),
    ("POST", "/containers/{id}/restart"): ("container", "restart"),
    ("POST", "/containers/{id}/kill"): ("container", "kill"),
    ("POST", "/containers/{id}/pause"): ("container", "pause"),
    ("POST", "/containers/{id}/unpause"): ("container", "unpause"),
    ("DELETE", "/containers/{id}"): ("container", "delete"),
    ("GET", "/containers/{id}/changes"): ("container", "changes"),
    ("POST", "/commit"): ("container", "commit"),
    ("POST", "/images/create"): ("image", "pull"),
    ("POST", "/images/{name}/push"): ("image", "push"),
    ("DELETE", "/images/{name}"): ("image", "delete"),
    ("POST", "/images/{name}/tag"): ("image", "tag"),
    ("POST", "/images/load"): ("image", "load"),
    ("POST", "/build"): ("image", "build"),
    ("POST", "/networks/create"): ("network", "create"),
    ("DELETE", "/networks/{id}"): ("network", "delete"),
    ("POST", "/networks/{id}/connect"): ("network", "connect"),
    ("POST", "/networks/{id}/disconnect"): ("network", "disconnect"),
}


def route_of(request: web.Request) -> str:
    """The route pattern a request matched, without the /vX.Y prefix ("unmatched" for 404s)."""
    info = request.match_info
    route = getattr(info, "route", None)
    resource = getattr(route, "resource", None)
    canonical = getattr(resource, "canonical", None)
    if not canonical:
        return "unmatched"
    return _VERSIONED.sub("", canonical) or "/"


class _LiveState:
    """Values read from the engine at scrape time."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def collect(self):
        states = GaugeMetricFamily("engine_daemon_container_states_containers",
                                   "The count of containers in various states", labels=["state"])
        for state, n in self.engine.containers.counts().items():
            states.add_metric([state], n)
        yield states
        yield GaugeMetricFamily("engine_daemon_events_subscribers_total",
                                "The number of current subscribers to events",
                                value=len(self.engine.events._subscribers))
        info = GaugeMetricFamily("engine_daemon_engine_info", "The information related to the engine "
                                 "and the OS it is running on", labels=[
                                     "architecture", "commit", "daemon_id", "graphdriver", "kernel",
                                     "os", "os_type", "os_version", "version"])
        info.add_metric([platform.machine(), "", str(self.engine.config.data_root), "overlay2",
                         platform.release(), "linux", "linux", "", __version__], 1)
        yield info
        yield GaugeMetricFamily("engine_daemon_engine_cpus_cpus", "The number of cpus that the host "
                                "system of the engine has", value=os.cpu_count() or 1)
        yield GaugeMetricFamily("engine_daemon_engine_memory_bytes", "The number of bytes of memory "
                                "that the host system of the engine has", value=_mem_total())


def _mem_total() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class Metrics:
    def __init__(self, engine: Any) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.actions = {
            family: Histogram(f"engine_daemon_{family}_actions_seconds",
                              f"The number of seconds it takes to process each {family} action",
                              ["action"], registry=r)
            for family in ("container", "image", "network")
        }
        self.events = Counter("engine_daemon_events", "The number of events logged", registry=r)
        self.requests = Counter("dockyard_http_requests", "API requests by route and status",
                                ["method", "route", "status"], registry=r)
        self.latency = Histogram("dockyard_http_request_duration_seconds", "API request durations by route",
                                 ["method", "route"], registry=r)
        self.health = Counter("engine_daemon_health_checks", "The total number of health checks", registry=r)
        self.health_failed = Counter("engine_daemon_health_checks_failed",
                                     "The total number of failed health checks", registry=r)
        r.register(_LiveState(engine))
        # dockerd shows these actions from the start
        for a in ("start", "changes", "commit", "create", "delete"):
            self.actions["container"].labels(a)
        engine.events.observers.append(lambda ev: self.events.inc())
        if getattr(engine.containers, "health", None) is not None:
            engine.containers.health.observers.append(self._health_result)

    def _health_result(self, result: dict[str, Any]) -> None:
        self.health.inc()
        if result.get("ExitCode") != 0:
            self.health_failed.inc()

    @web.middleware
    async def middleware(self, request: web.Request, handler):
        t0 = time.monotonic()
        status = 500
        try:
            resp = await handler(request)
            status = resp.status
            return resp
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            took = time.monotonic() - t0
            route = route_of(request)
            self.requests.labels(request.method, route, str(status)).inc()
            self.latency.labels(request.method, route).observe(took)
            act = ACTIONS.get((request.method, route))
            if act:
                self.actions[act[0]].labels(act[1]).observe(took)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    async def serve(self, addr: str) -> web.AppRunner:
        async def metrics(request: web.Request) -> web.Response:
            return web.Response(body=self.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        host, _, port = addr.rpartition(":")
        await web.TCPSite(runner, host.strip("[]") or "0.0.0.0", int(port)).start()
        return runner
