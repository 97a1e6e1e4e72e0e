"""Swarm mode endpoints, answered as a dockerd whose swarm is inactive.

dockyard has no swarm mode.  Clients (docker CLI, docker-py teardown code) rely on
dockerd's answers for an inactive node: 503 with its texts, never a 404.
"""

from __future__ import annotations

from aiohttp import web

from ..errors import InvalidParameter, Unavailable
from .params import json_object
from .routing import Routes

routes = Routes()

# moby daemon/cluster: errNoManager for a node that never joined, errNoSwarm on leave.
NOT_MANAGER = ('This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" '
               "to connect this node to swarm and try again.")
NOT_IN_SWARM = "This node is not part of a swarm"
# dockerd would start a swarm node here; this engine has none to start.
NO_SWARM_MODE = "swarm mode is not supported by this engine (dockyard)"


async def not_manager(request: web.Request) -> web.Response:
    raise Unavailable(NOT_MANAGER)


# Every route of moby's swarm router that needs a manager.
_MANAGER_ROUTES = [
    ("GET", "/swarm"), ("GET", "/swarm/unlockkey"), ("POST", "/swarm/update"),
    ("POST", "/swarm/unlock"),
    ("GET", "/services"), ("GET", "/services/{id}"), ("POST", "/services/create"),
    ("POST", "/services/{id}/update"), ("DELETE", "/services/{id}"), ("GET", "/services/{id}/logs"),
    ("GET", "/nodes"), ("GET", "/nodes/{id}"), ("DELETE", "/nodes/{id}"), ("POST", "/nodes/{id}/update"),
    ("GET", "/tasks"), ("GET", "/tasks/{id}"), ("GET", "/tasks/{id}/logs"),
]
for _kind in ("secrets", "configs"):
    _MANAGER_ROUTES += [
        ("GET", f"/{_kind}"), ("POST", f"/{_kind}/create"), ("GET", f"/{_kind}/{{id}}"),
        ("DELETE", f"/{_kind}/{{id}}"), ("POST", f"/{_kind}/{{id}}/update"),
    ]
for _method, _path in _MANAGER_ROUTES:
    routes.add(_method, _path)(not_manager)


@routes.post("/swarm/leave")
async def leave(request: web.Request) -> web.Response:
    raise Unavailable(NOT_IN_SWARM)


def _check_addr(field: str, value) -> None:
    # moby validateAddr: only an empty address is refused before the node starts
    if not isinstance(value, str) or not value:
        raise InvalidParameter(f'invalid {field} "{value if isinstance(value, str) else ""}": '
                               "invalid empty address")


@routes.post("/swarm/init")
async def init(request: web.Request) -> web.Response:
    body = await json_object(request)
    _check_addr("ListenAddr", body.get("ListenAddr"))
    name = ((body.get("Spec") or {}).get("Name") if isinstance(body.get("Spec"), dict) else None) or ""
    if name not in ("", "default"):
        raise InvalidParameter('swarm spec must be named "default"')
    raise Unavailable(NO_SWARM_MODE)


@routes.post("/swarm/join")
async def join(request: web.Request) -> web.Response:
    body = await json_object(request)
    _check_addr("ListenAddr", body.get("ListenAddr"))
    remotes = body.get("RemoteAddrs")
    if not remotes:
        raise InvalidParameter("at least 1 RemoteAddr is required to join")
    for r in remotes:
        if not isinstance(r, str) or not r:
            raise InvalidParameter(f'invalid remoteAddr "{r if isinstance(r, str) else ""}": '
                                   "invalid empty address")
    raise Unavailable(NO_SWARM_MODE)
