"""One blob being pulled through from the upstream, read by every client that wants it meanwhile.

The fetch writes the upstream's bytes into an unlinked *spool* file on local disk; each client
(the one that started the fetch and any that came later) reads that file as it grows, woken on
each chunk.  A slow client only lags behind in the file: memory stays bounded whatever the number
or speed of the clients, and the upstream is read once, at its own pace.

The newest chunk is withheld from the clients until the whole blob's digest is verified, so no
client can receive a complete-looking body that turns out wrong: on a failure every client's
connection is aborted (a body shorter than its Content-Length, or a chunked body with no last
chunk).
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from typing import Callable

from aiohttp import web

from .errors import RegistryError
from .ranges import parse_range

log = logging.getLogger("dockyard.registry.proxy")

_READ = 1 << 20  # most bytes read from the spool per write to a client
_BATCH = 256 << 10  # a client wakes for this much new data (or the end): not for every small chunk


class InflightBlob:
    def __init__(self, repo: str, spool_dir: str) -> None:
        self.repo = repo  # the repository the blob is fetched (and stored) for
        self.size: int | None = None  # the upstream's Content-Length, once it answered
        self.started = False  # the upstream answered 200
        self.safe = 0  # bytes the clients may send (all written but the newest chunk, until verified)
        self.verified = False
        self.error: RegistryError | None = None  # set when the fetch failed
        self.task: asyncio.Task[None] | None = None
        self._written = 0
        self._spool = tempfile.TemporaryFile(dir=spool_dir, prefix="proxy-spool-")
        self._users = 1  # the fetch itself, then one per client
        self._changed = asyncio.Event()

    # --- the fetch's side ------------------------------------------------------------

    def _publish(self) -> None:
        ev, self._changed = self._changed, asyncio.Event()
        ev.set()

    def start(self, size: int | None) -> None:
        self.size, self.started = size, True
        self._publish()

    async def append(self, chunk: bytes) -> None:
        offset = self._written
        await asyncio.to_thread(os.pwrite, self._spool.fileno(), chunk, offset)
        self.safe, self._written = offset, offset + len(chunk)  # this chunk is withheld for now
        self._publish()

    def verify(self) -> None:
        self.safe, self.verified = self._written, True
        self._publish()

    def fail(self, error: RegistryError) -> None:
        if not self.verified and self.error is None:
            self.error = error
            self._publish()

    def release(self) -> None:
        self._users -= 1
        if self._users == 0:
            self._spool.close()

    # --- a client's side -------------------------------------------------------------

    async def _until(self, ready: Callable[[], bool]) -> None:
        while True:
            ev = self._changed
            if ready() or self.error is not None:
                return
            await ev.wait()

    async def serve(self, request: web.Request, headers: dict[str, str]) -> web.StreamResponse:
        self._users += 1
        try:
            return await self._serve(request, headers)
        finally:
            self.release()

    async def _serve(self, request: web.Request, headers: dict[str, str]) -> web.StreamResponse:
        await self._until(lambda: self.started)
        if self.error is not None:  # failed before this client had an answer: a clean error
            raise self.error
        size = self.size
        start, end, status = 0, size, 200
        rng = request.headers.get("Range") if request.method == "GET" else None
        if size is not None:
            headers["Accept-Ranges"] = "bytes"
            span = parse_range(rng, size) if rng else None
            if span == "unsatisfiable":
                return web.json_response(
                    {"errors": [{"code": "BLOB_UNKNOWN", "message": f"range {rng[:100]!r} not satisfiable",
                                 "detail": {"size": size}}]}, status=416,
                    headers={"Content-Range": f"bytes */{size}", "Docker-Content-Digest": headers["Docker-Content-Digest"]})
            if isinstance(span, tuple):
                start, end, status = span[0], span[1] + 1, 206
                headers["Content-Range"] = f"bytes {span[0]}-{span[1]}/{size}"
        resp = web.StreamResponse(status=status, headers=headers)
        if end is not None:
            resp.content_length = end - start
        await resp.prepare(request)
        if request.method == "HEAD":
            await resp.write_eof()
            return resp
        pos = start
        while end is None or pos < end:
            want = pos + _BATCH if end is None else min(pos + _BATCH, end)
            await self._until(lambda: self.safe >= want or self.verified)
            if self.error is not None:
                log.info("cutting a client off a failed pull-through")
                if request.transport is not None:
                    request.transport.abort()  # a short body: the client cannot take it for complete
                return resp
            if self.safe <= pos:  # verified, and nothing more: the end of a body of unknown length
                break
            n = min(self.safe, end if end is not None else self.safe, pos + _READ) - pos
            data = await asyncio.to_thread(os.pread, self._spool.fileno(), n, pos)
            try:
                await resp.write(data)
            except (ConnectionError, RuntimeError) as e:
                log.info("client left during a pull-through: %s", e)  # the fetch goes on, for the others
                return resp
            pos += len(data)
        await resp.write_eof()
        return resp
