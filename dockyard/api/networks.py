"""/networks: list, inspect, create, remove, connect, disconnect, prune."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..errors import Forbidden, InvalidParameter
from .params import json_object, json_response, qfilters
from .routing import Routes

routes = Routes()


def _svc(request: web.Request):
    engine = request.app["engine"]
    svc = engine.networks
    containers = getattr(engine, "containers", None)
    if svc.container_name is None and containers is not None:
        # `Containers[id].Name` in network inspect shows the current name.
        svc.container_name = lambda cid: containers.get(cid).name
    return svc


def _bool(body: dict[str, Any], key: str) -> bool:
    v = body.get(key, False)
    if v is None:
        return False
    if not isinstance(v, bool):
        raise InvalidParameter(f"invalid value for {key}: expected a boolean")
    return v


def _str_map(body: dict[str, Any], key: str) -> dict[str, str]:
    v = body.get(key) or {}
    if not isinstance(v, dict) or not all(isinstance(x, str) for x in v.values()):
        raise InvalidParameter(f"invalid value for {key}: expected an object of strings")
    return v


@routes.get("/networks")
async def list_networks(request: web.Request) -> web.Response:
    return json_response(_svc(request).list_networks(qfilters(request)))


@routes.get("/networks/{id}")
async def inspect_network(request: web.Request) -> web.Response:
    return json_response(_svc(request).inspect_network(request.match_info["id"]))


@routes.post("/networks/create")
async def create_network(request: web.Request) -> web.Response:
    body = await json_object(request)
    name = body.get("Name")
    if not isinstance(name, str) or not name:
        raise InvalidParameter("network name is required")
    if body.get("Scope") not in (None, "", "local"):
        raise InvalidParameter(f"invalid scope {body['Scope']!r}: only local networks are supported")
    if _bool(body, "Ingress"):
        raise Forbidden("ingress networks need swarm mode, which is not supported")
    config_from = body.get("ConfigFrom") or {}
    if not isinstance(config_from, dict):
        raise InvalidParameter("invalid value for ConfigFrom: expected an object")
    if _bool(body, "ConfigOnly") or config_from.get("Network"):
        raise InvalidParameter("config-only networks are not supported")
    if body.get("EnableIPv4") is False:
        raise InvalidParameter("IPv4 cannot be disabled on a bridge network")
    ipam = body.get("IPAM") or {}
    if not isinstance(ipam, dict):
        raise InvalidParameter("invalid value for IPAM: expected an object")
    net = await _svc(request).create_network(
        name,
        driver=body.get("Driver") or "bridge",
        internal=_bool(body, "Internal"),
        attachable=_bool(body, "Attachable"),
        enable_ipv6=_bool(body, "EnableIPv6") if body.get("EnableIPv6") is not None else None,
        ipam=ipam,
        options=_str_map(body, "Options"),
        labels=_str_map(body, "Labels"),
    )
    return json_response({"Id": net.id, "Warning": ""}, status=201)


@routes.delete("/networks/{id}")
async def remove_network(request: web.Request) -> web.Response:
    await _svc(request).remove_network(request.match_info["id"])
    return web.Response(status=204)


@routes.post("/networks/prune")
async def prune_networks(request: web.Request) -> web.Response:
    deleted = await _svc(request).prune_networks(qfilters(request))
    return json_response({"NetworksDeleted": deleted or None})


async def _network_and_container(request: web.Request):
    """The body of connect/disconnect, its network (404 if unknown) and the container named."""
    body = await json_object(request)
    net = _svc(request).resolve(request.match_info["id"])
    ref = body.get("Container")
    if not isinstance(ref, str) or not ref:
        raise InvalidParameter("Container is required")
    return body, net, ref


@routes.post("/networks/{id}/connect")
async def connect(request: web.Request) -> web.Response:
    body, net, ref = await _network_and_container(request)
    endpoint_config = body.get("EndpointConfig") or {}
    if not isinstance(endpoint_config, dict):
        raise InvalidParameter("invalid value for EndpointConfig: expected an object")
    containers = request.app["engine"].containers
    containers.get(ref)  # 404 for an unknown container
    await containers.connect_network(ref, net.name, endpoint_config)
    return web.Response(status=200)


@routes.post("/networks/{id}/disconnect")
async def disconnect(request: web.Request) -> web.Response:
    body, net, ref = await _network_and_container(request)
    containers = request.app["engine"].containers
    containers.get(ref)
    await containers.disconnect_network(ref, net.name, _bool(body, "Force"))
    return web.Response(status=200)
