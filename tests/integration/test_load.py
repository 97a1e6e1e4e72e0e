"""Many clients at once: every one is served, on the unix socket and on TCP.

The burst test freezes the engine (SIGSTOP) while hundreds of clients connect, as a
loaded engine would be slow to accept: with aiohttp's default backlog of 128 the
unix-socket connects beyond it fail at once with EAGAIN (what the docker CLI reported as
"resource temporarily unavailable"); with the kernel's somaxconn they all wait their turn.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import time

import pytest

BURST = 600


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ping_all(socks: list[socket.socket], timeout: float = 120) -> int:
    ok = 0
    for s in socks:
        s.setblocking(True)
        s.settimeout(timeout)
        s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
        if data.startswith(b"HTTP/1.1 200") and data.endswith(b"OK"):
            ok += 1
    return ok


@pytest.mark.skipif(int(open("/proc/sys/net/core/somaxconn").read()) < BURST, reason="somaxconn too small")
def test_a_burst_of_connections_waits_in_the_backlog(private_engine):
    port = _free_port()
    eng = private_engine(["-H", f"tcp://127.0.0.1:{port}"])
    unix: list[socket.socket] = []
    tcp: list[socket.socket] = []
    refused = 0
    os.kill(eng.proc.pid, signal.SIGSTOP)
    try:
        for _ in range(BURST):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.connect(eng.socket)
            except BlockingIOError:
                refused += 1
                s.close()
                continue
            unix.append(s)
        for _ in range(BURST):
            t = socket.socket()
            t.setblocking(False)
            assert t.connect_ex(("127.0.0.1", port)) in (0, errno.EINPROGRESS)
            tcp.append(t)
    finally:
        os.kill(eng.proc.pid, signal.SIGCONT)
    try:
        assert refused == 0
        assert _ping_all(unix) == BURST
        assert _ping_all(tcp) == BURST
    finally:
        for s in unix + tcp:
            s.close()


def test_concurrent_runs_all_served_on_unix_and_tcp(private_engine):
    """N `docker run --rm` at once per transport: each prints its token, no container is left."""
    port = _free_port()
    eng = private_engine(["-H", f"tcp://127.0.0.1:{port}"])
    n = 40
    for host in (f"unix://{eng.socket}", f"tcp://127.0.0.1:{port}"):
        env = dict(eng.docker_env, DOCKER_HOST=host)
        procs = [subprocess.Popen(["docker", "run", "--rm", "--network", "none", "busybox", "echo", f"tok{i}"],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(n)]
        deadline = time.monotonic() + 600
        for i, p in enumerate(procs):
            out, err = p.communicate(timeout=max(1, deadline - time.monotonic()))
            assert p.returncode == 0, err.decode()
            assert out.decode().strip() == f"tok{i}"
        left = subprocess.run(["docker", "ps", "-aq"], env=env, capture_output=True, text=True, check=True)
        assert left.stdout.split() == []
