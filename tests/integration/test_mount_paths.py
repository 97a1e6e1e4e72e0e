"""Paths inside volumes and bind mounts, as dockerd resolves them: `docker cp` / put_archive /
get_archive / HEAD archive through the container's mounts (running or not), and
`--volumes-from` (anonymous and named volumes, bind mounts, :ro / :rw)."""

from __future__ import annotations

import io
import os
import tarfile

import docker.errors
import pytest

from engine_harness import uniq

pytestmark = pytest.mark.usefixtures("cleanup_containers")


def _tar(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _untar_one(bits) -> tuple[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(b"".join(bits))) as tf:
        m = next(x for x in tf.getmembers() if x.isfile())
        return m.name, tf.extractfile(m).read()


@pytest.fixture
def named_volume(client):
    name = uniq("mp")
    yield name
    for c in client.containers.list(all=True, filters={"volume": name}):
        c.remove(force=True)
    try:
        client.volumes.get(name).remove(force=True)
    except docker.errors.NotFound:
        pass


@pytest.mark.parametrize("started", [False, True])
def test_archive_paths_inside_volumes_and_binds(engine, client, tmp_path, named_volume, started):
    bind_dir = tmp_path / "bind"
    bind_dir.mkdir()
    (bind_dir / "host.txt").write_bytes(b"from the host\n")
    c = client.containers.create(
        "busybox", ["sleep", "300"],
        volumes=[f"{named_volume}:/vol1", "/anon", f"{bind_dir}:/srv/bind", f"{tmp_path}:/ro:ro"])
    if started:
        c.start()
    # put into a named volume, an anonymous one and a bind mount
    assert c.put_archive("/vol1", _tar("in-vol.txt", b"vol data\n"))
    assert c.put_archive("/anon", _tar("in-anon.txt", b"anon data\n"))
    assert c.put_archive("/srv/bind", _tar("in-bind.txt", b"bind data\n"))
    assert (bind_dir / "in-bind.txt").read_bytes() == b"bind data\n"
    vol_dir = client.volumes.get(named_volume).attrs["Mountpoint"]
    assert open(os.path.join(vol_dir, "in-vol.txt"), "rb").read() == b"vol data\n"
    # read back, and stat (HEAD)
    assert _untar_one(c.get_archive("/srv/bind/host.txt")[0]) == ("host.txt", b"from the host\n")
    bits, st = c.get_archive("/vol1/in-vol.txt")
    assert _untar_one(bits) == ("in-vol.txt", b"vol data\n") and st["size"] == 9
    assert client.api.head(client.api._url("/containers/{0}/archive", c.id),
                           params={"path": "/anon/in-anon.txt"}).status_code == 200
    # a directory that holds a mount point shows the mount's content, as dockerd does
    bits, _ = c.get_archive("/srv")
    with tarfile.open(fileobj=io.BytesIO(b"".join(bits))) as tf:
        assert "srv/bind/host.txt" in tf.getnames()
    # read-only mount: dockerd's 400
    with pytest.raises(docker.errors.APIError) as e:
        c.put_archive("/ro", _tar("no.txt", b"x"))
    assert e.value.status_code == 400 and "mounted volume is marked read-only" in str(e.value)
    assert not (tmp_path / "no.txt").exists()
    # the docker CLI both ways
    src = tmp_path / "cli.txt"
    src.write_bytes(b"cli\n")
    engine.cli_ok("cp", str(src), f"{c.id}:/vol1/")
    out = tmp_path / "out"
    out.mkdir()
    engine.cli_ok("cp", f"{c.id}:/vol1/cli.txt", str(out))
    assert (out / "cli.txt").read_bytes() == b"cli\n"
    if not started:  # what was copied in is there when the container runs
        c.start()
    r = c.exec_run(["cat", "/vol1/in-vol.txt", "/anon/in-anon.txt", "/srv/bind/in-bind.txt"])
    assert r.output == b"vol data\nanon data\nbind data\n"


def test_symlink_in_a_volume_cannot_reach_the_host(engine, client, tmp_path, named_volume):
    secret = tmp_path / "secret"
    secret.mkdir()
    c = client.containers.create("busybox", ["true"], volumes=[f"{named_volume}:/vol1"])
    vol_dir = client.volumes.get(named_volume).attrs["Mountpoint"]
    os.symlink(str(secret), os.path.join(vol_dir, "escape"))
    # the link resolves inside the container (where it leads nowhere), never to the host's dir
    with pytest.raises(docker.errors.APIError):
        c.put_archive("/vol1/escape", _tar("planted.txt", b"x"))
    assert os.listdir(secret) == []
    with pytest.raises(docker.errors.NotFound):
        c.get_archive(f"/vol1/escape/../../../../{tmp_path}/secret")
    # a link pointing out of a mount to a container path is followed inside the container
    os.symlink("/etc", os.path.join(vol_dir, "etc-link"))
    assert _untar_one(c.get_archive("/vol1/etc-link/passwd")[0])[1].startswith(b"root:")


def test_volumes_from_sees_anonymous_named_and_bind_mounts(client, tmp_path, named_volume):
    bind_dir = tmp_path / "b"
    bind_dir.mkdir()
    first = client.containers.run(
        "busybox", ["sh", "-c", "echo shared > /shared/f; echo named > /named/f; echo bound > /bound/f"],
        volumes=["/shared", f"{named_volume}:/named", f"{bind_dir}:/bound"], detach=True)
    assert first.wait(timeout=60)["StatusCode"] == 0
    out = client.containers.run("busybox", ["cat", "/shared/f", "/named/f", "/bound/f"],
                                volumes_from=[first.id], remove=True)
    assert out == b"shared\nnamed\nbound\n"
    # :ro makes every inherited mount read-only; :rw keeps them writable
    second = client.containers.run("busybox", ["sh", "-c", "echo x > /shared/g"],
                                   volumes_from=[f"{first.name}:ro"], detach=True)
    assert second.wait(timeout=60)["StatusCode"] != 0
    info = client.api.inspect_container(second.id)
    assert info["HostConfig"]["VolumesFrom"] == [f"{first.name}:ro"]
    mounts = {m["Destination"]: m for m in info["Mounts"]}
    assert set(mounts) >= {"/shared", "/named", "/bound"}
    assert not any(mounts[d]["RW"] for d in ("/shared", "/named", "/bound"))
    assert mounts["/shared"]["Name"] == next(m["Name"] for m in first.attrs["Mounts"]
                                              if m["Destination"] == "/shared")
    third = client.containers.run("busybox", ["sh", "-c", "echo y > /shared/g; cat /shared/g"],
                                  volumes_from=[f"{first.id}:rw"], detach=True)
    assert third.wait(timeout=60)["StatusCode"] == 0 and third.logs() == b"y\n"
    # the container's own mount wins over an inherited one at the same destination
    own = tmp_path / "own"
    own.mkdir()
    (own / "f").write_text("own\n")
    out = client.containers.run("busybox", ["cat", "/shared/f"], volumes_from=[first.id],
                                volumes=[f"{own}:/shared"], remove=True)
    assert out == b"own\n"
    # the anonymous volume is in use by the second container
    anon = next(m["Name"] for m in first.attrs["Mounts"] if m["Destination"] == "/shared")
    with pytest.raises(docker.errors.APIError) as e:
        client.volumes.get(anon).remove()
    assert e.value.status_code == 409


def test_volumes_from_errors(client):
    with pytest.raises(docker.errors.NotFound):
        client.containers.create("busybox", "true", volumes_from=["nosuchcontainer"])
    src = client.containers.create("busybox", "true", volumes=["/x"])
    with pytest.raises(docker.errors.APIError) as e:
        client.containers.create("busybox", "true", volumes_from=[f"{src.id}:bogus"])
    assert e.value.status_code == 400 and "invalid mode: bogus" in str(e.value)
