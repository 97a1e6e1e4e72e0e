"""Concurrent lifecycle calls on one container behave as with dockerd (found in review)."""

from __future__ import annotations

import socket
import threading
import time

import docker.errors
import pytest

pytestmark = pytest.mark.usefixtures("cleanup_containers")


def test_restart_of_an_auto_remove_container_restarts_it(client):
    c = client.containers.run("busybox", "sleep 300", detach=True, auto_remove=True, name="rm_restart")
    pid = client.api.inspect_container(c.id)["State"]["Pid"]
    c.restart(timeout=1)
    st = client.api.inspect_container(c.id)["State"]
    assert st["Running"] and st["Pid"] != pid


def test_two_concurrent_restarts_leave_it_running(client):
    c = client.containers.run("busybox", "sleep 300", detach=True)
    errors = []

    def restart():
        try:
            client.api.restart(c.id, timeout=1)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=restart) for _ in range(2)]
    [t.start() for t in threads]
    [t.join(60) for t in threads]
    assert not errors
    assert client.api.inspect_container(c.id)["State"]["Running"]


def test_remove_without_force_refuses_a_restarting_container(client):
    c = client.containers.run("busybox", ["sh", "-c", "exit 1"], detach=True, restart_policy={"Name": "always"})
    deadline = time.time() + 10
    while client.api.inspect_container(c.id)["State"]["Status"] != "restarting" and time.time() < deadline:
        time.sleep(0.01)
    with pytest.raises(docker.errors.APIError) as e:
        c.remove()
    msg = str(e.value)
    assert e.value.status_code == 409 and ("restarting" in msg or "running" in msg)
    c.remove(force=True)


def test_stop_a_container_waiting_out_its_backoff(client):
    c = client.containers.run("busybox", ["sh", "-c", "exit 1"], detach=True, restart_policy={"Name": "always"})
    time.sleep(1)
    c.stop(timeout=1)
    assert client.api.inspect_container(c.id)["State"]["Status"] == "exited"


def _attach(engine, cid: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX)
    s.connect(engine.socket)
    s.sendall(f"POST /containers/{cid}/attach?stream=1&stdout=1 HTTP/1.1\r\nHost: d\r\n"
              "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    return s


def test_attach_waiting_for_a_start_ends_when_the_container_is_removed(engine, client):
    c = client.containers.create("busybox", "true")
    s = _attach(engine, c.id)
    c.remove()
    s.settimeout(10)
    assert s.recv(100) == b""  # closed, not left hanging


def test_run_rm_removes_its_anonymous_volumes(engine, client):
    before = {v.name for v in client.volumes.list()}
    r = engine.cli("run", "--rm", "-v", "/scratch", "busybox", "true")
    assert r.returncode == 0, r.stderr
    time.sleep(0.3)
    assert {v.name for v in client.volumes.list()} == before
