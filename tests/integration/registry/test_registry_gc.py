"""`dockyard registry gc` against a live server's root, and its safety rules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import requests

from regclient import OCI_INDEX, OCI_MANIFEST, image_manifest, push_blob, put_manifest, sha256


def _gc(root, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dockyard.cli", "registry", "gc", "--root", str(root), *args],
                          capture_output=True, text=True, timeout=120)


def _age(root, days: float = 2) -> None:
    """Make everything under root look old, as if pushed long ago."""
    old = time.time() - days * 86400
    for dirpath, dirnames, filenames in os.walk(root):
        for n in filenames + dirnames:
            os.utime(os.path.join(dirpath, n), (old, old), follow_symlinks=False)


def test_gc_removes_unreachable_and_keeps_reachable(registry_factory):
    srv = registry_factory(None, "gc")
    url, repo = srv.url, "gc/repo"
    kept = image_manifest(url, repo)
    put_manifest(url, repo, "keep", kept)
    gone = image_manifest(url, repo)
    put_manifest(url, repo, "drop", gone)
    # An index reaches a child that has no tag of its own.
    child = image_manifest(url, repo)
    put_manifest(url, repo, sha256(child), child)
    idx = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": sha256(child), "size": len(child)}]}).encode()
    put_manifest(url, repo, "index", idx, OCI_INDEX)
    # A signature referring to the kept image survives with it.
    sig = image_manifest(url, repo, artifactType="application/vnd.example.sig",
                         subject={"mediaType": OCI_MANIFEST, "digest": sha256(kept), "size": len(kept)})
    put_manifest(url, repo, sha256(sig), sig)
    orphan_blob = push_blob(url, repo, b"pushed but never referenced")
    assert requests.delete(f"{url}/v2/{repo}/manifests/drop").status_code == 202

    # Everything is fresh: the grace period protects it all.
    r = _gc(srv.root)
    assert r.returncode == 0, r.stderr
    assert "deleted 0 manifests, 0 blobs" in r.stdout

    _age(srv.root)
    r = _gc(srv.root, "--dry-run")
    assert r.returncode == 0 and f"would delete manifest {repo}@{sha256(gone)}" in r.stdout
    assert requests.get(f"{url}/v2/{repo}/manifests/{sha256(gone)}").status_code == 200  # dry run: untouched

    r = _gc(srv.root)
    assert r.returncode == 0, r.stderr
    assert f"deleted manifest {repo}@{sha256(gone)}" in r.stdout
    assert f"deleted blob {orphan_blob}" in r.stdout
    gone_layers = [l["digest"] for l in json.loads(gone)["layers"]]
    for ref in (sha256(gone),):
        assert requests.get(f"{url}/v2/{repo}/manifests/{ref}").status_code == 404
    for d in gone_layers + [orphan_blob]:
        assert requests.head(f"{url}/v2/{repo}/blobs/{d}").status_code == 404
    for ref in ("keep", "index", sha256(child), sha256(sig)):
        assert requests.get(f"{url}/v2/{repo}/manifests/{ref}").status_code == 200, ref
    for m in (kept, child):
        for layer in json.loads(m)["layers"]:
            g = requests.get(f"{url}/v2/{repo}/blobs/{layer['digest']}")
            assert g.status_code == 200 and sha256(g.content) == layer["digest"]
    refs = requests.get(f"{url}/v2/{repo}/referrers/{sha256(kept)}").json()["manifests"]
    assert [x["digest"] for x in refs] == [sha256(sig)]


def test_gc_spares_a_blob_checked_by_head_during_a_push(registry_factory):
    """A client HEADs an old unreferenced blob, GC runs, then the client references it."""
    srv = registry_factory(None, "gc-race")
    url, repo = srv.url, "gc/race"
    layer = os.urandom(2000)
    d = push_blob(url, repo, layer)
    _age(srv.root)
    assert requests.head(f"{url}/v2/{repo}/blobs/{d}").status_code == 200  # "already exists, skip upload"
    r = _gc(srv.root)
    assert r.returncode == 0 and d not in r.stdout
    cfg = push_blob(url, repo, b"{}")
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg, "size": 2},
                       "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d,
                                   "size": len(layer)}]}).encode()
    assert put_manifest(url, repo, "late", body).status_code == 201
    assert requests.get(f"{url}/v2/{repo}/blobs/{d}").content == layer


def test_gc_during_concurrent_pushes(registry_factory):
    """Pushes run while GC sweeps an aged store: every pushed image stays complete."""
    import threading

    srv = registry_factory(None, "gc-concurrent")
    url = srv.url
    for i in range(5):
        put_manifest(url, "gc/old", f"t{i}", image_manifest(url, "gc/old"))
        requests.delete(f"{url}/v2/gc/old/manifests/t{i}")
    _age(srv.root)
    pushed: list[bytes] = []
    errors: list[str] = []

    def pusher() -> None:
        for i in range(10):
            body = image_manifest(url, "gc/new", layers=[os.urandom(3000), os.urandom(3000)])
            r = put_manifest(url, "gc/new", f"n{len(pushed)}-{i}-{threading.get_ident()}", body)
            if r.status_code != 201:
                errors.append(r.text)
            pushed.append(body)

    threads = [threading.Thread(target=pusher) for _ in range(3)]
    for t in threads:
        t.start()
    r = _gc(srv.root, "--grace", "60")
    for t in threads:
        t.join()
    assert r.returncode == 0, r.stderr
    assert "deleted 5 manifests" in r.stdout
    assert errors == []
    for body in pushed:
        for layer in json.loads(body)["layers"]:
            assert requests.head(f"{url}/v2/gc/new/blobs/{layer['digest']}").status_code == 200
