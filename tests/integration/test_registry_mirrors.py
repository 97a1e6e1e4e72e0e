"""registry-mirrors, insecure-registries and certs.d/<host:port>/ through docker pull/push.

Every registry here listens on the test engine's own bridge address (a host
address no other machine sees, and not loopback, which Docker always treats as
insecure): that is what lets a test CA in certs.d be checked for real.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests
import yaml

from engine_harness import EngineProcess, _free_subnet
from dockyard.testing.busybox import make_busybox_rootfs_tar

BUSYBOX = "busybox:latest"
DISTRIBUTION = "/usr/bin/docker-registry"


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _pki(d: Path, ip: str) -> dict[str, Path]:
    """A test CA, a server certificate for `ip` and a client certificate, all signed by the CA."""
    d.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=dockyard test CA",
             "-keyout", str(d / "ca.key"), "-out", str(d / "ca.crt"))
    for name, ext in (("server", f"subjectAltName=IP:{ip}\nextendedKeyUsage=serverAuth"),
                      ("client", "extendedKeyUsage=clientAuth")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                 "-keyout", str(d / f"{name}.key"), "-out", str(d / f"{name}.csr"))
        (d / f"{name}.ext").write_text(ext + "\n")
        _openssl("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.crt"), "-CAkey", str(d / "ca.key"),
                 "-CAcreateserial", "-days", "1", "-extfile", str(d / f"{name}.ext"), "-out", str(d / f"{name}.crt"))
    return {k: d / k for k in ("ca.crt", "server.crt", "server.key", "client.crt", "client.key")}


class Registries:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: list[subprocess.Popen] = []

    def start(self, args: list[str], url: str, verify) -> None:
        log = (self.root / f"reg{len(self.procs)}.log").open("wb")
        p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(p)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert p.poll() is None, f"registry exited: {args}"
            try:
                requests.get(url + "/v2/", timeout=2, verify=verify)
                return
            except requests.exceptions.SSLError:
                return  # up, wants a client certificate
            except requests.ConnectionError:
                time.sleep(0.1)
        raise AssertionError(f"registry at {url} did not answer")

    def dockyard(self, host: str, port: int, tls: dict[str, Path] | None = None) -> str:
        args = [sys.executable, "-m", "dockyard.cli", "registry", "--addr", f"{host}:{port}",
                "--root", tempfile.mkdtemp(dir=self.root)]
        if tls:
            args += ["--tls-cert", str(tls["server.crt"]), "--tls-key", str(tls["server.key"])]
        self.start(args, f"{'https' if tls else 'http'}://{host}:{port}", str(tls["ca.crt"]) if tls else False)
        return f"{host}:{port}"

    def distribution_mtls(self, host: str, port: int, tls: dict[str, Path]) -> str:
        """CNCF Distribution requiring a client certificate signed by the test CA."""
        cfg = {"version": 0.1, "storage": {"filesystem": {"rootdirectory": tempfile.mkdtemp(dir=self.root)}},
               "http": {"addr": f"{host}:{port}", "secret": "s",
                        "tls": {"certificate": str(tls["server.crt"]), "key": str(tls["server.key"]),
                                "clientcas": [str(tls["ca.crt"])]}}}
        path = self.root / f"dist{port}.yml"
        path.write_text(yaml.safe_dump(cfg))
        self.start([DISTRIBUTION, "serve", str(path)], f"https://{host}:{port}", str(tls["ca.crt"]))
        return f"{host}:{port}"

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


@pytest.fixture
def setup():
    root = Path(tempfile.mkdtemp(prefix="dyk-mirror-"))
    regs = Registries(root)
    engines: list[EngineProcess] = []

    def engine_with(make_cfg) -> tuple[EngineProcess, str, Path]:
        """An engine whose daemon.json is make_cfg(bridge ip); certs.d sits beside that file."""
        bip = _free_subnet()
        ip = bip.split("/")[0]
        conf = root / f"conf{len(engines)}"
        conf.mkdir()
        (conf / "daemon.json").write_text(json.dumps(make_cfg(ip)))
        eng = EngineProcess(bip=bip, extra_args=["--config-file", str(conf / "daemon.json")])
        engines.append(eng)
        eng.start()
        with tempfile.TemporaryDirectory() as td:
            tar = make_busybox_rootfs_tar(Path(td) / "rootfs.tar")
            eng.cli_ok("import", str(tar), BUSYBOX)
        return eng, ip, conf / "certs.d"

    yield regs, engine_with
    regs.stop()
    for e in engines:
        e.cleanup()
    shutil.rmtree(root, ignore_errors=True)


def test_tls_mirror_for_docker_hub_with_a_ca_from_certs_d_and_client_certificates(setup):
    regs, engine_with = setup
    port = _free_port("127.0.0.1")  # the bridge address exists once the engine runs
    eng, ip, certs_d = engine_with(lambda ip: {"registry-mirrors": [f"https://{ip}:{port}"]})
    pki = _pki(eng.root / "pki", ip)
    mirror = regs.dockyard(ip, port, pki)
    assert json.loads(eng.cli_ok("info", "--format", "{{json .RegistryConfig.Mirrors}}")) == [f"https://{mirror}/"]

    # Without the CA the mirror's certificate is refused (the bridge address is not an insecure registry)
    eng.cli_ok("tag", BUSYBOX, f"{mirror}/library/mirrored:1")
    r = eng.cli("push", f"{mirror}/library/mirrored:1")
    assert r.returncode != 0 and b"certificate" in (r.stdout + r.stderr).lower(), r.stdout + r.stderr

    (certs_d / mirror).mkdir(parents=True)
    shutil.copy(pki["ca.crt"], certs_d / mirror / "ca.crt")
    eng.cli_ok("push", f"{mirror}/library/mirrored:1")  # now trusted: certs.d is read at each operation
    eng.cli_ok("rmi", f"{mirror}/library/mirrored:1")

    # A Docker Hub reference goes to the mirror (no internet here: without a mirror it is a 400)
    out = eng.cli_ok("pull", "mirrored:1")
    assert "Downloaded newer image for mirrored:1" in out or "Image is up to date for mirrored:1" in out
    assert "mirrored:1" in eng.cli_ok("images", "--format", "{{.Repository}}:{{.Tag}}")
    assert eng.cli_ok("run", "--rm", "mirrored:1", "echo", "from-the-mirror").strip() == "from-the-mirror"
    # a name the mirror lacks: the mirror's answer, and Docker Hub itself is not contacted
    r = eng.cli("pull", "notonmirror:1")
    assert r.returncode != 0 and b"not contacted" in r.stderr, r.stderr

    # client certificates: a registry that demands one, and certs.d/<host:port>/client.cert + client.key
    mtls = regs.distribution_mtls(ip, _free_port(ip), pki)
    (certs_d / mtls).mkdir()
    shutil.copy(pki["ca.crt"], certs_d / mtls / "ca.crt")
    eng.cli_ok("tag", BUSYBOX, f"{mtls}/x/bb:1")
    r = eng.cli("push", f"{mtls}/x/bb:1")
    assert r.returncode != 0, "pushed to a registry requiring a client certificate without one"
    shutil.copy(pki["client.crt"], certs_d / mtls / "client.cert")
    shutil.copy(pki["client.key"], certs_d / mtls / "client.key")
    eng.cli_ok("push", f"{mtls}/x/bb:1")
    eng.cli_ok("rmi", f"{mtls}/x/bb:1")
    eng.cli_ok("pull", f"{mtls}/x/bb:1")


def test_plain_http_registry_through_an_insecure_cidr_and_sighup(setup):
    regs, engine_with = setup
    eng, ip, _ = engine_with(lambda ip: {"insecure-registries": [ip.rsplit(".", 1)[0] + ".0/24"]})
    reg = regs.dockyard(ip, _free_port(ip))  # plain HTTP on a non-loopback address
    info = json.loads(eng.cli_ok("info", "--format", "{{json .RegistryConfig}}"))
    assert ip.rsplit(".", 1)[0] + ".0/24" in info["InsecureRegistryCIDRs"]
    eng.cli_ok("tag", BUSYBOX, f"{reg}/x/plain:1")
    eng.cli_ok("push", f"{reg}/x/plain:1")
    eng.cli_ok("rmi", f"{reg}/x/plain:1")
    eng.cli_ok("pull", f"{reg}/x/plain:1")

    # an http:// mirror, added by SIGHUP
    conf = Path(eng.extra_args[1])
    conf.write_text(json.dumps({"insecure-registries": [ip.rsplit(".", 1)[0] + ".0/24"],
                                "registry-mirrors": [f"http://{reg}"]}))
    eng.cli_ok("tag", BUSYBOX, f"{reg}/library/plainmirror:2")
    eng.cli_ok("push", f"{reg}/library/plainmirror:2")
    eng.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 60
    while json.loads(eng.cli_ok("info", "--format", "{{json .RegistryConfig.Mirrors}}")) != [f"http://{reg}/"]:
        assert time.monotonic() < deadline, eng.log_tail()
        time.sleep(0.2)
    eng.cli_ok("pull", "plainmirror:2")

    # SIGHUP without the insecure entry: the plain-HTTP registry is no longer used
    conf.write_text(json.dumps({}))
    eng.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 60
    while json.loads(eng.cli_ok("info", "--format", "{{json .RegistryConfig.Mirrors}}")):
        assert time.monotonic() < deadline, eng.log_tail()
        time.sleep(0.2)
    r = eng.cli("pull", f"{reg}/x/plain:1")
    assert r.returncode != 0, "plain HTTP used for a registry that is no longer insecure"
