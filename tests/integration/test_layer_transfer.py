"""Layer throughput features, proven for correctness (speed is measured in bench/, never here).

- push compresses deterministically: the same tar gets the same blob digest from two engines
  and from the compression module run in this process with another thread count;
- a layer that arrived compressed (import of a .tar.gz, pull) is pushed as received, byte for byte;
- zstd: an engine with --push-compression zstd pushes OCI manifests with tar+zstd layers, and
  another engine pulls and runs them;
- a download that breaks mid-layer resumes (Range) and the image is byte-identical; one that
  keeps breaking fails naming the layer and leaves no layer, blob or image behind.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import json
import os
import random
import socket
import tarfile
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
from aiohttp import web

from dockyard.store import compression
from test_pull_push import BUSYBOX, Docker, registries  # noqa: F401  (fixtures)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def _sha(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


def _layer_tar(seed: int, mb: float = 3) -> bytes:
    """A layer of half random bytes, half log-like text (what compression really meets)."""
    r = random.Random(seed)
    half = int(mb * 500_000)
    text = "".join(f"2026-11-30T10:{i % 60:02d}:00Z INFO worker-{r.randrange(9)} request id={r.getrandbits(48):x} "
                   f"status={r.choice((200, 404))}\n" for i in range(half // 60 + 1)).encode()[:half]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in (("data/random.bin", r.randbytes(half)), ("data/app.log", text),
                           ("data/hello", f"hello {seed}\n".encode())):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(data), 0o644, 1_700_000_000
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _manifest(reg, repo: str, tag: str) -> dict[str, Any]:
    r = requests.get(f"{reg.url}/v2/{repo}/manifests/{tag}",
                     headers={"Accept": f"{OCI_MANIFEST}, {DOCKER_MANIFEST}"})
    assert r.status_code == 200, r.text
    return r.json()


def _blob(reg, repo: str, digest: str) -> bytes:
    r = requests.get(f"{reg.url}/v2/{repo}/blobs/{digest}")
    assert r.status_code == 200
    assert _sha(r.content) == digest
    return r.content


def _docker(eng, tmp_path: Path, name: str) -> Docker:
    d = tmp_path / name
    d.mkdir()
    return Docker(eng, d)


def test_push_digest_is_the_same_from_two_engines(engine, private_engine, registries, tmp_path):
    """Deterministic gzip: one tar, two engines, two registries -> one layer digest; the blob
    decompresses to the tar byte for byte and equals a single-threaded compression here."""
    raw = _layer_tar(1)
    src = tmp_path / "layer.tar"
    src.write_bytes(raw)
    expected, size = compression.compress_file(src, tmp_path / "here.gz", compression.GZIP, threads=1)
    regs = [registries("dockyard"), registries("dockyard")]
    digests = []
    for eng, reg, name in ((engine, regs[0], "a"), (private_engine(), regs[1], "b")):
        d = _docker(eng, tmp_path, name)
        ref = f"{reg.host}/det/img:1"
        d.ok("import", str(src), ref)
        out = d.ok("push", ref)
        assert "Pushed" in out
        man = _manifest(reg, "det/img", "1")
        assert man["mediaType"] == DOCKER_MANIFEST
        [layer] = man["layers"]
        assert layer["mediaType"] == "application/vnd.docker.image.rootfs.diff.tar.gzip"
        digests.append(layer["digest"])
        blob = _blob(reg, "det/img", layer["digest"])
        assert gzip.decompress(blob) == raw
        assert blob[4:8] == b"\0\0\0\0"  # gzip mtime 0: no time in the bytes
        d.ok("rmi", ref)
    assert digests == [expected, expected]
    # Pushing again to a third registry (no "already exists" to find) sends the kept blob.
    reg3 = registries("dockyard")
    d = _docker(engine, tmp_path, "c")
    ref = f"{reg3.host}/det/again:1"
    d.ok("import", str(src), ref)
    d.ok("push", ref)
    assert _manifest(reg3, "det/again", "1")["layers"][0]["digest"] == expected
    d.ok("rmi", ref)


def test_compressed_layers_are_pushed_as_received(engine, private_engine, registries, tmp_path):
    """A layer imported as .tar.gz keeps its gzip bytes: push sends exactly them (no recompression),
    and an engine that pulled it pushes the same bytes on to another registry."""
    raw = _layer_tar(2, mb=1)
    theirs = gzip.compress(raw, compresslevel=9, mtime=1_234_567)  # not what our compressor makes
    src = tmp_path / "layer.tar.gz"
    src.write_bytes(theirs)
    r1, r2 = registries("dockyard"), registries("dockyard")
    a = _docker(engine, tmp_path, "a")
    ref1 = f"{r1.host}/asis/img:1"
    a.ok("import", str(src), ref1)
    a.ok("push", ref1)
    assert _manifest(r1, "asis/img", "1")["layers"][0]["digest"] == _sha(theirs)
    a.ok("rmi", ref1)

    eng_b = private_engine()
    b = _docker(eng_b, tmp_path, "b")
    b.ok("pull", ref1)
    ref2 = f"{r2.host}/asis/copy:1"
    b.ok("tag", ref1, ref2)
    b.ok("push", ref2)
    assert _manifest(r2, "asis/copy", "1")["layers"][0]["digest"] == _sha(theirs)
    # the layer itself is the tar, byte for byte (docker save of the pulled image)
    saved = tmp_path / "saved.tar"
    b.ok("save", "-o", str(saved), ref2)
    with tarfile.open(saved) as tf:
        blobs = {m.name: tf.extractfile(m).read() for m in tf if m.isfile() and m.name.startswith("blobs/")}
    assert raw in blobs.values()


def test_zstd_push_and_pull(engine, private_engine, registries, tmp_path):
    """--push-compression zstd: an OCI manifest with a tar+zstd layer of a stable digest;
    another engine pulls it, unpacks it and runs from it."""
    raw = _layer_tar(3, mb=1)
    src = tmp_path / "layer.tar"
    src.write_bytes(raw)
    expected, _ = compression.compress_file(src, tmp_path / "here.zst", compression.ZSTD, threads=1)
    reg = registries("dockyard")
    z = private_engine(["--push-compression", "zstd"])
    dz = _docker(z, tmp_path, "z")
    ref = f"{reg.host}/zstd/data:1"
    dz.ok("import", str(src), ref)
    dz.ok("push", ref)
    man = _manifest(reg, "zstd/data", "1")
    assert man["mediaType"] == OCI_MANIFEST
    assert man["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    [layer] = man["layers"]
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd"
    assert layer["digest"] == expected
    assert _blob(reg, "zstd/data", expected)[:4] == b"\x28\xb5\x2f\xfd"

    # An image whose base is busybox (so it can run) plus the zstd layer, pulled by another engine.
    cid = dz.ok("create", BUSYBOX, "true").strip()
    dz.ok("cp", str(src), f"{cid}:/layer.tar")
    ref2 = f"{reg.host}/zstd/run:1"
    dz.ok("commit", cid, ref2)
    dz.ok("rm", cid)
    dz.ok("push", ref2)
    assert all(l["mediaType"].endswith("+zstd") for l in _manifest(reg, "zstd/run", "1")["layers"])
    a = _docker(engine, tmp_path, "a")
    a.ok("pull", ref2)
    try:
        out = a.ok("run", "--rm", "--network", "none", ref2, "sha256sum", "/layer.tar")
        assert out.split()[0] == hashlib.sha256(raw).hexdigest()
    finally:
        a("rmi", ref2)


# ---------------------------------------------------------------- a registry that breaks


class BreakingRegistry:
    """A minimal read-only v2 registry on loopback whose layer GETs break after half the bytes:
    `breaks` times (then it serves, honouring Range).  Runs its own event loop in a thread."""

    def __init__(self, layer: bytes, breaks: int) -> None:
        self.layer, self.breaks = layer, breaks
        self.layer_digest = _sha(layer)
        self.config = json.dumps({
            "architecture": "amd64", "os": "linux", "config": {"Cmd": ["true"]},
            "rootfs": {"type": "layers", "diff_ids": [_sha(gzip.decompress(layer))]}}).encode()
        self.manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": len(self.config),
                       "digest": _sha(self.config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": len(layer),
                        "digest": self.layer_digest}]}).encode()
        self.ranges: list[str | None] = []
        self.loop = asyncio.new_event_loop()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.host = f"127.0.0.1:{self.port}"
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        assert ready.wait(20)

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_get("/v2/", self._base)
        app.router.add_route("*", "/v2/{repo:.+}/manifests/{ref}", self._manifest)
        app.router.add_get("/v2/{repo:.+}/blobs/{digest}", self._blob)
        self.runner = web.AppRunner(app)
        self.loop.run_until_complete(self.runner.setup())
        self.loop.run_until_complete(web.TCPSite(self.runner, "127.0.0.1", self.port).start())
        ready.set()
        self.loop.run_forever()

    async def _base(self, request: web.Request) -> web.Response:
        return web.json_response({})

    async def _manifest(self, request: web.Request) -> web.Response:
        return web.Response(body=self.manifest, content_type=OCI_MANIFEST,
                            headers={"Docker-Content-Digest": _sha(self.manifest)})

    async def _blob(self, request: web.Request) -> web.StreamResponse:
        digest = request.match_info["digest"]
        if digest == _sha(self.config):
            return web.Response(body=self.config)
        if digest != self.layer_digest:
            return web.json_response({"errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown"}]}, status=404)
        rng = request.headers.get("Range")
        self.ranges.append(rng)
        start = int(rng.split("=")[1].split("-")[0]) if rng else 0
        body = self.layer[start:]
        resp = web.StreamResponse(status=206 if start else 200)
        resp.content_length = len(body)
        if start:
            resp.headers["Content-Range"] = f"bytes {start}-{len(self.layer) - 1}/{len(self.layer)}"
        await resp.prepare(request)
        if self.breaks > 0:
            self.breaks -= 1
            await resp.write(body[:len(body) // 2])
            await asyncio.sleep(0.2)
            request.transport.close()  # the connection drops mid-layer
            return resp
        await resp.write(body)
        await resp.write_eof()
        return resp

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(20)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(20)


@pytest.fixture
def breaking_registry() -> Iterator[Any]:
    made: list[BreakingRegistry] = []

    def make(layer: bytes, breaks: int) -> BreakingRegistry:
        made.append(BreakingRegistry(layer, breaks))
        return made[-1]

    yield make
    for r in made:
        r.close()


def _store_state(eng) -> tuple[set[str], set[str], list[str], list[str]]:
    """(layer dirs, blobs, temp debris of layers and content) of an engine's data root."""
    data = Path(eng.data_root)
    return ({p.name for p in (data / "layers").iterdir() if p.name != "tmp"},
            {p.name for p in (data / "content" / "blobs" / "sha256").iterdir()},
            os.listdir(data / "layers" / "tmp"), os.listdir(data / "content" / "tmp"))


