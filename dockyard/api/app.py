"""The aiohttp application: middlewares, then each resource module's routes."""

from __future__ import annotations

import importlib
import logging

from aiohttp import web

from .container_list import ListRows
from .errors import error_middleware
from .versions import version_middleware

log = logging.getLogger(__name__)

RESOURCE_MODULES = ("system", "containers", "images", "networks", "stats", "top", "exec", "volumes", "distribution", "archive", "build", "legacy", "swarm")


@web.middleware
async def server_header(request: web.Request, handler):
    resp = await handler(request)
    if not resp.prepared:
        resp.headers.setdefault("Server", "Docker/28.2.2 (linux)")
        resp.headers.setdefault("Api-Version", "1.50")
        resp.headers.setdefault("Ostype", "linux")
    return resp


def create_app(engine) -> web.Application:
    middlewares = [server_header, error_middleware, version_middleware]
    if getattr(engine, "metrics", None) is not None:  # outermost: it sees the final status
        middlewares.insert(0, engine.metrics.middleware)
    app = web.Application(middlewares=middlewares, client_max_size=1024 ** 4)
    app["engine"] = engine
    app["container_rows"] = ListRows(engine)
    for name in RESOURCE_MODULES:
        try:
            mod = importlib.import_module(f"{__package__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.{name}":
                raise
            log.warning("API module %s is not available", name)
            continue
        mod.routes.install(app)
    return app
