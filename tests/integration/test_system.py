"""/_ping, /version, /info, version negotiation, error shapes — through real clients."""

from __future__ import annotations

import json
import socket

import pytest


def raw(engine, method: str, path: str, body: bytes = b"", headers: dict | None = None) -> tuple[int, dict, bytes]:
    """One HTTP/1.1 request on the engine's unix socket, without any client library."""
    s = socket.socket(socket.AF_UNIX)
    s.connect(engine.socket)
    hdrs = {"Host": "docker", "Content-Length": str(len(body)), "Connection": "close", **(headers or {})}
    s.sendall(f"{method} {path} HTTP/1.1\r\n".encode()
              + b"".join(f"{k}: {v}\r\n".encode() for k, v in hdrs.items()) + b"\r\n" + body)
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    h = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
    if h.get("transfer-encoding") == "chunked":
        out, buf = b"", rest
        while buf:
            size_s, _, buf = buf.partition(b"\r\n")
            size = int(size_s, 16)
            if size == 0:
                break
            out, buf = out + buf[:size], buf[size + 2:]
        rest = out
    return status, h, rest


def test_ping_headers(engine):
    for method in ("GET", "HEAD"):
        status, h, body = raw(engine, method, "/_ping")
        assert status == 200
        assert h["api-version"] == "1.50"
        assert h["ostype"] == "linux"
        assert h["docker-experimental"] == "false"
        if method == "GET":
            assert body == b"OK"


def test_version_negotiation(engine):
    assert raw(engine, "GET", "/v1.24/_ping")[0] == 200
    assert raw(engine, "GET", "/v1.41/version")[0] == 200
    status, h, body = raw(engine, "GET", "/v1.99/version")
    assert status == 400
    assert "client version 1.99 is too new" in json.loads(body)["message"]
    assert raw(engine, "GET", "/v1.12/version")[0] == 200  # dockerd 20.10's range starts at 1.12
    status, _, body = raw(engine, "GET", "/v1.11/version")
    assert status == 400
    assert json.loads(body)["message"] == ("client version 1.11 is too old. Minimum supported API version "
                                           "is 1.12, please upgrade your client to a newer version")


def test_version_and_cli(engine):
    r = engine.cli("version", "--format", "{{.Server.APIVersion}} {{.Server.MinAPIVersion}}")
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().split() == ["1.50", "1.12"]


def test_info_counts_are_true(engine, client, cleanup_containers):
    before = client.info()
    c = client.containers.run("busybox", "sleep 30", detach=True)
    try:
        info = client.info()
        assert info["Containers"] == before["Containers"] + 1
        assert info["ContainersRunning"] == before["ContainersRunning"] + 1
        assert info["Images"] >= 1
        assert info["Driver"] == "overlay2"
        assert info["DockerRootDir"] == str(engine.data_root)
        assert info["NCPU"] >= 1 and info["MemTotal"] > 0
        assert info["KernelVersion"]
    finally:
        c.remove(force=True)


@pytest.mark.parametrize("path,method,body,status", [
    ("/containers/create", "POST", b"{not json", 400),
    ("/containers/create", "POST", b"", 400),
    ("/containers/create", "POST", b'{"Image": ""}', 400),
    ("/containers/create?name=bad%20name", "POST", b'{"Image": "busybox", "Cmd": ["true"]}', 400),
    ("/containers/create", "POST", b'{"Image": "nosuchimage:1"}', 404),
    ("/containers/nosuch/json", "GET", b"", 404),
    ("/containers/nosuch/start", "POST", b"", 404),
    ("/containers/nosuch", "DELETE", b"", 404),
    ("/no/such/endpoint", "GET", b"", 404),
    ("/containers/json?filters=notjson", "GET", b"", 400),
    ("/containers/json?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D", "GET", b"", 400),
])
def test_errors_are_docker_shaped(engine, path, method, body, status):
    got, h, data = raw(engine, method, path, body, {"Content-Type": "application/json"})
    assert got == status, data
    assert h["content-type"].startswith("application/json")
    msg = json.loads(data)["message"]
    assert isinstance(msg, str) and msg


def test_version_names_the_real_runtime_and_monitor(engine):
    import subprocess
    r = engine.cli("version", "--format", "{{json .Server.Components}}")
    import json as _json
    comps = {c["Name"]: c for c in _json.loads(r.stdout)}
    runc = subprocess.run(["runc", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    assert comps["runc"]["Version"] and comps["runc"]["Version"] in runc
    assert comps["conmon"]["Version"]


def test_info_counts_every_image_as_images_all_lists_them(engine, client):
    """dockerd's Images is its whole image store, intermediate build images included."""
    import io
    dockerfile = b"FROM busybox\nRUN echo a > /a\nRUN echo b > /b\nLABEL x=count-images\n"
    img, _ = client.images.build(fileobj=io.BytesIO(dockerfile), tag="countme:1", rm=True)
    try:
        every = {i["Id"] for i in client.api.images(all=True)}
        top = {i["Id"] for i in client.api.images()}
        assert len(every) > len(top)  # the build left intermediate images
        assert client.info()["Images"] == len(every)
    finally:
        client.images.remove("countme:1")
