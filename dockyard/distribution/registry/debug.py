"""The debug listener (`http.debug.addr`): /debug/health always, Prometheus metrics at
`http.debug.prometheus.path` when enabled.  Kept off the API address, as in Distribution,
so that health and metrics are not exposed to registry clients."""

from __future__ import annotations

import json

from aiohttp import web

from .health import HealthChecks
from .metrics import CONTENT_TYPE, Metrics


def make_debug_app(health: HealthChecks, metrics: Metrics, prometheus_path: str | None) -> web.Application:
    async def health_handler(request: web.Request) -> web.Response:
        status = health.status()
        return web.Response(body=(json.dumps(status) + "\n").encode(), status=503 if status else 200,
                            content_type="application/json", charset="utf-8")

    async def metrics_handler(request: web.Request) -> web.Response:
        return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})

    app = web.Application()
    app.router.add_get("/debug/health", health_handler)
    if prometheus_path:
        app.router.add_get(prometheus_path, metrics_handler)
    return app
