"""Endpoints that only old API versions have: POST /containers/{id}/copy (API <= 1.23)."""

from __future__ import annotations

from aiohttp import web

from ..errors import InvalidParameter, NotFound
from .archive import _send
from .params import json_object
from .routing import Routes
from .versions import at_least

routes = Routes()


@routes.post("/containers/{id}/copy")
async def copy(request: web.Request) -> web.StreamResponse:
    """A tar of one path of the container, as `GET .../archive` without the stat header.

    dockerd answers a bare 404 under API 1.24 and later (and unversioned paths).
    """
    if at_least(request, "1.24"):
        return web.Response(status=404)
    ctype = request.headers.get("Content-Type", "")
    if ctype.split(";")[0].strip() != "application/json":
        raise InvalidParameter(f"unsupported Content-Type header ({ctype}): must be 'application/json'")
    body = await json_object(request)
    resource = body.get("Resource")
    if not isinstance(resource, str) or not resource:
        raise InvalidParameter("Path cannot be empty")
    ref = request.match_info["id"]
    files = request.app["engine"].files
    try:
        _, stream = await files.get(ref, resource)
    except NotFound as exc:
        if exc.message.startswith("No such container"):
            return web.Response(status=404)
        raise NotFound(f"Could not find the file {resource} in container {ref}") from None
    return await _send(request, web.StreamResponse(headers={"Content-Type": "application/x-tar"}), stream)
