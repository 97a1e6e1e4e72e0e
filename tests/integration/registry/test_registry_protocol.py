"""Each point of the OCI distribution protocol, over raw HTTP against a live server."""

from __future__ import annotations

import json
import os
import socket

import pytest
import requests

from regclient import (DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, error_codes, image_manifest,
                       push_blob, put_manifest, sha256, sha512)


@pytest.fixture(params=["filesystem", "s3"])
def srv(request, registry, s3_registry):
    return registry if request.param == "filesystem" else s3_registry


def test_base_endpoint(srv):
    r = requests.get(f"{srv.url}/v2/")
    assert r.status_code == 200
    assert r.headers["Docker-Distribution-API-Version"] == "registry/2.0"


# --- blobs: monolithic, single POST, chunked ---------------------------------------

def test_monolithic_post_put_and_get(srv):
    data = os.urandom(300_000)
    d = push_blob(srv.url, "mono/a", data)
    r = requests.get(f"{srv.url}/v2/mono/a/blobs/{d}")
    assert r.status_code == 200 and r.content == data
    assert r.headers["Docker-Content-Digest"] == d
    h = requests.head(f"{srv.url}/v2/mono/a/blobs/{d}")
    assert h.status_code == 200 and h.headers["Content-Length"] == str(len(data)) and h.content == b""
    assert h.headers["Docker-Content-Digest"] == d


def test_single_post_with_digest(srv):
    data = os.urandom(5000)
    d = sha256(data)
    r = requests.post(f"{srv.url}/v2/single/post/blobs/uploads/?digest={d}", data=data,
                      headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 201, r.text
    assert r.headers["Location"].endswith(f"/v2/single/post/blobs/{d}")
    assert requests.get(f"{srv.url}/v2/single/post/blobs/{d}").content == data


def test_single_post_wrong_digest_is_refused(srv):
    data = os.urandom(100)
    r = requests.post(f"{srv.url}/v2/single/bad/blobs/uploads/?digest={sha256(b'other')}", data=data)
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]
    assert requests.head(f"{srv.url}/v2/single/bad/blobs/{sha256(data)}").status_code == 404


def test_sha512_blob(srv):
    data = os.urandom(70_000)
    d = sha512(data)
    r = requests.post(f"{srv.url}/v2/algo/x/blobs/uploads/?digest-algorithm=sha512")
    assert r.status_code == 202
    loc = srv.url + r.headers["Location"]
    r = requests.patch(loc, data=data[:40_000], headers={"Content-Range": "0-39999"})
    assert r.status_code == 202
    r = requests.put(loc, params={"digest": d}, data=data[40_000:], headers={"Content-Range": f"40000-{len(data)-1}"})
    assert r.status_code == 201, r.text
    assert r.headers["Docker-Content-Digest"] == d
    g = requests.get(f"{srv.url}/v2/algo/x/blobs/{d}")
    assert g.content == data and g.headers["Docker-Content-Digest"] == d
    # Single POST with sha512 too.
    data2 = os.urandom(10)
    r = requests.post(f"{srv.url}/v2/algo/x/blobs/uploads/?digest={sha512(data2)}", data=data2)
    assert r.status_code == 201 and r.headers["Docker-Content-Digest"] == sha512(data2)


def test_chunked_upload_416_status_and_resume(srv):
    data = os.urandom(250_000)
    d = sha256(data)
    r = requests.post(f"{srv.url}/v2/chunk/a/blobs/uploads/", headers={"Content-Length": "0"})
    assert r.status_code == 202 and r.headers["Range"] == "0-0"
    loc = srv.url + r.headers["Location"]
    r = requests.patch(loc, data=data[:100_000], headers={"Content-Range": "0-99999",
                                                          "Content-Type": "application/octet-stream"})
    assert r.status_code == 202 and r.headers["Range"] == "0-99999"
    loc = srv.url + r.headers["Location"]
    # A gap: refused with 416, and the body's Content-Length is right.
    r = requests.patch(loc, data=data[150_000:], headers={"Content-Range": "150000-249999"})
    assert r.status_code == 416
    assert int(r.headers["Content-Length"]) == len(r.content) and error_codes(r) == ["BLOB_UPLOAD_INVALID"]
    # An overlap: 416 as well.
    r = requests.patch(loc, data=data[50_000:120_000], headers={"Content-Range": "50000-119999"})
    assert r.status_code == 416
    assert int(r.headers["Content-Length"]) == len(r.content)
    # Content-Range and Content-Length disagreeing: 416.
    r = requests.patch(loc, data=data[100_000:110_000], headers={"Content-Range": "100000-100009"})
    assert r.status_code == 416
    # Status tells where to resume.
    r = requests.get(loc)
    assert r.status_code == 204 and r.headers["Range"] == "0-99999"
    assert r.headers["Location"].endswith(loc.split(srv.url, 1)[1])
    r = requests.patch(loc, data=data[100_000:200_000], headers={"Content-Range": "100000-199999"})
    assert r.status_code == 202 and r.headers["Range"] == "0-199999"
    # Final chunk in the closing PUT, out of order first.
    r = requests.put(loc, params={"digest": d}, data=data[210_000:], headers={"Content-Range": "210000-249999"})
    assert r.status_code == 416
    r = requests.put(loc, params={"digest": d}, data=data[200_000:], headers={"Content-Range": "200000-249999"})
    assert r.status_code == 201, r.text
    assert requests.get(f"{srv.url}/v2/chunk/a/blobs/{d}").content == data


