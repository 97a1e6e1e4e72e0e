"""docker pull / push / login through the engine against real registries on loopback.

Registries: `dockyard registry` (open, htpasswd Basic, token flow) and CNCF
Distribution 2.8 (Debian's docker-registry), each a subprocess on a free
loopback port with a temp root.  Clients: the docker CLI (with a temp
DOCKER_CONFIG per test, so logins never leak), docker-py, skopeo and raw HTTP.
"""

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
from typing import Any, Iterator

import pytest
import requests
import yaml

BUSYBOX = "busybox:latest"  # imported by the session fixture in conftest.py

DISTRIBUTION = "/usr/bin/docker-registry"

# The TLS registry's certificate is self-signed; our raw checks of it skip verification on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")


# ---------------------------------------------------------------- registries


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Registry:
    host: str
    proc: subprocess.Popen
    log: Path
    tls: bool = False

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def _wait(reg: Registry, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if reg.proc.poll() is not None:
            raise RuntimeError(f"registry exited:\n{reg.log_tail()}")
        try:
            requests.get(reg.url + "/v2/", timeout=1, verify=False)
            return
        except requests.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError(f"registry did not answer:\n{reg.log_tail()}")


@pytest.fixture(scope="module")
def registries() -> Iterator[Any]:
    """start(kind, config) -> Registry; kind is "dockyard" or "distribution"; all stopped at the end."""
    tmp = Path(tempfile.mkdtemp(prefix="dyk-pullpush-"))
    started: list[Registry] = []

    def start(kind: str = "dockyard", config: dict[str, Any] | None = None, tls: bool = False) -> Registry:
        d = Path(tempfile.mkdtemp(dir=tmp))
        port = _free_port()
        log = d / "log"
        if kind == "dockyard":
            args = [sys.executable, "-m", "dockyard.cli", "registry", "--addr", f"127.0.0.1:{port}",
                    "--root", str(d / "root")]
            if tls:  # a self-signed certificate: loopback registries are insecure, so it is not checked
                subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                                "-subj", "/CN=127.0.0.1", "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
                               check=True, capture_output=True)
                args += ["--tls-cert", str(d / "cert.pem"), "--tls-key", str(d / "key.pem")]
            if config is not None:
                (d / "config.yaml").write_text(yaml.safe_dump(config))
                args += ["--config", str(d / "config.yaml")]
        else:
            cfg = {"version": 0.1, "log": {"level": "info"},
                   "storage": {"filesystem": {"rootdirectory": str(d / "root")}, "delete": {"enabled": True}},
                   "http": {"addr": f"127.0.0.1:{port}", "secret": "test-secret"}}
            cfg.update(config or {})
            (d / "config.yml").write_text(yaml.safe_dump(cfg))
            args = [DISTRIBUTION, "serve", str(d / "config.yml")]
        proc = subprocess.Popen(args, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
        reg = Registry(f"127.0.0.1:{port}", proc, log, tls)
        started.append(reg)
        _wait(reg)
        return reg

    yield start
    for r in started:
        if r.proc.poll() is None:
            r.proc.send_signal(signal.SIGTERM)
            try:
                r.proc.wait(10)
            except subprocess.TimeoutExpired:
                r.proc.kill()
                r.proc.wait()
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def registry(registries) -> Registry:
    return registries("dockyard")


def _htpasswd(path: Path, user: str, password: str) -> str:
    out = subprocess.run(["htpasswd", "-Bbn", user, password], capture_output=True, text=True, check=True).stdout
    path.write_text(out.strip() + "\n")
    return str(path)


# ---------------------------------------------------------------- docker CLI with its own config


class Docker:
    """The docker CLI against the session engine, with a DOCKER_CONFIG of its own."""

    def __init__(self, engine, config_dir: Path) -> None:
        self.engine = engine
        self.env = dict(engine.docker_env, DOCKER_CONFIG=str(config_dir))

    def __call__(self, *args: str, input: bytes | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        # No terminal and no stdin: a 401 on pull makes the CLI offer a login prompt, which must not wait.
        return subprocess.run(["docker", *args], env=self.env, input=input, capture_output=True, timeout=timeout,
                              **({} if input is not None else {"stdin": subprocess.DEVNULL}))

    def ok(self, *args: str, input: bytes | None = None) -> str:
        r = self(*args, input=input)
        assert r.returncode == 0, f"docker {' '.join(args)}: {r.stderr.decode()}\n{self.engine.log_tail()}"
        return r.stdout.decode()

    def inspect(self, name: str) -> dict[str, Any]:
        return json.loads(self.ok("image", "inspect", name))[0]


@pytest.fixture
def docker(engine, tmp_path) -> Docker:
    d = tmp_path / "docker-config"
    d.mkdir()
    return Docker(engine, d)


@pytest.fixture
def remove_images(engine):
    """rmi, after the test, the images the test names (ignoring missing ones)."""
    names: list[str] = []
    yield names
    api = engine.api()
    for n in names:
        try:
            api.remove_image(n, force=True)
        except Exception:
            pass


def _busybox_id(docker: Docker) -> str:
    return docker.inspect(BUSYBOX)["Id"]


# ---------------------------------------------------------------- push, pull, run


def test_push_rmi_pull_run(docker, registry, remove_images):
    ref = f"{registry.host}/x/busybox:1"
    remove_images.append(ref)
    docker.ok("tag", BUSYBOX, ref)
    out = docker.ok("push", ref)
    assert f"The push refers to repository [{registry.host}/x/busybox]" in out
    assert "Pushed" in out
    assert "1: digest: sha256:" in out and " size: " in out
    digest = out.split("1: digest: ")[1].split()[0]
    image_id = _busybox_id(docker)
    assert f"{registry.host}/x/busybox@{digest}" in docker.inspect(ref)["RepoDigests"]
    # The registry holds a Docker schema2 manifest with gzip layers under that digest.
    r = requests.get(f"{registry.url}/v2/x/busybox/manifests/1",
                     headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == digest.split(":")[1]
    man = r.json()
    assert man["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert man["config"]["digest"] == image_id
    layer = requests.get(f"{registry.url}/v2/x/busybox/blobs/{man['layers'][0]['digest']}").content
    assert layer[:2] == b"\x1f\x8b" and man["layers"][0]["mediaType"].endswith("tar.gzip")

    docker.ok("rmi", ref)
    assert docker(("image"), "inspect", ref).returncode != 0
    out = docker.ok("pull", ref)
    assert "1: Pulling from x/busybox" in out
    assert f"Digest: {digest}" in out
    assert f"Status: Image is up to date for {ref}" in out or f"Status: Downloaded newer image for {ref}" in out
    info = docker.inspect(ref)
    assert info["Id"] == image_id
    assert f"{registry.host}/x/busybox@{digest}" in info["RepoDigests"]
    assert docker.ok("run", "--rm", ref, "echo", "pulled and running").strip() == "pulled and running"
    out = docker.ok("pull", ref)
    assert f"Status: Image is up to date for {ref}" in out


def test_pull_into_empty_store_downloads_and_runs(engine, registry, private_engine):
    """A second engine with no copy of the layer pulls what the first pushed: the layer travels."""
    ref = f"{registry.host}/fresh/busybox:v1"
    r = engine.cli("tag", BUSYBOX, ref)
    assert r.returncode == 0
    r = engine.cli("push", ref)
    assert r.returncode == 0, r.stderr.decode()
    other = private_engine()
    other.cli("rmi", BUSYBOX, check=True)
    r = other.cli("pull", ref)
    assert r.returncode == 0, r.stderr.decode() + other.log_tail()
    out = r.stdout.decode()
    assert "Pulling fs layer" in out and "Pull complete" in out and f"Downloaded newer image for {ref}" in out
    assert other.cli("image", "inspect", "-f", "{{.Id}}", ref).stdout == \
        engine.cli("image", "inspect", "-f", "{{.Id}}", ref).stdout
    r = other.cli("run", "--rm", ref, "sh", "-c", "echo $((6*7))")
    assert r.returncode == 0 and r.stdout.decode().strip() == "42", r.stderr.decode()
    engine.cli("rmi", ref)


def test_second_push_reuses_layers(docker, registry, remove_images):
    ref = f"{registry.host}/again/busybox:a"
    remove_images.append(ref)
    docker.ok("tag", BUSYBOX, ref)
    first = docker.ok("push", ref)
    second = docker.ok("push", ref)
    assert "Layer already exists" in second and "Pushed" not in second
    assert first.split("a: digest: ")[1].split()[0] == second.split("a: digest: ")[1].split()[0]
    # Another repository of the same registry: the blob is mounted, not uploaded again.
    ref2 = f"{registry.host}/other/busybox:b"
    remove_images.append(ref2)
    docker.ok("tag", BUSYBOX, ref2)
    out = docker.ok("push", ref2)
    assert "Mounted from again/busybox" in out or "Layer already exists" in out, out


def test_push_aux_and_events_through_docker_py(engine, registry, remove_images):
    api = engine.api()
    ref = f"{registry.host}/py/busybox"
    remove_images.append(ref + ":p")
    api.tag(BUSYBOX, ref, "p")
    msgs = list(api.push(ref, tag="p", stream=True, decode=True))
    assert not [m for m in msgs if "error" in m], msgs
    aux = [m["aux"] for m in msgs if "aux" in m]
    assert aux and aux[0]["Tag"] == "p" and aux[0]["Digest"].startswith("sha256:") and aux[0]["Size"] > 0
    msgs = list(api.pull(ref, tag="p", stream=True, decode=True))
    assert msgs[0]["status"] == "Pulling from py/busybox" and msgs[0]["id"] == "p"
    assert msgs[-1]["status"] == f"Status: Image is up to date for {ref}:p"
    # No tag: every local tag of the repository goes (docker push --all-tags).
    remove_images.append(ref + ":q")
    api.tag(BUSYBOX, ref, "q")
    msgs = list(api.push(ref, stream=True, decode=True))
    assert sorted(m["aux"]["Tag"] for m in msgs if "aux" in m) == ["p", "q"], msgs
    r = requests.get(f"{registry.url}/v2/py/busybox/tags/list")
    assert sorted(r.json()["tags"]) == ["p", "q"]


def test_pull_by_digest(docker, registry, remove_images):
    ref = f"{registry.host}/bydigest/busybox:1"
    docker.ok("tag", BUSYBOX, ref)
    out = docker.ok("push", ref)
    digest = out.split("1: digest: ")[1].split()[0]
    docker.ok("rmi", ref)
    by_digest = f"{registry.host}/bydigest/busybox@{digest}"
    remove_images.append(by_digest)
    out = docker.ok("pull", by_digest)
    assert f"Digest: {digest}" in out and f"for {by_digest}" in out
    info = docker.inspect(by_digest)
    assert info["Id"] == _busybox_id(docker)
    assert by_digest in info["RepoDigests"]
    assert not [t for t in info["RepoTags"] if "bydigest" in t]
    # A digest that is not in the registry.
    missing = f"{registry.host}/bydigest/busybox@sha256:{'0' * 64}"
    r = docker("pull", missing)
    assert r.returncode == 1 and "not found" in r.stderr.decode()


def test_pull_missing_tag_and_repo(docker, registry):
    r = docker("pull", f"{registry.host}/x/busybox:no-such-tag")
    assert r.returncode == 1
    err = r.stderr.decode()
    assert "manifest for" in err and "no-such-tag" in err and "not found" in err, err
    r = docker("pull", f"{registry.host}/no/such/repo:1")
    assert r.returncode == 1 and "not found" in r.stderr.decode()


def test_pull_push_errors_are_4xx(engine, registry):
    api = engine.api()
    url = api._url("/images/create")
    r = api._post(url, params={"fromImage": "Bad/Name", "tag": "1"})
    assert r.status_code == 400 and "lowercase" in r.json()["message"]
    r = api._post(url, params={"fromImage": f"{registry.host}/x/busybox", "tag": "bad tag!"})
    assert r.status_code == 400 and r.json()["message"]
    r = api._post(url, params={"fromImage": f"{registry.host}/x/nothing", "tag": "1"})
    assert r.status_code == 404 and "not found" in r.json()["message"]
    r = api._post(url, params={"fromImage": f"{registry.host}/x/busybox", "tag": "1"},
                  headers={"X-Registry-Auth": "!!not base64 json!!"})
    assert r.status_code == 400 and "X-Registry-Auth" in r.json()["message"]
    r = api._post(url, params={"fromImage": f"{registry.host}/x/busybox", "platform": "windows/amd64"})
    assert r.status_code == 400
    r = api._post(url, params={"fromImage": "busybox", "tag": "latest"})  # Docker Hub: never contacted
    assert r.status_code == 400 and "Docker Hub" in r.json()["message"]
    r = api._post(api._url("/images/{0}/push", f"{registry.host}/never/tagged"), params={"tag": "1"})
    assert r.status_code == 404 and "does not exist locally" in r.json()["message"]
    r = api._post(api._url("/images/{0}/push", "Bad:Name:x"))
    assert r.status_code == 400
    # A registry that is not there: a clear error, not a hang or a 500.
    r = api._post(url, params={"fromImage": f"127.0.0.1:{_free_port()}/x/y", "tag": "1"})
    assert r.status_code == 503 and "connect" in r.json()["message"].lower()
    r = api._post(api._url("/auth"), data="not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400


# ---------------------------------------------------------------- login


def _login_flow(docker: Docker, reg: Registry, remove_images: list[str], repo: str,
                identity_token: bool = False) -> None:
    ref = f"{reg.host}/{repo}:1"
    remove_images.append(ref)
    docker.ok("tag", BUSYBOX, ref)
    r = docker("push", ref)
    assert r.returncode == 1
    err = r.stderr.decode() + r.stdout.decode()
    assert "unauthorized" in err.lower() or "no basic auth credentials" in err, err

    r = docker("login", "-u", "alice", "--password-stdin", reg.host, input=b"wrong")
    assert r.returncode == 1
    assert "401" in r.stderr.decode() or "unauthorized" in r.stderr.decode().lower(), r.stderr.decode()

    out = docker.ok("login", "-u", "alice", "--password-stdin", reg.host, input=b"wonderland")
    assert "Login Succeeded" in out
    auths = json.loads((Path(docker.env["DOCKER_CONFIG"]) / "config.json").read_text())["auths"]
    assert reg.host in auths
    # A token server that hands out refresh tokens: the CLI keeps that instead of the password.
    assert bool(auths[reg.host].get("identitytoken")) == identity_token, auths

    out = docker.ok("push", ref)
    assert "1: digest: sha256:" in out
    docker.ok("rmi", ref)
    out = docker.ok("pull", ref)
    assert f"for {ref}" in out
    assert docker.inspect(ref)["Id"] == _busybox_id(docker)

    docker.ok("logout", reg.host)
    docker.ok("rmi", ref)
    # The engine answers 401, so the CLI offers "Login prior to pull": an empty username ends it.
    r = docker("pull", ref, input=b"\n")
    assert r.returncode == 1 and "Login prior to pull" in r.stdout.decode(), r.stdout.decode()
    api = docker.engine.api()
    resp = api._post(api._url("/images/create"), params={"fromImage": f"{reg.host}/{repo}", "tag": "1"})
    assert resp.status_code == 401, resp.text
    msg = resp.json()["message"]
    assert "unauthorized" in msg.lower() or "no basic auth credentials" in msg, msg


def test_login_basic_htpasswd(docker, registries, tmp_path, remove_images):
    pw = _htpasswd(tmp_path / "htpasswd", "alice", "wonderland")
    reg = registries("dockyard", {"auth": {"htpasswd": {"path": pw, "realm": "it-realm"}}})
    _login_flow(docker, reg, remove_images, "basic/busybox")


def test_login_token_flow(docker, registries, tmp_path, remove_images):
    pw = _htpasswd(tmp_path / "htpasswd", "alice", "wonderland")
    reg = registries("dockyard", {"auth": {
        "token": {"htpasswd": pw, "service": "it-service", "issuer": "it-issuer"},
        "access": [{"account": "alice", "repository": "*", "actions": ["pull", "push"]}],
    }})
    _login_flow(docker, reg, remove_images, "tok/busybox", identity_token=True)


def test_login_api_answers(engine, registry, registries, tmp_path):
    api = engine.api()
    r = api._post_json(api._url("/auth"), data={"username": "", "password": "", "serveraddress": registry.host})
    assert r.status_code == 200 and r.json()["Status"] == "Login Succeeded"  # an open registry
    pw = _htpasswd(tmp_path / "htpasswd", "alice", "wonderland")
    reg = registries("dockyard", {"auth": {"htpasswd": {"path": pw, "realm": "r"}}})
    r = api._post_json(api._url("/auth"), data={"username": "alice", "password": "nope",
                                                "serveraddress": f"http://{reg.host}/v2/"})
    assert r.status_code == 401 and "401" in r.json()["message"]
    r = api._post_json(api._url("/auth"), data={"username": "alice", "password": "wonderland",
                                                "serveraddress": reg.host})
    assert r.status_code == 200 and r.json() == {"Status": "Login Succeeded", "IdentityToken": ""}


# ---------------------------------------------------------------- images made by others


def _sha(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


def _tar(files: dict[str, bytes], dirs: tuple[str, ...] = ()) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for d in dirs:
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, 1_700_000_000
            tf.addfile(ti)
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(data), 0o755, 1_700_000_000
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _compress(data: bytes, kind: str) -> tuple[bytes, str]:
    if kind == "gzip":
        return gzip.compress(data, mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip"
    if kind == "zstd":
        out = subprocess.run(["zstd", "-q", "-c"], input=data, capture_output=True, check=True).stdout
        return out, "application/vnd.oci.image.layer.v1.tar+zstd"
    return data, "application/vnd.oci.image.layer.v1.tar"


def _oci_layout(dest: Path, arch_variants: bool = False, compression: str = "gzip") -> dict[str, Any]:
    """A three-layer busybox image (gzip layers, a whiteout in the top one) as an OCI layout.

    With arch_variants the layout holds an index of linux/amd64 and linux/arm64 images;
    compression is "gzip", "zstd" or "none".
    """
    busybox = Path("/bin/busybox").read_bytes()
    raw_layers = [
        _tar({"bin/busybox": busybox}, ("bin",)),
        _tar({"etc/greeting": b"hello from layer two\n", "etc/doomed": b"x"}, ("etc",)),
        _tar({"etc/.wh.doomed": b"", "etc/greeting2": b"and layer three\n"}, ("etc",)),
    ]
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def put(b: bytes) -> str:
        d = _sha(b)
        (blobs / d[7:]).write_bytes(b)
        return d

    def image(arch: str) -> tuple[str, int]:
        gz = [_compress(l, compression) for l in raw_layers]
        config = json.dumps({
            "architecture": arch, "os": "linux", "created": "2024-01-01T00:00:00Z",
            "config": {"Cmd": ["/bin/busybox", "cat", "/etc/greeting"], "Env": [f"ARCH={arch}"]},
            "rootfs": {"type": "layers", "diff_ids": [_sha(l) for l in raw_layers]},
            "history": [{"created_by": f"layer {i}"} for i in range(3)],
        }).encode()
        man = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(config),
                       "size": len(config)},
            "layers": [{"mediaType": mt, "digest": put(g), "size": len(g)} for g, mt in gz],
        }).encode()
        return put(man), len(man)

    amd = image("amd64")
    if arch_variants:
        arm = image("arm64")
        idx = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                          "manifests": [
                              {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": arm[0],
                               "size": arm[1], "platform": {"os": "linux", "architecture": "arm64"}},
                              {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": amd[0],
                               "size": amd[1], "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
        top = {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": put(idx), "size": len(idx)}
    else:
        top = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": amd[0], "size": amd[1]}
    top["annotations"] = {"org.opencontainers.image.ref.name": "latest"}
    (dest / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (dest / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top]}))
    return {"top": top["digest"], "amd64": amd[0]}


def _skopeo(*args: str) -> None:
    r = subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def _upload_layout(reg: Registry, layout: Path, repo: str, tag: str) -> None:
    """Raw HTTP: every blob of an OCI layout, then its manifest, exactly as they are."""
    top = json.loads((layout / "index.json").read_text())["manifests"][0]
    for blob in sorted((layout / "blobs" / "sha256").iterdir()):
        if "sha256:" + blob.name == top["digest"]:
            continue
        r = requests.post(f"{reg.url}/v2/{repo}/blobs/uploads/")
        assert r.status_code == 202, r.text
        loc = requests.compat.urljoin(reg.url, r.headers["Location"])
        r = requests.put(loc + ("&" if "?" in loc else "?") + f"digest=sha256:{blob.name}", data=blob.read_bytes(),
                         headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 201, r.text
    body = (layout / "blobs" / "sha256" / top["digest"][7:]).read_bytes()
    r = requests.put(f"{reg.url}/v2/{repo}/manifests/{tag}", data=body, headers={"Content-Type": top["mediaType"]})
    assert r.status_code == 201, r.text


def _check_three_layer_image(docker: Docker, ref: str) -> None:
    info = docker.inspect(ref)
    assert len(info["RootFS"]["Layers"]) == 3 and info["Architecture"] == "amd64"
    out = docker.ok("run", "--rm", ref)
    assert out == "hello from layer two\n"
    out = docker.ok("run", "--rm", ref, "/bin/busybox", "sh", "-c",
                    "cat /etc/greeting2; test -e /etc/doomed && echo doomed-visible || echo whited-out")
    assert out == "and layer three\nwhited-out\n"


def test_pull_skopeo_copied_multilayer_oci(docker, registry, tmp_path, remove_images):
    info = _oci_layout(tmp_path / "layout")
    ref = f"{registry.host}/skopeo/multi:latest"
    remove_images.append(ref)
    _skopeo("copy", "--dest-tls-verify=false", f"oci:{tmp_path / 'layout'}:latest", f"docker://{ref}")
    out = docker.ok("pull", ref)
    assert out.count("Pull complete") == 3, out
    assert f"Digest: {info['top']}" in out
    _check_three_layer_image(docker, ref)
    # Pushing it back elsewhere reuses the pulled gzip blobs (same registry: mounted or present).
    ref2 = f"{registry.host}/skopeo/copy:1"
    remove_images.append(ref2)
    docker.ok("tag", ref, ref2)
    out = docker.ok("push", ref2)
    assert out.count("Mounted from skopeo/multi") == 3, out


def test_pull_index_picks_linux_amd64(docker, registry, tmp_path, remove_images):
    info = _oci_layout(tmp_path / "layout", arch_variants=True)
    ref = f"{registry.host}/skopeo/index:latest"
    remove_images.append(ref)
    _skopeo("copy", "--all", "--dest-tls-verify=false", f"oci:{tmp_path / 'layout'}:latest", f"docker://{ref}")
    out = docker.ok("pull", ref)
    assert f"Digest: {info['top']}" in out  # the index digest is the repo digest, as in Docker
    img = docker.inspect(ref)
    assert img["Architecture"] == "amd64" and "ARCH=amd64" in img["Config"]["Env"]
    assert f"{registry.host}/skopeo/index@{info['top']}" in img["RepoDigests"]
    r = docker("pull", "--platform", "linux/s390x", ref)
    assert r.returncode == 1 and "no matching manifest" in r.stderr.decode()


@pytest.mark.skipif(shutil.which("zstd") is None, reason="zstd not installed")
def test_pull_zstd_and_uncompressed_layers(docker, registry, tmp_path, remove_images):
    for kind in ("zstd", "none"):
        _oci_layout(tmp_path / kind, compression=kind)
        repo = f"comp/{kind}"
        ref = f"{registry.host}/{repo}:1"
        remove_images.append(ref)
        _upload_layout(registry, tmp_path / kind, repo, "1")  # skopeo would recompress to gzip
        man = requests.get(f"{registry.url}/v2/{repo}/manifests/1",
                           headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}).json()
        want = "tar+zstd" if kind == "zstd" else ".tar"
        assert all(l["mediaType"].endswith(want) for l in man["layers"]), man
        docker.ok("pull", ref)
        _check_three_layer_image(docker, ref)
    # Same DiffIDs whatever the compression: one image ID, layers stored once.
    assert docker.inspect(f"{registry.host}/comp/zstd:1")["Id"] == docker.inspect(f"{registry.host}/comp/none:1")["Id"]


# ---------------------------------------------------------------- CNCF Distribution 2.8


@pytest.mark.skipif(not os.path.exists(DISTRIBUTION), reason="docker-registry (Distribution) not installed")
def test_distribution_registry_push_pull(docker, registries, tmp_path, remove_images):
    reg = registries("distribution")
    ref = f"{reg.host}/dist/busybox:2.8"
    remove_images.append(ref)
    docker.ok("tag", BUSYBOX, ref)
    out = docker.ok("push", ref)
    assert "Pushed" in out and "2.8: digest: sha256:" in out, out
    assert "Layer already exists" in docker.ok("push", ref)
    docker.ok("rmi", ref)
    out = docker.ok("pull", ref)
    assert f"for {ref}" in out
    assert docker.inspect(ref)["Id"] == _busybox_id(docker)
    # An image skopeo put there (OCI manifest, three gzip layers).
    _oci_layout(tmp_path / "layout")
    ref2 = f"{reg.host}/dist/multi:1"
    remove_images.append(ref2)
    _skopeo("copy", "--dest-tls-verify=false", f"oci:{tmp_path / 'layout'}:latest", f"docker://{ref2}")
    docker.ok("pull", ref2)
    _check_three_layer_image(docker, ref2)
    r = docker("pull", f"{reg.host}/dist/busybox:missing")
    assert r.returncode == 1 and "not found" in r.stderr.decode()


@pytest.mark.skipif(not os.path.exists(DISTRIBUTION), reason="docker-registry (Distribution) not installed")
def test_distribution_registry_htpasswd_login(docker, registries, tmp_path, remove_images):
    pw = _htpasswd(tmp_path / "htpasswd", "alice", "wonderland")
    reg = registries("distribution", {"auth": {"htpasswd": {"realm": "dist-realm", "path": pw}}})
    _login_flow(docker, reg, remove_images, "distauth/busybox")


# ---------------------------------------------------------------- the client on its own


@pytest.mark.parametrize("kind", ["dockyard", "distribution"])
def test_client_chunked_upload_mount_and_download(registries, tmp_path, monkeypatch, kind):
    """Blobs above the chunk threshold go up in PATCH chunks; download verifies the digest."""
    import asyncio

    from dockyard.distribution.client import RegistryClient
    from dockyard.distribution.client import registry as regmod

    if kind == "distribution" and not os.path.exists(DISTRIBUTION):
        pytest.skip("docker-registry not installed")
    reg = registries(kind)
    monkeypatch.setattr(regmod, "CHUNKED_UPLOAD_OVER", 300_000)
    data = os.urandom(1_000_003)
    digest = _sha(data)
    src = tmp_path / "blob"
    src.write_bytes(data)

    async def go() -> tuple[list[int], bool, bool, bytes]:
        seen: list[int] = []
        async with RegistryClient(reg.host) as c:
            assert not await c.blob_exists("chunk/a", digest)
            await c.upload_blob("chunk/a", digest, src, len(data), seen.append)
            exists = await c.blob_exists("chunk/a", digest)
            mounted, loc = await c.mount_blob("chunk/b", digest, "chunk/a")
            dest = tmp_path / "back"
            await c.download_blob("chunk/b", digest, dest)
            return seen, exists, mounted, dest.read_bytes()

    seen, exists, mounted, back = asyncio.run(go())
    assert exists and mounted and back == data
    assert seen[-1] == len(data) and seen == sorted(seen)
    r = requests.get(f"{reg.url}/v2/chunk/b/blobs/{digest}")
    assert r.status_code == 200 and r.content == data


def test_run_pulls_a_missing_image(docker, registry, remove_images):
    """`docker run` of an image the engine lacks: create says 404, the CLI pulls, then runs."""
    ref = f"{registry.host}/runpull/busybox:1"
    remove_images.append(ref)
    docker.ok("tag", BUSYBOX, ref)
    docker.ok("push", ref)
    docker.ok("rmi", ref)
    r = docker("run", "--rm", ref, "echo", "pulled by run")
    assert r.returncode == 0, r.stderr.decode()
    assert f"Unable to find image '{ref}' locally" in r.stderr.decode()
    assert r.stdout.decode().strip().endswith("pulled by run")
    # docker-py's high-level pull returns the image
    img = docker.engine.client().images.pull(f"{registry.host}/runpull/busybox", tag="1")
    assert ref in img.tags


def test_tls_registry_on_loopback(docker, registries, remove_images):
    """HTTPS comes first; a loopback registry's self-signed certificate is accepted as Docker does."""
    reg = registries("dockyard", tls=True)
    ref = f"{reg.host}/tls/busybox:1"
    remove_images.append(ref)
    docker.ok("tag", BUSYBOX, ref)
    assert "1: digest: sha256:" in docker.ok("push", ref)
    docker.ok("rmi", ref)
    assert f"for {ref}" in docker.ok("pull", ref)
    r = requests.get(f"{reg.url}/v2/tls/busybox/tags/list", verify=False)
    assert r.json()["tags"] == ["1"]


def test_corrupt_blob_is_refused(docker, registries, remove_images, tmp_path):
    """A registry serving bytes that do not match the digest: the pull fails, nothing is committed."""
    reg = registries("dockyard")
    _oci_layout(tmp_path / "layout")
    ref = f"{reg.host}/corrupt/multi:1"
    _upload_layout(reg, tmp_path / "layout", "corrupt/multi", "1")
    man = requests.get(f"{reg.url}/v2/corrupt/multi/manifests/1",
                       headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}).json()
    victim = man["layers"][1]["digest"][7:]
    found = list(Path(reg.log.parent, "root").rglob(f"blobs/sha256/{victim[:2]}/{victim}/data"))
    assert len(found) == 1
    data = bytearray(found[0].read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different bytes
    found[0].write_bytes(bytes(data))
    r = docker("pull", ref)
    assert r.returncode == 1
    assert f"verification failed for digest sha256:{victim}" in r.stderr.decode() + r.stdout.decode()
    assert docker("image", "inspect", ref).returncode == 1
