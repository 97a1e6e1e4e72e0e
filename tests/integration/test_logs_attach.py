"""Logs (streams, follow, timestamps, tail, since/until, framing) and attach (hijack, TTY, detach keys)."""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import time

import pytest

from engine_harness import tmux, tmux_argv

pytestmark = pytest.mark.usefixtures("cleanup_containers")


def demux(raw: bytes) -> list[tuple[int, bytes]]:
    out = []
    while raw:
        assert len(raw) >= 8, raw
        stream, size = struct.unpack(">BxxxI", raw[:8])
        out.append((stream, raw[8:8 + size]))
        raw = raw[8 + size:]
    return out


def test_logs_streams_are_apart_and_framed(client):
    c = client.containers.run("busybox", ["sh", "-c", "echo o1; echo e1 >&2; echo o2"], detach=True)
    c.wait(timeout=10)
    resp = client.api._get(client.api._url("/containers/{0}/logs", c.id),
                           params={"stdout": 1, "stderr": 1})
    assert resp.headers["Content-Type"] == "application/vnd.docker.multiplexed-stream"
    frames = demux(resp.content)
    assert (1, b"o1\n") in frames and (2, b"e1\n") in frames and (1, b"o2\n") in frames
    assert [d for s, d in frames if s == 1] == [b"o1\n", b"o2\n"]
    assert c.logs(stdout=False, stderr=True) == b"e1\n"


def test_logs_tail_timestamps_since_until(client):
    c = client.containers.run("busybox", ["sh", "-c", "for i in 1 2 3 4 5; do echo l$i; done; sleep 1.2; echo late"],
                              detach=True)
    c.wait(timeout=10)
    assert c.logs(tail=2) == b"l5\nlate\n"
    assert c.logs(tail=0) == b""
    ts_lines = c.logs(timestamps=True).decode().splitlines()
    assert len(ts_lines) == 6
    stamp, text = ts_lines[0].split(" ", 1)
    assert text == "l1" and stamp.endswith("Z") and "T" in stamp
    # `since` after the first five lines keeps only the late one
    from datetime import datetime
    t_late = datetime.fromisoformat(ts_lines[-1].split(" ")[0].rstrip("Z")[:26]).timestamp()
    t_first = datetime.fromisoformat(ts_lines[0].split(" ")[0].rstrip("Z")[:26]).timestamp()
    # naive timestamps are UTC
    import calendar
    off = calendar.timegm(time.gmtime()) - time.mktime(time.gmtime())
    assert c.logs(since=int(t_first + off) + 1 if t_late - t_first > 1 else t_late + off - 0.1).endswith(b"late\n")
    until_out = c.logs(until=t_first + off + 0.5)
    assert b"late" not in until_out and b"l1\n" in until_out


def test_logs_follow_streams_new_lines(client):
    c = client.containers.run("busybox", ["sh", "-c", "echo a; sleep 0.5; echo b; sleep 0.5; echo c"],
                              detach=True)
    got = b"".join(c.logs(stream=True, follow=True))
    assert got == b"a\nb\nc\n"


def test_logs_cli_and_bad_params(engine, client):
    c = client.containers.run("busybox", ["sh", "-c", "echo x; echo y >&2"], detach=True)
    c.wait(timeout=10)
    r = engine.cli("logs", c.id)
    assert r.stdout == b"x\n" and r.stderr == b"y\n"
    resp = client.api._get(client.api._url("/containers/{0}/logs", c.id))
    assert resp.status_code == 400


def test_tty_logs_are_raw(client):
    c = client.containers.run("busybox", ["sh", "-c", "echo tty-out"], tty=True, detach=True)
    c.wait(timeout=10)
    resp = client.api._get(client.api._url("/containers/{0}/logs", c.id), params={"stdout": 1})
    assert resp.headers["Content-Type"] == "application/vnd.docker.raw-stream"
    assert resp.content == b"tty-out\r\n"