def test_streamed_patch_without_content_range(srv):
    """Docker-style PATCH: chunked transfer encoding, no Content-Range."""
    data = os.urandom(200_000)
    r = requests.post(f"{srv.url}/v2/stream/a/blobs/uploads/")
    loc = srv.url + r.headers["Location"]
    r = requests.patch(loc, data=iter([data[:70_000], data[70_000:]]))
    assert r.status_code == 202 and r.headers["Range"] == f"0-{len(data)-1}"
    r = requests.put(loc, params={"digest": sha256(data)})
    assert r.status_code == 201


def test_resume_after_client_disconnect(srv):
    """A client dies mid-PATCH; what the server recorded is kept and the upload resumes from Range."""
    import time

    data = os.urandom(3_000_000)
    r = requests.post(f"{srv.url}/v2/resume/a/blobs/uploads/")
    loc_path = r.headers["Location"]
    r = requests.patch(srv.url + loc_path, data=data[:10], headers={"Content-Range": "0-9"})
    assert r.status_code == 202
    host, port = srv.host.split(":")
    sent = 1_000_000
    with socket.create_connection((host, int(port))) as s:
        s.sendall((f"PATCH {loc_path} HTTP/1.1\r\nHost: {srv.host}\r\nContent-Type: application/octet-stream\r\n"
                   f"Content-Length: {len(data) - 10}\r\n\r\n").encode() + data[10:sent])
    # Wait until the server has finished with the broken request (the access log says so).
    deadline = time.monotonic() + 20
    while srv.log.read_text().count(f"PATCH {loc_path}") < 2:
        assert time.monotonic() < deadline, srv.log_tail()
        time.sleep(0.05)
    st = requests.get(srv.url + loc_path)
    assert st.status_code == 204
    have = int(st.headers["Range"].split("-")[1]) + 1
    assert 10 <= have <= sent
    r = requests.patch(srv.url + loc_path, data=data[have:], headers={"Content-Range": f"{have}-{len(data)-1}"})
    assert r.status_code == 202, r.text
    r = requests.put(f"{srv.url}{loc_path}", params={"digest": sha256(data)})
    assert r.status_code == 201, r.text
    assert requests.get(f"{srv.url}/v2/resume/a/blobs/{sha256(data)}").content == data


def test_cancel_upload(srv):
    r = requests.post(f"{srv.url}/v2/cancel/a/blobs/uploads/")
    loc = srv.url + r.headers["Location"]
    requests.patch(loc, data=b"abc")
    r = requests.delete(loc)
    assert r.status_code == 204
    r = requests.get(loc)
    assert r.status_code == 404 and error_codes(r) == ["BLOB_UPLOAD_UNKNOWN"]
    r = requests.patch(loc, data=b"x")
    assert r.status_code == 404 and error_codes(r) == ["BLOB_UPLOAD_UNKNOWN"]


def test_put_without_digest_and_bad_digest(srv):
    r = requests.post(f"{srv.url}/v2/nodigest/a/blobs/uploads/")
    loc = srv.url + r.headers["Location"]
    r = requests.put(loc, data=b"abc")
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]
    r = requests.put(loc, params={"digest": sha256(b'xyz')}, data=b"abc")
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]


