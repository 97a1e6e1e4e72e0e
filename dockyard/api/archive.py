"""/containers/{id}/archive (docker cp), /export, /changes (docker diff)."""

from __future__ import annotations

import asyncio
import base64
import json

from aiohttp import web

from ..errors import InvalidParameter
from .params import json_response, qbool
from .routing import Routes

routes = Routes()


def _files(request: web.Request):
    return request.app["engine"].files


def _path(request: web.Request) -> str:
    path = request.query.get("path")
    if not path:
        raise InvalidParameter("path is required")
    return path


def _stat_header(stat: dict) -> str:
    return base64.b64encode(json.dumps(stat).encode()).decode()


async def _send(request: web.Request, resp: web.StreamResponse, stream) -> web.StreamResponse:
    """Stream a tar; a client that hangs up still ends the reader (its child, its mount)."""
    try:
        await resp.prepare(request)
        async for chunk in stream:
            await resp.write(chunk)
        await resp.write_eof()
    except ConnectionError:
        pass
    finally:
        await stream.aclose()
    return resp


@routes.head("/containers/{id}/archive")
async def archive_head(request: web.Request) -> web.Response:
    st = await _files(request).stat(request.match_info["id"], _path(request))
    return web.Response(headers={"X-Docker-Container-Path-Stat": _stat_header(st),
                                 "Content-Type": "application/x-tar"})


@routes.get("/containers/{id}/archive")
async def archive_get(request: web.Request) -> web.StreamResponse:
    st, stream = await _files(request).get(request.match_info["id"], _path(request))
    resp = web.StreamResponse(headers={"X-Docker-Container-Path-Stat": _stat_header(st),
                                       "Content-Type": "application/x-tar"})
    return await _send(request, resp, stream)


@routes.put("/containers/{id}/archive")
async def archive_put(request: web.Request) -> web.Response:
    await _files(request).put(
        request.match_info["id"], _path(request), request.content.iter_chunked(1 << 16),
        copy_uid_gid=qbool(request, "copyUIDGID"),
        no_overwrite_dir_non_dir=qbool(request, "noOverwriteDirNonDir"))
    return web.Response(status=200)


@routes.get("/containers/{id}/export")
async def export(request: web.Request) -> web.StreamResponse:
    stream = await _files(request).export(request.match_info["id"])
    return await _send(request, web.StreamResponse(headers={"Content-Type": "application/x-tar"}), stream)


@routes.get("/containers/{id}/changes")
async def changes(request: web.Request) -> web.Response:
    return json_response(await asyncio.to_thread(_files(request).changes, request.match_info["id"]) or None)
