"""Images through real clients: the docker CLI, docker-py, skopeo, raw HTTP.

The session engine already holds busybox:latest (conftest).  These tests never
remove or retag it; their own images are named imgtest/... and removed at the end.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import time
from pathlib import Path

import docker
import pytest
import requests

from dockyard.testing.busybox import make_busybox_rootfs_tar


def cli_fail(engine, *args) -> str:
    r = engine.cli(*args, timeout=120)
    assert r.returncode != 0, f"docker {' '.join(args)} unexpectedly succeeded: {r.stdout.decode()}"
    return r.stderr.decode()


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory) -> Path:
    return make_busybox_rootfs_tar(tmp_path_factory.mktemp("rootfs") / "rootfs.tar")


@pytest.fixture
def own_images(engine):
    """Remove, after the test, every imgtest/* image and every image it created."""
    api = engine.api()
    before = {i["Id"] for i in api.images(all=True)}
    yield
    for img in api.images(all=True):
        try:
            if img["Id"] not in before:
                api.remove_image(img["Id"], force=True)
                continue
            for t in img["RepoTags"] or []:  # our tags on older images (busybox:latest)
                if t.startswith(("imgtest/", "localhost:5999/imgtest")):
                    api.remove_image(t)
        except docker.errors.APIError:
            pass
    api.close()


def http(engine) -> requests.Session:
    """Raw HTTP over the engine's unix socket (for status codes and bodies)."""
    from requests.adapters import HTTPAdapter
    import socket
    import urllib3

    class Conn(urllib3.connection.HTTPConnection):
        def connect(self):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(engine.socket)

    class Pool(urllib3.HTTPConnectionPool):
        ConnectionCls = Conn

    class Adapter(HTTPAdapter):
        def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
            return Pool("localhost")

        def get_connection(self, url, proxies=None):
            return Pool("localhost")

    s = requests.Session()
    s.mount("http://engine/", Adapter())
    return s


# ------------------------------------------------------------------ import

def test_import_with_changes_prints_the_id(engine, rootfs, own_images):
    out = engine.cli_ok("import", "-m", "from the test", "--platform", "linux/amd64",
                 "--change", 'CMD ["sh", "-c", "echo $GREETING"]', "--change", "ENV GREETING=hello",
                 "--change", "LABEL imgtest.kind=import", "--change", "EXPOSE 8080",
                 "--change", "WORKDIR /tmp", "--change", "USER app", "--change", "STOPSIGNAL SIGINT",
                 str(rootfs), "imgtest/import:v1")
    image_id = out.strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71
    info = json.loads(engine.cli_ok("image", "inspect", "imgtest/import:v1"))[0]
    assert info["Id"] == image_id
    assert info["RepoTags"] == ["imgtest/import:v1"]
    c = info["Config"]
    assert c["Cmd"] == ["sh", "-c", "echo $GREETING"] and c["Env"] == ["GREETING=hello"]
    assert c["Labels"] == {"imgtest.kind": "import"} and c["ExposedPorts"] == {"8080/tcp": {}}
    assert (c["WorkingDir"], c["User"], c["StopSignal"]) == ("/tmp", "app", "SIGINT")
    assert (info["Os"], info["Architecture"]) == ("linux", "amd64")
    assert len(info["RootFS"]["Layers"]) == 1 and info["Size"] > 1_000_000
    hist = engine.cli_ok("history", "--no-trunc", "--format", "{{.ID}}|{{.Comment}}", "imgtest/import:v1")
    assert hist.strip() == f"{image_id}|from the test"


def test_import_from_stdin_gzip(engine, rootfs, own_images, tmp_path):
    gz = make_busybox_rootfs_tar(tmp_path / "rootfs.tar.gz", compress=True)
    image_id = engine.cli_ok("import", "-", "imgtest/gz", input=gz.read_bytes()).strip()
    # Same uncompressed content as the plain tar: the same DiffID as busybox:latest.
    layers = json.loads(engine.cli_ok("image", "inspect", "--format", "{{json .RootFS.Layers}}", image_id))
    base = json.loads(engine.cli_ok("image", "inspect", "--format", "{{json .RootFS.Layers}}", "busybox"))
    assert layers == base
    hist = engine.cli_ok("history", "--format", "{{.Comment}}", "imgtest/gz")
    assert hist.strip() == "Imported from -"


def test_imported_image_runs(engine, own_images, cleanup_containers, tmp_path):
    tar = make_busybox_rootfs_tar(tmp_path / "r.tar", extra_files={"etc/motd": b"imported motd\n"})
    engine.cli_ok("import", "--change", 'CMD ["cat", "/etc/motd"]', str(tar), "imgtest/runs")
    out = engine.cli_ok("run", "--rm", "--network", "none", "imgtest/runs")
    assert out == "imported motd\n"


def test_import_rejects_bad_input(engine, rootfs):
    s = http(engine)
    base = "http://engine/v1.50/images/create"
    r = s.post(base, params={"fromSrc": "-"}, data=b"definitely not a tarball" * 100)
    assert r.status_code == 400 and "invalid" in r.json()["message"]
    r = s.post(base, params={"fromSrc": "-", "repo": "Bad/Name"}, data=rootfs.read_bytes())
    assert r.status_code == 400 and "must be lowercase" in r.json()["message"]
    r = s.post(base, params={"fromSrc": "-", "changes": "RUN rm -rf /"}, data=rootfs.read_bytes())
    assert r.status_code == 400 and r.json()["message"] == "RUN is not a valid change command"
    r = s.post(base, params={"fromSrc": "-", "platform": "windows/amd64"}, data=rootfs.read_bytes())
    assert r.status_code == 400
    r = s.post(base, params={"fromImage": "alpine", "tag": "latest"})
    assert 400 <= r.status_code < 500 and "pull not supported" in r.json()["message"]
    r = s.post(base)
    assert r.status_code == 400


def test_import_refuses_path_traversal(engine, tmp_path):
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tf:
        ti = tarfile.TarInfo("../../../../tmp/dockyard-escape")
        ti.size = 4
        tf.addfile(ti, io.BytesIO(b"evil"))
    r = engine.cli("import", str(evil), "imgtest/evil")
    assert r.returncode != 0 and "escapes the layer root" in r.stderr.decode()
    assert not Path("/tmp/dockyard-escape").exists()
    assert not (engine.data_root / "tmp" / "dockyard-escape").exists()


# ------------------------------------------------------------------ layers are shared

def test_layers_are_stored_once_and_shared(engine, rootfs, own_images):
    layer_root = engine.data_root / "layers"
    dirs_before = {p.name for p in layer_root.iterdir()}
    a = engine.cli_ok("import", "--change", "LABEL which=a", str(rootfs), "imgtest/share:a").strip()
    b = engine.cli_ok("import", "--change", "LABEL which=b", str(rootfs), "imgtest/share:b").strip()
    assert a != b  # different configs, different IDs
    ia, ib = (json.loads(engine.cli_ok("image", "inspect", x))[0] for x in (a, b))
    assert ia["RootFS"]["Layers"] == ib["RootFS"]["Layers"]
    assert ia["GraphDriver"]["Data"]["UpperDir"] == ib["GraphDriver"]["Data"]["UpperDir"]
    # busybox:latest was imported from the same bytes: no new layer directory at all
    assert {p.name for p in layer_root.iterdir()} == dirs_before
    shared = json.loads(engine.cli_ok("system", "df", "--format", "{{json .}}").splitlines()[0])
    assert shared  # the CLI can render it
    lst = engine.api().images(name="imgtest/share")
    assert len(lst) == 2
    # removing one image keeps the layer the other uses
    engine.cli_ok("rmi", "imgtest/share:a")
    upper = Path(ib["GraphDriver"]["Data"]["UpperDir"])
    assert (upper / "bin" / "busybox").is_file()
    engine.cli_ok("rmi", "imgtest/share:b")
    assert (upper / "bin" / "busybox").is_file()  # busybox:latest still holds it


def test_a_new_layer_is_removed_with_its_last_image(engine, own_images, tmp_path):
    tar = make_busybox_rootfs_tar(tmp_path / "u.tar", extra_files={"unique": os.urandom(64)})
    image_id = engine.cli_ok("import", str(tar), "imgtest/unique").strip()
    engine.cli_ok("tag", image_id, "imgtest/unique:second")
    upper = Path(json.loads(engine.cli_ok("image", "inspect", image_id))[0]["GraphDriver"]["Data"]["UpperDir"])
    assert upper.is_dir()
    out = engine.cli_ok("rmi", "imgtest/unique")
    assert out.strip() == "Untagged: imgtest/unique:latest"
    assert upper.is_dir()
    out = engine.cli_ok("rmi", "imgtest/unique:second")
    assert "Untagged: imgtest/unique:second" in out and f"Deleted: {image_id}" in out
    assert not upper.parent.exists()


# ------------------------------------------------------------------ save / load

def test_save_load_round_trip_cli(engine, own_images, tmp_path):
    tar = make_busybox_rootfs_tar(tmp_path / "r.tar", extra_files={"etc/rt": b"round trip\n"})
    image_id = engine.cli_ok("import", "--change", 'CMD ["cat", "/etc/rt"]', str(tar),
                      "imgtest/rt:1").strip()
    engine.cli_ok("tag", "imgtest/rt:1", "localhost:5999/imgtest/rt:2")
    saved = tmp_path / "saved.tar"
    engine.cli_ok("save", "-o", str(saved), "imgtest/rt:1", "localhost:5999/imgtest/rt:2")
    with tarfile.open(saved) as tf:
        names = set(tf.getnames())
        manifest = json.load(tf.extractfile("manifest.json"))
        index = json.load(tf.extractfile("index.json"))
        assert json.load(tf.extractfile("oci-layout")) == {"imageLayoutVersion": "1.0.0"}
    assert {"manifest.json", "index.json", "oci-layout", "repositories"} <= names
    assert manifest[0]["Config"] == f"blobs/sha256/{image_id[7:]}"
    assert sorted(manifest[0]["RepoTags"]) == ["imgtest/rt:1", "localhost:5999/imgtest/rt:2"]
    assert {m["annotations"]["io.containerd.image.name"] for m in index["manifests"]} == {
        "docker.io/imgtest/rt:1", "localhost:5999/imgtest/rt:2"}
    engine.cli_ok("rmi", "imgtest/rt:1", "localhost:5999/imgtest/rt:2")
    assert engine.cli("image", "inspect", image_id).returncode != 0
    out = engine.cli_ok("load", "-i", str(saved))
    assert sorted(out.strip().splitlines()) == ["Loaded image: imgtest/rt:1",
                                                "Loaded image: localhost:5999/imgtest/rt:2"]
    assert json.loads(engine.cli_ok("image", "inspect", "imgtest/rt:1"))[0]["Id"] == image_id
    out = engine.cli_ok("run", "--rm", "--network", "none", "localhost:5999/imgtest/rt:2")
    assert out == "round trip\n"


def test_load_from_stdin_and_untagged(engine, own_images, tmp_path):
    tar = make_busybox_rootfs_tar(tmp_path / "r.tar", extra_files={"x": b"untagged"})
    image_id = engine.cli_ok("import", str(tar)).strip()
    data = subprocess.run(["docker", "save", image_id], env=engine.docker_env, capture_output=True,
                          check=True, timeout=60).stdout
    engine.cli_ok("rmi", image_id)
    out = engine.cli_ok("load", input=data)
    assert out.strip() == f"Loaded image ID: {image_id}"


def test_load_oci_layout_only(engine, own_images, tmp_path):
    """An archive with index.json and no manifest.json (what containerd and skopeo write)."""
    tar = make_busybox_rootfs_tar(tmp_path / "r.tar", extra_files={"oci": b"layout"})
    image_id = engine.cli_ok("import", str(tar), "imgtest/oci:only").strip()
    saved = tmp_path / "saved.tar"
    engine.cli_ok("save", "-o", str(saved), "imgtest/oci:only")
    oci = tmp_path / "oci.tar"
    with tarfile.open(saved) as src, tarfile.open(oci, "w") as dst:
        for m in src.getmembers():
            if m.name not in ("manifest.json", "repositories"):
                dst.addfile(m, src.extractfile(m) if m.isfile() else None)
    engine.cli_ok("rmi", "imgtest/oci:only")
    out = engine.cli_ok("load", "-i", str(oci))
    assert out.strip() == "Loaded image: imgtest/oci:only"
    assert json.loads(engine.cli_ok("image", "inspect", "imgtest/oci:only"))[0]["Id"] == image_id


def test_skopeo_reads_our_archive_and_we_load_its_oci_archive(engine, own_images, tmp_path):
    """A third-party producer and consumer: skopeo (containers/image)."""
    saved = tmp_path / "saved.tar"
    engine.cli_ok("save", "-o", str(saved), "busybox:latest")
    insp = subprocess.run(["skopeo", "inspect", "--raw", f"docker-archive:{saved}"],
                          capture_output=True, timeout=60)
    assert insp.returncode == 0, insp.stderr.decode()
    oci = tmp_path / "sk-oci.tar"
    r = subprocess.run(["skopeo", "copy", "--dest-compress-format", "gzip", "--dest-compress",
                        f"docker-archive:{saved}", f"oci-archive:{oci}:imgtest/skopeo:gz"],
                       capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    out = engine.cli_ok("load", "-i", str(oci))
    assert out.strip() == "Loaded image: imgtest/skopeo:gz"
    a = json.loads(engine.cli_ok("image", "inspect", "imgtest/skopeo:gz"))[0]
    b = json.loads(engine.cli_ok("image", "inspect", "busybox:latest"))[0]
    # gzip-compressed layers were decompressed to the same DiffIDs (skopeo rewrites the
    # config into OCI form, so the image ID differs, but the layer is shared).
    assert a["RootFS"] == b["RootFS"]
    assert a["GraphDriver"]["Data"]["UpperDir"] == b["GraphDriver"]["Data"]["UpperDir"]
    assert a["Config"].get("Cmd") == b["Config"].get("Cmd")


def _load_error(engine, data: bytes) -> str:
    """dockerd answers a failed load with 200 and the error in the JSON stream."""
    r = http(engine).post("http://engine/v1.50/images/load", data=data)
    assert r.status_code == 200, r.text
    lines = [json.loads(x) for x in r.text.splitlines() if x.strip()]
    assert lines[-1]["error"] == lines[-1]["errorDetail"]["message"]
    return lines[-1]["error"]


def test_load_garbage_gets_dockerds_errors(engine, tmp_path):
    assert _load_error(engine, b"garbage" * 1000) == "archive/tar: invalid tar header"
    assert _load_error(engine, b"short") == "unexpected EOF"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        ti = tarfile.TarInfo("hello.txt")
        ti.size = 2
        tf.addfile(ti, io.BytesIO(b"hi"))
    whole = buf.getvalue()
    msg = _load_error(engine, whole)  # neither manifest.json nor the legacy repositories file
    assert msg.startswith("open /") and msg.endswith("/repositories: no such file or directory"), msg
    assert _load_error(engine, whole[:700]) == "unexpected EOF"  # truncated in a member
    with tarfile.open(fileobj=(buf := io.BytesIO()), mode="w") as tf:
        ti = tarfile.TarInfo("somedir")
        ti.type = tarfile.DIRTYPE
        tf.addfile(ti)
    msg = _load_error(engine, buf.getvalue())
    assert msg.endswith("/somedir/json: no such file or directory"), msg
    # the docker CLI prints dockerd's text
    r = engine.cli("load", input=b"garbage" * 1000)
    assert r.returncode != 0 and b"archive/tar: invalid tar header" in r.stderr


def _legacy_archive(engine, client, tmp_path, with_manifest: bool) -> tuple[bytes, str, str]:
    """The old `docker save` layout, made from a two-layer image of this engine."""
    import hashlib
    img, _ = client.images.build(fileobj=io.BytesIO(b"FROM busybox\nRUN echo legacy > /legacy\n"),
                                 tag="imgtest/legacy-src:1", rm=True)
    saved = b"".join(img.save())
    with tarfile.open(fileobj=io.BytesIO(saved)) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))[0]
        config = json.load(tf.extractfile(manifest["Config"]))
        layer_tars = [tf.extractfile(p).read() for p in manifest["Layers"]]
    out = io.BytesIO()
    parent = ""
    ids = []
    with tarfile.open(fileobj=out, mode="w") as tf:
        def add(name: str, data: bytes) -> None:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
        for i, layer in enumerate(layer_tars):
            v1_id = hashlib.sha256(f"{parent}{i}".encode() + layer).hexdigest()
            v1 = {"id": v1_id, "created": config["created"], "os": "linux", "architecture": config["architecture"],
                  "container_config": {"Cmd": ["/bin/sh", "-c", f"step {i}"]}}
            if parent:
                v1["parent"] = parent
            if i == len(layer_tars) - 1:
                v1["config"] = config["config"]
            d = tarfile.TarInfo(v1_id)
            d.type = tarfile.DIRTYPE
            tf.addfile(d)
            add(f"{v1_id}/VERSION", b"1.0")
            add(f"{v1_id}/json", json.dumps(v1).encode())
            add(f"{v1_id}/layer.tar", layer)
            ids.append(v1_id)
            parent = v1_id
        add("repositories", json.dumps({"imgtest/legacy": {"v1": ids[-1]}}).encode())
        if with_manifest:  # Docker 1.10-24 wrote both
            cfg = dict(config)
            add("config.json", json.dumps(cfg).encode())
            add("manifest.json", json.dumps([{"Config": "config.json", "RepoTags": ["imgtest/legacy:v1"],
                                              "Layers": [f"{x}/layer.tar" for x in ids]}]).encode())
    client.images.remove("imgtest/legacy-src:1")
    return out.getvalue(), img.id, config["rootfs"]["diff_ids"][-1]


@pytest.mark.parametrize("with_manifest", [False, True])
def test_load_legacy_save_layout(engine, client, own_images, tmp_path, with_manifest):
    data, _, last_diff = _legacy_archive(engine, client, tmp_path, with_manifest)
    r = http(engine).post("http://engine/v1.50/images/load", data=data)
    assert r.status_code == 200 and "error" not in r.text, r.text
    img = client.images.get("imgtest/legacy:v1")
    assert img.attrs["RootFS"]["Layers"][-1] == last_diff
    assert client.containers.run("imgtest/legacy:v1", ["cat", "/legacy"], remove=True) == b"legacy\n"
    if not with_manifest:  # each layer directory is an image, parents linked, as dockerd loads it
        assert img.attrs["Parent"]
        hist = [h["CreatedBy"] for h in img.history()]
        assert hist[:2] == ["/bin/sh -c step 1", "/bin/sh -c step 0"]
    client.images.remove("imgtest/legacy:v1")


def test_docker_py_images(engine, own_images, tmp_path):
    client = engine.client()
    tar = make_busybox_rootfs_tar(tmp_path / "r.tar", extra_files={"py": b"docker-py"})
    with open(tar, "rb") as f:
        resp = client.api.import_image(src=f, repository="imgtest/py", tag="1")
    image_id = json.loads(resp.strip().splitlines()[-1])["status"]
    img = client.images.get("imgtest/py:1")
    assert img.id == image_id and img.tags == ["imgtest/py:1"]
    assert img.tag("imgtest/py", "2")
    data = b"".join(img.save(named=True))
    client.images.remove("imgtest/py:1")
    client.images.remove("imgtest/py:2")
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get(image_id)
    loaded = client.images.load(data)
    assert [i.id for i in loaded] == [image_id]
    assert client.images.get("imgtest/py:1").id == image_id
    hist = img.history()
    assert hist[0]["Id"] == image_id and hist[0]["Comment"] == "Imported from -"
    names = [t for i in client.images.list(name="imgtest/py") for t in i.tags]
    assert names == ["imgtest/py:1"]
    client.close()


# ------------------------------------------------------------------ list and filters

def test_list_filters(engine, own_images, rootfs, tmp_path):
    old = engine.cli_ok("import", "--change", "LABEL imgtest.f=old", str(rootfs), "imgtest/f:old").strip()
    new = engine.cli_ok("import", "--change", "LABEL imgtest.f=new", "--change", "LABEL other=1",
                 str(rootfs), "imgtest/f:new").strip()
    ids = lambda *a: set(engine.cli_ok("images", "-q", "--no-trunc", *a).split())  # noqa: E731
    assert ids("--filter", "reference=imgtest/f") == {old, new}
    assert ids("--filter", "reference=imgtest/f:n*") == {new}
    assert ids("--filter", "label=imgtest.f=old") == {old}
    assert ids("--filter", "label=other") == {new}
    assert ids("--filter", "reference=imgtest/*", "--filter", "since=imgtest/f:old") >= {new}
    assert old not in ids("--filter", "since=imgtest/f:old")
    assert new not in ids("--filter", "before=imgtest/f:new")
    dangling_id = engine.cli_ok("import", "--change", "LABEL imgtest.f=dangling", str(rootfs)).strip()
    assert dangling_id in ids("--filter", "dangling=true")
    assert dangling_id not in ids("--filter", "dangling=false")
    assert old not in ids("--filter", "dangling=true")
    table = engine.cli_ok("images", "--filter", "dangling=true", "--format", "{{.Repository}}:{{.Tag}}")
    assert "<none>:<none>" in table.splitlines()
    s = http(engine)
    r = s.get("http://engine/v1.50/images/json", params={"filters": json.dumps({"bogus": ["x"]})})
    assert r.status_code == 400
    r = s.get("http://engine/v1.50/images/json", params={"shared-size": "1",
                                                         "filters": json.dumps({"reference": ["imgtest/f"]})})
    assert r.status_code == 200 and all(e["SharedSize"] == e["Size"] for e in r.json())


# ------------------------------------------------------------------ tag and remove

def test_tag_errors_and_status(engine, own_images):
    s = http(engine)
    r = s.post("http://engine/v1.50/images/busybox/tag", params={"repo": "imgtest/t", "tag": "ok"})
    assert r.status_code == 201
    r = s.post("http://engine/v1.50/images/busybox/tag", params={"repo": "imgtest/T"})
    assert r.status_code == 400 and "must be lowercase" in r.json()["message"]
    r = s.post("http://engine/v1.50/images/busybox/tag", params={"repo": "imgtest/t", "tag": "bad tag"})
    assert r.status_code == 400
    r = s.post("http://engine/v1.50/images/nosuchimage/tag", params={"repo": "imgtest/t"})
    assert r.status_code == 404 and r.json()["message"] == "No such image: nosuchimage:latest"
    r = s.delete("http://engine/v1.50/images/nosuchimage")
    assert r.status_code == 404
    r = s.get("http://engine/v1.50/images/imgtest/t:ok/json")
    assert r.status_code == 200 and "imgtest/t:ok" in r.json()["RepoTags"]


def test_rmi_by_id_with_several_repositories_needs_force(engine, own_images, tmp_path):
    tar = make_busybox_rootfs_tar(tmp_path / "r.tar", extra_files={"rm": b"force"})
    image_id = engine.cli_ok("import", str(tar), "imgtest/rm1").strip()
    engine.cli_ok("tag", image_id, "imgtest/rm2:x")
    err = cli_fail(engine, "rmi", image_id[7:19])
    assert (f"conflict: unable to delete {image_id[7:19]} (must be forced) - "
            "image is referenced in multiple repositories") in err
    out = engine.cli_ok("rmi", "-f", image_id[7:19]).splitlines()
    assert sorted(out[:2]) == ["Untagged: imgtest/rm1:latest", "Untagged: imgtest/rm2:x"]
    assert out[2] == f"Deleted: {image_id}"


def test_rmi_conflicts_with_containers(engine, own_images, cleanup_containers, tmp_path):
    tar = make_busybox_rootfs_tar(tmp_path / "r.tar", extra_files={"in-use": b"1"})
    image_id = engine.cli_ok("import", str(tar), "imgtest/used").strip()
    short = image_id[7:19]
    stopped = engine.cli_ok("create", "--network", "none", "imgtest/used", "true").strip()
    err = cli_fail(engine, "rmi", "imgtest/used")
    assert (f'conflict: unable to remove repository reference "imgtest/used" (must force) - '
            f"container {stopped[:12]} is using its referenced image {short}") in err
    err = cli_fail(engine, "rmi", image_id)
    assert (f"conflict: unable to delete {short} (must be forced) - "
            f"image is being used by stopped container {stopped[:12]}") in err
    running = engine.cli_ok("run", "-d", "--network", "none", "imgtest/used", "sleep", "60").strip()
    err = cli_fail(engine, "rmi", "-f", image_id)
    assert (f"conflict: unable to delete {short} (cannot be forced) - "
            f"image is being used by running container {running[:12]}") in err
    engine.cli_ok("rm", "-f", running)
    # As dockerd: force deletes an image that only stopped containers use...
    out = engine.cli_ok("rmi", "-f", "imgtest/used")
    assert out.splitlines()[:2] == ["Untagged: imgtest/used:latest", f"Deleted: {image_id}"]
    assert engine.cli("image", "inspect", image_id).returncode != 0
    # ...but the container keeps its layers and still starts.
    engine.cli_ok("start", "-a", stopped)
    upper = json.loads(engine.cli_ok("inspect", "--format", "{{json .GraphDriver.Data}}", stopped))
    own_layer = Path(upper["LowerDir"].split(":")[0]).parent  # the image's only (unique) layer
    assert own_layer.is_dir()
    engine.cli_ok("rm", stopped)
    # Once the container is gone, its held layer goes too, without a prune (as dockerd's
    # layer store drops a layer at its last release); it is deleted beside the reply.
    deadline = time.monotonic() + 120
    while own_layer.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not own_layer.exists(), f"{own_layer} still there 120 s after rm"


def test_prune(engine, own_images, tmp_path):
    a = engine.cli_ok("import", "--change", "LABEL imgtest.prune=1",
               str(make_busybox_rootfs_tar(tmp_path / "a.tar", extra_files={"a": b"a"}))).strip()
    b = engine.cli_ok("import", "--change", "LABEL imgtest.prune=1",
               str(make_busybox_rootfs_tar(tmp_path / "b.tar", extra_files={"b": b"b"})),
               "imgtest/prune:tagged").strip()
    keep = engine.cli_ok("import", "--change", "LABEL imgtest.prune=0",
                  str(make_busybox_rootfs_tar(tmp_path / "c.tar", extra_files={"c": b"c"}))).strip()
    out = engine.cli_ok("image", "prune", "-f", "--filter", "label=imgtest.prune=1")
    assert f"deleted: {a}" in out and b not in out and "Total reclaimed space" in out
    out = engine.cli_ok("image", "prune", "-a", "-f", "--filter", "label=imgtest.prune=1",
                 "--filter", "until=1m")
    assert b not in out  # created less than a minute ago
    out = engine.cli_ok("image", "prune", "-a", "-f", "--filter", "label=imgtest.prune=1")
    assert "untagged: imgtest/prune:tagged" in out and f"deleted: {b}" in out
    assert engine.cli("image", "inspect", keep).returncode == 0
    assert engine.cli("image", "inspect", "busybox:latest").returncode == 0


def test_events_for_image_actions(engine, own_images, rootfs):
    s = http(engine)
    import time
    since = str(int(time.time()) - 1)
    image_id = engine.cli_ok("import", str(rootfs), "imgtest/ev").strip()
    engine.cli_ok("tag", "imgtest/ev", "imgtest/ev:2")
    engine.cli_ok("rmi", "imgtest/ev:2")
    r = s.get("http://engine/v1.50/events", params={
        "since": since, "until": str(int(time.time()) + 1),
        "filters": json.dumps({"type": ["image"]})}, timeout=30)
    if r.status_code == 404:
        pytest.skip("events endpoint not available")
    evs = [json.loads(l) for l in r.text.splitlines() if l.strip()]
    actions = [(e["Action"], e["Actor"]["Attributes"].get("name")) for e in evs if e["Actor"]["ID"] == image_id]
    assert ("import", image_id) in actions
    assert ("tag", "imgtest/ev:latest") in actions and ("tag", "imgtest/ev:2") in actions
    assert ("untag", image_id) in actions


def test_load_progress_in_a_terminal(engine, own_images, tmp_path):
    """With a TTY the CLI asks for progress (quiet=0) and draws dockerd-style layer bars."""
    tar = make_busybox_rootfs_tar(tmp_path / "r.tar", extra_files={"tty": b"bars"})
    engine.cli_ok("import", str(tar), "imgtest/tty")
    saved = tmp_path / "s.tar"
    engine.cli_ok("save", "-o", str(saved), "imgtest/tty")
    engine.cli_ok("rmi", "imgtest/tty")
    r = subprocess.run(["script", "-qec", f"docker load -i {saved}", "/dev/null"], env=engine.docker_env,
                       capture_output=True, timeout=120)
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0, out + r.stderr.decode()
    assert "Loading layer" in out and "Loaded image: imgtest/tty:latest" in out


def test_engine_killed_mid_import_leaves_no_half_layer(tmp_path):
    """SIGKILL while a layer is being unpacked: after restart no debris and no half image."""
    import time

    from engine_harness import EngineProcess

    big = tmp_path / "big.tar"
    with tarfile.open(big, "w") as tf:
        chunk = b"\0" * (1 << 20)
        for i in range(400):
            ti = tarfile.TarInfo(f"data/f{i:04d}")
            ti.size = len(chunk)
            tf.addfile(ti, io.BytesIO(chunk))
    eng = EngineProcess()
    try:
        eng.start()
        layers_tmp = eng.data_root / "layers" / "tmp"
        proc = subprocess.Popen(["docker", "import", str(big), "imgtest/crash"], env=eng.docker_env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.time() + 120
        while not any(p.name.startswith("unpack-") for p in layers_tmp.iterdir()):
            assert proc.poll() is None, "the import finished before it could be interrupted"
            assert time.time() < deadline
            time.sleep(0.002)
        eng.kill9()
        proc.wait(60)
        assert any(layers_tmp.iterdir())  # the interrupted unpack is still there
        eng.start()
        assert list(layers_tmp.iterdir()) == []
        assert list((eng.data_root / "content" / "tmp").iterdir()) == []
        assert [p.name for p in (eng.data_root / "layers").iterdir()] == ["tmp"]
        assert eng.cli("image", "inspect", "imgtest/crash").returncode != 0
        # and the engine imports the same tar fine afterwards
        r = eng.cli("import", str(big), "imgtest/crash", timeout=300)
        assert r.returncode == 0, r.stderr.decode()
        assert len([p for p in (eng.data_root / "layers").iterdir() if p.name != "tmp"]) == 1
    finally:
        eng.cleanup()