def test_cross_repo_mount(srv):
    data = os.urandom(4000)
    d = push_blob(srv.url, "mount/src", data)
    r = requests.post(f"{srv.url}/v2/mount/dst/blobs/uploads/?mount={d}&from=mount/src")
    assert r.status_code == 201 and r.headers["Location"].endswith(f"/v2/mount/dst/blobs/{d}")
    assert r.headers["Docker-Content-Digest"] == d
    assert requests.get(f"{srv.url}/v2/mount/dst/blobs/{d}").content == data
    # Without from=: the blob is known, so it is mounted.
    r = requests.post(f"{srv.url}/v2/mount/nofrom/blobs/uploads/?mount={d}")
    assert r.status_code == 201
    # Unknown blob, or a source that lacks it: a normal upload session starts instead.
    unknown = sha256(b"never pushed")
    r = requests.post(f"{srv.url}/v2/mount/dst2/blobs/uploads/?mount={unknown}&from=mount/src")
    assert r.status_code == 202 and "/blobs/uploads/" in r.headers["Location"]
    r = requests.post(f"{srv.url}/v2/mount/dst3/blobs/uploads/?mount={d}&from=mount/elsewhere")
    assert r.status_code == 202


def test_range_requests(srv):
    data = os.urandom(10_000)
    d = push_blob(srv.url, "range/a", data)
    url = f"{srv.url}/v2/range/a/blobs/{d}"
    r = requests.get(url, headers={"Range": "bytes=100-199"})
    assert r.status_code == 206 and r.content == data[100:200]
    assert r.headers["Content-Range"] == "bytes 100-199/10000"
    r = requests.get(url, headers={"Range": "bytes=9990-"})
    assert r.status_code == 206 and r.content == data[9990:]
    r = requests.get(url, headers={"Range": "bytes=-10"})
    assert r.status_code == 206 and r.content == data[-10:]
    r = requests.get(url, headers={"Range": "bytes=20000-"})
    assert r.status_code == 416 and r.headers["Content-Range"] == "bytes */10000"
    assert int(r.headers["Content-Length"]) == len(r.content)
    r = requests.get(url, headers={"Range": "pages=1-2"})  # not a byte range: ignored
    assert r.status_code == 200 and r.content == data


def test_blob_unknown_and_delete(srv):
    d = push_blob(srv.url, "blobdel/a", b"delete me")
    r = requests.get(f"{srv.url}/v2/blobdel/a/blobs/{sha256(b'nope')}")
    assert r.status_code == 404 and error_codes(r) == ["BLOB_UNKNOWN"]
    assert requests.head(f"{srv.url}/v2/blobdel/a/blobs/{sha256(b'nope')}").status_code == 404
    r = requests.delete(f"{srv.url}/v2/blobdel/a/blobs/{d}")
    assert r.status_code == 202
    assert requests.get(f"{srv.url}/v2/blobdel/a/blobs/{d}").status_code == 404
    r = requests.delete(f"{srv.url}/v2/blobdel/a/blobs/{d}")
    assert r.status_code == 404 and error_codes(r) == ["BLOB_UNKNOWN"]


# --- manifests ----------------------------------------------------------------------

def test_oci_manifest_push_pull_by_tag_and_digest(srv):
    body = image_manifest(srv.url, "man/oci")
    r = put_manifest(srv.url, "man/oci", "v1", body)
    assert r.status_code == 201, r.text
    d = sha256(body)
    assert r.headers["Docker-Content-Digest"] == d
    assert r.headers["Location"].endswith(f"/v2/man/oci/manifests/{d}")
    for ref in ("v1", d):
        g = requests.get(f"{srv.url}/v2/man/oci/manifests/{ref}", headers={"Accept": OCI_MANIFEST})
        assert g.status_code == 200 and g.content == body
        assert g.headers["Content-Type"] == OCI_MANIFEST and g.headers["Docker-Content-Digest"] == d
        h = requests.head(f"{srv.url}/v2/man/oci/manifests/{ref}", headers={"Accept": OCI_MANIFEST})
        assert h.status_code == 200 and h.headers["Content-Length"] == str(len(body))
        assert h.headers["Docker-Content-Digest"] == d


def test_manifest_by_sha512_digest(srv):
    body = image_manifest(srv.url, "man/sha512")
    d = sha512(body)
    r = put_manifest(srv.url, "man/sha512", d, body)
    assert r.status_code == 201 and r.headers["Docker-Content-Digest"] == d
    g = requests.get(f"{srv.url}/v2/man/sha512/manifests/{d}")
    assert g.content == body and g.headers["Docker-Content-Digest"] == d
    r = put_manifest(srv.url, "man/sha512", sha512(b"other"), body)
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]


