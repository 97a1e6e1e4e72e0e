"""Query-string and body parsing with Docker's leniency and Docker's 400s."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, AsyncIterator

from aiohttp import web

from ..engine.filters import Filters
from ..errors import InvalidParameter


def qbool(request: web.Request, name: str, default: bool = False) -> bool:
    v = request.query.get(name)
    if v is None:
        return default
    v = v.strip().lower()
    if v in ("", "0", "false", "no", "off"):
        return False if v else default
    if v in ("1", "true", "yes", "on"):
        return True
    raise InvalidParameter(f"invalid boolean value {request.query[name]!r} for query parameter {name}")


def qint(request: web.Request, name: str, default: int | None = None) -> int | None:
    v = request.query.get(name)
    if v is None or v == "":
        return default
    try:
        return int(v)
    except ValueError:
        raise InvalidParameter(f"invalid value {v!r} for query parameter {name}: not an integer") from None


def qstr(request: web.Request, name: str, default: str | None = None) -> str | None:
    return request.query.get(name, default)


def qfilters(request: web.Request) -> Filters:
    return Filters.parse(request.query.get("filters"))


async def json_body(request: web.Request, *, required: bool = True) -> Any:
    raw = await request.read()
    if not raw.strip():
        if required:
            raise InvalidParameter("request body is required")
        return None
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidParameter(f"invalid JSON: {exc}") from None


async def json_object(request: web.Request, *, required: bool = True) -> dict:
    body = await json_body(request, required=required)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InvalidParameter("invalid JSON: expected an object")
    return body


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=json.dumps(data) + "\n", content_type="application/json"
    )


SPOOL_FLUSH = 1 << 20


async def body_chunks(request: web.Request, size: int = 4 * SPOOL_FLUSH) -> AsyncIterator[bytes]:
    """The request body in chunks of about `size` bytes (few thread hand-offs per MiB)."""
    parts: list[bytes] = []
    have = 0
    async for chunk in request.content.iter_any():  # whatever arrived: fewer, bigger pieces
        parts.append(chunk)
        have += len(chunk)
        if have >= size:
            yield b"".join(parts)  # one copy (a bytearray grown and then frozen made two)
            parts.clear()
            have = 0
    if parts:
        yield b"".join(parts)


async def spool_body(request: web.Request, path: Path) -> Path:
    """The request body (an image or context tar) to a file, written from a thread.

    The file is removed if the upload fails half way.
    """
    f = await asyncio.to_thread(open, path, "wb")
    try:
        buf = bytearray()
        async for chunk in request.content.iter_chunked(1 << 16):
            buf += chunk
            if len(buf) >= SPOOL_FLUSH:
                await asyncio.to_thread(f.write, bytes(buf))
                buf.clear()
        if buf:
            await asyncio.to_thread(f.write, bytes(buf))
    except BaseException:
        f.close()
        path.unlink(missing_ok=True)
        raise
    await asyncio.to_thread(f.close)
    return path
