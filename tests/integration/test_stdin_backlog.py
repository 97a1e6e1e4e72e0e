"""Input a process does not read yet never stalls its output (dockerd's behaviour).

A client sends 100 KB at once, more than a pipe or pty holds, to a process that
pauses, prints a line and then waits (for a file the test creates only once that
line arrived) before it reads its stdin.  dockerd relays each direction on its
own: the line comes through while the input waits, then all the input arrives.
Before the fix our monitor blocked writing the pty and relayed no output, so
this deadlocked (the test's generous waits then fail it).
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

pytestmark = pytest.mark.usefixtures("cleanup_containers")

PAYLOAD = (b"x" * 99 + b"\n") * 1000  # 100000 bytes in lines (a pty in canonical mode takes lines)
# The pause lets the input pile up in the monitor first (the old stall needed that; nothing
# here depends on it when things work).
SCRIPT = ("sleep 1; echo started; while [ ! -e /tmp/go ]; do sleep 0.05; done; "
          "echo reading; head -c 100000 | wc -c; echo finished")
WAIT = 120


class Collector:
    """Reads a hijacked socket in a thread; the test waits on what has arrived."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.cond = threading.Condition()
        self.eof = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                chunk = b""
            with self.cond:
                if not chunk:
                    self.eof = True
                else:
                    self.buf += chunk
                self.cond.notify_all()
            if not chunk:
                return

    def wait_for(self, needle: bytes) -> None:
        with self.cond:
            ok = self.cond.wait_for(lambda: needle in self.buf or self.eof, timeout=WAIT)
            assert ok and needle in self.buf, (needle, self.eof, self.buf[-300:])

    def wait_eof(self) -> bytes:
        with self.cond:
            assert self.cond.wait_for(lambda: self.eof, timeout=WAIT), self.buf[-300:]
            return self.buf


def send_in_background(sock: socket.socket) -> threading.Thread:
    """sendall may wait on backpressure: that must not hold the test's reading up."""
    def run() -> None:
        try:
            sock.sendall(PAYLOAD)
        except OSError:
            pass
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def released(client, container_id: str) -> None:
    client.api.exec_start(client.api.exec_create(container_id, ["touch", "/tmp/go"])["Id"])


def check_session(client, container_id: str, sock: socket.socket, tty: bool) -> None:
    sock.settimeout(None)
    out = Collector(sock)
    writer = send_in_background(sock)
    out.wait_for(b"started")  # output flows while 100 KB of input wait unread
    released(client, container_id)
    out.wait_for(b"finished")
    writer.join(WAIT)
    assert not writer.is_alive()
    text = out.buf
    # every byte of the input reached the process, after the output that came first
    assert b"100000" in text, text[-300:]
    assert text.index(b"started") < text.index(b"reading") < text.index(b"100000")
    if tty:
        assert b"\r\n100000\r\n" in text  # the terminal's line endings


@pytest.mark.parametrize("tty", [True, False], ids=["tty", "pipe"])
def test_exec_stdin_backlog_does_not_stall_output(client, tty):
    c = client.containers.run("busybox", "sleep 600", detach=True)
    eid = client.api.exec_create(c.id, ["sh", "-c", SCRIPT], stdin=True, tty=tty)["Id"]
    sock = client.api.exec_start(eid, tty=tty, socket=True)._sock
    try:
        check_session(client, c.id, sock, tty)
        deadline = time.time() + WAIT
        while client.api.exec_inspect(eid)["Running"] and time.time() < deadline:
            time.sleep(0.05)
        assert client.api.exec_inspect(eid)["ExitCode"] == 0
    finally:
        sock.close()


def test_attached_tty_container_stdin_backlog_does_not_stall_output(client):
    """`docker run -it`'s path: attached before start, the container's own pty."""
    cid = client.api.create_container("busybox", ["sh", "-c", SCRIPT], tty=True, stdin_open=True)["Id"]
    sock = client.api.attach_socket(cid, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})._sock
    try:
        client.api.start(cid)
        check_session(client, cid, sock, True)
        assert client.api.wait(cid, timeout=WAIT)["StatusCode"] == 0
    finally:
        sock.close()
