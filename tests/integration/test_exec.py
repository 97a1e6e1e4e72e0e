"""`docker exec`: output, stdin, exit codes, env/user/workdir, TTY, detach, inspect, errors."""

from __future__ import annotations

import time

import docker.errors
import pytest

from engine_harness import tmux, tmux_argv

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


def test_exec_start_frames_by_the_tty_of_the_start_request(client, running):
    """dockerd frames by the *start* request's Tty: an exec created with a TTY and started
    without one (docker-py's exec_start default) is read as 8-byte frames, and the reverse raw."""
    eid = client.api.exec_create(running.id, ["sh", "-c", "echo hello out; tty"], tty=True)["Id"]
    out = client.api.exec_start(eid)  # tty=False: docker-py demultiplexes
    assert out.startswith(b"hello out\r\n/dev/pts/"), out
    eid = client.api.exec_create(running.id, ["sh", "-c", "echo plain; echo err >&2"])["Id"]
    out = client.api.exec_start(eid, tty=True)  # raw: both streams as they come
    assert sorted(out.split()) == [b"err", b"plain"], out
    res = running.exec_run(["sh", "-c", "echo both"], tty=True)
    assert (res.exit_code, res.output) == (0, b"both\r\n")


def test_exec_detach_keys_in_any_letter_case(client, running):
    """docker-py sends `detachKeys` (its own or the config file's): Go's decoder takes any case."""
    eid = client.api.exec_create(running.id, ["cat"], stdin=True, tty=True, detach_keys="ctrl-x,x")["Id"]
    assert client.api.exec_inspect(eid)["DetachKeys"] == "ctrl-x,x"
    sock = client.api.exec_start(eid, tty=True, socket=True)._sock
    try:
        sock.settimeout(60)
        sock.sendall(b"echo-me\n")
        seen = b""
        while seen.count(b"echo-me") < 2:  # the terminal's echo, then cat's copy
            chunk = sock.recv(4096)
            assert chunk, seen
            seen += chunk
        sock.sendall(b"\x18x")  # ctrl-x x: the engine detaches the client
        while sock.recv(4096):
            pass
    finally:
        sock.close()
    assert client.api.exec_inspect(eid)["Running"]  # cat lives on


@pytest.mark.skipif(__import__("shutil").which("tmux") is None, reason="tmux not installed")
def test_exec_it_detaches_with_the_config_files_detach_keys(engine, client, running, tmp_path):
    """`detachKeys` in ~/.docker/config.json detaches `docker exec -it`; the process lives on."""
    import json
    import os
    import subprocess
    (tmp_path / "config.json").write_text(json.dumps({"detachKeys": "ctrl-x,x"}))
    session = f"dyx{os.getpid()}"
    subprocess.run(tmux_argv("new-session", "-d", "-s", session, "-x", "100", "-y", "30",
                      f"env DOCKER_HOST={engine.docker_env['DOCKER_HOST']} DOCKER_CONFIG={tmp_path} "
                      f"docker exec -it {running.id} sh -c 'echo READY; exec sleep 1234'; "
                      "echo DETACHED=$?; sleep 60"), check=True)
    try:
        def screen() -> str:
            return tmux("capture-pane", "-p", "-t", session)

        deadline = time.time() + 60
        while "READY" not in screen() and time.time() < deadline:
            time.sleep(0.2)
        assert "READY" in screen(), screen()
        tmux("send-keys", "-t", session, "C-x", "x")
        deadline = time.time() + 60
        while "DETACHED=" not in screen() and time.time() < deadline:
            time.sleep(0.2)
        # the CLI notices its escape keys itself and ends with "read escape sequence" (status 1)
        assert "read escape sequence" in screen() and "DETACHED=1" in screen(), screen()
        ids = client.api.inspect_container(running.id)["ExecIDs"]
        assert any(client.api.exec_inspect(i)["Running"] for i in ids)  # detached, not ended
        top = client.api.top(running.id)
        assert any("sleep 1234" in " ".join(p) for p in top["Processes"])
    finally:
        subprocess.run(tmux_argv("kill-session", "-t", session), capture_output=True)