def _attach_raw(engine, cid: str, query: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX)
    s.connect(engine.socket)
    s.sendall(f"POST /v1.50/containers/{cid}/attach?{query} HTTP/1.1\r\nHost: d\r\n"
              "Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    assert b"Upgrade: tcp" in head
    return s


def _read_all(s: socket.socket, timeout: float = 10) -> bytes:
    s.settimeout(timeout)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk


def test_attach_hijack_stdin_stdout_stderr(engine, client):
    cid = client.api.create_container("busybox", ["sh", "-c", "read line; echo got:$line; echo err >&2"],
                                      stdin_open=True)["Id"]  # docker-py sets StdinOnce
    c = client.containers.get(cid)
    s = _attach_raw(engine, c.id, "stream=1&stdin=1&stdout=1&stderr=1")
    c.start()
    s.sendall(b"hello\n")
    s.shutdown(socket.SHUT_WR)
    frames = demux(_read_all(s))
    assert (1, b"got:hello\n") in frames and (2, b"err\n") in frames
    assert c.wait(timeout=10)["StatusCode"] == 0


def test_attach_logs_replay(engine, client):
    c = client.containers.run("busybox", ["sh", "-c", "echo before"], detach=True)
    c.wait(timeout=10)
    s = _attach_raw(engine, c.id, "logs=1&stream=0&stdout=1&stderr=1")
    assert demux(_read_all(s)) == [(1, b"before\n")]


def test_docker_start_attach_cli(engine, client):
    c = client.containers.create("busybox", ["sh", "-c", "echo started; exit 6"])
    r = engine.cli("start", "-a", c.id)
    assert r.returncode == 6 and r.stdout == b"started\n"


def test_docker_attach_to_running_and_resize(engine, client):
    c = client.containers.run("busybox", ["sh", "-c", "sleep 0.5; echo late-line; sleep 0.3"], detach=True)
    r = engine.cli("attach", c.id, timeout=20)
    assert b"late-line\n" in r.stdout
    t = client.containers.run("busybox", ["sh", "-c", "sleep 1; stty size"], tty=True, stdin_open=True,
                              detach=True)
    client.api.resize(t.id, height=33, width=101)
    t.wait(timeout=10)
    assert t.logs().strip() == b"33 101"
    import docker.errors
    with pytest.raises(docker.errors.APIError) as e:
        client.api.resize(c.id, height=10, width=10)  # not running any more
    assert e.value.status_code == 409


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")
def test_run_it_in_a_terminal_with_resize_and_detach(engine, client):
    """`docker run -it` in a real terminal (tmux): prompt, echo, window size, exit code, detach keys."""
    session = f"dyk{os.getpid()}"
    env = engine.docker_env
    envs = " ".join(f"{k}={v}" for k, v in (("DOCKER_HOST", env["DOCKER_HOST"]),
                                             ("DOCKER_CONFIG", env["DOCKER_CONFIG"])))
    subprocess.run(tmux_argv("new-session", "-d", "-s", session, "-x", "120", "-y", "40",
                      f"env {envs} docker run -it --name tty_it busybox sh; echo EXIT=$?; sleep 30"),
                   check=True)
    try:
        def screen() -> str:
            return tmux("capture-pane", "-p", "-t", session)

        deadline = time.time() + 60
        while "/ #" not in screen() and time.time() < deadline:
            time.sleep(0.1)
        tmux("send-keys", "-t", session, "stty size; tty; echo mark$((6*7))", "Enter")
        deadline = time.time() + 60
        while "mark42" not in screen() and time.time() < deadline:
            time.sleep(0.1)
        out = screen()
        assert "mark42" in out
        assert "40 120" in out or "39 120" in out, out  # tmux keeps a status line
        assert "/dev/pts/0" in out
        tmux("send-keys", "-t", session, "exit 3", "Enter")
        deadline = time.time() + 60
        while "EXIT=" not in screen() and time.time() < deadline:
            time.sleep(0.1)
        assert "EXIT=3" in screen()
    finally:
        subprocess.run(tmux_argv("kill-session", "-t", session), capture_output=True)
    # detach with ctrl-p ctrl-q leaves the container running
    session2 = session + "d"
    subprocess.run(tmux_argv("new-session", "-d", "-s", session2, "-x", "100", "-y", "30",
                      f"env {envs} docker run -it --name tty_detach busybox sh; echo DETACHED=$?; sleep 30"),
                   check=True)
    try:
        deadline = time.time() + 60
        while "/ #" not in tmux("capture-pane", "-p", "-t", session2) and time.time() < deadline:
            time.sleep(0.1)
        tmux("send-keys", "-t", session2, "C-p", "C-q")
        deadline = time.time() + 60
        while "DETACHED=" not in tmux("capture-pane", "-p", "-t", session2) and time.time() < deadline:
            time.sleep(0.1)
        assert "DETACHED=0" in tmux("capture-pane", "-p", "-t", session2)
        assert client.containers.get("tty_detach").status == "running"
    finally:
        subprocess.run(tmux_argv("kill-session", "-t", session2), capture_output=True)


def test_large_stdin_arrives_whole(engine, client):
    """Megabytes through `docker run -i` and `docker exec -i`: every byte, in order."""
    import hashlib
    import os as _os
    data = _os.urandom(3 * 1024 * 1024 + 123)
    digest = hashlib.sha256(data).hexdigest()
    r = engine.cli("run", "-i", "--rm", "busybox", "sh", "-c", "sha256sum | cut -d' ' -f1", input=data, timeout=120)
    assert r.stdout.decode().strip() == digest, r.stderr
    c = client.containers.run("busybox", "sleep 60", detach=True)
    r = engine.cli("exec", "-i", c.id, "sh", "-c", "wc -c", input=data, timeout=120)
    assert r.stdout.decode().strip() == str(len(data))
