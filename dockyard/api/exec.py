"""/containers/{id}/exec and /exec/{id}/*."""

from __future__ import annotations

import asyncio

from aiohttp import web

from ..engine.containers.attach import DEFAULT_DETACH_KEYS, AttachStream, parse_detach_keys
from ..engine.containers.fieldtypes import go_keys
from ..engine.exec import check_start
from ..errors import InvalidParameter
from .containers import pump
from .hijack import MULTIPLEXED_STREAM, RAW_STREAM, frame, hijack
from .params import json_object, json_response, qint
from .versions import at_least
from .routing import Routes

routes = Routes()
START_FIELDS = ("Detach", "Tty", "ConsoleSize")


def _svc(request: web.Request):
    return request.app["engine"].execs


@routes.post("/containers/{id}/exec")
async def create(request: web.Request) -> web.Response:
    s = _svc(request).create(request.match_info["id"], await json_object(request))
    return json_response({"Id": s.id}, status=201)


@routes.post("/exec/{id}/start")
async def start(request: web.Request) -> web.StreamResponse:
    svc = _svc(request)
    body = go_keys(await json_object(request, required=False), START_FIELDS)
    check_start(body)
    s = svc.get(request.match_info["id"])
    cfg = s.config
    size = body.get("ConsoleSize")
    console = None
    if size is not None:
        if not (isinstance(size, list) and len(size) == 2 and all(isinstance(x, int) and x >= 0 for x in size)):
            raise InvalidParameter("invalid ConsoleSize: expected [height, width]")
        console = (size[0], size[1])
    if body.get("Detach"):
        await svc.start(s.id, stream=None, console_size=console)
        return web.Response(status=200)
    # dockerd frames the output by the Tty of *this* request, not of the exec's creation: a
    # client that starts a TTY exec with Tty=false (docker-py's default) reads 8-byte frames
    tty = bool(body.get("Tty"))
    stream = AttachStream(stdin=bool(cfg.get("AttachStdin")), stdout=bool(cfg.get("AttachStdout")),
                          stderr=bool(cfg.get("AttachStderr")), tty=bool(cfg.get("Tty")),
                          detach_keys=parse_detach_keys(cfg.get("DetachKeys") or DEFAULT_DETACH_KEYS))
    if s.started:
        await svc.start(s.id, stream=None)  # raises Docker's 409
    # the multiplexed media type exists from API 1.42; older clients are told "raw"
    conn = await hijack(request, MULTIPLEXED_STREAM if not tty and at_least(request, "1.42") else RAW_STREAM)
    try:
        try:
            await svc.start(s.id, stream=stream, console_size=console)
        except Exception as exc:  # headers are gone: report in the stream, as dockerd does
            data = (getattr(exc, "message", str(exc)) + "\r\n").encode()
            await conn.write(data if tty else frame(1, data))
            return web.Response()
        await pump(conn, stream, tty)
        # the CLI reads ExitCode right after the stream ends: let it be there
        await asyncio.wait_for(s.exited.wait(), 10)
    except asyncio.TimeoutError:
        pass
    finally:
        stream.close()
        await conn.close()
    return web.Response()


@routes.post("/exec/{id}/resize")
async def resize(request: web.Request) -> web.Response:
    _svc(request).resize(request.match_info["id"], qint(request, "h", 0) or 0, qint(request, "w", 0) or 0)
    return web.Response(status=200, text="")


@routes.get("/exec/{id}/json")
async def inspect(request: web.Request) -> web.Response:
    return json_response(_svc(request).inspect(request.match_info["id"]))
