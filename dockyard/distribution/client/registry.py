"""An asynchronous client for one v2 (OCI Distribution) registry host.

One `RegistryClient` per operation (pull, push, login): it pings /v2/ once to
learn the scheme and the auth challenge, then authorises each repository
scope on demand (Basic: the password on every request; Bearer: a token per
scope set from the challenge's realm, anonymous when there are no
credentials).  HTTPS comes first; insecure hosts (loopback by Docker's
defaults) fall back to plain HTTP and skip certificate checks.

Blob transfers stream through files in worker threads, so a big layer never
sits in memory and hashing never blocks the event loop.  Errors come back as
domain errors (NotFound, Unauthorized, ...) whose messages read like
dockerd's ("manifest unknown: manifest unknown").
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable
from urllib.parse import urlencode, urljoin

import aiohttp

from ...errors import DockyardError, Forbidden, InvalidParameter, NotFound, SystemError_, Unauthorized, Unavailable
from ...oci import image as oimg
from .auth import Challenge, Credentials, is_insecure, parse_challenges

log = logging.getLogger(__name__)

MANIFEST_ACCEPT = ", ".join([oimg.DOCKER_MANIFEST, oimg.DOCKER_MANIFEST_LIST, oimg.OCI_MANIFEST, oimg.OCI_INDEX])
MAX_MANIFEST = 4 << 20
IO_CHUNK = 1 << 20
CHUNKED_UPLOAD_OVER = 256 << 20  # bigger blobs go up in PATCH chunks of this size
USER_AGENT = "docker/28.2.2 dockyard"

Progress = Callable[[int], Awaitable[None] | None]  # bytes transferred so far


async def _read_upto(r: aiohttp.ClientResponse, n: int) -> bytes:
    """The body, or its first `n` bytes.  StreamReader.read(n) returns what has arrived
    so far: a manifest sent in several TCP segments came back cut ("not JSON") under load."""
    got = bytearray()
    while len(got) < n:
        piece = await r.content.read(n - len(got))
        if not piece:
            break
        got += piece
    return bytes(got)


class _Gather:
    """Received pieces, handed on as one bytes object (one copy; a bytearray grown
    and then frozen with bytes() made two)."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._n = 0

    def add(self, b: bytes) -> None:
        self._parts.append(b)
        self._n += len(b)

    def __len__(self) -> int:
        return self._n

    def take(self) -> bytes:
        out = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
        self._parts, self._n = [], 0
        return out


@dataclass
class Manifest:
    body: bytes
    media_type: str
    digest: str

    def json(self) -> dict:
        try:
            data = json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            raise SystemError_(f"invalid manifest {self.digest}: not JSON") from None
        if not isinstance(data, dict):
            raise SystemError_(f"invalid manifest {self.digest}: not a JSON object")
        return data


