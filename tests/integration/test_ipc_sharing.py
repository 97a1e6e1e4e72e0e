"""IpcMode `container:<id>` (compose's `ipc: service:x`) joins a shareable container's IPC.

The joiner sees the donor's IPC namespace and its /dev/shm (of the donor's ShmSize), as with
dockerd; a private donor is refused with moby's hint, a stopped one as not running, an unknown
one at create.  Through docker-py and docker-compose 1.29.
"""

from __future__ import annotations

import shutil
import subprocess

import docker.errors
import pytest

from engine_harness import uniq

pytestmark = pytest.mark.usefixtures("cleanup_containers")

HINT = "non-shareable IPC (hint: use IpcMode:shareable for the donor container)"


def shm_mounts(engine) -> list[str]:
    return [m for m in engine.mounts() if m.endswith("/shm")]


def test_joiner_shares_namespace_and_shm_of_a_shareable_donor(engine, client):
    donor = client.containers.run("busybox", "sleep 300", ipc_mode="shareable", shm_size="8m",
                                  name=uniq("ipcdonor"), detach=True)
    assert donor.exec_run(["sh", "-c", "echo from-donor > /dev/shm/a"]).exit_code == 0
    donor_ns = donor.exec_run(["readlink", "/proc/self/ns/ipc"]).output.decode().strip()

    out = client.containers.run(
        "busybox", ["sh", "-c", "cat /dev/shm/a; readlink /proc/self/ns/ipc; df -k /dev/shm | tail -1; "
                                "echo from-joiner > /dev/shm/b"],
        ipc_mode=f"container:{donor.name}", remove=True).decode().split("\n")
    assert out[0] == "from-donor" and out[1] == donor_ns
    assert out[2].split()[1] == "8192"  # the donor's 8 MiB tmpfs
    assert donor.exec_run(["cat", "/dev/shm/b"]).output == b"from-joiner\n"

    # the name is kept as the donor's full id; a joiner can be a donor in turn
    joiner = client.containers.run("busybox", "sleep 300", ipc_mode=f"container:{donor.name}", detach=True)
    assert joiner.attrs["HostConfig"]["IpcMode"] == f"container:{donor.id}"
    second = client.containers.run("busybox", ["cat", "/dev/shm/b"], ipc_mode=f"container:{joiner.id}",
                                   remove=True)
    assert second == b"from-joiner\n"

    # the donor's shm is unmounted with it; the joiner keeps using it
    assert shm_mounts(engine)
    donor.remove(force=True)
    assert not shm_mounts(engine)
    assert joiner.exec_run(["cat", "/dev/shm/a"]).output == b"from-donor\n"


def test_refusals_like_dockerd(client):
    """moby's getIPCContainer as of API v1.50 (dockerd 20.10 answered 500 "can't join IPC of
    container <id>: ..." for both start refusals)."""
    api = client.api
    private = client.containers.run("busybox", "sleep 300", detach=True)  # IpcMode private
    cid = api.create_container("busybox", ["true"],
                               host_config=api.create_host_config(ipc_mode=f"container:{private.id}"))["Id"]
    with pytest.raises(docker.errors.APIError) as e:
        api.start(cid)
    assert e.value.response.status_code == 400
    assert e.value.explanation == f"container {private.id}: {HINT}"

    stopped = client.containers.create("busybox", "true", ipc_mode="shareable")
    cid = api.create_container("busybox", ["true"],
                               host_config=api.create_host_config(ipc_mode=f"container:{stopped.id}"))["Id"]
    with pytest.raises(docker.errors.APIError) as e:
        api.start(cid)
    assert e.value.response.status_code == 409
    assert e.value.explanation == f"container {stopped.id} is not running"
    assert api.inspect_container(cid)["State"]["Status"] == "created"

    with pytest.raises(docker.errors.APIError) as e:
        api.create_container("busybox", ["true"], host_config=api.create_host_config(ipc_mode="container:nosuch"))
    assert e.value.response.status_code == 400 and e.value.explanation == "No such container: nosuch"


COMPOSE_FILE = """\
version: "2.4"
services:
  donor:
    image: busybox:latest
    command: sleep 300
    ipc: shareable
  joiner:
    image: busybox:latest
    command: sleep 300
    ipc: "service:donor"
"""


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
def test_compose_ipc_service(engine, api, tmp_path):
    (tmp_path / "docker-compose.yml").write_text(COMPOSE_FILE)
    project = uniq("ipc").replace("-", "")
    env = engine.docker_env

    def compose(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["docker-compose", "--ansi", "never", "-p", project, *args], cwd=tmp_path, env=env,
                              capture_output=True, timeout=300)

    try:
        r = compose("up", "-d")
        assert r.returncode == 0, r.stderr.decode() + engine.log_tail(2000)
        donor = api.inspect_container(f"{project}_donor_1")
        joiner = api.inspect_container(f"{project}_joiner_1")
        assert joiner["HostConfig"]["IpcMode"] == f"container:{donor['Id']}"
        engine.cli_ok("exec", donor["Id"], "sh", "-c", "echo via-compose > /dev/shm/c")
        assert engine.cli_ok("exec", joiner["Id"], "cat", "/dev/shm/c") == "via-compose\n"
    finally:
        compose("down", "-t", "1")
