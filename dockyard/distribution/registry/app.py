"""The HTTP layer: parse the request, call one service, render the reply.

One catch-all route dispatches on regular expressions because repository names
contain slashes.  Errors are RegistryError, rendered by `_errors` middleware.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from typing import Any, Awaitable, Callable
from urllib.parse import urlencode

from aiohttp import web
from aiohttp.client_exceptions import ClientError

from . import locking
from .auth import Scope
from .errors import RegistryError, unsupported
from .http_events import ACCOUNT_KEY, blob_target, manifest_target, notify
from .mediatypes import OCI_INDEX, acceptable
from .names import parse_digest, validate_name
from .ranges import parse_range
from .sendfile import serve_file
from .service import Registry
from .storage.driver import InvalidPath
from .tags import paginate, parse_n
from .uploads import UploadSession

log = logging.getLogger("dockyard.registry")

API_VERSION = "registry/2.0"
_BUFFER = 4 << 20  # bytes handed to the writer thread at a time
REGISTRY_KEY = web.AppKey("registry", Registry)

Handler = Callable[[web.Request, "Match"], Awaitable[web.StreamResponse]]


class Match:
    def __init__(self, groups: dict[str, str]) -> None:
        self.name = groups.get("name", "")
        self.ref = groups.get("ref", "")
        self.digest = groups.get("digest", "")
        self.uuid = groups.get("uuid", "")


def _reg(request: web.Request) -> Registry:
    return request.app[REGISTRY_KEY]


def _base_url(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


async def _authorize(request: web.Request, scope: Scope | None) -> str | None:
    reg = _reg(request)
    if not reg.auth.enabled:
        return None
    account = await asyncio.to_thread(reg.auth.authorize, request.headers.get("Authorization"), scope,
                                      _base_url(request))
    request[ACCOUNT_KEY] = account
    return account


def _repo_scope(name: str, *actions: str) -> Scope:
    return Scope("repository", name, tuple(actions))


async def _authorize_write(request: web.Request, scope: Scope) -> str | None:
    """Authorise a push or delete, then refuse it where the registry takes no writes (a
    pull-through cache; storage.maintenance.readonly while GC sweeps the bucket), after auth
    and with the 405 UNSUPPORTED answer, as Distribution does."""
    account = await _authorize(request, scope)
    reg = _reg(request)
    if reg.proxy is not None or reg.cfg.maintenance.readonly:
        raise unsupported()
    return account


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None,
          content_type: str = "application/json") -> web.Response:
    return web.Response(body=json.dumps(data).encode(), status=status, headers=headers,
                        content_type=content_type)


def _link(path: str, n: int | None, last: str) -> str:
    q = {"last": last}
    if n is not None:
        q["n"] = str(n)
    return f'<{path}?{urlencode(q)}>; rel="next"'


# --- body streaming -------------------------------------------------------------

async def _pump(request: web.Request, session: UploadSession) -> None:
    """Stream the request body into the session: the loop reads the socket while a
    thread hashes and writes the previous buffer (double buffering)."""
    loop = asyncio.get_running_loop()
    pending: asyncio.Future[None] | None = None
    buf: list[bytes] = []
    size = 0
    try:
        async for chunk in request.content.iter_any():
            buf.append(chunk)
            size += len(chunk)
            if size >= _BUFFER:
                if pending is not None:
                    await pending
                pending = loop.run_in_executor(None, session.write_chunks, buf)
                buf, size = [], 0
    except (ClientError, ConnectionError, asyncio.IncompleteReadError, web.HTTPException) as e:
        # Keep what arrived so the client can resume from the upload's Range.
        await _flush(loop, pending, session, buf)
        raise RegistryError("BLOB_UPLOAD_INVALID", f"upload interrupted: {e}") from None
    await _flush(loop, pending, session, buf)


async def _flush(loop: asyncio.AbstractEventLoop, pending: "asyncio.Future[None] | None",
                 session: UploadSession, buf: list[bytes]) -> None:
    if pending is not None:
        await pending
    if buf:
        await loop.run_in_executor(None, session.write_chunks, buf)


def _content_length(request: web.Request) -> int | None:
    v = request.headers.get("Content-Length")
    if v is None:
        return None
    try:
        n = int(v)
    except ValueError:
        raise RegistryError("SIZE_INVALID", "malformed Content-Length") from None
    return n


# --- handlers -------------------------------------------------------------------

async def base(request: web.Request, m: Match) -> web.StreamResponse:
    await _authorize(request, None)
    return _json({})


async def catalog(request: web.Request, m: Match) -> web.StreamResponse:
    await _authorize(request, Scope("registry", "catalog", ("*",)))
    cap = _reg(request).cfg.catalog_max_entries  # catalog.maxentries: a page is never longer
    n = parse_n(request.query.get("n"), cap) if cap else parse_n(request.query.get("n"))
    if n is None and cap:
        n = cap
    last = request.query.get("last")
    repos, more = await asyncio.to_thread(_reg(request).repos.catalog, n, last)
    headers = {"Link": _link("/v2/_catalog", n, repos[-1])} if more and repos else None
    return _json({"repositories": repos}, headers=headers)


async def search(request: web.Request, m: Match) -> web.StreamResponse:
    await _authorize(request, Scope("registry", "catalog", ("search",)))
    q = request.query.get("q", "")
    try:
        n = int(request.query.get("n", "25"))
        page = int(request.query.get("page", "1"))
    except ValueError:
        raise RegistryError("PAGINATION_NUMBER_INVALID", "n and page must be integers") from None
    return _json(await asyncio.to_thread(_reg(request).repos.search, q, n, page))


async def tags_list(request: web.Request, m: Match) -> web.StreamResponse:
    await _authorize(request, _repo_scope(m.name, "pull"))
    n = parse_n(request.query.get("n"))
    last = request.query.get("last")
    reg = _reg(request)
    upstream = await reg.proxy.tags(m.name) if reg.proxy is not None else None
    if upstream is not None:
        tags, more = paginate(upstream, n, last)
    else:
        tags, more = await asyncio.to_thread(reg.tags.list, m.name, n, last)
    headers = {"Link": _link(f"/v2/{m.name}/tags/list", n, tags[-1])} if more and tags else None
    return _json({"name": m.name, "tags": tags}, headers=headers)


async def manifest_get(request: web.Request, m: Match) -> web.StreamResponse:
    await _authorize(request, _repo_scope(m.name, "pull"))
    reg = _reg(request)
    if reg.proxy is not None:
        man = await reg.proxy.manifest(m.name, m.ref)
    else:
        man = await asyncio.to_thread(reg.manifests.get, m.name, m.ref)
    if not acceptable(man.media_type, request.headers.getall("Accept", [])):
        raise RegistryError("MANIFEST_UNKNOWN",
                            f"manifest is a {man.media_type}, which the Accept header does not allow",
                            {"mediaType": man.media_type})
    if request.method == "GET":
        await notify(request, _reg(request), "pull", m.name, manifest_target(
            man.media_type, str(man.digest), len(man.body), m.ref, man.body if reg.cfg.include_references else None))
    return web.Response(body=man.body, headers={
        "Content-Type": man.media_type, "Docker-Content-Digest": str(man.digest),
        "ETag": f'"{man.digest}"'})


async def _read_limited(request: web.Request, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise RegistryError("SIZE_INVALID", f"manifest is larger than {limit} bytes", status=413)
        chunks.append(chunk)
    return b"".join(chunks)


async def manifest_put(request: web.Request, m: Match) -> web.StreamResponse:
    await _authorize_write(request, _repo_scope(m.name, "pull", "push"))
    reg = _reg(request)
    body = await _read_limited(request, reg.cfg.manifest_size)
    extra = request.query.getall("tag", [])

    def put() -> Any:
        with locking.root_lock(reg.lock_dir, exclusive=False):
            return reg.manifests.put(m.name, m.ref, body, request.headers.get("Content-Type"), extra)

    res = await asyncio.to_thread(put)
    await notify(request, _reg(request), "push", m.name, manifest_target(
        res.media_type, str(res.digest), len(body), m.ref if ":" not in m.ref else (extra[0] if extra else ""),
        body if reg.cfg.include_references else None))
    headers = {"Location": f"/v2/{m.name}/manifests/{res.digest}", "Docker-Content-Digest": str(res.digest)}
    if res.subject is not None:
        headers["OCI-Subject"] = str(res.subject)
    resp = web.Response(status=201, headers=headers)
    if extra:
        resp.headers["OCI-Tag"] = ", ".join(extra)
    return resp


async def manifest_delete(request: web.Request, m: Match) -> web.StreamResponse:
    await _authorize_write(request, _repo_scope(m.name, "delete"))
    await asyncio.to_thread(_reg(request).manifests.delete, m.name, m.ref)
    await notify(request, _reg(request), "delete", m.name, {"digest": m.ref} if ":" in m.ref else {"tag": m.ref})
    return web.Response(status=202)


async def blob_get(request: web.Request, m: Match) -> web.StreamResponse:
    await _authorize(request, _repo_scope(m.name, "pull"))
    reg = _reg(request)
    d = parse_digest(m.digest)
    touch = request.method == "HEAD"  # a client checking before it references the blob: shield it from GC

    def stat() -> Any:
        info = reg.blobs.stat(m.name, d)
        if touch:
            reg.blobs.touch(d)
        return info

    try:
        info = await asyncio.to_thread(stat)
        if reg.proxy is not None:
            reg.proxy.count("blob", "hit")
    except RegistryError as e:
        if reg.proxy is None or e.code != "BLOB_UNKNOWN":
            raise
        streamed = await reg.proxy.blob(request, m.name, d)
        if streamed is not None:
            if request.method == "GET":
                await notify(request, _reg(request), "pull", m.name, blob_target(str(d), streamed.content_length))
            return streamed
        info = await asyncio.to_thread(stat)
    if request.method == "GET":
        await notify(request, _reg(request), "pull", m.name, blob_target(str(d), info.size))
    if reg.cfg.redirect:
        # Distribution's storage.redirect: the client fetches the bytes from the bucket itself.
        url = await asyncio.to_thread(reg.blobs.redirect_url, d, request.method)
        if url is not None:
            return web.Response(status=307, headers={"Location": url, "Docker-Content-Digest": str(d)})
    headers = {"Docker-Content-Digest": str(d), "Content-Type": "application/octet-stream",
               "ETag": f'"{d}"', "Accept-Ranges": "bytes", "Cache-Control": "max-age=31536000"}
    rng = request.headers.get("Range")
    span = parse_range(rng, info.size) if rng else None
    if span == "unsatisfiable":
        return _json({"errors": [{"code": "BLOB_UNKNOWN", "message": f"range {rng[:100]!r} not satisfiable",
                                  "detail": {"size": info.size}}]},
                     status=416, headers={"Content-Range": f"bytes */{info.size}", "Docker-Content-Digest": str(d)})
    local = reg.blobs.local_path(d)
    if local is not None:
        start, length, status = 0, info.size, 200
        if isinstance(span, tuple):
            start, length, status = span[0], span[1] - span[0] + 1, 206
            headers["Content-Range"] = f"bytes {span[0]}-{span[1]}/{info.size}"
        return await serve_file(request, local, status=status, start=start, length=length, headers=headers)
    return await _stream_blob(request, reg, d, info.size, headers, span)


async def _stream_blob(request: web.Request, reg: Registry, d: Any, size: int,
                       headers: dict[str, str], span: "tuple[int, int] | str | None") -> web.StreamResponse:
    start, end, status = 0, size - 1, 200
    if isinstance(span, tuple):
        start, end = span
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    length = max(0, end - start + 1)
    resp = web.StreamResponse(status=status, headers=headers)
    resp.content_length = length
    await resp.prepare(request)
    if request.method == "HEAD" or length == 0:
        await resp.write_eof()
        return resp
    f = await asyncio.to_thread(reg.blobs.reader, d, start)
    try:
        left = length
        while left > 0:
            chunk = await asyncio.to_thread(f.read, min(left, 1 << 20))
            if not chunk:
                break
            left -= len(chunk)
            await resp.write(chunk)
    finally:
        await asyncio.to_thread(f.close)
    await resp.write_eof()
    return resp


async def blob_delete(request: web.Request, m: Match) -> web.StreamResponse:
    await _authorize_write(request, _repo_scope(m.name, "delete"))
    await asyncio.to_thread(_reg(request).blobs.delete, m.name, m.digest)
    await notify(request, _reg(request), "delete", m.name, {"digest": m.digest})
    return web.Response(status=202)


async def _upload_into(request: web.Request, session: UploadSession, check_range: bool) -> None:
    if check_range:
        session.check_range(request.headers.get("Content-Range"), _content_length(request))
    await _pump(request, session)


async def upload_start(request: web.Request, m: Match) -> web.StreamResponse:
    await _authorize_write(request, _repo_scope(m.name, "pull", "push"))
    reg = _reg(request)
    q = request.query
    mount = q.get("mount")
    if mount is not None:
        d = parse_digest(mount)
        source = q.get("from")
        allowed = True
        if source is not None:
            validate_name(source)
            try:
                await _authorize(request, _repo_scope(source, "pull"))
            except RegistryError:
                allowed = False  # no right to read the source: fall back to a plain upload
        def do_mount() -> bool:
            with locking.root_lock(reg.lock_dir, exclusive=False):
                return reg.blobs.mount(m.name, d, source)

        if allowed and await asyncio.to_thread(do_mount):
            target = blob_target(str(d), None)
            if source is not None:
                target["fromRepository"] = source
            await notify(request, _reg(request), "mount", m.name, target)
            return web.Response(status=201, headers={
                "Location": f"/v2/{m.name}/blobs/{d}", "Docker-Content-Digest": str(d)})
    digest = q.get("digest")
    if digest is not None:
        d = parse_digest(digest)
        upload_id, _ = await asyncio.to_thread(reg.uploads.start, m.name, d.algorithm)
        return await _finish(request, m.name, upload_id, str(d), check_range=False)
    upload_id, started = await asyncio.to_thread(reg.uploads.start, m.name, q.get("digest-algorithm"))
    headers = reg.uploads.status_headers(m.name, upload_id, 0, started)
    return web.Response(status=202, headers=headers)


def _check_state(request: web.Request, m: Match) -> None:
    """The Location's `_state` token must be signed with this replica's http.secret."""
    _reg(request).uploads.check_state(request.query.get("_state"), m.name, m.uuid)


async def _open(request: web.Request, name: str, upload_id: str) -> UploadSession:
    return await asyncio.to_thread(_reg(request).uploads.open, name, upload_id)


async def upload_patch(request: web.Request, m: Match) -> web.StreamResponse:
    await _authorize_write(request, _repo_scope(m.name, "pull", "push"))
    _check_state(request, m)
    session = await _open(request, m.name, m.uuid)
    try:
        await _upload_into(request, session, check_range=True)
    finally:
        await asyncio.to_thread(session.close)
    return web.Response(status=202, headers=session.headers())


async def _finish(request: web.Request, name: str, upload_id: str, digest: str,
                  check_range: bool) -> web.StreamResponse:
    reg = _reg(request)
    session = await _open(request, name, upload_id)
    try:
        await _upload_into(request, session, check_range)

        def finish() -> Any:
            with locking.root_lock(reg.lock_dir, exclusive=False):
                return session.finish(digest)

        d = await asyncio.to_thread(finish)
        size = session.size
    finally:
        if not session.closed:
            await asyncio.to_thread(session.close)
    await notify(request, _reg(request), "push", name, blob_target(str(d), size))
    return web.Response(status=201, headers={"Location": f"/v2/{name}/blobs/{d}",
                                             "Docker-Content-Digest": str(d)})


async def upload_put(request: web.Request, m: Match) -> web.StreamResponse:
    await _authorize_write(request, _repo_scope(m.name, "pull", "push"))
    digest = request.query.get("digest")
    if not digest:
        raise RegistryError("DIGEST_INVALID", "the digest query parameter is required to finish an upload")
    parse_digest(digest)
    _check_state(request, m)
    return await _finish(request, m.name, m.uuid, digest, check_range=True)


async def upload_status(request: web.Request, m: Match) -> web.StreamResponse:
    await _authorize_write(request, _repo_scope(m.name, "pull", "push"))
    _check_state(request, m)
    reg = _reg(request)
    size, started = await asyncio.to_thread(reg.uploads.size, m.name, m.uuid)
    return web.Response(status=204, headers=reg.uploads.status_headers(m.name, m.uuid, size, started))


async def upload_cancel(request: web.Request, m: Match) -> web.StreamResponse:
    await _authorize_write(request, _repo_scope(m.name, "pull", "push"))
    _check_state(request, m)
    await asyncio.to_thread(_reg(request).uploads.cancel, m.name, m.uuid)
    return web.Response(status=204)


async def referrers(request: web.Request, m: Match) -> web.StreamResponse:
    await _authorize(request, _repo_scope(m.name, "pull"))
    parse_digest(m.digest)
    artifact_type = request.query.get("artifactType")
    index = await asyncio.to_thread(_reg(request).referrers.list, m.name, m.digest, artifact_type)
    headers = {"OCI-Filters-Applied": "artifactType"} if artifact_type is not None else None
    return _json(index, headers=headers, content_type=OCI_INDEX)


# --- dispatch -------------------------------------------------------------------

_N = r"(?P<name>.+?)"
ROUTES: list[tuple[re.Pattern[str], dict[str, Handler], str]] = [  # pattern, handlers, metrics label
    (re.compile(r"^/v2/?\Z"), {"GET": base, "HEAD": base}, "base"),
    (re.compile(r"^/v2/_catalog\Z"), {"GET": catalog}, "catalog"),
    (re.compile(rf"^/v2/{_N}/tags/list\Z"), {"GET": tags_list}, "tags"),
    (re.compile(rf"^/v2/{_N}/manifests/(?P<ref>[^/]+)\Z"),
     {"GET": manifest_get, "HEAD": manifest_get, "PUT": manifest_put, "DELETE": manifest_delete}, "manifest"),
    (re.compile(rf"^/v2/{_N}/blobs/uploads/?\Z"), {"POST": upload_start}, "blob_upload"),
    (re.compile(rf"^/v2/{_N}/blobs/uploads/(?P<uuid>[^/]+)\Z"),
     {"GET": upload_status, "PATCH": upload_patch, "PUT": upload_put, "DELETE": upload_cancel}, "blob_upload_chunk"),
    (re.compile(rf"^/v2/{_N}/blobs/(?P<digest>[^/]+)\Z"),
     {"GET": blob_get, "HEAD": blob_get, "DELETE": blob_delete}, "blob"),
    (re.compile(rf"^/v2/{_N}/referrers/(?P<digest>[^/]+)\Z"), {"GET": referrers}, "referrers"),
]
ROUTE_KEY = "dockyard.route"




async def dispatch(request: web.Request) -> web.StreamResponse:
    _reg(request).health.check_request()
    path = request.path
    for pattern, methods, route in ROUTES:
        mt = pattern.match(path)
        if mt is None:
            continue
        request[ROUTE_KEY] = route
        groups = mt.groupdict()
        if "name" in groups:
            validate_name(groups["name"])
        handler = methods.get(request.method)
        if handler is None:
            raise RegistryError("UNSUPPORTED", f"{request.method} is not supported on {path[:200]}",
                                headers={"Allow": ", ".join(methods)})
        return await handler(request, Match(groups))
    raise RegistryError("NAME_UNKNOWN", f"no such endpoint: {path[:200]}", status=404)


async def not_found(request: web.Request) -> web.StreamResponse:
    raise RegistryError("NAME_UNKNOWN", f"no such endpoint: {request.path[:200]}", status=404)


async def search_route(request: web.Request) -> web.StreamResponse:
    return await search(request, Match({}))


async def token_route(request: web.Request) -> web.StreamResponse:
    reg = _reg(request)
    if request.method == "POST":
        form = await request.post()
        params: dict[str, Any] = {k: form.get(k) for k in form}
        scopes = [str(s) for s in form.getall("scope", [])]
    else:
        params = dict(request.query)
        scopes = request.query.getall("scope", [])
    out = await asyncio.to_thread(reg.auth.issue_token, request.headers.get("Authorization"),
                                  params, scopes, _base_url(request))
    return _json(out)


@web.middleware
async def _observe(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
                   ) -> web.StreamResponse:
    """Request metrics: count, latency, body bytes, by method, route and status."""
    t0 = time.perf_counter()
    resp = await handler(request)
    out = 0
    if request.method != "HEAD":
        out = resp.content_length if resp.content_length is not None else resp.body_length
    _reg(request).metrics.observe_request(request.method, request.get(ROUTE_KEY, "other"), resp.status,
                                          time.perf_counter() - t0, request.content.total_bytes, out or 0)
    return resp


@web.middleware
async def _errors(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
                  ) -> web.StreamResponse:
    try:
        return await handler(request)
    except RegistryError as e:
        return _json(e.body(), status=e.status, headers=e.headers)
    except web.HTTPException:
        raise
    except InvalidPath as e:  # a name or tag the validators let through but storage refuses
        return _json({"errors": [{"code": "NAME_INVALID", "message": str(e)}]}, status=400)
    except (ConnectionError, ClientError) as e:
        log.info("client went away: %s %s: %s", request.method, request.path, e)
        return _json({"errors": [{"code": "BLOB_UPLOAD_INVALID", "message": str(e)}]}, status=400)
    except Exception:
        log.exception("internal error on %s %s", request.method, request.path)
        return _json({"errors": [{"code": "UNKNOWN", "message": "internal server error"}]}, status=500)


async def _add_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Docker-Distribution-API-Version"] = API_VERSION
    for name, values in _reg(request).cfg.http.headers.items():  # http.headers
        for v in values:
            response.headers.add(name, v)


async def _start_checks(app: web.Application) -> None:
    app[REGISTRY_KEY].health.start()
    await app[REGISTRY_KEY].notifier.start()


async def _close_proxy(app: web.Application) -> None:
    await app[REGISTRY_KEY].health.stop()
    await app[REGISTRY_KEY].notifier.stop()
    proxy = app[REGISTRY_KEY].proxy
    if proxy is not None:
        await proxy.close()


def make_app(registry: Registry) -> web.Application:
    # A 1 MiB read buffer lets the socket run ahead of the hashing thread (64 KiB pauses it often).
    app = web.Application(middlewares=[_observe, _errors], client_max_size=64 << 20,
                          handler_args={"read_bufsize": 1 << 20})
    app[REGISTRY_KEY] = registry
    app.on_response_prepare.append(_add_headers)
    app.on_startup.append(_start_checks)
    app.on_cleanup.append(_close_proxy)
    app.router.add_route("*", "/auth/token", token_route)
    app.router.add_route("GET", "/v1/search", search_route)
    app.router.add_route("*", "/v2", dispatch)
    app.router.add_route("*", r"/v2/{tail:[\s\S]*}", dispatch)
    app.router.add_route("*", r"/{tail:[\s\S]*}", not_found)
    return app