def sha256_hex(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def registry_error_text(body: bytes) -> str:
    """The `errors` of a registry response as Docker prints them: "code words: message"."""
    try:
        errs = json.loads(body).get("errors") or []
        parts = []
        for e in errs:
            code = str(e.get("code", "unknown")).lower().replace("_", " ")
            msg = e.get("message") or code
            parts.append(f"{code}: {msg}")
        if parts:
            return "; ".join(parts)
    except (ValueError, AttributeError, UnicodeDecodeError):
        pass
    return ""


class RegistryClient:
    def __init__(self, host: str, creds: Credentials | None = None, *, insecure: bool | None = None,
                 connect_timeout: float = 15, read_timeout: float = 300,
                 ssl_context: ssl.SSLContext | None = None, schemes: list[str] | None = None) -> None:
        self.host = host
        self.creds = creds or Credentials()
        self.insecure = is_insecure(host) if insecure is None else insecure
        # CAs and client certificates of certs.d/<host>/ (see endpoints.py); a mirror URL fixes the scheme
        self.ssl_context = ssl_context
        self.schemes = schemes
        self.base: str | None = None  # scheme://host, known after ping()
        self.challenge: Challenge | None = None
        self._tokens: dict[tuple[str, ...], tuple[str, float]] = {}  # scopes -> (token, renew after)
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, connect=connect_timeout, sock_read=read_timeout),
            headers={"User-Agent": USER_AGENT})

    async def __aenter__(self) -> "RegistryClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        await self._session.close()

    @property
    def _ssl(self) -> bool | ssl.SSLContext:
        if self.ssl_context is not None:  # certs.d (checks off for an insecure registry, as dockerd)
            return self.ssl_context
        return False if self.insecure else True

    # ------------------------------------------------------------ ping and auth

    async def ping(self) -> None:
        """GET /v2/: pick the scheme (https, then http if insecure) and remember the challenge."""
        if self.base is not None:
            return
        schemes = self.schemes or (["https", "http"] if self.insecure else ["https"])
        last: Exception | None = None
        for scheme in schemes:
            url = f"{scheme}://{self.host}/v2/"
            try:
                async with self._session.get(url, ssl=self._ssl, allow_redirects=False) as r:
                    await r.read()
                    if r.status not in (200, 401):
                        last = SystemError_(f'Get "{url}": unexpected status {r.status} {r.reason} '
                                            "(is this a v2 registry?)")
                        if r.status >= 500:
                            continue
                        raise last
                    self.base = f"{scheme}://{self.host}"
                    if r.status == 401:
                        chs = parse_challenges(r.headers.getall("WWW-Authenticate", []))
                        self.challenge = _preferred(chs)
                    return
            except (aiohttp.ClientError, asyncio.TimeoutError, ssl.SSLError, OSError) as exc:
                log.debug("ping %s failed: %r", url, exc)
                last = exc
        if isinstance(last, DockyardError):
            raise last
        raise Unavailable(f'Get "{schemes[-1]}://{self.host}/v2/": {_net_error(last)}')

    def _basic_header(self) -> str | None:
        if not (self.creds.username or self.creds.password):
            return None
        raw = f"{self.creds.username}:{self.creds.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    async def _authorization(self, scopes: tuple[str, ...]) -> str | None:
        ch = self.challenge
        if ch is None:
            return None
        if ch.scheme == "basic":
            return self._basic_header()
        if ch.scheme != "bearer":
            return None
        if self.creds.registry_token:
            return "Bearer " + self.creds.registry_token
        cached = self._tokens.get(scopes)
        if cached is None or time.monotonic() >= cached[1]:
            # Long pushes outlive short tokens: renew a token in the last fifth of its life.
            t0 = time.monotonic()
            tok, _, expires_in = await self._fetch_token(ch, list(scopes))
            cached = (tok, t0 + max(10.0, expires_in * 0.8))
            self._tokens[scopes] = cached
        return "Bearer " + cached[0]

    async def _fetch_token(self, ch: Challenge, scopes: list[str],
                           offline: bool = False) -> tuple[str, str, float]:
        """(access token, refresh token or "", lifetime in seconds) from the challenge's realm."""
        realm = ch.params.get("realm")
        if not realm:
            raise SystemError_(f"registry {self.host} sent a Bearer challenge without a realm")
        service = ch.params.get("service", "")
        ssl_opt = self._ssl if is_insecure(_host_of(realm)) or self.insecure else True
        try:
            if self.creds.identity_token:
                form = {"grant_type": "refresh_token", "refresh_token": self.creds.identity_token,
                        "service": service, "client_id": "docker", "access_type": "offline" if offline else "online"}
                if scopes:
                    form["scope"] = " ".join(scopes)
                req = self._session.post(realm, data=form, ssl=ssl_opt)
            else:
                params: list[tuple[str, str]] = [("service", service)] if service else []
                params += [("scope", s) for s in scopes]
                if self.creds.username:
                    params.append(("account", self.creds.username))
                if offline:
                    params += [("offline_token", "true"), ("client_id", "docker")]
                headers = {}
                basic = self._basic_header()
                if basic:
                    headers["Authorization"] = basic
                url = realm + ("&" if "?" in realm else "?") + urlencode(params)
                req = self._session.get(url, headers=headers, ssl=ssl_opt)
            async with req as r:
                body = await r.read()
                if r.status == 401 or r.status == 403:
                    detail = registry_error_text(body) or "unauthorized: authentication required"
                    raise Unauthorized(f'Get "{realm}": {detail}')
                if r.status != 200:
                    raise SystemError_(f'Get "{realm}": unexpected status {r.status} from the token server')
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise Unavailable(f'Get "{realm}": {_net_error(exc)}') from None
        try:
            data = json.loads(body)
            token = data.get("token") or data.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise SystemError_(f"the token server {realm} answered without a token")
        refresh = data.get("refresh_token") or ""
        expires_in = data.get("expires_in")
        # The token spec's default lifetime is 60 s when the server does not say.
        lifetime = float(expires_in) if isinstance(expires_in, (int, float)) and expires_in > 0 else 60.0
        return token, refresh if isinstance(refresh, str) else "", lifetime

    async def login(self) -> str:
        """Check the credentials as `docker login` does; returns an identity token or ""."""
        await self.ping()
        ch = self.challenge
        url = f"{self.base}/v2/"
        if ch is None:
            return ""
        if ch.scheme == "basic":
            basic = self._basic_header()
            if basic is None:
                raise Unauthorized(f"login attempt to {url} failed with status: 401 Unauthorized")
            try:
                async with self._session.get(url, headers={"Authorization": basic}, ssl=self._ssl) as r:
                    await r.read()
                    if r.status != 200:
                        raise Unauthorized(f"login attempt to {url} failed with status: {r.status} {r.reason}")
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                raise Unavailable(f'Get "{url}": {_net_error(exc)}') from None
            return ""
        if ch.scheme == "bearer":
            if self.creds.anonymous:
                raise Unauthorized(f'Get "{url}": unauthorized: authentication required')
            token, refresh, _ = await self._fetch_token(ch, [], offline=True)
            # The token must open /v2/ itself (some token servers hand out anonymous tokens).
            async with self._session.get(url, headers={"Authorization": "Bearer " + token}, ssl=self._ssl) as r:
                await r.read()
                if r.status != 200:
                    raise Unauthorized(f"login attempt to {url} failed with status: {r.status} {r.reason}")
            return refresh
        raise SystemError_(f"registry {self.host} asks for unsupported auth scheme {ch.scheme!r}")

    # ------------------------------------------------------------ requests

    async def _request(self, method: str, path_or_url: str, scopes: tuple[str, ...], *,
                       headers: dict[str, str] | None = None, **kw) -> aiohttp.ClientResponse:
        """One authorised request; the caller must release the response."""
        await self.ping()
        url = path_or_url if "://" in path_or_url else urljoin(self.base + "/", path_or_url.lstrip("/"))
        h = dict(headers or {})
        auth = await self._authorization(scopes)
        if auth:
            h["Authorization"] = auth
        try:
            return await self._session.request(method, url, headers=h, ssl=self._ssl, **kw)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise Unavailable(f'{method.capitalize()} "{url}": {_net_error(exc)}') from None

    async def _fail(self, r: aiohttp.ClientResponse, what: str) -> None:
        """Raise the domain error for a failed response (reads and releases it)."""
        body = await r.read()
        r.release()
        detail = registry_error_text(body)
        where = f'{r.method.capitalize()} "{r.url}"'
        if r.status == 401:
            if not detail and self.challenge and self.challenge.scheme == "basic" and self._basic_header() is None:
                detail = "no basic auth credentials"
            raise Unauthorized(f"{where}: {detail or 'unauthorized: authentication required'}")
        if r.status == 403:
            raise Forbidden(f"{what}: {detail or 'denied: requested access to the resource is denied'}")
        if r.status == 404:
            raise NotFound(f"{what}: {detail or 'not found'}")
        if r.status == 400:
            raise InvalidParameter(f"{what}: {detail or 'bad request'}")
        raise SystemError_(f"{what}: {detail or f'received unexpected HTTP status: {r.status} {r.reason}'}")

    # ------------------------------------------------------------ manifests

    async def get_manifest(self, repo: str, reference: str, *, for_push: bool = False) -> Manifest:
        scopes = _scopes(repo, push=for_push)
        r = await self._request("GET", f"/v2/{repo}/manifests/{reference}", scopes,
                                headers={"Accept": MANIFEST_ACCEPT})
        if r.status != 200:
            name = f"{self.host}/{repo}{'@' if ':' in reference else ':'}{reference}"
            await self._fail(r, f"manifest for {name} not found" if r.status == 404 else name)
        try:
            if (r.content_length or 0) > MAX_MANIFEST:
                raise SystemError_(f"manifest {reference} is too big ({r.content_length} bytes)")
            body = await _read_upto(r, MAX_MANIFEST + 1)
        finally:
            r.release()
        if len(body) > MAX_MANIFEST:
            raise SystemError_(f"manifest {reference} is too big")
        digest = sha256_hex(body)
        if reference.startswith("sha256:") and reference != digest:
            raise SystemError_(f"manifest verification failed for digest {reference}")
        mt = (r.headers.get("Content-Type") or "").split(";")[0].strip()
        if mt not in oimg.MANIFEST_TYPES | oimg.INDEX_TYPES:
            try:
                mt = json.loads(body).get("mediaType") or mt
            except (ValueError, AttributeError):
                pass
        return Manifest(body, mt, digest)

    async def put_manifest(self, repo: str, reference: str, body: bytes, media_type: str) -> str:
        r = await self._request("PUT", f"/v2/{repo}/manifests/{reference}", _scopes(repo, push=True),
                                data=body, headers={"Content-Type": media_type})
        if r.status not in (200, 201, 202):
            await self._fail(r, f"failed to put manifest {self.host}/{repo}:{reference}")
        r.release()
        return sha256_hex(body)

    async def list_tags(self, repo: str, limit: int = 10000) -> list[str]:
        """Every tag of `repo`, following the registry's Link pages (at most `limit`)."""
        tags: list[str] = []
        url = f"/v2/{repo}/tags/list"
        while url and len(tags) < limit:
            r = await self._request("GET", url, _scopes(repo))
            if r.status != 200:
                await self._fail(r, f"tags of {self.host}/{repo}")
            try:
                data = json.loads(await r.read())
            except ValueError:
                raise SystemError_(f"tags of {self.host}/{repo}: not JSON") from None
            finally:
                r.release()
            tags += [t for t in (data.get("tags") or []) if isinstance(t, str)]
            nxt = r.links.get("next", {}).get("url")
            url = str(r.url.join(nxt)) if nxt is not None else ""
        return tags[:limit]

    # ------------------------------------------------------------ blobs

    async def blob_exists(self, repo: str, digest: str, *, for_push: bool = False) -> bool:
        r = await self._request("HEAD", f"/v2/{repo}/blobs/{digest}", _scopes(repo, push=for_push))
        r.release()
        if r.status == 200:
            return True
        if r.status == 404:
            return False
        await self._fail(r, f"checking blob {digest} in {self.host}/{repo}")
        return False

    async def stream_blob(self, repo: str, digest: str, consume: Callable[[bytes], Awaitable[None]],
                          progress: Progress | None = None, *, size: int | None = None,
                          retries: int = 3) -> int:
        """Hand a blob's bytes to `consume` in order, in chunks of a few MiB; returns the size.

        When the connection breaks mid-blob, the download resumes where it stopped
        (a Range request; a registry that ignores Range resends from the start and
        the bytes already handed on are skipped), up to `retries` times.  The
        caller verifies the digest: it sees every byte once.
        """
        n = 0
        attempt = 0
        while True:
            headers = {"Range": f"bytes={n}-"} if n else None
            r = await self._request("GET", f"/v2/{repo}/blobs/{digest}", _scopes(repo), headers=headers)
            if r.status not in (200, 206) or (n and r.status == 206 and not _range_starts_at(r, n)):
                await self._fail(r, f"blob {digest} of {self.host}/{repo}")
            skip = n if r.status == 200 else 0
            buf = _Gather()
            try:
                async for chunk in r.content.iter_any():  # whatever arrived: no re-chunking copies
                    if skip:
                        cut = min(skip, len(chunk))
                        chunk, skip = chunk[cut:], skip - cut
                        if not chunk:
                            continue
                    buf.add(chunk)
                    if len(buf) >= 4 * IO_CHUNK:
                        n += len(buf)
                        await consume(buf.take())
                        if progress:
                            await _call(progress, n)
                if buf:
                    n += len(buf)
                    await consume(buf.take())
                if size is not None and n < size:
                    raise aiohttp.ClientPayloadError(f"blob ended after {n} of {size} bytes")
                break
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                if buf:  # whole bytes received before the break are kept
                    n += len(buf)
                    await consume(buf.take())
                attempt += 1
                if attempt > retries:
                    raise Unavailable(f"error downloading blob {digest}: {_net_error(exc)}") from None
                log.info("download of %s broke after %d bytes (%s); resuming", digest, n, _net_error(exc))
            finally:
                r.release()
        if progress:
            await _call(progress, n)
        return n

    async def download_blob(self, repo: str, digest: str, dest: Path, progress: Progress | None = None) -> int:
        """Stream a blob into `dest` (created/truncated) and verify its digest; returns its size."""
        h = hashlib.sha256()
        f = await asyncio.to_thread(open, dest, "wb")

        def write(data: bytes) -> None:
            f.write(data)
            h.update(data)

        async def consume(data: bytes) -> None:
            await asyncio.to_thread(write, data)

        try:
            n = await self.stream_blob(repo, digest, consume, progress)
        finally:
            await asyncio.to_thread(f.close)
        if "sha256:" + h.hexdigest() != digest:
            raise SystemError_(f"filesystem layer verification failed for digest {digest}")
        return n

    async def open_blob(self, repo: str, digest: str) -> aiohttp.ClientResponse:
        """GET a blob and hand back the 200 response unread: the caller streams, verifies and
        releases it (the registry's pull-through cache tees it to its client and its storage)."""
        r = await self._request("GET", f"/v2/{repo}/blobs/{digest}", _scopes(repo))
        if r.status != 200:
            await self._fail(r, f"blob {digest} of {self.host}/{repo}")
        return r

    async def fetch_blob_bytes(self, repo: str, digest: str, limit: int = 64 << 20) -> bytes:
        """A small blob (an image config) in memory, verified."""
        r = await self._request("GET", f"/v2/{repo}/blobs/{digest}", _scopes(repo))
        if r.status != 200:
            await self._fail(r, f"blob {digest} of {self.host}/{repo}")
        try:
            body = await _read_upto(r, limit + 1)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise Unavailable(f"error downloading blob {digest}: {_net_error(exc)}") from None
        finally:
            r.release()
        if len(body) > limit:
            raise SystemError_(f"blob {digest} is too big")
        if sha256_hex(body) != digest:
            raise SystemError_(f"blob verification failed for digest {digest}")
        return body

    async def mount_blob(self, repo: str, digest: str, from_repo: str) -> tuple[bool, str | None]:
        """Cross-repository mount: (True, None) if mounted, else (False, an upload URL to use)."""
        scopes = _scopes(repo, push=True) + (f"repository:{from_repo}:pull",)
        qs = urlencode({"mount": digest, "from": from_repo})
        r = await self._request("POST", f"/v2/{repo}/blobs/uploads/?{qs}", scopes)
        if r.status == 201:
            r.release()
            return True, None
        if r.status == 202:
            r.release()
            return False, self._location(r)
        await self._fail(r, f"failed to start blob upload to {self.host}/{repo}")
        return False, None

    def _location(self, r: aiohttp.ClientResponse) -> str:
        loc = r.headers.get("Location")
        if not loc:
            raise SystemError_(f"registry {self.host} gave no upload location")
        return urljoin(str(r.url), loc)

    async def start_upload(self, repo: str) -> str:
        r = await self._request("POST", f"/v2/{repo}/blobs/uploads/", _scopes(repo, push=True))
        if r.status != 202:
            await self._fail(r, f"failed to start blob upload to {self.host}/{repo}")
        r.release()
        return self._location(r)

    async def upload_blob(self, repo: str, digest: str, src: Path, size: int, progress: Progress | None = None,
                          location: str | None = None) -> None:
        """Upload a file as a blob: one PUT, or PATCH chunks then PUT for big blobs."""
        loc = location or await self.start_upload(repo)
        scopes = _scopes(repo, push=True)
        offset = 0
        if size > CHUNKED_UPLOAD_OVER:
            while size - offset > CHUNKED_UPLOAD_OVER:
                end = offset + CHUNKED_UPLOAD_OVER
                r = await self._request(
                    "PATCH", loc, scopes, data=_file_body(src, offset, end, progress),
                    headers={"Content-Type": "application/octet-stream", "Content-Length": str(end - offset),
                             "Content-Range": f"{offset}-{end - 1}"})
                if r.status != 202:
                    await self._fail(r, f"failed to upload blob {digest}")
                r.release()
                loc = self._location(r)
                offset = end
        sep = "&" if "?" in loc else "?"
        r = await self._request(
            "PUT", f"{loc}{sep}{urlencode({'digest': digest})}", scopes,
            data=_file_body(src, offset, size, progress),
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size - offset)})
        if r.status not in (201, 204):
            await self._fail(r, f"failed to upload blob {digest}")
        r.release()

    async def cancel_upload(self, repo: str, location: str) -> None:
        """Abandon an upload session we will not use (best effort: registries expire them anyway)."""
        try:
            r = await self._request("DELETE", location, _scopes(repo, push=True))
            r.release()
        except DockyardError as exc:
            log.debug("cancelling upload %s: %s", location, exc.message)

    async def upload_bytes(self, repo: str, digest: str, data: bytes) -> None:
        loc = await self.start_upload(repo)
        sep = "&" if "?" in loc else "?"
        r = await self._request("PUT", f"{loc}{sep}{urlencode({'digest': digest})}", _scopes(repo, push=True),
                                data=data, headers={"Content-Type": "application/octet-stream"})
        if r.status not in (201, 204):
            await self._fail(r, f"failed to upload blob {digest}")
        r.release()


