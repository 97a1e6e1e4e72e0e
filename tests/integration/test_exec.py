"""`docker exec`: output, stdin, exit codes, env/user/workdir, TTY, detach, inspect, errors."""

from __future__ import annotations

import time

import docker.errors
import pytest

pytestmark = pytest.mark.usefixtures("cleanup_containers")


@pytest.fixture
def running(client):
    c = client.containers.run("busybox", "sleep 300", detach=True, environment={"BASE": "1"})
    yield c


def test_exec_output_and_exit_code_cli(engine, running):
    r = engine.cli("exec", running.id, "sh", "-c", "echo out; echo err >&2; exit 7")
    assert (r.returncode, r.stdout, r.stderr) == (7, b"out\n", b"err\n")


def test_exec_stdin_env_user_workdir(engine, running):
    r = engine.cli("exec", "-i", "-e", "X=42", "-u", "app", "-w", "/tmp", running.id,
                   "sh", "-c", "read l; echo $l $X $BASE $(id -u) $(pwd)", input=b"hello\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"hello 42 1 1000 /tmp\n"


def test_exec_docker_py_and_inspect(client, running):
    res = running.exec_run(["sh", "-c", "echo via-py; exit 3"])
    assert res.exit_code == 3 and res.output == b"via-py\n"
    eid = client.api.exec_create(running.id, ["sleep", "0.3"])["Id"]
    client.api.exec_start(eid, detach=True)
    info = client.api.exec_inspect(eid)
    assert info["Running"] and info["Pid"] > 0 and info["ContainerID"] == running.id
    time.sleep(1)
    info = client.api.exec_inspect(eid)
    assert not info["Running"] and info["ExitCode"] == 0
    assert eid in client.api.inspect_container(running.id)["ExecIDs"]
    with pytest.raises(docker.errors.APIError) as e:
        client.api.exec_start(eid)
    assert e.value.status_code == 409


def test_exec_tty(engine, running):
    import subprocess
    r = subprocess.run(["script", "-eqc", f"docker exec -it {running.id} sh -c 'tty; exit 4'", "/dev/null"],
                       env=engine.docker_env, capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == 4
    assert b"/dev/pts/" in r.stdout


def test_exec_errors(client, engine):
    stopped = client.containers.create("busybox", "true")
    with pytest.raises(docker.errors.APIError) as e:
        client.api.exec_create(stopped.id, ["true"])
    assert e.value.status_code == 409
    with pytest.raises(docker.errors.NotFound):
        client.api.exec_inspect("nosuchexec")
    c = client.containers.run("busybox", "sleep 300", detach=True)
    r = engine.cli("exec", c.id, "/no/such/binary")
    assert r.returncode in (126, 127)
    resp = client.api._post_json(client.api._url("/containers/{0}/exec", c.id), data={"Cmd": "x", "Env": "bad"})
    assert resp.status_code == 400
