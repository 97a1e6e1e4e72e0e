"""skopeo (containers/image) copying images into and out of dockyard registry."""

from __future__ import annotations

import json
from pathlib import Path

import requests

from conftest import build_oci_layout, skopeo


def _copy_roundtrip(server, layout: Path, info: dict, repo: str, tmp_path: Path) -> None:
    dest = f"docker://{server.host}/{repo}:v1"
    r = skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:latest", dest)
    assert r.returncode == 0, r.stderr + server.log_tail()

    r = skopeo("inspect", "--tls-verify=false", "--raw", dest)
    assert r.returncode == 0, r.stderr
    assert r.stdout.encode() == info["manifest_bytes"]  # stored byte for byte

    out = tmp_path / "out"
    r = skopeo("copy", "--src-tls-verify=false", dest, f"oci:{out}:copy")
    assert r.returncode == 0, r.stderr + server.log_tail()
    index = json.loads((out / "index.json").read_text())
    assert index["manifests"][0]["digest"] == info["manifest"]
    layer = out / "blobs" / "sha256" / info["layer"].split(":")[1]
    assert layer.stat().st_size == info["layer_size"]


def test_skopeo_push_pull_filesystem(registry, busybox_layout, tmp_path):
    layout, info = busybox_layout
    _copy_roundtrip(registry, layout, info, "skopeo/busybox", tmp_path)
    tags = requests.get(f"{registry.url}/v2/skopeo/busybox/tags/list").json()
    assert tags == {"name": "skopeo/busybox", "tags": ["v1"]}


def test_skopeo_push_pull_s3(s3_registry, busybox_layout, tmp_path):
    layout, info = busybox_layout
    _copy_roundtrip(s3_registry, layout, info, "s3/busybox", tmp_path)


def test_skopeo_docker_format_and_copy_between_repos(registry, busybox_layout, tmp_path):
    """Convert to Docker schema 2 on push, then registry-to-registry copy (mount or re-upload)."""
    layout, info = busybox_layout
    src = f"docker://{registry.host}/fmt/docker:latest"
    r = skopeo("copy", "--dest-tls-verify=false", "--format", "v2s2", f"oci:{layout}:latest", src)
    assert r.returncode == 0, r.stderr + registry.log_tail()
    raw = json.loads(skopeo("inspect", "--tls-verify=false", "--raw", src).stdout)
    assert raw["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    dst = f"docker://{registry.host}/fmt/other:copied"
    r = skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false", src, dst)
    assert r.returncode == 0, r.stderr + registry.log_tail()
    r = requests.head(f"{registry.url}/v2/fmt/other/blobs/{info['layer']}")
    assert r.status_code == 200
    # Blobs are stored once, whatever the number of repositories linking them.
    hexd = info["layer"].split(":")[1]
    stored = list((registry.root / "blobs" / "sha256").rglob(f"{hexd}/data"))
    assert len(stored) == 1


def test_skopeo_second_push_skips_existing_layers(registry, tmp_path):
    layout = tmp_path / "img"
    info = build_oci_layout(layout, extra_file=b"second image")
    dest = f"docker://{registry.host}/skip/me:one"
    assert skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:latest", dest).returncode == 0
    r = skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:latest",
               f"docker://{registry.host}/skip/me:two")
    assert r.returncode == 0, r.stderr
    # The second copy found both blobs by HEAD and uploaded nothing.
    uploads = [ln for ln in registry.log.read_text().splitlines() if '"POST /v2/skip/me/blobs/uploads/' in ln]
    assert len(uploads) == 2, uploads
    tags = requests.get(f"{registry.url}/v2/skip/me/tags/list").json()["tags"]
    assert tags == ["one", "two"]
    m = requests.get(f"{registry.url}/v2/skip/me/manifests/two",
                     headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    assert m.headers["Docker-Content-Digest"] == info["manifest"]


def test_skopeo_delete(registry, busybox_layout):
    layout, info = busybox_layout
    ref = f"docker://{registry.host}/del/me:gone"
    assert skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:latest", ref).returncode == 0
    r = skopeo("delete", "--tls-verify=false", ref)
    assert r.returncode == 0, r.stderr + registry.log_tail()
    r = requests.get(f"{registry.url}/v2/del/me/manifests/{info['manifest']}")
    assert r.status_code == 404
    assert r.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
