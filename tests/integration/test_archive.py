"""docker cp both ways, docker export, docker diff — and that symlinks cannot escape the container."""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
from pathlib import Path

import docker.errors
import pytest

pytestmark = pytest.mark.usefixtures("cleanup_containers")


def test_cp_out_and_in_running(engine, client):
    c = client.containers.run("busybox", ["sh", "-c", "mkdir -p /d/sub; echo hi > /d/sub/f; sleep 60"], detach=True)
    import time
    time.sleep(0.3)
    with tempfile.TemporaryDirectory() as td:
        r = engine.cli("cp", f"{c.id}:/d", td)
        assert r.returncode == 0, r.stderr
        assert Path(td, "d", "sub", "f").read_text() == "hi\n"
        Path(td, "up.txt").write_text("uploaded\n")
        r = engine.cli("cp", str(Path(td, "up.txt")), f"{c.id}:/d/sub/")
        assert r.returncode == 0, r.stderr
    assert c.exec_run(["cat", "/d/sub/up.txt"]).output == b"uploaded\n"
    assert c.exec_run(["stat", "-c", "%u", "/d/sub/up.txt"]).output == b"0\n"


def test_cp_stopped_container_and_stat(engine, client):
    c = client.containers.create("busybox", "true")
    bits, stat = c.get_archive("/etc/passwd")
    data = b"".join(bits)
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        assert tf.getnames() == ["passwd"]
        assert b"root:x:0:0" in tf.extractfile("passwd").read()
    assert stat["name"] == "passwd" and stat["size"] > 0
    assert stat["mode"] & (1 << 31) == 0  # not a directory (Go FileMode)
    _, dstat = c.get_archive("/etc")
    assert dstat["mode"] & (1 << 31)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        ti = tarfile.TarInfo("new.txt")
        ti.size = 3
        tf.addfile(ti, io.BytesIO(b"abc"))
    assert c.put_archive("/tmp", buf.getvalue())
    out, _ = c.get_archive("/tmp/new.txt")
    with tarfile.open(fileobj=io.BytesIO(b"".join(out))) as tf:
        assert tf.extractfile("new.txt").read() == b"abc"


def test_cp_errors(client):
    c = client.containers.create("busybox", "true")
    with pytest.raises(docker.errors.NotFound):
        c.get_archive("/no/such/path")
    with pytest.raises(docker.errors.APIError) as e:
        c.put_archive("/etc/passwd", b"")  # not a directory
    assert e.value.status_code in (400, 404)


def test_symlink_cannot_escape_to_the_host(engine, client):
    """A container's absolute symlink resolves inside the container, for reads and writes."""
    marker = Path(tempfile.mkdtemp(prefix="dyk-escape-"))
    (marker / "secret").write_text("host-only\n")
    try:
        c = client.containers.run("busybox", ["sh", "-c", f"mkdir -p {marker}; echo container > {marker}/secret; "
                                                          f"ln -s {marker} /link; sleep 60"], detach=True)
        import time
        time.sleep(0.3)
        bits, _ = c.get_archive("/link/secret")
        with tarfile.open(fileobj=io.BytesIO(b"".join(bits))) as tf:
            assert tf.extractfile("secret").read() == b"container\n"
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            ti = tarfile.TarInfo("planted")
            ti.size = 1
            tf.addfile(ti, io.BytesIO(b"x"))
        c.put_archive("/link", buf.getvalue())
        assert not (marker / "planted").exists()
        assert (marker / "secret").read_text() == "host-only\n"
        assert c.exec_run(["cat", f"{marker}/planted"]).output == b"x"
    finally:
        import shutil
        shutil.rmtree(marker, ignore_errors=True)


def test_export_and_diff(engine, client):
    c = client.containers.run("busybox", ["sh", "-c", "echo x > /added; rm /etc/group; echo y >> /etc/passwd"],
                              detach=True)
    c.wait(timeout=10)
    changes = {(ch["Path"], ch["Kind"]) for ch in client.api.diff(c.id)}
    assert ("/added", 1) in changes and ("/etc/group", 2) in changes and ("/etc/passwd", 0) in changes
    with tempfile.TemporaryDirectory() as td:
        out = os.path.join(td, "fs.tar")
        r = engine.cli("export", "-o", out, c.id)
        assert r.returncode == 0, r.stderr
        with tarfile.open(out) as tf:
            names = set(tf.getnames())
        assert "added" in names and "bin/busybox" in names and "etc/group" not in names


def test_cp_in_keeps_modes(engine, client, tmp_path):
    c = client.containers.create("busybox", "true")
    for name, mode in (("suid", 0o4755), ("sticky", 0o1777), ("shared", 0o666)):
        p = tmp_path / name
        p.write_text("x")
        p.chmod(mode)
        r = engine.cli("cp", str(p), f"{c.id}:/tmp/")
        assert r.returncode == 0, r.stderr
        _, stat = c.get_archive(f"/tmp/{name}")
        assert stat["mode"] & 0o777 == mode & 0o777
    _, s = c.get_archive("/tmp/suid")
    assert s["mode"] & (1 << 23)  # Go's ModeSetuid


ETC_MOUNTS = {"/etc/hosts", "/etc/hostname", "/etc/resolv.conf"}


def _last_layer_names(client, image_id: str) -> set[str]:
    import json
    data = b"".join(client.api.get_image(image_id))
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))
        layer = tf.extractfile(manifest[0]["Layers"][-1]).read()
    with tarfile.open(fileobj=io.BytesIO(layer)) as lt:
        return {"/" + n.lstrip("./") for n in lt.getnames()}


@pytest.mark.parametrize("image_has_etc_files", [True, False])
def test_etc_mounts_are_never_changes(engine, client, tmp_path, image_has_etc_files):
    """/etc/hosts, /etc/hostname and /etc/resolv.conf are mounts (dockerd keeps them in the
    container's init layer): not in diff, not in a committed layer; export has them."""
    image = "busybox"
    if not image_has_etc_files:  # an image without /etc at all: the mount points are made for it
        c0 = client.containers.create("busybox", "true")
        bits, _ = c0.get_archive("/bin")
        tar = tmp_path / "bin.tar"
        tar.write_bytes(b"".join(bits))
        r = engine.cli("import", str(tar), "noetc:1")
        assert r.returncode == 0, r.stderr
        image = "noetc:1"
    try:
        c = client.containers.run(image, ["/bin/sh", "-c", "echo x > /added; cat /etc/hostname"], detach=True)
        assert c.wait(timeout=60)["StatusCode"] == 0
        assert c.logs().strip() == c.id[:12].encode()  # the mount was really there
        changes = {ch["Path"] for ch in client.api.diff(c.id)}
        assert changes == {"/added"}, changes
        committed = client.api.commit(c.id)["Id"]
        assert _last_layer_names(client, committed) == {"/added"}
        out = tmp_path / "fs.tar"
        engine.cli_ok("export", "-o", str(out), c.id)
        with tarfile.open(out) as tf:
            names = {"/" + n for n in tf.getnames()}
            assert ETC_MOUNTS <= names and "/added" in names
            assert all(tf.getmember(p[1:]).isfile() for p in ETC_MOUNTS)
        # a later start writes the files again: still no change
        c.start()
        c.wait(timeout=60)
        assert {ch["Path"] for ch in client.api.diff(c.id)} == {"/added"}
        client.api.remove_image(committed)
    finally:
        if not image_has_etc_files:
            for ctr in client.containers.list(all=True, filters={"ancestor": "noetc:1"}):
                ctr.remove(force=True)
            client.images.remove("noetc:1")
