"""GET /containers/{id}/stats: one JSON document per line, as dockerd streams them."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from ..engine.stats import container_stats
from .params import qbool
from .routing import Routes

routes = Routes()


@routes.get("/containers/{id}/stats")
async def stats(request: web.Request) -> web.StreamResponse:
    stream = qbool(request, "stream", True)
    one_shot = qbool(request, "one-shot", False)
    docs = container_stats(request.app["engine"], request.match_info["id"],
                           stream=stream, one_shot=one_shot)
    # The first document is read before the headers go out, so an unknown
    # container or a bad parameter still gets its 4xx.
    try:
        first = await docs.__anext__()
    except StopAsyncIteration:
        first = None
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    try:
        if first is not None:
            await resp.write(json.dumps(first).encode() + b"\n")
            async for doc in docs:
                await resp.write(json.dumps(doc).encode() + b"\n")
        await resp.write_eof()
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        await docs.aclose()
    return resp
