"""API version negotiation: /v1.12 ... /v1.50 and unversioned paths."""

from __future__ import annotations

from aiohttp import web

from .errors import error_response

MIN_VERSION = "1.12"  # dockerd 20.10's minimum
MAX_VERSION = "1.50"

# Every route is registered twice: bare, and behind this prefix.
PREFIX = r"/v{api_version:[0-9]+\.[0-9]+}"


def parse(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split("."))


def request_version(request: web.Request) -> str:
    return request.get("api_version", MAX_VERSION)


def at_least(request: web.Request, v: str) -> bool:
    return parse(request_version(request)) >= parse(v)


@web.middleware
async def version_middleware(request: web.Request, handler):
    v = request.match_info.get("api_version")
    if v is not None:
        if parse(v) > parse(MAX_VERSION):
            return error_response(
                400,
                f"client version {v} is too new. Maximum supported API version is {MAX_VERSION}",
            )
        if parse(v) < parse(MIN_VERSION):
            return error_response(
                400,
                f"client version {v} is too old. Minimum supported API version is {MIN_VERSION}, "
                "please upgrade your client to a newer version",
            )
        request["api_version"] = v
    resp = await handler(request)
    return resp
