"""The log daemon outlives running out of file descriptors (EMFILE at accept()).

A real logd process is started, then its RLIMIT_NOFILE is lowered from outside (prlimit) below
the descriptors it already holds: a client's connect still lands in the listen backlog, but
accept() fails with EMFILE.  The daemon must keep running, and answer once the limit is raised.
"""

from __future__ import annotations

import json
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest


def ask(sock_path: Path, req: dict, timeout: float = 30) -> dict:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(sock_path))
        s.sendall(json.dumps(req).encode() + b"\n")
        buf = b""
        while b"\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
    return json.loads(buf)


def wait_for(cond, timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.skipif(not hasattr(resource, "prlimit"), reason="needs prlimit(2)")
def test_logd_survives_emfile_at_accept_and_serves_again(tmp_path):
    data_root, exec_root = tmp_path / "data", tmp_path / "run"
    (data_root / "containers").mkdir(parents=True)
    exec_root.mkdir()
    log_path = tmp_path / "logd.log"
    sock = exec_root / "logd.sock"
    with open(log_path, "wb") as logf:
        proc = subprocess.Popen([sys.executable, "-m", "dockyard.cli", "logd", "--data-root", str(data_root),
                                 "--exec-root", str(exec_root)], stdout=logf, stderr=subprocess.STDOUT)
    try:
        def answers() -> bool:
            try:
                return ask(sock, {"op": "ping"}, timeout=5)["ok"]
            except OSError:
                return False

        wait_for(answers, what="logd to answer")
        soft, hard = resource.prlimit(proc.pid, resource.RLIMIT_NOFILE)
        # below the descriptors it holds (they stay open): no new one, whatever it holds right now
        resource.prlimit(proc.pid, resource.RLIMIT_NOFILE, (1, hard))
        try:
            waiting = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            waiting.settimeout(60)
            waiting.connect(str(sock))  # queued in the backlog; accept() there fails with EMFILE
            waiting.sendall(b'{"op": "ping"}\n')
            wait_for(lambda: b"cannot accept a request" in log_path.read_bytes(), what="an EMFILE at accept")
            # its look for unannounced spools (a directory listing) fails the same way, and is retried
            wait_for(lambda: b"cannot look for unfollowed logs" in log_path.read_bytes(), what="an EMFILE at rescan")
            assert proc.poll() is None, log_path.read_text()
        finally:
            resource.prlimit(proc.pid, resource.RLIMIT_NOFILE, (soft, hard))
        # the client that waited is answered, and new ones are too
        ans = json.loads(waiting.makefile("rb").readline())
        waiting.close()
        assert ans == {"ok": True, "pid": proc.pid}
        assert ask(sock, {"op": "ping"})["pid"] == proc.pid
        assert proc.poll() is None
        text = log_path.read_text()
        assert text.count("cannot accept a request") == 1 and "accepting requests again" in text, text
        assert ask(sock, {"op": "exit"}) == {"ok": True}
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