def test_docker_schema2_and_list_with_negotiation(srv):
    repo = "man/docker"
    child = image_manifest(srv.url, repo, media_type=DOCKER_MANIFEST,
                           config_media_type="application/vnd.docker.container.image.v1+json")
    assert put_manifest(srv.url, repo, sha256(child), child, DOCKER_MANIFEST).status_code == 201
    lst = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": [
        {"mediaType": DOCKER_MANIFEST, "digest": sha256(child), "size": len(child),
         "platform": {"architecture": "amd64", "os": "linux"}}]}).encode()
    r = put_manifest(srv.url, repo, "multi", lst, DOCKER_LIST)
    assert r.status_code == 201, r.text
    g = requests.get(f"{srv.url}/v2/{repo}/manifests/multi",
                     headers={"Accept": f"{DOCKER_LIST}, {DOCKER_MANIFEST}"})
    assert g.status_code == 200 and g.headers["Content-Type"] == DOCKER_LIST and g.content == lst
    # A client that only reads OCI types is not handed a Docker list.
    g = requests.get(f"{srv.url}/v2/{repo}/manifests/multi", headers={"Accept": OCI_MANIFEST})
    assert g.status_code == 404 and error_codes(g) == ["MANIFEST_UNKNOWN"]
    g = requests.get(f"{srv.url}/v2/{repo}/manifests/multi", headers={"Accept": "*/*"})
    assert g.status_code == 200


def test_oci_index_requires_children(srv):
    repo = "man/index"
    child = image_manifest(srv.url, repo)
    idx = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": sha256(child), "size": len(child)}]}).encode()
    r = put_manifest(srv.url, repo, "idx", idx, OCI_INDEX)
    assert r.status_code == 400 and error_codes(r) == ["MANIFEST_BLOB_UNKNOWN"]
    assert put_manifest(srv.url, repo, sha256(child), child).status_code == 201
    assert put_manifest(srv.url, repo, "idx", idx, OCI_INDEX).status_code == 201


def test_manifest_blob_unknown_but_non_distributable_allowed(srv):
    repo = "man/blobs"
    cfg = b'{"a": 1}'
    cd = push_blob(srv.url, repo, cfg)
    missing = sha256(b"missing layer")
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": len(cfg)},
           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": missing, "size": 13}]}
    r = put_manifest(srv.url, repo, "t", json.dumps(doc).encode())
    assert r.status_code == 400 and error_codes(r) == ["MANIFEST_BLOB_UNKNOWN"]
    assert r.json()["errors"][0]["detail"]["digest"] == missing
    doc["layers"][0]["mediaType"] = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
    doc["layers"][0]["urls"] = ["https://example.invalid/layer"]
    r = put_manifest(srv.url, repo, "t", json.dumps(doc).encode())
    assert r.status_code == 201, r.text


