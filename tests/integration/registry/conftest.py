"""Registry integration fixtures: a real `dockyard registry` subprocess per configuration,
on a free loopback port and a temp root, plus a moto S3 server and a busybox OCI layout."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import requests
import yaml

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError(f"server did not answer at {url}:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class RegistryServer:
    url: str
    host: str  # 127.0.0.1:PORT, for skopeo/docker references
    root: Path
    proc: subprocess.Popen
    log: Path
    config_path: Path | None

    def log_tail(self) -> str:
        return self.log.read_text()[-4000:]


@pytest.fixture(scope="session")
def registry_factory() -> Iterator[Callable[..., RegistryServer]]:
    """start(config: dict | None) -> a running server; all stopped at session end."""
    started: list[RegistryServer] = []
    tmp = Path(tempfile.mkdtemp(prefix="dockyard-registry-it-"))

    def start(config: dict[str, Any] | None = None, name: str = "reg") -> RegistryServer:
        d = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=tmp))
        root = d / "root"
        port = free_port()
        cfg_path = None
        args = [sys.executable, "-m", "dockyard.cli", "registry", "--addr", f"127.0.0.1:{port}",
                "--root", str(root), "--access-log"]
        if config is not None:
            cfg_path = d / "config.yaml"
            cfg_path.write_text(yaml.safe_dump(config))
            args += ["--config", str(cfg_path)]
        log = d / "server.log"
        proc = subprocess.Popen(args, stdout=log.open("wb"), stderr=subprocess.STDOUT)
        srv = RegistryServer(f"http://127.0.0.1:{port}", f"127.0.0.1:{port}", root, proc, log, cfg_path)
        started.append(srv)
        _wait_http(srv.url + "/v2/", proc, log)
        return srv

    yield start
    for s in started:
        _stop(s.proc)
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def registry(registry_factory) -> RegistryServer:
    """The default server: filesystem storage, no auth, deletes enabled."""
    return registry_factory(None, "default")


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """moto's S3 server in server mode on a loopback port."""
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="moto-", suffix=".log")[1])
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test")
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)
    try:
        _wait_http(f"http://127.0.0.1:{port}/", proc, log, timeout=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(proc)
        log.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def s3_registry(registry_factory, s3_server) -> RegistryServer:
    make_bucket(s3_server, "dockyard-it")
    cfg = {"storage": {"s3": {
        "bucket": "dockyard-it", "regionendpoint": s3_server, "region": "us-east-1",
        "accesskey": "test", "secretkey": "test"}, "delete": {"enabled": True},
        # Blobs stream through the registry here (its headers, ranges); redirects to the
        # bucket are tested in test_registry_fleet.py.
        "redirect": {"disable": True}}}
    return registry_factory(cfg, "s3")


def make_bucket(endpoint: str, bucket: str) -> None:
    """Distribution's S3 driver expects the bucket to exist; so does dockyard's."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
    try:
        s3.head_bucket(Bucket=bucket)
    except Exception:
        s3.create_bucket(Bucket=bucket)


# --- a busybox image as an OCI layout, built locally -------------------------------

def _sha(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


def build_oci_layout(dest: Path, extra_file: bytes | None = None, tag: str = "latest") -> dict[str, Any]:
    """An OCI image layout with one gzip layer holding /bin/busybox and /bin/sh."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tf:
        ti = tarfile.TarInfo("bin")
        ti.type, ti.mode = tarfile.DIRTYPE, 0o755
        tf.addfile(ti)
        tf.add("/bin/busybox", arcname="bin/busybox")
        ti = tarfile.TarInfo("bin/sh")
        ti.type, ti.linkname = tarfile.SYMTYPE, "busybox"
        tf.addfile(ti)
        if extra_file is not None:
            ti = tarfile.TarInfo("etc/extra")
            ti.size = len(extra_file)
            tf.addfile(ti, io.BytesIO(extra_file))
    raw_bytes = raw.getvalue()
    layer = gzip.compress(raw_bytes, mtime=0)
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [_sha(raw_bytes)]},
    }).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _sha(config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": _sha(layer),
                    "size": len(layer)}],
    }).encode()
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    for b in (layer, config, manifest):
        (blobs / _sha(b).split(":")[1]).write_bytes(b)
    (dest / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (dest / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": _sha(manifest),
        "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": tag}}]}))
    return {"layer": _sha(layer), "config": _sha(config), "manifest": _sha(manifest),
            "manifest_bytes": manifest, "layer_size": len(layer)}


@pytest.fixture(scope="session")
def busybox_layout(tmp_path_factory) -> tuple[Path, dict[str, Any]]:
    d = tmp_path_factory.mktemp("busybox-oci")
    return d, build_oci_layout(d)


def skopeo(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, text=True, timeout=timeout)
