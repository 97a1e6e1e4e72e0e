"""The engine on TCP with TLS (and client certificates), next to its unix socket."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as Docker's docs make them."""
    d = tmp_path
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out", "ca.pem",
             "-days", "2", "-subj", "/CN=dockyard-test-ca", cwd=d)
    (d / "ext-server.cnf").write_text("subjectAltName = IP:127.0.0.1\nextendedKeyUsage = serverAuth\n")
    (d / "ext-client.cnf").write_text("extendedKeyUsage = clientAuth\n")
    for name, ext in (("server", "ext-server.cnf"), ("client", "ext-client.cnf")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}-key.pem", "-out", f"{name}.csr",
                 "-subj", f"/CN={name}", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
                 "-CAcreateserial", "-out", f"{name}-cert.pem", "-days", "2", "-extfile", ext, cwd=d)
    client = d / "client"
    client.mkdir()
    (client / "ca.pem").write_bytes((d / "ca.pem").read_bytes())
    (client / "cert.pem").write_bytes((d / "client-cert.pem").read_bytes())
    (client / "key.pem").write_bytes((d / "client-key.pem").read_bytes())
    return d


def test_tcp_tls_with_client_verification(private_engine, pki: Path):
    port = _free_port()
    eng = private_engine(["-H", f"tcp://127.0.0.1:{port}", "--tlsverify",
                          "--tlscacert", str(pki / "ca.pem"), "--tlscert", str(pki / "server-cert.pem"),
                          "--tlskey", str(pki / "server-key.pem")])
    env = dict(eng.docker_env)
    env.update(DOCKER_HOST=f"tcp://127.0.0.1:{port}", DOCKER_TLS_VERIFY="1",
               DOCKER_CERT_PATH=str(pki / "client"))
    r = subprocess.run(["docker", "run", "--rm", "busybox", "echo", "over-tls"], env=env,
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"over-tls\n", eng.log_tail()
    r = subprocess.run(["docker", "run", "-i", "--rm", "busybox", "sh", "-c", "cat; echo after-eof"],
                       env=env, input=b"piped over tls\n", capture_output=True, timeout=60)
    assert (r.returncode, r.stdout) == (0, b"piped over tls\nafter-eof\n"), r.stderr
    # the unix socket keeps working beside it
    assert eng.client().ping()
    # without a client certificate the TLS handshake is refused
    import ssl
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                tls.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
                if not tls.recv(100):
                    raise ConnectionResetError("closed")


def test_plain_tcp(private_engine):
    port = _free_port()
    eng = private_engine(["-H", f"tcp://127.0.0.1:{port}"])
    env = dict(eng.docker_env, DOCKER_HOST=f"tcp://127.0.0.1:{port}")
    r = subprocess.run(["docker", "version", "--format", "{{.Server.APIVersion}}"], env=env,
                       capture_output=True, timeout=30)
    assert r.returncode == 0 and r.stdout.strip() == b"1.50"


def test_tlsverify_without_a_ca_is_refused(tmp_path, pki: Path):
    """As dockerd: verifying clients needs a CA to verify them against."""
    from engine_harness import EngineProcess

    eng = EngineProcess(extra_args=["-H", f"tcp://127.0.0.1:{_free_port()}", "--tlsverify",
                                    "--tlscert", str(pki / "server-cert.pem"), "--tlskey", str(pki / "server-key.pem")])
    try:
        with pytest.raises(RuntimeError) as e:
            eng.start(timeout=10)
        assert "--tlscacert" in str(e.value)
    finally:
        eng.cleanup()
