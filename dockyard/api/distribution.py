"""Registry routes: pull (POST /images/create?fromImage=), push and login (POST /auth).

Thin: decode X-Registry-Auth, let DistributionService prepare the work (its
errors become plain 4xx answers), then stream its progress messages; an error
after the first message can only travel inside the stream, as dockerd does.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any, AsyncIterator

from aiohttp import web

from ..errors import DockyardError
from .params import json_object, json_response
from .routing import Routes

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from ..distribution.client.auth import Credentials
    from ..engine.distribution import DistributionService

routes = Routes()


def decode_registry_auth(header: str | None) -> "Credentials":
    # the registry client is imported by the first pull, push or login, not by an idle engine
    from ..distribution.client.auth import decode_registry_auth as decode

    return decode(header)


def error_message(exc: DockyardError) -> dict[str, Any]:
    from ..engine.distribution import error_message as message

    return message(exc)


def _service(request: web.Request) -> DistributionService:
    return request.app["engine"].distribution


async def _stream(request: web.Request, messages: AsyncIterator[dict[str, Any]]) -> web.StreamResponse:
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    try:
        async for m in messages:
            await resp.write((json.dumps(m) + "\r\n").encode())
    except DockyardError as exc:
        await resp.write((json.dumps(error_message(exc)) + "\r\n").encode())
    except Exception as exc:  # a bug; the status line is gone, so say it in the stream
        log.exception("error while streaming %s", request.path)
        await resp.write((json.dumps(error_message(DockyardError(f"internal error: {exc!r}"))) + "\r\n").encode())
    await resp.write_eof()
    return resp


async def pull(request: web.Request) -> web.StreamResponse:
    """POST /images/create?fromImage=...&tag=... (called by the images module)."""
    q = request.query
    creds = decode_registry_auth(request.headers.get("X-Registry-Auth"))
    svc = _service(request)
    plan = await svc.prepare_pull(q.get("fromImage", ""), q.get("tag") or None, creds,
                                  q.get("platform") or None)
    try:
        return await _stream(request, svc.pull(plan))
    finally:  # also when the client went away before the stream began
        await plan.client.close()


@routes.post("/images/{name:.+}/push")
async def push(request: web.Request) -> web.StreamResponse:
    creds = decode_registry_auth(request.headers.get("X-Registry-Auth"))
    svc = _service(request)
    plan = await svc.prepare_push(request.match_info["name"], request.query.get("tag") or None, creds)
    try:
        return await _stream(request, svc.push(plan))
    finally:
        await plan.client.close()


@routes.post("/auth")
async def auth(request: web.Request) -> web.Response:
    body = await json_object(request)
    return json_response(await _service(request).login(body))
