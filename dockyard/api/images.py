"""Image routes: thin translation between Docker's HTTP API and ImageService.

Image names may contain slashes (`localhost:5000/a/b:tag`), hence the
`{name:.+}` patterns; the fixed paths (/images/json, /images/get, /images/load,
/images/create, /images/prune, /images/search) are registered first and never
collide with them because every `{name:.+}` route ends in a fixed suffix or
uses a method of its own.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from aiohttp import web

from ..errors import DockyardError, InvalidParameter
from .params import body_chunks, json_response, qbool, qfilters, qint, spool_body
from .routing import Routes
from .versions import at_least

routes = Routes()



def _images(request: web.Request):
    return request.app["engine"].images


async def _spool_body(request: web.Request, prefix: str) -> Path:
    """Copy the request body to a temp file next to the content store, off the loop."""
    return await spool_body(request, _images(request).content.temp_file(prefix))


async def _json_stream(request: web.Request, messages: list[dict[str, Any]]) -> web.StreamResponse:
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    for m in messages:
        await resp.write((json.dumps(m) + "\r\n").encode())
    await resp.write_eof()
    return resp


@routes.get("/images/json")
async def list_images(request: web.Request) -> web.Response:
    filters = qfilters(request)
    legacy = request.query.get("filter")
    if legacy:  # pre-1.25 clients: `filter=<reference>`
        filters.values.setdefault("reference", []).append(legacy)
    out = _images(request).list_images(
        all=qbool(request, "all"), filters=filters, shared_size=qbool(request, "shared-size"))
    if not at_least(request, "1.44"):
        for e in out:
            e["VirtualSize"] = e["Size"]
    return json_response(out)


@routes.post("/images/create")
async def create(request: web.Request) -> web.StreamResponse:
    q = request.query
    from_src = q.get("fromSrc")
    from_image = q.get("fromImage")
    if from_src is None and not from_image:
        raise InvalidParameter("fromImage or fromSrc is required")
    if from_image and from_src is None:
        from .distribution import pull  # registry pulls live in the distribution module

        return await pull(request)
    if from_src != "-":
        raise InvalidParameter("importing from a URL is not supported: send the tarball in the body (fromSrc=-)")
    # The body goes straight into the layer store: hashed, kept and unpacked as it arrives.
    img = await _images(request).import_image(
        body_chunks(request), repo=q.get("repo") or None, tag=q.get("tag") or None,
        changes=q.getall("changes", []), message=q.get("message") or None,
        platform=q.get("platform") or None)
    return await _json_stream(request, [{"status": img.id}])


@routes.post("/images/load")
async def load(request: web.Request) -> web.StreamResponse:
    quiet = qbool(request, "quiet")
    src = await _spool_body(request, "load-")
    try:
        result = await _images(request).load(src)
    except DockyardError as exc:  # dockerd answers 200 and reports a failed load in the stream
        return await _json_stream(request, [{"errorDetail": {"message": exc.message}, "error": exc.message}])
    finally:
        src.unlink(missing_ok=True)
    msgs: list[dict[str, Any]] = []
    if not quiet:  # what dockerd's progress bars show once each layer is in
        for diff_id, size in result.layers:
            msgs.append({"status": "Loading layer", "id": diff_id[7:19],
                         "progressDetail": {"current": size, "total": size},
                         "progress": f"[{'=' * 49}>] {_human(size)}/{_human(size)}"})
    msgs += [{"stream": m + "\n"} for m in result.messages]
    return await _json_stream(request, msgs)


def _human(n: float) -> str:
    """Sizes as Docker's progress bars print them (decimal units)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.4g}{unit}" if unit != "B" else f"{int(n)}B"
        n /= 1000
    return f"{n}B"


async def _send_tar(request: web.Request, names: list[str]) -> web.StreamResponse:
    path = await _images(request).save(names)
    try:
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/x-tar"})
        await resp.prepare(request)
        f = await asyncio.to_thread(open, path, "rb")
        try:
            while chunk := await asyncio.to_thread(f.read, 1 << 20):
                await resp.write(chunk)
        finally:
            f.close()
        await resp.write_eof()
        return resp
    finally:
        path.unlink(missing_ok=True)


@routes.get("/images/get")
async def save_many(request: web.Request) -> web.StreamResponse:
    names = [n for n in request.query.getall("names", []) if n]
    if not names:
        raise InvalidParameter("no images specified: use the names query parameter")
    return await _send_tar(request, names)


@routes.post("/images/prune")
async def prune(request: web.Request) -> web.Response:
    return json_response(await _images(request).prune(qfilters(request)))


@routes.get("/images/search")
async def search(request: web.Request) -> web.Response:
    from ..distribution.search import search as search_registry

    limit = qint(request, "limit", 25) or 25
    return json_response(await search_registry(request.query.get("term", ""), limit, qfilters(request)))


@routes.get("/images/{name:.+}/get")
async def save_one(request: web.Request) -> web.StreamResponse:
    return await _send_tar(request, [request.match_info["name"]])


@routes.get("/images/{name:.+}/json")
async def inspect(request: web.Request) -> web.Response:
    out = _images(request).inspect(request.match_info["name"])
    if not at_least(request, "1.44"):
        out["VirtualSize"] = out["Size"]
    if not at_least(request, "1.45"):
        out["Container"] = ""
    # dockerd drops ContainerConfig from API 1.45, and docker-compose 1.29 (which negotiates the
    # highest version) then fails every recreation with KeyError 'ContainerConfig': kept, a
    # deliberate departure
    out["ContainerConfig"] = out.get("Config")
    return json_response(out)


@routes.get("/images/{name:.+}/history")
async def history(request: web.Request) -> web.Response:
    return json_response(_images(request).history(request.match_info["name"]))


@routes.post("/images/{name:.+}/tag")
async def tag(request: web.Request) -> web.Response:
    _images(request).tag(request.match_info["name"], request.query.get("repo", ""),
                         request.query.get("tag") or None)
    return web.Response(status=201)


@routes.delete("/images/{name:.+}")
async def remove(request: web.Request) -> web.Response:
    records = await _images(request).remove(
        request.match_info["name"], force=qbool(request, "force"), noprune=qbool(request, "noprune"))
    return json_response(records)
