"""/containers/*: parse, call the container service, render."""

from __future__ import annotations

import asyncio
import json
import logging

from aiohttp import web

from ..engine.containers.attach import DEFAULT_DETACH_KEYS, parse_detach_keys
from ..engine.containers.logs import LogQuery, format_time
from ..engine.logdrivers.base import format_details
from ..engine.timeutil import parse_timestamp_ns
from ..errors import InvalidParameter, NotFound
from . import container_views as views
from ..engine.containers.attach import AttachStream
from .hijack import MULTIPLEXED_STREAM, RAW_STREAM, Hijacked, frame, hijack
from .params import json_object, json_response, qbool, qfilters, qint, qstr
from . import versions
from .routing import Routes

log = logging.getLogger(__name__)
routes = Routes()


def _svc(request: web.Request):
    return request.app["engine"].containers


@routes.post("/containers/create")
async def create(request: web.Request) -> web.Response:
    body = await json_object(request)
    name = qstr(request, "name")
    c, warnings = await _svc(request).create(name, body)
    return json_response({"Id": c.id, "Warnings": warnings}, status=201)


@routes.get("/containers/json")
async def list_(request: web.Request) -> web.Response:
    engine = request.app["engine"]
    ctrs = engine.containers.list(all=qbool(request, "all"), limit=qint(request, "limit", -1) or -1,
                                  filters=qfilters(request))
    if not qbool(request, "size"):  # rows kept as JSON between requests (container_list.py)
        return web.Response(body=request.app["container_rows"].render(ctrs), content_type="application/json")
    out = []
    networks = views.ResolveCache(engine.networks)  # network lookups shared by the rows
    for c in ctrs:
        e = views.list_entry(engine, c, networks)
        e["SizeRw"] = await asyncio.to_thread(engine.containers.size_rw, c)
        e["SizeRootFs"] = e["SizeRw"]
        out.append(e)
    return json_response(out)


@routes.get("/containers/{id}/json")
async def inspect(request: web.Request) -> web.Response:
    engine = request.app["engine"]
    c = engine.containers.get(request.match_info["id"])
    d = views.inspect(engine, c, size=qbool(request, "size"))
    if not versions.at_least(request, "1.45"):
        views.aliases_with_short_id(d)
    return json_response(d)


@routes.post("/containers/{id}/start")
async def start(request: web.Request) -> web.Response:
    await _svc(request).start(request.match_info["id"])
    return web.Response(status=204)


def _timeout(request: web.Request) -> int | None:
    return qint(request, "t", None) if "t" in request.query else qint(request, "timeout", None)


@routes.post("/containers/{id}/stop")
async def stop(request: web.Request) -> web.Response:
    await _svc(request).stop(request.match_info["id"], _timeout(request), qstr(request, "signal"))
    return web.Response(status=204)


@routes.post("/containers/{id}/restart")
async def restart(request: web.Request) -> web.Response:
    await _svc(request).restart(request.match_info["id"], _timeout(request), qstr(request, "signal"))
    return web.Response(status=204)


@routes.post("/containers/{id}/kill")
async def kill(request: web.Request) -> web.Response:
    await _svc(request).kill(request.match_info["id"], qstr(request, "signal"))
    return web.Response(status=204)


@routes.post("/containers/{id}/pause")
async def pause(request: web.Request) -> web.Response:
    await _svc(request).pause(request.match_info["id"])
    return web.Response(status=204)


@routes.post("/containers/{id}/unpause")
async def unpause(request: web.Request) -> web.Response:
    await _svc(request).unpause(request.match_info["id"])
    return web.Response(status=204)


@routes.post("/containers/{id}/wait")
async def wait(request: web.Request) -> web.StreamResponse:
    result = _svc(request).register_wait(request.match_info["id"], qstr(request, "condition", "") or "")
    # Headers go out now: the docker CLI starts the container once it has them.
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    body = await result()
    try:
        await resp.write(json.dumps(body).encode() + b"\n")
        await resp.write_eof()
    except ConnectionError:
        pass  # the client stopped waiting: nothing to tell anyone
    return resp


@routes.delete("/containers/{id}")
async def remove(request: web.Request) -> web.Response:
    if qbool(request, "link"):
        _svc(request).remove_link(request.match_info["id"])  # dockerd's "default link name" 409
        return web.Response(status=204)
    await _svc(request).remove(request.match_info["id"], force=qbool(request, "force"),
                               volumes=qbool(request, "v"))
    return web.Response(status=204)


@routes.delete("/containers/{parent}/{alias}")
async def remove_link(request: web.Request) -> web.Response:
    """`docker rm --link parent/alias` (DELETE /containers/parent/alias?link=1)."""
    if not qbool(request, "link"):
        raise NotFound(f"No such container: {request.match_info['parent']}/{request.match_info['alias']}")
    _svc(request).remove_link(f"{request.match_info['parent']}/{request.match_info['alias']}")
    return web.Response(status=204)


@routes.post("/containers/prune")
async def prune(request: web.Request) -> web.Response:
    deleted, space = await _svc(request).prune(qfilters(request))
    return json_response({"ContainersDeleted": deleted or None, "SpaceReclaimed": space})


