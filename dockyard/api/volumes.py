"""/volumes/*."""

from __future__ import annotations

import asyncio

from aiohttp import web

from ..errors import InvalidParameter
from .params import json_object, json_response, qbool, qfilters
from .routing import Routes
from .versions import at_least

routes = Routes()


def _svc(request: web.Request):
    return request.app["engine"].volumes


def _str_map(body: dict, key: str) -> dict[str, str]:
    v = body.get(key)
    if v is None:
        return {}
    if not isinstance(v, dict) or not all(isinstance(x, str) for x in v.values()):
        raise InvalidParameter(f"json: cannot unmarshal into Go struct field CreateOptions.{key} of type map[string]string")
    return v


@routes.get("/volumes")
async def list_volumes(request: web.Request) -> web.Response:
    vols = _svc(request).list(qfilters(request))
    return json_response({"Volumes": [v.to_docker() for v in vols], "Warnings": None})


@routes.post("/volumes/create")
async def create(request: web.Request) -> web.Response:
    body = await json_object(request, required=False)
    name = body.get("Name")
    driver = body.get("Driver")
    if name is not None and not isinstance(name, str) or driver is not None and not isinstance(driver, str):
        raise InvalidParameter("invalid volume name or driver: expected strings")
    if body.get("ClusterVolumeSpec"):
        raise InvalidParameter("cluster volumes need swarm mode, which is not supported")
    v = _svc(request).create(name or None, driver, _str_map(body, "DriverOpts"), _str_map(body, "Labels"))
    return json_response(v.to_docker(), status=201)


@routes.get("/volumes/{name}")
async def inspect(request: web.Request) -> web.Response:
    return json_response(_svc(request).get(request.match_info["name"]).to_docker())


@routes.put("/volumes/{name}")
async def update(request: web.Request) -> web.Response:
    _svc(request).get(request.match_info["name"])
    raise InvalidParameter("only cluster volumes can be updated, and swarm mode is not supported")


@routes.delete("/volumes/{name}")
async def remove(request: web.Request) -> web.Response:
    await asyncio.to_thread(_svc(request).remove, request.match_info["name"], qbool(request, "force"))
    return web.Response(status=204)


@routes.post("/volumes/prune")
async def prune(request: web.Request) -> web.Response:
    # API < 1.42 pruned named volumes too; newer ones only anonymous unless all=true
    deleted, space = await asyncio.to_thread(_svc(request).prune, qfilters(request),
                                             all_volumes=not at_least(request, "1.42"))
    return json_response({"VolumesDeleted": deleted or [], "SpaceReclaimed": space})
