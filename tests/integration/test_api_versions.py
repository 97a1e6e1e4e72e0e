"""dockerd 20.10's version range (1.12-1.50) and the endpoints only old versions have."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from test_system import raw

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def box(api, cleanup_containers):
    c = api.create_container("busybox", "sh -c 'mkdir -p /data/sub && echo hello > /data/sub/f && sleep 300'")
    api.start(c["Id"])
    api.exec_start(api.exec_create(c["Id"], "sh -c 'until [ -f /data/sub/f ]; do sleep 0.1; done'"))
    yield c["Id"]


def _copy(engine, version: str, cid: str, resource, headers=JSON):
    return raw(engine, "POST", f"{version}/containers/{cid}/copy",
               json.dumps({"Resource": resource}).encode(), headers)


def test_old_copy_endpoint_answers_a_tar(engine, box):
    status, h, body = _copy(engine, "/v1.23", box, "/data/sub")
    assert status == 200 and h["content-type"] == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(body)) as tf:
        assert sorted(tf.getnames()) == ["sub", "sub/f"]
        assert tf.extractfile("sub/f").read() == b"hello\n"
    status, _, body = _copy(engine, "/v1.12", box, "/data/sub/f")
    with tarfile.open(fileobj=io.BytesIO(body)) as tf:
        assert tf.getnames() == ["f"]


def test_old_copy_errors(engine, box):
    status, _, body = _copy(engine, "/v1.23", box, "/nope")
    assert status == 404
    assert json.loads(body)["message"] == f"Could not find the file /nope in container {box}"
    status, _, body = _copy(engine, "/v1.23", "no-such-container", "/data")
    assert (status, body) == (404, b"")
    status, _, body = _copy(engine, "/v1.23", box, "")
    assert status == 400 and json.loads(body)["message"] == "Path cannot be empty"
    status, _, body = _copy(engine, "/v1.23", box, "/data", {"Content-Type": "text/plain"})
    assert status == 400 and "must be 'application/json'" in json.loads(body)["message"]


@pytest.mark.parametrize("version", ["/v1.24", "/v1.50", ""])
def test_copy_is_gone_from_124(engine, box, version):
    status, _, body = _copy(engine, version, box, "/data")
    assert (status, body) == (404, b"")


def test_versions_range(engine):
    for v in ("1.12", "1.23", "1.24", "1.50"):
        assert raw(engine, "GET", f"/v{v}/containers/json")[0] == 200, v
    status, _, body = raw(engine, "GET", "/v1.51/containers/json")
    assert (status, json.loads(body)["message"]) == (
        400, "client version 1.51 is too new. Maximum supported API version is 1.50")
    status, _, body = raw(engine, "GET", "/v1.11/containers/json")
    assert status == 400 and "Minimum supported API version is 1.12" in json.loads(body)["message"]
