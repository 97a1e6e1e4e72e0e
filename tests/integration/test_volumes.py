"""Volumes: named, anonymous (image VOLUME and -v /path), copy-up, in-use, prune, tmpfs-backed."""

from __future__ import annotations

import tempfile
from pathlib import Path

import docker.errors
import pytest

from dockyard.testing.busybox import make_busybox_rootfs_tar

pytestmark = pytest.mark.usefixtures("cleanup_containers")


@pytest.fixture(scope="module")
def image_with_volume(engine):
    """An image whose /data is a VOLUME with content (Dockerfile VOLUME through import changes)."""
    with tempfile.TemporaryDirectory() as td:
        tar = make_busybox_rootfs_tar(Path(td) / "r.tar", extra_files={"data/seed.txt": b"from-image\n"})
        r = engine.cli("import", "--change", "VOLUME /data", str(tar), "volimage:1")
        assert r.returncode == 0, r.stderr
    return "volimage:1"


def test_named_volume_persists_between_containers(engine, client):
    r = engine.cli("run", "--rm", "-v", "vol_persist:/v", "busybox", "sh", "-c", "echo kept > /v/f")
    assert r.returncode == 0, r.stderr
    r = engine.cli("run", "--rm", "-v", "vol_persist:/v:ro", "busybox", "sh", "-c", "cat /v/f; touch /v/x || echo ro")
    assert r.stdout == b"kept\nro\n", r.stderr
    v = client.volumes.get("vol_persist")
    assert v.attrs["Driver"] == "local" and Path(v.attrs["Mountpoint"], "f").read_text() == "kept\n"
    v.remove()


def test_volume_api_create_inspect_list_remove(client):
    v = client.volumes.create("apivol", labels={"team": "a"})
    assert v.attrs["Labels"] == {"team": "a"} and v.attrs["Scope"] == "local"
    assert "apivol" in [x.name for x in client.volumes.list(filters={"label": "team=a"})]
    assert client.volumes.create("apivol").id == "apivol"  # idempotent, as Docker
    with pytest.raises(docker.errors.APIError) as e:
        client.volumes.create("bad/name")
    assert e.value.status_code == 400
    v.remove()
    with pytest.raises(docker.errors.NotFound):
        client.volumes.get("apivol")


def test_volume_in_use_cannot_be_removed(client):
    c = client.containers.create("busybox", "true", volumes={"usedvol": {"bind": "/u", "mode": "rw"}})
    with pytest.raises(docker.errors.APIError) as e:
        client.volumes.get("usedvol").remove()
    assert e.value.status_code == 409 and "in use" in str(e.value)
    c.remove()
    client.volumes.get("usedvol").remove()


def test_image_volume_is_anonymous_with_copy_up(engine, client, image_with_volume):
    c = client.containers.run(image_with_volume, ["sh", "-c", "cat /data/seed.txt; echo new > /data/n"],
                              detach=True)
    c.wait(timeout=10)
    assert c.logs() == b"from-image\n"
    mounts = client.api.inspect_container(c.id)["Mounts"]
    vol = [m for m in mounts if m["Destination"] == "/data"][0]
    assert vol["Type"] == "volume" and len(vol["Name"]) == 64
    assert Path(vol["Source"], "n").read_text() == "new\n"
    assert Path(vol["Source"], "seed.txt").read_text() == "from-image\n"
    anon = client.volumes.get(vol["Name"])
    assert "com.docker.volume.anonymous" in (anon.attrs["Labels"] or {})
    c.remove(v=True)  # anonymous volumes go with -v
    with pytest.raises(docker.errors.NotFound):
        client.volumes.get(vol["Name"])


def test_dash_v_path_and_mount_type_volume(engine, client):
    c = client.containers.run("busybox", "sleep 30", detach=True, volumes=["/scratch"],
                              mounts=[docker.types.Mount("/m", None, type="volume")])
    dests = {m["Destination"]: m for m in client.api.inspect_container(c.id)["Mounts"]}
    assert dests["/scratch"]["Type"] == "volume" and dests["/m"]["Type"] == "volume"
    names = [dests["/scratch"]["Name"], dests["/m"]["Name"]]
    c.remove(force=True)  # without v the anonymous volumes stay, as with Docker
    for n in names:
        client.volumes.get(n).remove()


def test_prune_removes_only_unused_anonymous_by_default(client):
    keep_named = client.volumes.create("prune_named")
    c = client.containers.create("busybox", "true", volumes=["/anon"])
    anon = [m["Name"] for m in client.api.inspect_container(c.id)["Mounts"] if m["Type"] == "volume"][0]
    c.remove()
    res = client.volumes.prune()
    assert anon in (res["VolumesDeleted"] or [])
    assert "prune_named" not in (res["VolumesDeleted"] or [])
    res = client.api.prune_volumes(filters={"all": "true"})
    assert "prune_named" in (res["VolumesDeleted"] or [])
    assert keep_named.name == "prune_named"


def test_tmpfs_backed_volume(engine, client):
    r = engine.cli("volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs", "--opt", "o=size=2m", "tvol")
    assert r.returncode == 0, r.stderr
    out = client.containers.run("busybox", ["sh", "-c", "df -k /t | tail -1 | awk '{print $2}'"],
                                volumes={"tvol": {"bind": "/t", "mode": "rw"}}, remove=True)
    assert out.strip() == b"2048"
    client.volumes.get("tvol").remove()
    assert not any("tvol" in m for m in engine.mounts())


def test_system_df_lists_volumes(engine, client):
    client.volumes.create("dfvol")
    r = engine.cli("system", "df", "-v", "--format", "{{json .}}")
    assert r.returncode == 0, r.stderr
    assert b"dfvol" in r.stdout
    client.volumes.get("dfvol").remove()


def test_copy_up_never_follows_an_image_symlink_to_the_host(engine, client, tmp_path):
    """An image whose VOLUME path is a symlink to a host directory must not copy the host's files."""
    import tarfile

    secret_dir = tmp_path / "hostdir"
    secret_dir.mkdir()
    (secret_dir / "HOST-ONLY-SECRET").write_text("x")
    tar = make_busybox_rootfs_tar(tmp_path / "r.tar")
    with tarfile.open(tar, "a") as tf:
        ti = tarfile.TarInfo("data")
        ti.type, ti.linkname = tarfile.SYMTYPE, str(secret_dir)
        tf.addfile(ti)
        dirinfo = tarfile.TarInfo("specials")
        dirinfo.type, dirinfo.mode = tarfile.DIRTYPE, 0o755
        tf.addfile(dirinfo)
        for name, kind in (("specials/fakezero", tarfile.CHRTYPE), ("specials/fakefifo", tarfile.FIFOTYPE)):
            ti = tarfile.TarInfo(name)
            ti.type = kind
            ti.devmajor, ti.devminor = (1, 5) if kind == tarfile.CHRTYPE else (0, 0)
            tf.addfile(ti)
    r = engine.cli("import", "--change", "VOLUME /data", "--change", "VOLUME /specials", str(tar), "evilvol:1")
    assert r.returncode == 0, r.stderr
    out = client.containers.run("evilvol:1", ["sh", "-c", "ls -A /data; ls -l /specials"], remove=True)
    assert b"HOST-ONLY-SECRET" not in out  # the volume stayed empty: /data was a link, not a directory
    # special files are recreated, never read (reading 1:5 would copy zeros forever)
    assert b"fakefifo" in out and b"fakezero" in out
