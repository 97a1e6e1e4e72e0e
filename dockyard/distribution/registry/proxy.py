"""The pull-through cache (Distribution's `proxy: {remoteurl, username, password, ttl}`).

A repository on a proxy is a cache of the same repository upstream:

- Manifests by digest are served locally once fetched (content-addressed: never stale).
  Tags are re-checked upstream when their last check is older than `ttl`; when the upstream
  cannot answer (down, 5xx, credentials refused) the cached manifest is served ("stale").
- A blob missing locally is fetched from the upstream once, by a task of its own, and *teed*:
  each chunk goes into an upload session and into a local spool file that every client
  asking for the blob meanwhile reads as it grows (`inflight.py`), so no client waits for the
  whole blob to be stored.  The last chunk is held back until the digest is verified: on a
  mismatch every client's connection is cut short (none can mistake its body for complete)
  and nothing is stored.  A client of another repository joins the fetch once the upstream
  confirms (HEAD) that repository has the blob too.
- A blob already cached for another repository is linked after a HEAD upstream confirms the
  repository has it (a digest is not a licence to read another repository's content).
- Writes (push, delete) are refused with Distribution's 405 UNSUPPORTED.

Upstream auth (Basic or the Bearer token flow) is the engine's registry client's.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from ...errors import DockyardError, NotFound
from ..client.auth import Credentials
from ..client.registry import RegistryClient
from . import locking
from .config import ProxyConfig
from .errors import RegistryError, blob_unknown, manifest_unknown, name_unknown
from .inflight import InflightBlob
from .manifests import Manifest
from .names import Digest, digest_bytes, is_digest_ref, is_tag, parse_digest

log = logging.getLogger("dockyard.registry.proxy")

_STORE_BUFFER = 4 << 20  # bytes handed to the storage thread at a time


class _Mismatch(Exception):
    pass


class PullThrough:
    def __init__(self, registry: Any, cfg: ProxyConfig, metrics: Any) -> None:
        self.reg = registry
        self.cfg = cfg
        self.metrics = metrics
        url = urlsplit(cfg.remote_url)
        self._host = url.netloc
        self._scheme = url.scheme  # remoteurl fixes the scheme: no https attempt on an http:// upstream
        self._creds = Credentials(cfg.username or "", cfg.password or "")
        self._client: RegistryClient | None = None
        self._checked: dict[tuple[str, str], float] = {}  # (repo, tag) -> monotonic time of the last check
        self._inflight: dict[str, InflightBlob] = {}  # digest -> its fetch

    @property
    def client(self) -> RegistryClient:
        if self._client is None:  # created on the serving loop, at first use
            self._client = RegistryClient(self._host, self._creds, insecure=self._scheme == "http",
                                          connect_timeout=10, read_timeout=120, schemes=[self._scheme])
        return self._client

    async def close(self) -> None:
        tasks = [f.task for f in self._inflight.values() if f.task is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.close()

    def count(self, kind: str, result: str) -> None:
        self.metrics.proxy.labels(kind, result).inc()

    # --- manifests -----------------------------------------------------------------

    async def manifest(self, repo: str, ref: str) -> Manifest:
        if is_digest_ref(ref):
            parse_digest(ref)  # a malformed digest is the client's 400, not the upstream's business
        elif not is_tag(ref):
            raise manifest_unknown(ref[:200])
        local = await asyncio.to_thread(self._local_manifest, repo, ref)
        if is_digest_ref(ref):
            if local is not None:
                self.count("manifest", "hit")
                return local
            return await self._fetch_manifest(repo, ref, None)
        checked = self._checked.get((repo, ref))
        fresh = checked is not None and (self.cfg.ttl == 0 or time.monotonic() - checked < self.cfg.ttl)
        if local is not None and fresh:  # ttl 0: never re-checked once cached (Distribution: never expires)
            self.count("manifest", "hit")
            return local
        try:
            return await self._fetch_manifest(repo, ref, local)
        except RegistryError as e:
            if local is None or e.code != "UNAVAILABLE":
                raise
            log.warning("upstream unavailable for %s:%s, serving the cached manifest: %s", repo, ref, e.message)
            self.count("manifest", "stale")
            return local

    def _local_manifest(self, repo: str, ref: str) -> Manifest | None:
        try:
            return self.reg.manifests.get(repo, ref)
        except RegistryError:
            return None

    async def _fetch_manifest(self, repo: str, ref: str, local: Manifest | None) -> Manifest:
        try:
            m = await self.client.get_manifest(repo, ref)
        except NotFound:
            raise manifest_unknown(ref) from None
        except DockyardError as e:
            raise RegistryError("UNAVAILABLE", f"upstream registry: {e}") from None
        if is_digest_ref(ref):
            want = parse_digest(ref)
            if digest_bytes(m.body, want.algorithm) != want:
                raise RegistryError("UNAVAILABLE", f"upstream registry: manifest does not match {ref}")
        self.count("manifest", "miss")
        tag = None if is_digest_ref(ref) else ref
        d = await asyncio.to_thread(self.reg.manifests.store_cached, repo, m.body, m.media_type, tag)
        if tag is not None:
            self._checked[(repo, tag)] = time.monotonic()
        return Manifest(d, m.media_type, m.body)

    async def tags(self, repo: str) -> list[str] | None:
        """The upstream's tags of `repo` (as Distribution's proxy answers tags/list), or None
        when the upstream cannot say, for the caller to answer from the cache."""
        try:
            return await self.client.list_tags(repo)
        except NotFound:
            raise name_unknown(repo) from None
        except DockyardError as e:
            log.warning("upstream unavailable for the tags of %s, answering from the cache: %s", repo, e)
            return None

    # --- blobs ---------------------------------------------------------------------

    async def blob(self, request: web.Request, repo: str, d: Digest) -> web.StreamResponse | None:
        """For a blob `repo` does not link locally: a response streamed from the upstream, or
        None once the blob is linked locally (the caller then serves it from storage)."""
        key = str(d)
        if await asyncio.to_thread(self.reg.blobs.is_linked, repo, d):
            self.count("blob", "hit")
            return None
        fetch = self._inflight.get(key)
        if fetch is None:
            if await asyncio.to_thread(self.reg.blobs.global_stat, d) is not None:
                if await self._upstream_has(repo, d):
                    await asyncio.to_thread(self.reg.blobs.link, repo, d)
                    self.count("blob", "hit")
                    return None
                raise blob_unknown(key)
            fetch = self._inflight.get(key)  # one may have started during the awaits
            if fetch is None:
                if request.method == "HEAD":
                    return await self._head(request, repo, d)
                fetch = self._inflight[key] = InflightBlob(repo, self.reg.lock_dir)
                fetch.task = asyncio.create_task(self._fetch(fetch, d))
                return await fetch.serve(request, _blob_headers(d))
        if fetch.repo != repo and not await self._upstream_has(repo, d):
            raise blob_unknown(key)  # another repository's fetch is no licence to read it here
        self.count("blob", "hit")  # served by the cache: no upstream request of its own
        return await fetch.serve(request, _blob_headers(d))

    async def _upstream_has(self, repo: str, d: Digest) -> bool:
        try:
            return await self.client.blob_exists(repo, str(d))
        except DockyardError as e:
            raise RegistryError("UNAVAILABLE", f"upstream registry: {e}") from None

    async def _open(self, repo: str, d: Digest) -> Any:
        try:
            return await self.client.open_blob(repo, str(d))
        except NotFound:
            raise blob_unknown(str(d)) from None
        except DockyardError as e:
            raise RegistryError("UNAVAILABLE", f"upstream registry: {e}") from None

    async def _head(self, request: web.Request, repo: str, d: Digest) -> web.StreamResponse:
        r = await self._open(repo, d)
        r.release()  # only the headers are wanted: the connection is dropped, not drained
        self.count("blob", "miss")
        resp = web.StreamResponse(status=200, headers=_blob_headers(d))
        if r.content_length is not None:
            resp.content_length = r.content_length
        await resp.prepare(request)
        await resp.write_eof()
        return resp

    async def _fetch(self, fetch: InflightBlob, d: Digest) -> None:
        """The one upstream GET of an in-flight blob: a task of its own, so no client leaving
        (the first one included) stops it; the others, and the cache, still want the bytes."""
        repo = fetch.repo
        try:
            r = await self._open(repo, d)
            try:
                await self._pull(fetch, r, repo, d)
            finally:
                r.release()
        except RegistryError as e:
            fetch.fail(e)
        except Exception as e:  # storage trouble before the first byte: the clients get a 503
            log.exception("pull-through of %s/%s failed", repo, d)
            fetch.fail(RegistryError("UNAVAILABLE", f"pull-through failed: {e}"))
        finally:
            fetch.fail(blob_unknown(str(d)))  # a no-op once verified; wakes the clients if cancelled
            if self._inflight.get(str(d)) is fetch:
                del self._inflight[str(d)]
            fetch.release()

    async def _pull(self, fetch: InflightBlob, r: Any, repo: str, d: Digest) -> None:
        self.count("blob", "miss")
        size = r.content_length
        uploads = self.reg.uploads
        upload_id, _ = await asyncio.to_thread(uploads.start, repo, d.algorithm)
        session = await asyncio.to_thread(uploads.open, repo, upload_id)
        hasher = hashlib.new(d.algorithm)
        loop = asyncio.get_running_loop()

        def store(chunks: list[bytes]) -> None:
            session.write_chunks(chunks)
            for c in chunks:
                hasher.update(c)

        fetch.start(size)
        writing: asyncio.Future[None] | None = None
        buf: list[bytes] = []
        buffered = total = 0
        try:
            async for chunk in r.content.iter_any():
                total += len(chunk)
                if size is not None and total > size:
                    raise _Mismatch(f"upstream sent more than its Content-Length {size}")
                await fetch.append(chunk)
                buf.append(chunk)
                buffered += len(chunk)
                if buffered >= _STORE_BUFFER:
                    if writing is not None:
                        await writing
                    writing = loop.run_in_executor(None, store, buf)
                    buf, buffered = [], 0
            if writing is not None:
                await writing
            if buf:
                await loop.run_in_executor(None, store, buf)
            self.metrics.proxy_bytes.inc(total)
            if size is not None and total != size:
                raise _Mismatch(f"upstream sent {total} bytes, Content-Length said {size}")
            if hasher.hexdigest() != d.hex:
                raise _Mismatch(f"upstream content does not match {d}")
        except BaseException as e:
            try:
                if writing is not None and not writing.done():
                    await asyncio.wait([writing])
                await asyncio.to_thread(_discard, uploads, session, repo, upload_id)
                if isinstance(e, Exception):
                    log.warning("pull-through of %s/%s failed, nothing stored: %s", repo, d, e)
            finally:
                # Cut every client: a short body is the only way to say "bad" after a 200.
                fetch.fail(blob_unknown(str(d)))
            if not isinstance(e, Exception):
                raise  # cancelled: the registry is shutting down
            return
        fetch.verify()  # the clients get the last chunk while the blob is committed

        def finish() -> None:
            with locking.root_lock(self.reg.lock_dir, exclusive=False):
                session.finish(str(d))

        try:
            await asyncio.to_thread(finish)
        except Exception:
            log.exception("storing the pulled-through blob %s in %s failed", d, repo)
            await asyncio.to_thread(_discard, uploads, session, repo, upload_id)


def _discard(uploads: Any, session: Any, repo: str, upload_id: str) -> None:
    if not session.closed:
        session.close()
    try:
        uploads.cancel(repo, upload_id)
    except RegistryError:
        pass


def _blob_headers(d: Digest) -> dict[str, str]:
    return {"Docker-Content-Digest": str(d), "Content-Type": "application/octet-stream",
            "ETag": f'"{d}"', "Cache-Control": "max-age=31536000"}
