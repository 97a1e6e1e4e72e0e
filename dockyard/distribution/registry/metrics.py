"""Prometheus metrics (prometheus_client), served on the debug address (`http.debug.addr`,
`http.debug.prometheus`).  Every registry process has its own CollectorRegistry, so tests
may run several in one interpreter; names follow Distribution's `registry_` namespace.

    registry_http_requests_total{method,route,code}        requests answered
    registry_http_request_duration_seconds{method,route}   latency histogram
    registry_http_in_bytes_total{route}, ..._out_bytes_total{route}   body bytes
    registry_storage_action_seconds{driver,action}         storage driver calls (histogram)
    registry_storage_errors_total{driver,action}           driver calls that failed (not "not found")
    registry_proxy_requests_total{kind,result}             pull-through cache: kind blob|manifest,
                                                           result hit|miss|stale
    registry_proxy_bytes_total                             bytes fetched from the upstream
    registry_notifications_pending{endpoint}               events queued, not yet delivered
    registry_notifications_events_total{endpoint,result}   deliveries: success|failure (per event)
"""

from __future__ import annotations

import time
from typing import Any, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .storage.driver import PathNotFound

CONTENT_TYPE = CONTENT_TYPE_LATEST
_LATENCY = (.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("registry_http_requests", "HTTP requests answered",
                                ["method", "route", "code"], registry=r)
        self.latency = Histogram("registry_http_request_duration_seconds", "HTTP request latency",
                                 ["method", "route"], buckets=_LATENCY, registry=r)
        self.bytes_in = Counter("registry_http_in_bytes", "request body bytes received", ["route"], registry=r)
        self.bytes_out = Counter("registry_http_out_bytes", "response body bytes sent", ["route"], registry=r)
        self.storage = Histogram("registry_storage_action_seconds", "storage driver call latency",
                                 ["driver", "action"], buckets=_LATENCY, registry=r)
        self.storage_errors = Counter("registry_storage_errors", "storage driver calls that failed",
                                      ["driver", "action"], registry=r)
        self.proxy = Counter("registry_proxy_requests", "pull-through cache lookups",
                             ["kind", "result"], registry=r)
        self.proxy_bytes = Counter("registry_proxy_bytes", "bytes fetched from the upstream registry",
                                   registry=r)
        self.pending = Gauge("registry_notifications_pending", "notification events not yet delivered",
                             ["endpoint"], registry=r)
        self.deliveries = Counter("registry_notifications_events", "notification event deliveries",
                                  ["endpoint", "result"], registry=r)

    def observe_request(self, method: str, route: str, code: int, seconds: float,
                        bytes_in: int, bytes_out: int) -> None:
        self.requests.labels(method, route, str(code)).inc()
        self.latency.labels(method, route).observe(seconds)
        if bytes_in:
            self.bytes_in.labels(route).inc(bytes_in)
        if bytes_out:
            self.bytes_out.labels(route).inc(bytes_out)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class InstrumentedDriver:
    """Times every call to the storage driver it wraps.  Attributes it does not know are
    passed through untouched, so drivers may grow methods without this class changing."""

    _TIMED = frozenset({"get_content", "put_content", "reader", "writer", "stat", "list", "move",
                        "delete", "exists", "touch"})

    def __init__(self, inner: Any, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics
        self.name = getattr(inner, "name", "unknown")

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._inner, attr)
        if attr not in self._TIMED or not callable(value):
            return value
        hist = self._metrics.storage.labels(self.name, attr)
        errors = self._metrics.storage_errors

        def timed(*args: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return value(*args, **kw)
            except PathNotFound:
                raise
            except Exception:
                errors.labels(self.name, attr).inc()
                raise
            finally:
                hist.observe(time.perf_counter() - t0)

        return timed

    def walk(self, path: str) -> Iterator[Any]:
        t0 = time.perf_counter()
        try:
            yield from self._inner.walk(path)
        finally:
            self._metrics.storage.labels(self.name, "walk").observe(time.perf_counter() - t0)
