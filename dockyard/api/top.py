"""GET /containers/{id}/top: the container's processes as `ps` shows them."""

from __future__ import annotations

from aiohttp import web

from ..engine.top import container_top
from .params import json_response, qstr
from .routing import Routes

routes = Routes()


@routes.get("/containers/{id}/top")
async def top(request: web.Request) -> web.Response:
    result = await container_top(request.app["engine"], request.match_info["id"],
                                 qstr(request, "ps_args"))
    return json_response(result)