# ---------------------------------------------------------------- helpers


def _scopes(repo: str, push: bool = False) -> tuple[str, ...]:
    return (f"repository:{repo}:{'pull,push' if push else 'pull'}",)


def _preferred(chs: list[Challenge]) -> Challenge | None:
    for scheme in ("bearer", "basic"):
        for c in chs:
            if c.scheme == scheme:
                return c
    return chs[0] if chs else None


def _host_of(url: str) -> str:
    rest = url.split("://", 1)[-1]
    return rest.split("/", 1)[0]


def _range_starts_at(r: aiohttp.ClientResponse, offset: int) -> bool:
    """Does a 206 answer start where we asked ("bytes N-M/T")?"""
    cr = r.headers.get("Content-Range", "")
    try:
        return int(cr.split()[1].split("-")[0]) == offset
    except (IndexError, ValueError):
        return False


def _net_error(exc: BaseException | None) -> str:
    if exc is None:
        return "no route to the registry"
    if isinstance(exc, asyncio.TimeoutError):
        return "i/o timeout"
    return str(exc) or type(exc).__name__


async def _call(progress: Progress, n: int) -> None:
    res = progress(n)
    if asyncio.iscoroutine(res):
        await res


async def _file_body(src: Path, start: int, end: int, progress: Progress | None) -> AsyncIterator[bytes]:
    """Bytes [start, end) of a file, read in a worker thread, reporting the absolute offset."""
    f = await asyncio.to_thread(open, src, "rb")
    try:
        await asyncio.to_thread(f.seek, start)
        pos = start
        while pos < end:
            chunk = await asyncio.to_thread(f.read, min(4 * IO_CHUNK, end - pos))
            if not chunk:
                raise SystemError_(f"{src} ended early while uploading")
            pos += len(chunk)
            yield chunk
            if progress:
                await _call(progress, pos)
    finally:
        await asyncio.to_thread(f.close)