def test_download_that_breaks_once_resumes(engine, breaking_registry, tmp_path):
    raw = _layer_tar(4, mb=2)
    reg = breaking_registry(gzip.compress(raw, mtime=0), breaks=1)
    d = _docker(engine, tmp_path, "d")
    ref = f"{reg.host}/flaky/img:1"
    try:
        d.ok("pull", ref)
        assert reg.ranges[0] is None and reg.ranges[1] is not None and reg.ranges[1].startswith("bytes=")
        saved = tmp_path / "saved.tar"
        d.ok("save", "-o", str(saved), ref)
        with tarfile.open(saved) as tf:
            assert raw in [tf.extractfile(m).read() for m in tf if m.isfile() and m.name.startswith("blobs/")]
    finally:
        d("rmi", ref)


def test_download_that_keeps_breaking_leaves_nothing(engine, breaking_registry, tmp_path):
    raw = _layer_tar(5, mb=2)
    reg = breaking_registry(gzip.compress(raw, mtime=0), breaks=1000)
    d = _docker(engine, tmp_path, "d")
    ref = f"{reg.host}/broken/img:1"
    before = _store_state(engine)
    r = d("pull", ref)
    assert r.returncode == 1
    err = r.stderr.decode() + r.stdout.decode()
    assert f"error downloading blob {reg.layer_digest}" in err, err
    assert d("image", "inspect", ref).returncode == 1
    layers, blobs, layer_tmp, content_tmp = _store_state(engine)
    assert layers == before[0] and blobs == before[1]
    assert layer_tmp == [] and content_tmp == []
    assert len(reg.ranges) == 4  # the first try and three resumes


