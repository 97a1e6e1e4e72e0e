"""Malformed input never yields a 500: hypothesis-generated names, references, digests,
ranges and headers thrown at a live server."""

from __future__ import annotations

import os
from urllib.parse import quote

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from regclient import push_blob, sha256

SETTINGS = settings(max_examples=150)  # health checks and deadline: tests/conftest.py
junk = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=80)
ascii_junk = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=60)
digestish = st.one_of(
    junk, ascii_junk,
    st.builds(lambda a, h: f"{a}:{h}", st.sampled_from(["sha256", "sha512", "md5", "SHA256", "", "sha256+x"]),
              st.text(alphabet="0123456789abcdefABCDEFxyz=-_", max_size=140)),
)


@pytest.fixture(scope="module")
def seeded(registry):
    data = os.urandom(1000)
    d = push_blob(registry.url, "fuzz/repo", data)
    return registry, d, len(data)


def _ok(r: requests.Response) -> None:
    assert r.status_code < 500, (r.request.method, r.request.url, r.status_code, r.text[:300])
    if r.status_code >= 400 and r.request.method != "HEAD" and r.content:
        assert "errors" in r.json()


@SETTINGS
@given(name=junk, ref=junk)
def test_fuzz_paths(seeded, name, ref):
    srv, _, _ = seeded
    n, rf = quote(name, safe="/"), quote(ref, safe="")
    for method, path in (("GET", f"/v2/{n}/manifests/{rf}"), ("HEAD", f"/v2/{n}/blobs/{rf}"),
                         ("GET", f"/v2/{n}/tags/list"), ("DELETE", f"/v2/{n}/manifests/{rf}"),
                         ("GET", f"/v2/{n}/referrers/{rf}"), ("PUT", f"/v2/{n}/manifests/{rf}"),
                         ("GET", f"/v2/{n}/blobs/uploads/{rf}"), ("PATCH", f"/v2/{n}/blobs/uploads/{rf}")):
        _ok(requests.request(method, srv.url + path, data=b"{}" if method in ("PUT", "PATCH") else None))


@SETTINGS
@given(digest=digestish, other=digestish)
def test_fuzz_digests(seeded, digest, other):
    srv, _, _ = seeded
    q = quote(digest, safe="")
    _ok(requests.get(f"{srv.url}/v2/fuzz/repo/blobs/{q}"))
    _ok(requests.post(f"{srv.url}/v2/fuzz/repo/blobs/uploads/", params={"digest": digest}, data=b"x"))
    _ok(requests.post(f"{srv.url}/v2/fuzz/repo/blobs/uploads/", params={"mount": digest, "from": other}))
    _ok(requests.post(f"{srv.url}/v2/fuzz/repo/blobs/uploads/", params={"digest-algorithm": digest}))
    _ok(requests.put(f"{srv.url}/v2/fuzz/repo/manifests/{q}", data=b'{"schemaVersion":2}'))
    _ok(requests.get(f"{srv.url}/v2/fuzz/repo/tags/list", params={"n": digest, "last": other}))
    _ok(requests.get(f"{srv.url}/v2/_catalog", params={"n": other}))
    _ok(requests.get(f"{srv.url}/v1/search", params={"q": digest, "n": other, "page": digest}))


@SETTINGS
@given(rng=st.one_of(junk, st.builds(lambda a, b: f"bytes={a}-{b}",
                                     st.one_of(st.just(""), st.integers(-5, 3000).map(str)),
                                     st.one_of(st.just(""), st.integers(-5, 3000).map(str)))))
def test_fuzz_ranges(seeded, rng):
    srv, d, size = seeded
    try:
        r = requests.get(f"{srv.url}/v2/fuzz/repo/blobs/{d}", headers={"Range": rng})
    except ValueError:  # requests refuses some header values itself
        return
    if not rng.isprintable() or rng != rng.strip():
        # aiohttp's parser may refuse control characters in a header outright: still a 4xx.
        assert r.status_code < 500
        return
    assert r.status_code in (200, 206, 416), (rng, r.status_code)
    if r.status_code == 206:
        start, end = map(int, r.headers["Content-Range"].split()[1].split("/")[0].split("-"))
        assert len(r.content) == end - start + 1 and 0 <= start <= end < size
    if r.status_code == 416:
        assert r.headers["Content-Range"] == f"bytes */{size}"


@SETTINGS
@given(content_range=junk, body=st.binary(max_size=64), ctype=junk)
def test_fuzz_upload_headers_and_manifests(seeded, content_range, body, ctype):
    srv, _, _ = seeded
    r = requests.post(f"{srv.url}/v2/fuzz/up/blobs/uploads/")
    loc = srv.url + r.headers["Location"]
    try:
        _ok(requests.patch(loc, data=body, headers={"Content-Range": content_range}))
        _ok(requests.put(loc, params={"digest": sha256(body)}, headers={"Content-Range": content_range}))
        _ok(requests.put(f"{srv.url}/v2/fuzz/up/manifests/t", data=body, headers={"Content-Type": ctype}))
    except ValueError:
        pass
    requests.delete(loc)
