"""Conformance leftovers: Range bytes=500-0 is a 416; validation.manifests (indexes.platforms,
urls allow/deny); catalog.maxentries."""

from __future__ import annotations

import json
import os

import pytest
import requests

from regclient import OCI_INDEX, error_codes, image_manifest, push_blob, put_manifest, sha256


def test_range_with_end_before_start_is_416(registry):
    data = os.urandom(1000)
    d = push_blob(registry.url, "val/range", data)
    r = requests.get(f"{registry.url}/v2/val/range/blobs/{d}", headers={"Range": "bytes=500-0"})
    assert r.status_code == 416
    assert r.headers["Content-Range"] == "bytes */1000"
    r = requests.get(f"{registry.url}/v2/val/range/blobs/{d}", headers={"Range": "bytes=500-999"})
    assert r.status_code == 206 and r.content == data[500:]


def _index(children: list[tuple[bytes, dict | None]]) -> bytes:
    manifests = []
    for body, platform in children:
        desc = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha256(body),
                "size": len(body)}
        if platform is not None:
            desc["platform"] = platform
        manifests.append(desc)
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}).encode()


AMD64 = {"os": "linux", "architecture": "amd64"}
ARM64 = {"os": "linux", "architecture": "arm64"}


@pytest.fixture(scope="module")
def sparse_registries(registry_factory):
    def start(platforms: str, plist: list | None = None):
        indexes = {"platforms": platforms}
        if plist:
            indexes["platformlist"] = plist
        return registry_factory({"storage": {"delete": {"enabled": True}},
                                 "validation": {"manifests": {"indexes": indexes}}}, f"val-{platforms}")
    return {"none": start("none"), "list": start("list", [{"os": "linux", "architecture": "amd64"}])}


def _pushed_and_missing(url: str, repo: str) -> tuple[bytes, bytes]:
    pushed = image_manifest(url, repo)
    assert put_manifest(url, repo, sha256(pushed), pushed).status_code == 201
    missing = image_manifest(url, repo, layers=[os.urandom(10)])  # blobs pushed, manifest not
    return pushed, missing


def test_default_index_needs_every_child(registry):
    pushed, missing = _pushed_and_missing(registry.url, "val/strict")
    r = put_manifest(registry.url, "val/strict", "v1", _index([(pushed, AMD64), (missing, ARM64)]), OCI_INDEX)
    assert r.status_code == 400 and error_codes(r) == ["MANIFEST_BLOB_UNKNOWN"]
    assert r.json()["errors"][0]["detail"] == {"digest": sha256(missing)}


def test_platforms_none_allows_a_sparse_index(sparse_registries):
    url = sparse_registries["none"].url
    pushed, missing = _pushed_and_missing(url, "val/sparse")
    index = _index([(pushed, AMD64), (missing, ARM64)])
    r = put_manifest(url, "val/sparse", "v1", index, OCI_INDEX)
    assert r.status_code == 201, r.text
    r = requests.get(f"{url}/v2/val/sparse/manifests/v1", headers={"Accept": OCI_INDEX})
    assert r.status_code == 200 and r.content == index
    r = requests.get(f"{url}/v2/val/sparse/manifests/{sha256(missing)}", headers={"Accept": "*/*"})
    assert r.status_code == 404 and error_codes(r) == ["MANIFEST_UNKNOWN"]


def test_platforms_list_needs_only_listed_children(sparse_registries):
    url = sparse_registries["list"].url
    pushed, missing = _pushed_and_missing(url, "val/list")
    r = put_manifest(url, "val/list", "ok", _index([(pushed, AMD64), (missing, ARM64)]), OCI_INDEX)
    assert r.status_code == 201, r.text
    # the listed platform (linux/amd64) missing: refused; so is a child that names no platform
    r = put_manifest(url, "val/list", "bad", _index([(missing, AMD64), (pushed, ARM64)]), OCI_INDEX)
    assert r.status_code == 400 and error_codes(r) == ["MANIFEST_BLOB_UNKNOWN"]
    r = put_manifest(url, "val/list", "bad2", _index([(pushed, AMD64), (missing, None)]), OCI_INDEX)
    assert r.status_code == 400 and error_codes(r) == ["MANIFEST_BLOB_UNKNOWN"]


def test_layer_urls_allow_and_deny(registry_factory):
    srv = registry_factory({"storage": {"delete": {"enabled": True}}, "validation": {"manifests": {"urls": {
        "allow": [r"^https://cdn\.example\.com/"], "deny": [r"/private/"]}}}}, "val-urls")
    url = srv.url

    def with_urls(urls: list[str]) -> requests.Response:
        body = json.loads(image_manifest(url, "val/urls"))
        body["layers"][0]["urls"] = urls
        return put_manifest(url, "val/urls", "t", json.dumps(body).encode())

    assert with_urls(["https://cdn.example.com/layer"]).status_code == 201
    for bad in (["http://elsewhere/layer"], ["https://cdn.example.com/private/layer"]):
        r = with_urls(bad)
        assert r.status_code == 400 and error_codes(r) == ["MANIFEST_INVALID"], r.text


def test_catalog_maxentries(registry_factory):
    srv = registry_factory({"storage": {"delete": {"enabled": True}}, "catalog": {"maxentries": 2}}, "val-cat")
    for name in ("c/a", "c/b", "c/c"):
        push_blob(srv.url, name, b"x")
    r = requests.get(f"{srv.url}/v2/_catalog")
    assert r.json() == {"repositories": ["c/a", "c/b"]} and 'rel="next"' in r.headers["Link"]
    r = requests.get(f"{srv.url}/v2/_catalog?n=3")
    assert r.status_code == 400 and error_codes(r) == ["PAGINATION_NUMBER_INVALID"]
