"""The one place where domain errors become HTTP statuses and Docker's error JSON."""

from __future__ import annotations

import json
import logging

from aiohttp import web

from .. import errors

log = logging.getLogger(__name__)

STATUS = {
    errors.InvalidParameter: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.NotModified: 304,
    errors.Unavailable: 503,
    errors.SystemError_: 500,
    errors.NotImplemented_: 501,
}


def status_for(exc: errors.DockyardError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def error_response(status: int, message: str) -> web.Response:
    if status == 304:
        return web.Response(status=304)
    return web.Response(
        status=status,
        body=json.dumps({"message": message}) + "\n",
        content_type="application/json",
    )


@web.middleware
async def error_middleware(request: web.Request, handler):
    try:
        return await handler(request)
    except errors.DockyardError as exc:
        return error_response(status_for(exc), exc.message)
    except web.HTTPException as exc:
        if exc.status >= 400 and exc.content_type != "application/json":
            msg = exc.text or exc.reason
            if exc.status == 404 and request.match_info.route.resource is None:
                msg = "page not found"
            elif exc.status == 405:
                msg = "method not allowed"
            return error_response(exc.status, msg)
        raise
    except json.JSONDecodeError as exc:
        return error_response(400, f"invalid JSON: {exc}")
    except (ConnectionResetError, BrokenPipeError):
        raise
    except Exception as exc:  # a bug in us: log it with its traceback
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(500, f"internal error: {exc!r}")