@routes.post("/containers/{id}/rename")
async def rename(request: web.Request) -> web.Response:
    await _svc(request).rename(request.match_info["id"], qstr(request, "name", "") or "")
    return web.Response(status=204)


@routes.post("/containers/{id}/update")
async def update(request: web.Request) -> web.Response:
    warnings = await _svc(request).update(request.match_info["id"], await json_object(request))
    return json_response({"Warnings": warnings})


@routes.post("/containers/{id}/resize")
async def resize(request: web.Request) -> web.Response:
    h, w = qint(request, "h", 0), qint(request, "w", 0)
    _svc(request).resize(request.match_info["id"], h or 0, w or 0)
    return web.Response(status=200, text="")


@routes.get("/containers/{id}/logs")
async def logs(request: web.Request) -> web.StreamResponse:
    q = LogQuery(stdout=qbool(request, "stdout"), stderr=qbool(request, "stderr"),
                 follow=qbool(request, "follow"))
    if not (q.stdout or q.stderr):
        raise InvalidParameter("Bad parameters: you must choose at least one stream")
    since, until = qstr(request, "since"), qstr(request, "until")
    if since and since != "0":
        q.since_ns = parse_timestamp_ns(since)
    if until and until != "0":
        q.until_ns = parse_timestamp_ns(until)
    tail = qstr(request, "tail", "all") or "all"
    if tail != "all":
        try:
            q.tail = int(tail)
        except ValueError:
            raise InvalidParameter(f"invalid value for \"tail\": {tail!r}") from None
        if q.tail < 0:
            q.tail = None
    timestamps = qbool(request, "timestamps")
    details = qbool(request, "details")
    c, records = _svc(request).logs(request.match_info["id"], q)
    tty = bool(c.config.get("Tty"))
    resp = web.StreamResponse(headers={"Content-Type": RAW_STREAM if tty else MULTIPLEXED_STREAM})
    await resp.prepare(request)
    try:
        async for rec in records:
            data = rec.data
            if details:  # dockerd's order: time, attributes, line
                data = format_details(rec.attrs) + b" " + data
            if timestamps:
                data = format_time(rec.time_ns).encode() + b" " + data
            await resp.write(data if tty else frame(rec.stream, data))
    except (ConnectionResetError, asyncio.CancelledError):
        return resp
    await resp.write_eof()
    return resp


@routes.post("/containers/{id}/attach")
async def attach(request: web.Request) -> web.StreamResponse:
    svc = _svc(request)
    keys = parse_detach_keys(qstr(request, "detachKeys") or DEFAULT_DETACH_KEYS)
    want_logs, stream = qbool(request, "logs"), qbool(request, "stream")
    c, st = await svc.attach(request.match_info["id"], stdin=qbool(request, "stdin"),
                             stdout=qbool(request, "stdout"), stderr=qbool(request, "stderr"),
                             detach_keys=keys)
    tty = bool(c.config.get("Tty"))
    recs = None
    if want_logs:  # a driver that cannot be read is refused before the hijack, as dockerd does
        try:
            _, recs = svc.logs(c.id, LogQuery(stdout=st.want_stdout, stderr=st.want_stderr))
        except Exception:
            svc.detach(c.id, st)
            raise
    conn = await hijack(request, RAW_STREAM if tty else MULTIPLEXED_STREAM)

    try:
        if recs is not None:
            async for rec in recs:
                await conn.write(rec.data if tty else frame(rec.stream, rec.data))
        if not stream:
            return web.Response()

        await pump(conn, st, tty)
    finally:
        svc.detach(c.id, st)
        await conn.close()
    return web.Response()


async def pump(conn: Hijacked, st: AttachStream, tty: bool) -> None:
    """Copy client stdin to the stream and output back, until output ends or the client detaches."""

    async def pump_in() -> None:
        while True:
            data = await conn.read()
            if not data:
                if st.want_stdin and not conn.closed:
                    st.close_stdin()
                if conn.closed:
                    return
                await conn.proto.closed.wait()
                return
            if not await st.send(data):
                return  # detach keys

    async def pump_out() -> None:
        while True:
            item = await st.recv()
            if item is None:
                return
            stream_no, data = item
            if not await conn.write(data if tty else frame(stream_no, data)):
                return

    tin = asyncio.ensure_future(pump_in())
    tout = asyncio.ensure_future(pump_out())
    done, _ = await asyncio.wait({tin, tout}, return_when=asyncio.FIRST_COMPLETED)
    if tin in done and not st.detached and not conn.closed:
        # the client only closed stdin: output goes on until the process ends
        await tout
    for t in (tin, tout):
        if not t.done():
            t.cancel()
    await asyncio.gather(tin, tout, return_exceptions=True)


@routes.post("/commit")
async def commit(request: web.Request) -> web.Response:
    container = qstr(request, "container")
    if not container:
        raise InvalidParameter("container is required")
    changes = request.query.getall("changes", [])
    image_id = await _svc(request).commit(
        container, repo=qstr(request, "repo") or None, tag=qstr(request, "tag") or None,
        comment=qstr(request, "comment", "") or "", author=qstr(request, "author", "") or "",
        pause=qbool(request, "pause", True), changes=[c for c in changes if c],
        config=await json_object(request, required=False) or None)
    return json_response({"Id": image_id}, status=201)