def test_corrupt_layer_from_the_registry_leaves_nothing(engine, breaking_registry, tmp_path):
    """Bytes that are not the digest asked for (same size): verification error naming the layer."""
    raw = _layer_tar(6, mb=1)
    good = gzip.compress(raw, mtime=0)
    reg = breaking_registry(good, breaks=0)
    bad = bytearray(good)
    bad[len(bad) // 3] ^= 0x55
    reg.layer = bytes(bad)  # served under the good digest
    d = _docker(engine, tmp_path, "d")
    ref = f"{reg.host}/corrupt/img:1"
    before = _store_state(engine)
    r = d("pull", ref)
    assert r.returncode == 1
    err = r.stderr.decode() + r.stdout.decode()
    assert f"filesystem layer verification failed for digest {reg.layer_digest}" in err, err
    assert d("image", "inspect", ref).returncode == 1
    assert _store_state(engine) == (before[0], before[1], [], [])


def test_push_and_pull_report_byte_progress_per_layer(engine, registries, tmp_path):
    """The JSON stream carries Docker's per-layer progress (what the CLI draws bars from);
    compression is its own phase."""
    raw = _layer_tar(7, mb=2)
    src = tmp_path / "layer.tar"
    src.write_bytes(raw)
    reg = registries("dockyard")
    ref = f"{reg.host}/progress/img"
    d = _docker(engine, tmp_path, "d")
    d.ok("import", str(src), f"{ref}:1")
    api = engine.api()
    try:
        msgs = list(api.push(ref, tag="1", stream=True, decode=True))
        by_status: dict[str, list[dict]] = {}
        for m in msgs:
            by_status.setdefault(m.get("status", ""), []).append(m)
        for phase in ("Compressing", "Pushing"):
            details = [m["progressDetail"] for m in by_status.get(phase, [])]
            assert details, (phase, msgs)
            assert details[-1]["current"] == details[-1]["total"] > 0
            assert all(m.get("id") for m in by_status[phase])
        assert details[-1]["total"] == _manifest(reg, "progress/img", "1")["layers"][0]["size"]
        api.remove_image(f"{ref}:1")
        msgs = list(api.pull(ref, tag="1", stream=True, decode=True))
        statuses = [m.get("status") for m in msgs]
        for phase in ("Downloading", "Verifying Checksum", "Download complete", "Extracting", "Pull complete"):
            assert phase in statuses, (phase, statuses)
        down = [m["progressDetail"] for m in msgs if m.get("status") == "Downloading"]
        assert down[-1]["current"] == down[-1]["total"] > 0
    finally:
        d("rmi", f"{ref}:1")
