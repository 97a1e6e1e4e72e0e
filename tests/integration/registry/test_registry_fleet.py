"""Three `dockyard registry` replicas on one S3 bucket (moto) behind HAProxy: uploads move
between replicas, concurrent pushes, a replica killed mid-upload, read-only GC, redirects."""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import pytest
import requests

from conftest import build_oci_layout, skopeo
from fleet import Fleet, make_fleet
from regclient import error_codes, image_manifest, push_blob, put_manifest, sha256

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed")


@pytest.fixture
def fleet(s3_server, tmp_path):
    f = make_fleet(tmp_path / "fleet", s3_server)
    yield f
    f.close()


def _s3(fleet: Fleet):
    return boto3.client("s3", endpoint_url=fleet.s3_endpoint, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


def _wait(cond, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _patch(base: str, loc: str, data: bytes, start: int) -> requests.Response:
    return requests.patch(base + loc, data=data, headers={
        "Content-Type": "application/octet-stream", "Content-Range": f"{start}-{start + len(data) - 1}"})


def test_chunked_upload_moves_between_replicas(fleet):
    """POST on one replica, PATCHes on the others, status and PUT elsewhere again: each replica
    continues the upload (data and running hash) from the bucket."""
    r0, r1, r2 = fleet.replicas
    repo = "fleet/chunks"
    # Chunk sizes straddle S3's 5 MiB minimum part and the 10 MiB write part size.
    pieces = [os.urandom(n) for n in (11 << 20, 3, (5 << 20) - 1, 6 << 20, 1000)]
    data = b"".join(pieces)
    r = requests.post(f"{r0.url}/v2/{repo}/blobs/uploads/")
    assert r.status_code == 202, r.text
    loc, offset = r.headers["Location"], 0
    assert "_state=" in loc
    for replica, piece in zip((r1, r2, r0, r1), pieces[:-1]):
        r = _patch(replica.url, loc, piece, offset)
        assert r.status_code == 202, r.text + replica.log_tail()
        offset += len(piece)
        assert r.headers["Range"] == f"0-{offset - 1}"
        loc = r.headers["Location"]
        st = requests.get(fleet.replicas[(replica.index + 1) % 3].url + loc)  # another replica agrees
        assert st.status_code == 204 and st.headers["Range"] == f"0-{offset - 1}"
    r = requests.put(r2.url + loc, params={"digest": sha256(data)}, data=pieces[-1],
                     headers={"Content-Range": f"{offset}-{len(data) - 1}"})
    assert r.status_code == 201, r.text + r2.log_tail()
    for replica in fleet.replicas:
        g = requests.get(f"{replica.url}/v2/{repo}/blobs/{sha256(data)}")
        assert g.status_code == 200 and g.content == data
    # The running hash travelled with the upload: nobody had to re-read the stored bytes.
    assert not any("re-hashing" in x.log_tail() for x in fleet.replicas)
    # Nothing is left of the upload's chunks and states.
    keys = [o["Key"] for o in _s3(fleet).list_objects_v2(Bucket=fleet.bucket).get("Contents", [])]
    assert not [k for k in keys if "_uploads" in k], keys


def test_upload_through_haproxy_round_robin(fleet):
    """Plain round-robin, no sticky sessions: the PATCHes of one upload land on several replicas."""
    repo = "fleet/rr"
    chunks = [os.urandom(300_000) for _ in range(6)]
    data = b"".join(chunks)
    with requests.Session() as s:
        r = s.post(f"{fleet.url}/v2/{repo}/blobs/uploads/")
        assert r.status_code == 202
        loc, offset = r.headers["Location"], 0
        upload_id = r.headers["Docker-Upload-UUID"]
        for c in chunks:
            r = s.patch(fleet.url + loc, data=c, headers={"Content-Range": f"{offset}-{offset + len(c) - 1}"})
            assert r.status_code == 202, r.text
            offset += len(c)
            loc = r.headers["Location"]
        r = s.put(fleet.url + loc, params={"digest": sha256(data)})
        assert r.status_code == 201, r.text
        assert s.get(f"{fleet.url}/v2/{repo}/blobs/{sha256(data)}").content == data
    served = [x.index for x in fleet.replicas if f"PATCH /v2/{repo}/blobs/uploads/{upload_id}" in x.log.read_text()]
    assert len(served) >= 2, served


def test_replica_with_another_secret_refuses_the_upload_state(fleet):
    stranger = fleet.add_replica(secret="not-the-fleet-secret")  # same bucket, not behind the LB
    repo = "fleet/secret"
    r = requests.post(f"{fleet.replicas[0].url}/v2/{repo}/blobs/uploads/")
    loc = r.headers["Location"]
    for resp in (_patch(stranger.url, loc, b"abc", 0), requests.get(stranger.url + loc)):
        assert resp.status_code == 400 and error_codes(resp) == ["BLOB_UPLOAD_INVALID"], resp.text
        assert resp.json()["errors"][0]["detail"] == "invalid secret"
    # A tampered token is refused by the fleet too; the genuine one still works.
    bad = loc[:-6] + ("AAAAAA" if not loc.endswith("AAAAAA") else "BBBBBB")
    assert _patch(fleet.replicas[1].url, bad, b"abc", 0).status_code == 400
    assert _patch(fleet.replicas[1].url, loc, b"abc", 0).status_code == 202


def test_concurrent_skopeo_pushes_of_one_image(fleet, tmp_path):
    """Several clients push the same image (a 12 MiB layer: multipart writes) at once."""
    layout = tmp_path / "layout"
    info = build_oci_layout(layout, extra_file=os.urandom(12 << 20))
    refs = [f"docker://{fleet.host}/fleet/busy:{t}" for t in ("same", "same", "same", "a", "b")]

    def push(ref: str) -> subprocess.CompletedProcess:
        return skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:latest", ref, timeout=300)

    with concurrent.futures.ThreadPoolExecutor(len(refs)) as ex:
        results = list(ex.map(push, refs))
    for res in results:
        assert res.returncode == 0, res.stderr + "".join(r.log_tail() for r in fleet.replicas)
    for tag in ("same", "a", "b"):
        r = requests.get(f"{fleet.url}/v2/fleet/busy/manifests/{tag}",
                         headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
        assert r.status_code == 200 and r.content == info["manifest_bytes"]
    out = tmp_path / "out"
    res = skopeo("copy", "--src-tls-verify=false", f"docker://{fleet.host}/fleet/busy:same", f"oci:{out}:x",
                 timeout=300)
    assert res.returncode == 0, res.stderr
    layer = out / "blobs" / "sha256" / info["layer"].split(":")[1]
    assert sha256(layer.read_bytes()) == info["layer"]


def test_replica_killed_mid_upload_client_continues_elsewhere(fleet):
    """SIGKILL a replica while it receives a PATCH; the client asks the fleet where the upload
    stands and finishes it on the others.  Upload purging later aborts the dead replica's
    multipart upload and removes an abandoned upload."""
    r0 = fleet.replicas[0]
    repo = "fleet/kill"
    data = os.urandom(32 << 20)
    first = 6 << 20
    r = requests.post(f"{r0.url}/v2/{repo}/blobs/uploads/")
    r = _patch(r0.url, r.headers["Location"], data[:first], 0)
    assert r.status_code == 202
    loc = r.headers["Location"]
    s3 = _s3(fleet)
    sock = socket.create_connection(("127.0.0.1", r0.port))
    sock.sendall((f"PATCH {loc} HTTP/1.1\r\nHost: {fleet.host}\r\nContent-Type: application/octet-stream\r\n"
                  f"Content-Length: {len(data) - first}\r\n\r\n").encode() + data[first:first + (16 << 20)])
    # The replica is streaming this session into a multipart upload when it dies.
    _wait(lambda: s3.list_multipart_uploads(Bucket=fleet.bucket).get("Uploads"), "a multipart upload")
    fleet.kill(0)
    sock.close()
    with requests.Session() as s:  # through HAProxy, which now skips the dead replica
        st = s.get(fleet.url + loc)
        assert st.status_code == 204, st.text
        assert st.headers["Range"] == f"0-{first - 1}"  # the killed session's bytes are gone
        r = s.patch(fleet.url + loc, data=data[first:],
                    headers={"Content-Range": f"{first}-{len(data) - 1}"})
        assert r.status_code == 202, r.text
        r = s.put(fleet.url + r.headers["Location"], params={"digest": sha256(data)})
        assert r.status_code == 201, r.text
        assert s.get(f"{fleet.url}/v2/{repo}/blobs/{sha256(data)}").content == data
    assert s3.list_multipart_uploads(Bucket=fleet.bucket).get("Uploads")  # the dead session's

    abandoned = requests.post(f"{fleet.replicas[1].url}/v2/{repo}/blobs/uploads/").headers["Location"]
    assert _patch(fleet.replicas[1].url, abandoned, b"never finished", 0).status_code == 202
    fleet.start(0, purge={"enabled": True, "age": "1s", "interval": "1s", "dryrun": False})
    _wait(lambda: not s3.list_multipart_uploads(Bucket=fleet.bucket).get("Uploads"), "the purge", 120)
    _wait(lambda: requests.get(fleet.replicas[1].url + abandoned).status_code == 404, "the purge", 120)
    assert "purged upload fleet/kill/" in r0.log_tail()


def _gc(fleet: Fleet, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dockyard.cli", "registry", "gc", "--config",
                           str(fleet.replicas[0].config), "--root", str(tmp_path / "gc-root"), *args],
                          capture_output=True, text=True, timeout=300)


def test_gc_in_read_only_mode_while_pulls_go_on(fleet, tmp_path):
    url, repo = fleet.url, "fleet/gc"
    kept = image_manifest(url, repo, layers=[os.urandom(3000), os.urandom(7 << 20)])
    assert put_manifest(url, repo, "keep", kept).status_code == 201
    gone = image_manifest(url, repo, layers=[os.urandom(4000)])
    assert put_manifest(url, repo, "drop", gone).status_code == 201
    assert requests.delete(f"{url}/v2/{repo}/manifests/{sha256(gone)}").status_code == 202

    for i in range(3):  # the operator's step 1: every replica read-only
        fleet.start(i, readonly=True)
    r = requests.post(f"{url}/v2/{repo}/blobs/uploads/")
    assert r.status_code == 405 and r.json()["errors"][0] == {
        "code": "UNSUPPORTED", "message": "The operation is unsupported."}
    assert put_manifest(url, repo, "new", kept).status_code == 405
    assert requests.delete(f"{url}/v2/{repo}/manifests/keep").status_code == 405

    failures: list[str] = []
    pulls = 0
    done = threading.Event()

    def puller() -> None:
        nonlocal pulls
        with requests.Session() as s:
            while not done.is_set():
                m = s.get(f"{url}/v2/{repo}/manifests/keep", headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
                if m.status_code != 200 or m.content != kept:
                    failures.append(f"manifest {m.status_code}")
                for layer in json.loads(kept)["layers"]:
                    b = s.get(f"{url}/v2/{repo}/blobs/{layer['digest']}")
                    if b.status_code != 200 or sha256(b.content) != layer["digest"]:
                        failures.append(f"blob {b.status_code}")
                pulls += 1

    t = threading.Thread(target=puller)
    t.start()
    try:
        res = _gc(fleet, tmp_path, "--grace", "0")  # step 2: collect the bucket
        _wait(lambda: pulls >= 3, "pulls during gc")
    finally:
        done.set()
        t.join()
    assert res.returncode == 0, res.stderr
    assert f"deleted blob {sha256(gone)}" in res.stdout  # the deleted manifest's bytes
    gone_layer = json.loads(gone)["layers"][0]["digest"]
    assert f"deleted blob {gone_layer}" in res.stdout
    assert failures == [] and pulls >= 3
    assert requests.head(f"{url}/v2/{repo}/blobs/{gone_layer}").status_code == 404

    for i in range(3):  # step 3: writable again
        fleet.start(i)
    assert push_blob(url, repo, b"after gc")


def test_redirect_blob_gets_to_the_bucket(s3_server, tmp_path, busybox_layout):
    f = make_fleet(tmp_path / "fleet", s3_server, n=2, redirect=True)
    try:
        layout, info = busybox_layout
        res = skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:latest", f"docker://{f.host}/red/busy:1")
        assert res.returncode == 0, res.stderr
        blob = f"{f.url}/v2/red/busy/blobs/{info['layer']}"
        for method in ("GET", "HEAD"):
            r = requests.request(method, blob, allow_redirects=False)
            assert r.status_code == 307, r.text
            assert r.headers["Location"].startswith(s3_server + "/")
            assert "Signature" in r.headers["Location"] or "X-Amz-Signature" in r.headers["Location"]
        assert sha256(requests.get(blob).content) == info["layer"]
        # Unknown blobs still get the registry's own 404.
        missing = requests.get(f"{f.url}/v2/red/busy/blobs/{sha256(b'nope')}", allow_redirects=False)
        assert missing.status_code == 404 and error_codes(missing) == ["BLOB_UNKNOWN"]
        out = tmp_path / "out"  # skopeo follows the redirect
        res = skopeo("copy", "--src-tls-verify=false", f"docker://{f.host}/red/busy:1", f"oci:{out}:x")
        assert res.returncode == 0, res.stderr
        assert (out / "blobs" / "sha256" / info["layer"].split(":")[1]).stat().st_size == info["layer_size"]
        served = sum(x.log.read_text().count("307") for x in f.replicas)
        assert served >= 2
    finally:
        f.close()


def test_docker_push_and_pull_through_the_fleet_with_redirects(engine, private_engine, s3_server, tmp_path):
    """The engine's registry client pushes through HAProxy (requests spread over the replicas);
    a second engine with no copy pulls it back, its blob GETs redirected to the bucket."""
    f = make_fleet(tmp_path / "fleet", s3_server, n=3, redirect=True)
    ref = f"{f.host}/red/engine:1"
    try:
        assert engine.cli("tag", "busybox:latest", ref).returncode == 0
        r = engine.cli("push", ref)
        assert r.returncode == 0, r.stderr.decode() + "".join(x.log_tail() for x in f.replicas)
        other = private_engine()
        other.cli("rmi", "busybox:latest", check=True)
        r = other.cli("pull", ref)
        assert r.returncode == 0, r.stderr.decode() + other.log_tail()
        assert "Pull complete" in r.stdout.decode()
        r = other.cli("run", "--rm", ref, "echo", "via the bucket")
        assert r.returncode == 0 and r.stdout.decode().strip() == "via the bucket", r.stderr.decode()
        redirected = [ln for x in f.replicas for ln in x.log.read_text().splitlines()
                      if "GET /v2/red/engine/blobs/" in ln and '" 307 ' in ln]
        assert redirected, "no blob GET was redirected"
    finally:
        engine.cli("rmi", ref)
        f.close()


def test_read_only_mode_authenticates_before_refusing(registry_factory, tmp_path):
    """Read-only is checked after authentication, as Distribution does: a client without
    credentials is told to log in, a logged-in one that the registry is read-only."""
    pw = tmp_path / "htpasswd"
    pw.write_text(subprocess.run(["htpasswd", "-Bbn", "alice", "wonderland"], capture_output=True, text=True,
                                 check=True).stdout)
    srv = registry_factory({"storage": {"maintenance": {"readonly": {"enabled": True}}},
                            "auth": {"htpasswd": {"path": str(pw), "realm": "ro"}}}, "readonly")
    anon = requests.post(f"{srv.url}/v2/ro/repo/blobs/uploads/")
    assert anon.status_code == 401 and error_codes(anon) == ["UNAUTHORIZED"]
    auth = ("alice", "wonderland")
    for method, path in (("POST", "/v2/ro/repo/blobs/uploads/"), ("PUT", "/v2/ro/repo/manifests/t"),
                         ("DELETE", "/v2/ro/repo/manifests/t"), ("PATCH", f"/v2/ro/repo/blobs/uploads/{'a' * 32}")):
        r = requests.request(method, srv.url + path, auth=auth)
        assert r.status_code == 405, (method, r.text)
        assert r.json() == {"errors": [{"code": "UNSUPPORTED", "message": "The operation is unsupported."}]}
    assert requests.get(f"{srv.url}/v2/_catalog", auth=auth).status_code == 200
    assert requests.get(f"{srv.url}/v2/ro/repo/tags/list", auth=auth).status_code == 404
