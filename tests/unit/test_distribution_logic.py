"""Pure logic of the registry client and the pull/push service: no network, no engine."""

from __future__ import annotations

import base64
import json

import pytest

from dockyard.distribution.client.auth import (Credentials, decode_registry_auth, is_insecure, parse_challenges,
                                               registry_host)
from dockyard.distribution.client.registry import registry_error_text
from dockyard.engine.distribution import _pick_platform, progress, pull_reference
from dockyard.errors import InvalidParameter, NotFound


def _b64url(obj) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


def test_decode_registry_auth():
    assert decode_registry_auth(None).anonymous
    assert decode_registry_auth("e30=").anonymous  # "{}" as the CLI sends it
    c = decode_registry_auth(_b64url({"username": "alice", "password": "pw?>", "serveraddress": "h:5000"}))
    assert c == Credentials("alice", "pw?>")
    c = decode_registry_auth(_b64url({"auth": base64.b64encode(b"bob:se:cret").decode()}))
    assert (c.username, c.password) == ("bob", "se:cret")
    assert decode_registry_auth(_b64url({"username": "a", "identitytoken": "rt"})).identity_token == "rt"
    for bad in ("!!!", base64.urlsafe_b64encode(b"[1]").decode(), base64.urlsafe_b64encode(b"nope").decode()):
        with pytest.raises(InvalidParameter):
            decode_registry_auth(bad)


def test_registry_host_and_insecure():
    assert registry_host("127.0.0.1:5000") == "127.0.0.1:5000"
    assert registry_host("http://127.0.0.1:5000/v2/") == "127.0.0.1:5000"
    assert registry_host("https://index.docker.io/v1/") == "docker.io"
    assert registry_host("") == "docker.io"
    assert is_insecure("127.0.0.1:5000") and is_insecure("127.8.9.1") and is_insecure("localhost:1")
    assert is_insecure("[::1]:5000")
    assert not is_insecure("registry.example.com:5000") and not is_insecure("10.0.0.1:5000")


def test_parse_challenges():
    chs = parse_challenges(['Bearer realm="https://a/token",service="reg",scope="repository:x/y:pull,push"',
                            'Basic realm="r"'])
    assert chs[0].scheme == "bearer"
    assert chs[0].params == {"realm": "https://a/token", "service": "reg", "scope": "repository:x/y:pull,push"}
    assert chs[1].scheme == "basic" and chs[1].params == {"realm": "r"}
    assert parse_challenges(["Bearer realm=unquoted,service=\"s\""])[0].params == {"realm": "unquoted",
                                                                                 "service": "s"}


def test_registry_error_text():
    body = json.dumps({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]}).encode()
    assert registry_error_text(body) == "manifest unknown: manifest unknown"
    assert registry_error_text(b"<html>") == ""


def test_pull_reference():
    assert str(pull_reference("h:5000/a/b", "1")) == "h:5000/a/b:1"
    assert str(pull_reference("h:5000/a/b", None)) == "h:5000/a/b:latest"
    d = "sha256:" + "a" * 64
    assert str(pull_reference("h:5000/a/b", d)) == f"h:5000/a/b@{d}"
    assert str(pull_reference(f"h:5000/a/b:1@{d}", None)) == f"h:5000/a/b@{d}"
    assert str(pull_reference("h:5000/a/b:old", "new")) == "h:5000/a/b:new"
    for bad in (("", "1"), ("Bad/Name", None), ("h/a", "bad tag"), ("h/a", "sha256:abc")):
        with pytest.raises(InvalidParameter):
            pull_reference(*bad)


def test_pick_platform():
    idx = {"manifests": [
        {"digest": "sha256:arm", "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
        {"digest": "sha256:amd", "platform": {"os": "linux", "architecture": "amd64"}},
        {"digest": "sha256:win", "platform": {"os": "windows", "architecture": "amd64"}},
    ]}
    assert _pick_platform(idx, "linux/amd64", "x")["digest"] == "sha256:amd"
    assert _pick_platform(idx, "linux/arm/v7", "x")["digest"] == "sha256:arm"
    with pytest.raises(NotFound, match="no matching manifest for linux/s390x"):
        _pick_platform(idx, "linux/s390x", "x")


def test_progress_message_shape():
    m = progress("Downloading", "abc", 500, 1000)
    assert m["progressDetail"] == {"current": 500, "total": 1000} and m["id"] == "abc"
    assert m["progress"].startswith("[" + "=" * 24 + ">") and m["progress"].endswith("500B/1kB")
