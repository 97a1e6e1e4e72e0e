"""The pull-through cache: a `dockyard registry` with `proxy:` in front of a dockyard registry
(htpasswd Basic, or token auth), of Debian's Distribution, and of a scripted upstream (an
aiohttp server in a thread) that stalls or lies about a blob."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import yaml
from aiohttp import web

from conftest import _stop, _wait_http, free_port, skopeo
from regclient import OCI_MANIFEST, error_codes, push_blob, put_manifest, sha256
from test_registry_auth import _htpasswd

ALICE = ("alice", "wonderland")
DISTRIBUTION = shutil.which("docker-registry") or "/usr/bin/docker-registry"


@pytest.fixture(scope="module")
def upstream(registry_factory, tmp_path_factory):
    """A dockyard registry with Basic auth (no anonymous pull): the proxy must log in."""
    pw = _htpasswd(tmp_path_factory.mktemp("up") / "htpasswd", {"alice": "wonderland"})
    return registry_factory({"auth": {"htpasswd": {"path": pw, "realm": "up"}},
                             "storage": {"delete": {"enabled": True}}}, "upstream")


def _proxy(registry_factory, remote: str, name: str, **extra):
    cfg = {"proxy": {"remoteurl": remote, **extra}, "http": {"debug": {"addr": f"127.0.0.1:{free_port()}",
                                                                         "prometheus": {"enabled": True}}}}
    return registry_factory(cfg, name)


@pytest.fixture(scope="module")
def proxy(registry_factory, upstream):
    return _proxy(registry_factory, upstream.url, "proxy", username="alice", password="wonderland")


def _auth_session() -> requests.Session:
    s = requests.Session()
    s.auth = ALICE
    return s


def _push_image(url: str, repo: str, tag: str, layers: list[bytes], session=None) -> tuple[bytes, str]:
    s = session or _auth_session()
    config = json.dumps({"architecture": "amd64", "os": "linux", "rand": os.urandom(4).hex()}).encode()
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                      "digest": push_blob(url, repo, config, session=s), "size": len(config)},
           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                       "digest": push_blob(url, repo, lb, session=s), "size": len(lb)} for lb in layers]}
    body = json.dumps(doc).encode()
    r = put_manifest(url, repo, tag, body, session=s)
    assert r.status_code == 201, r.text
    return body, sha256(body)


def _stored(server, digest: str) -> bool:
    return any((server.root / "blobs").rglob(f"{digest.split(':')[1]}/data"))


def test_skopeo_pulls_through_basic_auth_upstream(upstream, proxy, busybox_layout, tmp_path):
    layout, info = busybox_layout
    r = skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "alice:wonderland",
               f"oci:{layout}:latest", f"docker://{upstream.host}/library/busybox:latest")
    assert r.returncode == 0, r.stderr
    assert not _stored(proxy, info["layer"])
    out = tmp_path / "out"
    r = skopeo("copy", "--src-tls-verify=false", f"docker://{proxy.host}/library/busybox:latest", f"oci:{out}:x")
    assert r.returncode == 0, r.stderr + proxy.log_tail()
    index = json.loads((out / "index.json").read_text())
    assert index["manifests"][0]["digest"] == info["manifest"]
    assert (out / "blobs/sha256" / info["layer"].split(":")[1]).stat().st_size == info["layer_size"]
    # the proxy kept everything it served
    assert _stored(proxy, info["layer"]) and _stored(proxy, info["config"]) and _stored(proxy, info["manifest"])


def test_later_pulls_by_digest_are_local(registry_factory, upstream):
    px = _proxy(registry_factory, upstream.url, "proxy-local", username="alice", password="wonderland")
    layer = os.urandom(3000)
    body, digest = _push_image(upstream.url, "local/img", "v1", [layer])
    assert requests.get(f"{px.url}/v2/local/img/manifests/{digest}", headers={"Accept": OCI_MANIFEST}).content == body
    assert requests.get(f"{px.url}/v2/local/img/blobs/{sha256(layer)}").content == layer
    before = _upstream_gets(upstream)
    for _ in range(3):
        assert requests.get(f"{px.url}/v2/local/img/blobs/{sha256(layer)}").content == layer
        r = requests.get(f"{px.url}/v2/local/img/manifests/{digest}", headers={"Accept": OCI_MANIFEST})
        assert r.content == body
    assert _upstream_gets(upstream) == before  # nothing asked upstream
    m = _metrics(px)
    assert m[("blob", "hit")] >= 3 and m[("blob", "miss")] == 1 and m[("manifest", "miss")] == 1


def _upstream_gets(server) -> int:
    return sum(1 for line in server.log.read_text().splitlines() if '"GET /v2/local/' in line)


def _metrics(server) -> dict:
    from prometheus_client.parser import text_string_to_metric_families

    cfg = yaml.safe_load(server.config_path.read_text())
    text = requests.get(f"http://{cfg['http']['debug']['addr']}/metrics").text
    out: dict = {}
    for fam in text_string_to_metric_families(text):
        if fam.name == "registry_proxy_requests":
            for s in fam.samples:
                if s.name.endswith("_total"):
                    out[(s.labels["kind"], s.labels["result"])] = s.value
    out.setdefault(("blob", "hit"), 0)
    return out


def test_bad_references_are_the_clients_error(proxy):
    r = requests.get(f"{proxy.url}/v2/library/x/manifests/sha256:nothex", headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]
    r = requests.get(f"{proxy.url}/v2/library/x/blobs/sha256:nothex")
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]
    r = requests.get(f"{proxy.url}/v2/library/x/manifests/nosuchtag", headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 404 and error_codes(r) == ["MANIFEST_UNKNOWN"]
    r = requests.get(f"{proxy.url}/v2/library/x/blobs/sha256:" + "0" * 64)
    assert r.status_code == 404 and error_codes(r) == ["BLOB_UNKNOWN"]


def test_pushes_to_a_proxy_are_refused_as_distribution(proxy):
    want = {"errors": [{"code": "UNSUPPORTED", "message": "The operation is unsupported."}]}
    r = requests.post(f"{proxy.url}/v2/library/x/blobs/uploads/")
    assert r.status_code == 405 and r.json() == want
    r = requests.put(f"{proxy.url}/v2/library/x/manifests/t", data=b"{}", headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 405 and r.json() == want
    r = requests.delete(f"{proxy.url}/v2/library/x/manifests/sha256:" + "a" * 64)
    assert r.status_code == 405 and r.json() == want


def test_tags_recheck_after_ttl_and_stale_when_upstream_down(registry_factory, tmp_path_factory):
    up = registry_factory({"storage": {"delete": {"enabled": True}}}, "upstream-ttl")
    s = requests.Session()
    body1, d1 = _push_image(up.url, "ttl/img", "latest", [b"one"], session=s)
    long_ttl = _proxy(registry_factory, up.url, "proxy-long")  # default ttl: 24h
    short_ttl = _proxy(registry_factory, up.url, "proxy-short", ttl="1s")
    for px in (long_ttl, short_ttl):
        r = requests.get(f"{px.url}/v2/ttl/img/manifests/latest", headers={"Accept": OCI_MANIFEST})
        assert r.headers["Docker-Content-Digest"] == d1
    body2, d2 = _push_image(up.url, "ttl/img", "latest", [b"two"], session=s)
    time.sleep(1.5)
    r = requests.get(f"{long_ttl.url}/v2/ttl/img/manifests/latest", headers={"Accept": OCI_MANIFEST})
    assert r.headers["Docker-Content-Digest"] == d1  # within its ttl: the cached answer
    r = requests.get(f"{short_ttl.url}/v2/ttl/img/manifests/latest", headers={"Accept": OCI_MANIFEST})
    assert r.headers["Docker-Content-Digest"] == d2 and r.content == body2  # re-checked
    _push_image(up.url, "ttl/img", "other", [b"three"], session=s)
    r = requests.get(f"{long_ttl.url}/v2/ttl/img/tags/list")  # tags come from the upstream
    assert r.json() == {"name": "ttl/img", "tags": ["latest", "other"]}
    assert requests.get(f"{long_ttl.url}/v2/ttl/img/tags/list?n=1").json()["tags"] == ["latest"]
    r = requests.get(f"{long_ttl.url}/v2/ttl/nothing/tags/list")
    assert r.status_code == 404 and error_codes(r) == ["NAME_UNKNOWN"]
    _stop(up.proc)
    r = requests.get(f"{long_ttl.url}/v2/ttl/img/tags/list")  # upstream down: the cached tags
    assert r.json() == {"name": "ttl/img", "tags": ["latest"]}
    time.sleep(1.5)
    r = requests.get(f"{short_ttl.url}/v2/ttl/img/manifests/latest", headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == d2  # stale, upstream down
    r = requests.get(f"{short_ttl.url}/v2/ttl/img/manifests/nosuch", headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 503 and error_codes(r) == ["UNAVAILABLE"]
    assert _metrics(short_ttl)[("manifest", "stale")] == 1


# --- a scripted upstream ---------------------------------------------------------------


class ScriptedUpstream:
    """/v2/ answers 200; one blob is served in two halves, the second after `release` is set;
    `lie` makes it serve different bytes under the same digest."""

    def __init__(self, blob: bytes, lie: bool = False, repos: set[str] | None = None) -> None:
        self.blob = blob
        self.repos = repos  # the repositories that have the blob (None: all)
        self.digest = sha256(blob)
        self.lie = lie
        self.release = threading.Event()
        self.gets = 0
        self.sent = 0  # body bytes written to the proxy
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/v2/", self._ping)
        app.router.add_route("*", "/v2/{repo:.+}/blobs/{digest}", self._blob)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def _ping(self, request: web.Request) -> web.Response:
        return web.json_response({})

    async def _blob(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["digest"] != self.digest or (self.repos is not None
                                                            and request.match_info["repo"] not in self.repos):
            return web.json_response({"errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown"}]}, status=404)
        data = bytearray(self.blob)
        if self.lie:
            data[-1] ^= 0xFF
        resp = web.StreamResponse(headers={"Docker-Content-Digest": self.digest})
        resp.content_length = len(data)
        await resp.prepare(request)
        if request.method == "HEAD":
            return resp
        self.gets += 1
        half = len(data) // 2
        await resp.write(bytes(data[:half]))
        self.sent += half
        await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 120)
        await resp.write(bytes(data[half:]))
        self.sent += len(data) - half
        await resp.write_eof()
        return resp

    def close(self) -> None:
        self.release.set()
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def _read_prefix(url: str, n: int) -> tuple[socket.socket, bytes, int]:
    """A raw GET that returns as soon as the first `n` body bytes are in (and the Content-Length)."""
    host, _, rest = url.removeprefix("http://").partition("/")
    h, p = host.split(":")
    s = socket.create_connection((h, int(p)), timeout=60)
    s.sendall(f"GET /{rest} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
    while len(body) < n:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    return s, body, length


def _read_rest(s: socket.socket, want: int) -> bytes:
    """Up to `want` more body bytes: fewer when the server cuts the connection."""
    out = b""
    while len(out) < want:
        try:
            chunk = s.recv(1 << 20)
        except ConnectionResetError:
            break
        if not chunk:
            break
        out += chunk
    s.close()
    return out


def test_blob_streams_before_it_is_stored_and_concurrent_pulls_fetch_once(registry_factory):
    blob = os.urandom(6 << 20)
    up = ScriptedUpstream(blob)
    try:
        px = _proxy(registry_factory, f"http://127.0.0.1:{up.port}", "proxy-scripted")
        url = f"{px.url}/v2/lib/big/blobs/{up.digest}"
        # The first half reaches the client while the upstream still holds the second.
        sock, first, length = _read_prefix(url, 1 << 20)
        assert length == len(blob)
        assert blob.startswith(first) and len(first) >= 1 << 20
        assert not _stored(px, up.digest)
        with ThreadPoolExecutor(4) as pool:  # more clients for the same blob meanwhile
            others = [pool.submit(requests.get, url, timeout=120) for _ in range(4)]
            time.sleep(0.5)
            up.release.set()
            rest = _read_rest(sock, length - len(first))
            assert first + rest == blob
            assert all(f.result().content == blob for f in others)
        assert up.gets == 1  # fetched from the upstream once
        assert _stored(px, up.digest)
    finally:
        up.close()


def test_digest_mismatch_stores_nothing_and_cuts_the_client(registry_factory):
    blob = os.urandom(2 << 20)
    up = ScriptedUpstream(blob, lie=True)
    up.release.set()
    try:
        px = _proxy(registry_factory, f"http://127.0.0.1:{up.port}", "proxy-liar")
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            requests.get(f"{px.url}/v2/lib/bad/blobs/{up.digest}", timeout=60)
        assert not _stored(px, up.digest)
        assert not list((px.root / "repositories").rglob("_uploads/*/data"))
        assert "nothing stored" in px.log_tail()
    finally:
        up.close()


def test_followers_stream_the_inflight_blob_as_it_arrives(registry_factory):
    """Clients asking for a blob the cache is already fetching get its bytes as they come from
    the upstream (not once it is stored), even when the first client leaves; one upstream GET."""
    blob = os.urandom(6 << 20)
    up = ScriptedUpstream(blob, repos={"lib/big", "lib/twin"})  # sends 3 MiB, holds the rest until `release`
    try:
        px = _proxy(registry_factory, f"http://127.0.0.1:{up.port}", "proxy-followers")
        url = f"{px.url}/v2/lib/big/blobs/{up.digest}"
        leader, first, length = _read_prefix(url, 1 << 20)
        assert length == len(blob) and blob.startswith(first)
        # two of the same repository, one of another the upstream confirms has the blob too
        followers = [_read_prefix(u, 1 << 20) for u in (url, url, url.replace("/lib/big/", "/lib/twin/"))]
        r = requests.get(url.replace("/lib/big/", "/lib/stranger/"), timeout=120)  # not upstream: no bytes
        assert r.status_code == 404 and error_codes(r) == ["BLOB_UNKNOWN"]
        # every follower has its Content-Length and ≥ 1 MiB while the upstream holds half the blob
        assert not up.release.is_set() and up.sent < len(blob)
        for _, got, flen in followers:
            assert flen == len(blob) and len(got) >= 1 << 20 and blob.startswith(got)
        # a Range inside what has arrived is answered meanwhile; one reaching the end waits for it
        r = requests.get(url, headers={"Range": "bytes=1000-2000"}, timeout=120)
        assert r.status_code == 206 and r.content == blob[1000:2001]
        assert r.headers["Content-Range"] == f"bytes 1000-2000/{len(blob)}"
        r = requests.head(url, timeout=120)  # HEAD: the upstream's length, at once
        assert r.status_code == 200 and int(r.headers["Content-Length"]) == len(blob)
        assert up.sent < len(blob) and not _stored(px, up.digest)
        leader.close()  # the first client leaving does not stop the fetch the others ride on
        with ThreadPoolExecutor(1) as pool:
            tail = pool.submit(requests.get, url, headers={"Range": "bytes=-10"}, timeout=120)
            up.release.set()
            for sock, got, _ in followers:
                assert got + _read_rest(sock, len(blob) - len(got)) == blob
            assert tail.result().status_code == 206 and tail.result().content == blob[-10:]
        assert up.gets == 1
        assert _wait_for(lambda: _stored(px, up.digest))
        assert requests.get(url, timeout=120).content == blob  # now from storage
        assert up.gets == 1 and _metrics(px)[("blob", "miss")] == 1  # the followers were cache hits
    finally:
        up.close()


def test_digest_mismatch_cuts_the_leader_and_every_follower(registry_factory):
    blob = os.urandom(6 << 20)
    up = ScriptedUpstream(blob, lie=True)
    try:
        px = _proxy(registry_factory, f"http://127.0.0.1:{up.port}", "proxy-liar-followers")
        url = f"{px.url}/v2/lib/bad/blobs/{up.digest}"
        clients = [_read_prefix(url, 1 << 20) for _ in range(3)]  # the first leads, two follow
        assert not up.release.is_set()
        up.release.set()
        for sock, got, length in clients:
            assert length == len(blob) and len(got) >= 1 << 20
            rest = _read_rest(sock, length - len(got))
            assert len(got) + len(rest) < length  # cut short: none gets a complete-looking body
        assert up.gets == 1
        assert _wait_for(lambda: "nothing stored" in px.log_tail())
        assert not _stored(px, up.digest)
        assert not list((px.root / "repositories").rglob("_uploads/*/data"))
    finally:
        up.close()


def _wait_for(cond, limit: float = 60) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


# --- other upstreams --------------------------------------------------------------------


def test_token_auth_upstream(registry_factory, tmp_path_factory):
    pw = _htpasswd(tmp_path_factory.mktemp("tok") / "htpasswd", {"alice": "wonderland"})
    up = registry_factory({"auth": {"token": {"htpasswd": pw, "service": "up-token"}},
                           "storage": {"delete": {"enabled": True}}}, "upstream-token")
    tok = requests.get(f"{up.url}/auth/token", params={"service": "up-token",
                       "scope": "repository:tok/img:pull,push"}, auth=ALICE).json()["token"]
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {tok}"
    layer = os.urandom(5000)
    body, digest = _push_image(up.url, "tok/img", "v1", [layer], session=s)
    px = _proxy(registry_factory, up.url, "proxy-token", username="alice", password="wonderland")
    r = requests.get(f"{px.url}/v2/tok/img/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 200 and r.content == body
    assert requests.get(f"{px.url}/v2/tok/img/blobs/{sha256(layer)}").content == layer
    bad = _proxy(registry_factory, up.url, "proxy-badcreds", username="alice", password="nope")
    r = requests.get(f"{bad.url}/v2/tok/img/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 503 and error_codes(r) == ["UNAVAILABLE"]


@pytest.fixture(scope="module")
def distribution_upstream():
    d = Path(tempfile.mkdtemp(prefix="dist-up-"))
    port = free_port()
    (d / "config.yml").write_text(yaml.safe_dump({
        "version": 0.1, "storage": {"filesystem": {"rootdirectory": str(d / "root")}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": "s"}}))
    log = d / "log"
    proc = subprocess.Popen([DISTRIBUTION, "serve", str(d / "config.yml")], stdout=log.open("wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_http(f"http://127.0.0.1:{port}/v2/", proc, log)
        yield f"127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        shutil.rmtree(d, ignore_errors=True)


def test_distribution_upstream_with_skopeo(registry_factory, distribution_upstream, busybox_layout, tmp_path):
    layout, info = busybox_layout
    r = skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:latest",
               f"docker://{distribution_upstream}/library/busybox:1")
    assert r.returncode == 0, r.stderr
    px = _proxy(registry_factory, f"http://{distribution_upstream}", "proxy-dist")
    r = skopeo("copy", "--src-tls-verify=false", f"docker://{px.host}/library/busybox:1", f"oci:{tmp_path}/o:x")
    assert r.returncode == 0, r.stderr + px.log_tail()
    assert json.loads((tmp_path / "o/index.json").read_text())["manifests"][0]["digest"] == info["manifest"]
    assert _stored(px, info["layer"])
    data = (tmp_path / "o/blobs/sha256" / info["layer"].split(":")[1]).read_bytes()
    assert "sha256:" + hashlib.sha256(data).hexdigest() == info["layer"]


class ThrottleGate:
    """A TCP forwarder between the cache and a real upstream.  Bytes from the upstream pass
    while `forwarded` is under `limit` (None: no limit); the request bytes going up are kept so
    a test can count the upstream's GETs."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.rsplit(":", 1)
        self.target = (host, int(port))
        self.limit: int | None = None
        self.forwarded = 0
        self.requests = bytearray()
        self.cond = threading.Condition()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.socks: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def set_limit(self, limit: int | None) -> None:
        with self.cond:
            self.limit = limit
            self.cond.notify_all()

    def gets(self, path: str) -> int:
        with self.cond:
            return self.requests.count(f"GET {path} ".encode())

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            up = socket.create_connection(self.target)
            self.socks += [client, up]
            threading.Thread(target=self._pump, args=(client, up, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(up, client, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, throttled: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                with self.cond:
                    if not throttled:
                        self.requests += data
                    else:
                        while self.limit is not None and self.forwarded + len(data) > self.limit:
                            if not self.cond.wait(120):
                                raise TimeoutError("gate never reopened")
                        self.forwarded += len(data)
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        self.set_limit(None)
        for s in self.socks:
            s.close()


def test_followers_stream_through_a_throttled_distribution_upstream(registry_factory, distribution_upstream,
                                                                     tmp_path):
    """Debian's Distribution upstream behind a TCP gate that stalls its blob mid-way: a raw
    follower of the first client's fetch has ≥ 1 MiB while the gate still holds most of the
    blob; skopeo pulls the image meanwhile (joining the fetch, or from storage if it comes
    late); all get the blob; Distribution is asked for it once."""
    layer = os.urandom(8 << 20)
    _push_image(f"http://{distribution_upstream}", "thr/img", "v1", [layer], session=requests.Session())
    gate = ThrottleGate(distribution_upstream)
    try:
        px = _proxy(registry_factory, f"http://127.0.0.1:{gate.port}", "proxy-throttled")
        man = requests.get(f"{px.url}/v2/thr/img/manifests/v1", headers={"Accept": OCI_MANIFEST}).json()
        assert requests.get(f"{px.url}/v2/thr/img/blobs/{man['config']['digest']}").status_code == 200
        digest = man["layers"][0]["digest"]
        url = f"{px.url}/v2/thr/img/blobs/{digest}"
        gate.set_limit(gate.forwarded + (3 << 20))  # headers and ~3 MiB of the layer, then a stall
        leader, first, length = _read_prefix(url, 1 << 20)
        follower, got, flen = _read_prefix(url, 1 << 20)
        with gate.cond:
            assert gate.limit is not None and gate.forwarded < len(layer)  # the upstream is not done
        assert length == flen == len(layer) and len(got) >= 1 << 20 and layer.startswith(got)
        out = tmp_path / "out"
        sk = subprocess.Popen(["skopeo", "--insecure-policy", "copy", "--src-tls-verify=false",
                               f"docker://{px.host}/thr/img:v1", f"dir:{out}"],  # dir: keeps the blob as is
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            # once skopeo has its manifest, its layer GET joins the fetch the gate holds
            assert _wait_for(lambda: px.log_tail().count("GET /v2/thr/img/manifests/v1 ") >= 2)
            gate.set_limit(None)
            assert first + _read_rest(leader, length - len(first)) == layer
            assert got + _read_rest(follower, flen - len(got)) == layer
            _, err = sk.communicate(timeout=120)
            assert sk.returncode == 0, err + px.log_tail()
        finally:
            if sk.poll() is None:
                sk.kill()
                sk.wait()
        assert (out / digest.split(":")[1]).read_bytes() == layer
        assert gate.gets(f"/v2/thr/img/blobs/{digest}") == 1
        assert _wait_for(lambda: _stored(px, digest))
    finally:
        gate.close()