def test_manifest_invalid_inputs(srv):
    repo = "man/invalid"
    for body in (b"not json", b"[]", b'{"schemaVersion": 1}',
                 json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": "x"}).encode()):
        r = put_manifest(srv.url, repo, "bad", body)
        assert r.status_code == 400 and error_codes(r) == ["MANIFEST_INVALID"], body
    good = image_manifest(srv.url, repo)
    r = put_manifest(srv.url, repo, "bad", good, DOCKER_MANIFEST)  # Content-Type != mediaType
    assert r.status_code == 400 and error_codes(r) == ["MANIFEST_INVALID"]
    r = requests.put(f"{srv.url}/v2/{repo}/manifests/x", data=b"{" + b" " * (5 << 20) + b"}",
                     headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 413


def test_artifact_manifest_with_subject_and_referrers(srv):
    repo = "man/artifacts"
    subject = image_manifest(srv.url, repo)
    sd = sha256(subject)
    assert put_manifest(srv.url, repo, sd, subject).status_code == 201
    empty = b"{}"
    refs = {}
    for kind in ("application/vnd.example.sbom.v1", "application/vnd.example.signature.v1"):
        body = image_manifest(srv.url, repo, layers=[os.urandom(50)], config=empty,
                              config_media_type="application/vnd.oci.empty.v1+json",
                              artifactType=kind, annotations={"kind": kind},
                              subject={"mediaType": OCI_MANIFEST, "digest": sd, "size": len(subject)})
        r = put_manifest(srv.url, repo, sha256(body), body)
        assert r.status_code == 201 and r.headers["OCI-Subject"] == sd
        refs[kind] = sha256(body)
    # An image (no artifactType) whose config type becomes the artifactType.
    img = image_manifest(srv.url, repo, config_media_type="application/vnd.example.config.v1+json",
                         subject={"mediaType": OCI_MANIFEST, "digest": sd, "size": len(subject)})
    assert put_manifest(srv.url, repo, sha256(img), img).status_code == 201
    r = requests.get(f"{srv.url}/v2/{repo}/referrers/{sd}")
    assert r.status_code == 200 and r.headers["Content-Type"] == OCI_INDEX
    assert "OCI-Filters-Applied" not in r.headers
    idx = r.json()
    assert idx["mediaType"] == OCI_INDEX and len(idx["manifests"]) == 3
    types = sorted(m["artifactType"] for m in idx["manifests"])
    assert types == sorted([*refs, "application/vnd.example.config.v1+json"])
    sbom = [m for m in idx["manifests"] if m["artifactType"] == "application/vnd.example.sbom.v1"][0]
    assert sbom["annotations"] == {"kind": "application/vnd.example.sbom.v1"} and sbom["digest"] == refs[sbom["artifactType"]]
    r = requests.get(f"{srv.url}/v2/{repo}/referrers/{sd}",
                     params={"artifactType": "application/vnd.example.signature.v1"})
    assert r.headers["OCI-Filters-Applied"] == "artifactType"
    assert [m["digest"] for m in r.json()["manifests"]] == [refs["application/vnd.example.signature.v1"]]
    # Deleting a referrer removes it from the list.
    assert requests.delete(f"{srv.url}/v2/{repo}/manifests/{refs['application/vnd.example.sbom.v1']}").status_code == 202
    assert len(requests.get(f"{srv.url}/v2/{repo}/referrers/{sd}").json()["manifests"]) == 2
    # Unknown subject: empty list, never 404; malformed digest: 400.
    r = requests.get(f"{srv.url}/v2/{repo}/referrers/{sha256(b'none')}")
    assert r.status_code == 200 and r.json()["manifests"] == []
    assert requests.get(f"{srv.url}/v2/{repo}/referrers/sha256:zz").status_code == 400


def test_subject_may_be_pushed_before_its_subject(srv):
    repo = "man/early"
    missing_subject = sha256(b"subject pushed later")
    body = image_manifest(srv.url, repo, artifactType="application/vnd.example.x",
                          subject={"mediaType": OCI_MANIFEST, "digest": missing_subject, "size": 10})
    r = put_manifest(srv.url, repo, sha256(body), body)
    assert r.status_code == 201 and r.headers["OCI-Subject"] == missing_subject


def test_push_with_tag_query_parameters(srv):
    body = image_manifest(srv.url, "man/multitag")
    r = requests.put(f"{srv.url}/v2/man/multitag/manifests/{sha256(body)}?tag=1.0&tag=1&tag=latest",
                     data=body, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 201
    assert r.headers["OCI-Tag"] == "1.0, 1, latest"
    assert requests.get(f"{srv.url}/v2/man/multitag/tags/list").json()["tags"] == ["1", "1.0", "latest"]


def test_manifest_delete_by_digest_and_tag(srv):
    repo = "man/delete"
    body = image_manifest(srv.url, repo)
    d = sha256(body)
    put_manifest(srv.url, repo, "a", body)
    put_manifest(srv.url, repo, "b", body)
    assert requests.delete(f"{srv.url}/v2/{repo}/manifests/a").status_code == 202
    assert requests.get(f"{srv.url}/v2/{repo}/manifests/a").status_code == 404
    assert requests.get(f"{srv.url}/v2/{repo}/manifests/b").status_code == 200
    assert requests.delete(f"{srv.url}/v2/{repo}/manifests/{d}").status_code == 202
    for ref in ("b", d):
        r = requests.get(f"{srv.url}/v2/{repo}/manifests/{ref}")
        assert r.status_code == 404 and error_codes(r) == ["MANIFEST_UNKNOWN"]
    assert requests.delete(f"{srv.url}/v2/{repo}/manifests/{d}").status_code == 404
    assert requests.delete(f"{srv.url}/v2/nosuchrepo/x/manifests/{d}").status_code == 404


# --- tags and catalog -----------------------------------------------------------------

def test_tags_list_pagination(srv):
    repo = "tags/page"
    body = image_manifest(srv.url, repo)
    names = ["b", "A", "a", "c1", "c10", "c2", "Z", "_x"]
    for t in names:
        assert put_manifest(srv.url, repo, t, body).status_code == 201
    want = sorted(names)
    assert requests.get(f"{srv.url}/v2/{repo}/tags/list").json()["tags"] == want
    r = requests.get(f"{srv.url}/v2/{repo}/tags/list?n=3")
    assert r.json()["tags"] == want[:3]
    assert r.headers["Link"] == f'</v2/{repo}/tags/list?last={want[2]}&n=3>; rel="next"'
    r = requests.get(f"{srv.url}/v2/{repo}/tags/list?n=3&last={want[2]}")
    assert r.json()["tags"] == want[3:6]
    r = requests.get(f"{srv.url}/v2/{repo}/tags/list?last={want[5]}")
    assert r.json()["tags"] == want[6:] and "Link" not in r.headers
    r = requests.get(f"{srv.url}/v2/{repo}/tags/list?n=0")
    assert r.json()["tags"] == [] and "Link" not in r.headers
    r = requests.get(f"{srv.url}/v2/{repo}/tags/list?n=100")
    assert r.json()["tags"] == want and "Link" not in r.headers
    r = requests.get(f"{srv.url}/v2/{repo}/tags/list?n=-1")
    assert r.status_code == 400 and error_codes(r) == ["PAGINATION_NUMBER_INVALID"]
    r = requests.get(f"{srv.url}/v2/tags/unknown/tags/list")
    assert r.status_code == 404 and error_codes(r) == ["NAME_UNKNOWN"]


def test_catalog_pagination(srv):
    for name in ("cat/zz", "cat/aa", "cat/mm/deep"):
        push_blob(srv.url, name, name.encode())
    repos = requests.get(f"{srv.url}/v2/_catalog").json()["repositories"]
    assert repos == sorted(repos) and {"cat/aa", "cat/mm/deep", "cat/zz"} <= set(repos)
    r = requests.get(f"{srv.url}/v2/_catalog?n=1&last=cat/aa")
    assert r.json()["repositories"] == ["cat/mm/deep"]
    assert r.headers["Link"] == '</v2/_catalog?last=cat%2Fmm%2Fdeep&n=1>; rel="next"'


def test_v1_search(srv):
    push_blob(srv.url, "searchable/thing", b"s")
    push_blob(srv.url, "other/searchable-two", b"t")
    r = requests.get(f"{srv.url}/v1/search", params={"q": "searchable"})
    assert r.status_code == 200
    body = r.json()
    names = [x["name"] for x in body["results"]]
    assert names == ["other/searchable-two", "searchable/thing"]
    assert body["num_results"] == 2 and body["query"] == "searchable"
    assert set(body["results"][0]) >= {"name", "description", "star_count", "is_official", "is_automated"}
    r = requests.get(f"{srv.url}/v1/search", params={"q": "searchable", "n": 1, "page": 2})
    assert [x["name"] for x in r.json()["results"]] == ["searchable/thing"]


# --- errors ---------------------------------------------------------------------------

def test_error_shapes(srv):
    cases = [
        ("GET", "/v2/UPPER/blobs/" + sha256(b"x"), 400, "NAME_INVALID"),
        ("GET", "/v2/a/blobs/sha256:short", 400, "DIGEST_INVALID"),
        ("GET", "/v2/a/blobs/md5:" + "0" * 32, 400, "DIGEST_INVALID"),
        ("GET", "/v2/a/manifests/" + sha256(b"none"), 404, "MANIFEST_UNKNOWN"),
        ("GET", "/v2/a/blobs/uploads/" + "0" * 32, 404, "BLOB_UPLOAD_UNKNOWN"),
        ("GET", "/v2/a/blobs/uploads/not-a-uuid", 404, "BLOB_UPLOAD_UNKNOWN"),
        ("PUT", "/v2/a/tags/list", 405, "UNSUPPORTED"),
        ("POST", "/v2/a/blobs/uploads/?digest=sha256:bad", 400, "DIGEST_INVALID"),
        ("POST", "/v2/a/blobs/uploads/?digest-algorithm=md5", 400, "DIGEST_INVALID"),
    ]
    for method, path, status, code in cases:
        r = requests.request(method, srv.url + path)
        assert r.status_code == status, (method, path, r.text)
        assert error_codes(r) == [code], (method, path)
        assert r.headers["Content-Type"].startswith("application/json")
