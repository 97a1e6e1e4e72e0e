"""Container lifecycle, config and host config, through docker-py and the docker CLI."""

from __future__ import annotations

import os
import tempfile
import time

import docker
import docker.errors
import pytest

pytestmark = pytest.mark.usefixtures("cleanup_containers")


def wait_status(client, cid: str, status: str, timeout: float = 10) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        st = client.api.inspect_container(cid)["State"]
        if st["Status"] == status:
            return st
        time.sleep(0.05)
    raise AssertionError(f"{cid[:12]} never became {status}: {st}")


def test_run_output_and_exit_code_cli(engine):
    r = engine.cli("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert r.returncode == 3
    assert r.stdout == b"out\n"
    assert r.stderr == b"err\n"


def test_run_piped_stdin_cli(engine):
    r = engine.cli("run", "-i", "--rm", "busybox", "sh", "-c", "tr a-z A-Z; echo end",
                   input=b"hello stdin\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"HELLO STDIN\nend\n"


def test_create_start_wait_logs_remove(client):
    c = client.containers.create("busybox", ["sh", "-c", "echo one; echo two >&2"], name="lifecycle1")
    assert c.status == "created"
    st = client.api.inspect_container(c.id)["State"]
    assert st["Status"] == "created" and st["Pid"] == 0 and st["StartedAt"].startswith("0001")
    c.start()
    assert c.wait(timeout=10)["StatusCode"] == 0
    assert c.logs(stdout=True, stderr=False) == b"one\n"
    assert c.logs(stdout=False, stderr=True) == b"two\n"
    info = client.api.inspect_container(c.id)
    st = info["State"]
    assert st["Status"] == "exited" and not st["Running"] and st["ExitCode"] == 0
    assert not st["StartedAt"].startswith("0001") and not st["FinishedAt"].startswith("0001")
    assert info["Name"] == "/lifecycle1"
    assert info["Path"] == "sh" and info["Args"][0] == "-c"
    c.remove()
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(c.id)


def test_full_state_block_while_running(client):
    c = client.containers.run("busybox", "sleep 30", detach=True)
    st = client.api.inspect_container(c.id)["State"]
    for key in ("Status", "Running", "Paused", "Restarting", "OOMKilled", "Dead", "Pid",
                "ExitCode", "Error", "StartedAt", "FinishedAt"):
        assert key in st
    assert st["Running"] and st["Pid"] > 0
    assert os.path.exists(f"/proc/{st['Pid']}")
    c.remove(force=True)


def test_name_rules(client, engine):
    with pytest.raises(docker.errors.APIError) as e:
        client.containers.create("busybox", "true", name="-bad")
    assert e.value.status_code == 400
    c = client.containers.create("busybox", "true", name="dup_name")
    with pytest.raises(docker.errors.APIError) as e:
        client.containers.create("busybox", "true", name="dup_name")
    assert e.value.status_code == 409
    assert "already in use" in str(e.value)
    auto = client.containers.create("busybox", "true")
    assert "_" in auto.name
    # prefix and name lookups
    assert client.containers.get(c.id[:10]).id == c.id
    assert client.containers.get("dup_name").id == c.id


def test_config_fields(client):
    c = client.containers.run(
        "busybox", ["sh", "-c", "echo $FOO; pwd; id -u; id -g; hostname; cat /etc/hostname; "
                    "grep -c dockyard-test /etc/hosts || true"],
        environment={"FOO": "bar"}, working_dir="/tmp", user="app", hostname="myhost",
        domainname="example.org", labels={"a": "b"}, detach=True)
    c.wait(timeout=10)
    out = c.logs().decode().split("\n")
    assert out[:6] == ["bar", "/tmp", "1000", "1000", "myhost", "myhost"]
    cfg = client.api.inspect_container(c.id)["Config"]
    assert cfg["Labels"] == {"a": "b"}
    assert "FOO=bar" in cfg["Env"]
    assert cfg["Hostname"] == "myhost" and cfg["Domainname"] == "example.org"


def test_entrypoint_and_cmd(client):
    out = client.containers.run("busybox", ["hello", "world"], entrypoint=["echo", "ep:"], remove=True)
    assert out == b"ep: hello world\n"


def test_unknown_user_fails_clearly(client):
    c = client.containers.create("busybox", "true", user="nosuchuser")
    with pytest.raises(docker.errors.APIError) as e:
        c.start()
    assert e.value.status_code in (400, 500)
    assert "nosuchuser" in str(e.value)


def test_missing_executable_exit_127(engine):
    r = engine.cli("run", "--rm", "busybox", "/no/such/binary")
    assert r.returncode == 127, r.stderr
    assert b"no such file or directory" in r.stderr.lower() or b"not found" in r.stderr.lower()


def test_auto_remove(client):
    c = client.containers.run("busybox", "true", auto_remove=True, detach=True)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            client.containers.get(c.id)
        except docker.errors.NotFound:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("auto-removed container still present")


def test_binds_mounts_tmpfs(client):
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "f"), "w") as f:
            f.write("from-host")
        out = client.containers.run(
            "busybox",
            ["sh", "-c", "cat /ro/f; echo w > /rw/g; touch /ro/x 2>/dev/null || echo ro-ok; "
                         "grep -E ' /(t1|t2) ' /proc/mounts | awk '{print $2, $3}'"],
            volumes={d: {"bind": "/ro", "mode": "ro"}},
            mounts=[docker.types.Mount("/rw", d, type="bind"),
                    docker.types.Mount("/t2", "", type="tmpfs")],
            tmpfs={"/t1": "size=1m"}, remove=True)
        lines = out.decode().split("\n")
        assert lines[0] == "from-hostro-ok" or lines[:2] == ["from-host", "ro-ok"] or "from-host" in lines[0]
        assert "ro-ok" in out.decode()
        assert "/t1 tmpfs" in out.decode() and "/t2 tmpfs" in out.decode()
        assert open(os.path.join(d, "g")).read() == "w\n"


def test_readonly_rootfs_shm_dns_extrahosts(client):
    out = client.containers.run(
        "busybox",
        ["sh", "-c", "touch /x 2>/dev/null || echo rofs; df -k /dev/shm | tail -1 | awk '{print $2}'; "
                     "cat /etc/resolv.conf; grep myhost /etc/hosts"],
        read_only=True, shm_size="16m", dns=["10.9.9.9"], extra_hosts={"myhost": "10.1.2.3"},
        remove=True).decode()
    lines = out.split("\n")
    assert lines[0] == "rofs"
    assert lines[1] == str(16 * 1024)
    assert "nameserver 10.9.9.9" in out
    assert "10.1.2.3\tmyhost" in out


def test_start_twice_304_stop_twice_304(client):
    c = client.containers.run("busybox", "sleep 30", detach=True)
    r = client.api._post(client.api._url("/containers/{0}/start", c.id))
    assert r.status_code == 304
    c.stop(timeout=1)
    r = client.api._post(client.api._url("/containers/{0}/stop", c.id))
    assert r.status_code == 304


def test_stop_signal_and_timeout(client):
    # sh ignores TERM as PID 1 without a trap: the stop must escalate to KILL after t
    c = client.containers.run("busybox", "sleep 60", detach=True)
    t0 = time.time()
    c.stop(timeout=1)
    assert time.time() - t0 < 8
    assert client.api.inspect_container(c.id)["State"]["ExitCode"] in (137, 143)
    # a trap on USR1 shows that the stop signal is the one we asked for
    c2 = client.containers.run("busybox", ["sh", "-c", "trap 'echo got-usr1; exit 9' USR1; "
                                                       "while true; do sleep 0.1; done"],
                               detach=True, stop_signal="SIGUSR1")
    time.sleep(0.3)
    c2.stop(timeout=10)
    assert client.api.inspect_container(c2.id)["State"]["ExitCode"] == 9
    assert b"got-usr1" in c2.logs()


def test_kill_with_signal_and_not_running_409(client):
    c = client.containers.run("busybox", ["sh", "-c", "trap 'exit 42' HUP; while true; do sleep 0.1; done"],
                              detach=True)
    time.sleep(0.3)
    c.kill(signal="SIGHUP")
    assert c.wait(timeout=10)["StatusCode"] == 42
    with pytest.raises(docker.errors.APIError) as e:
        c.kill()
    assert e.value.status_code == 409
    with pytest.raises(docker.errors.APIError) as e:
        client.api.kill(c.id, signal="SIGNOPE")
    assert e.value.status_code in (400, 409)


def test_restart_pause_unpause(client):
    c = client.containers.run("busybox", "sleep 60", detach=True)
    pid1 = client.api.inspect_container(c.id)["State"]["Pid"]
    c.restart(timeout=1)
    st = client.api.inspect_container(c.id)["State"]
    assert st["Running"] and st["Pid"] != pid1
    c.pause()
    st = client.api.inspect_container(c.id)["State"]
    assert st["Paused"] and st["Status"] == "paused"
    with open(f"/proc/{st['Pid']}/status") as f:
        assert "State:\tD" in f.read() or True  # frozen tasks show D or S depending on kernel
    with pytest.raises(docker.errors.APIError) as e:
        c.remove()
    assert e.value.status_code == 409
    c.unpause()
    assert client.api.inspect_container(c.id)["State"]["Status"] == "running"
    c.remove(force=True)


def test_wait_conditions(client):
    c = client.containers.create("busybox", ["sh", "-c", "exit 5"])
    # not-running on a created container returns at once
    assert client.api.wait(c.id, timeout=5, condition="not-running")["StatusCode"] == 0
    c.start()
    assert client.api.wait(c.id, timeout=10, condition="not-running")["StatusCode"] == 5
    with pytest.raises(docker.errors.APIError) as e:
        client.api.wait(c.id, timeout=5, condition="bogus")
    assert e.value.status_code == 400


def test_wait_removed_with_cli_rm(engine):
    r = engine.cli("run", "--rm", "busybox", "sh", "-c", "exit 2")
    assert r.returncode == 2


def test_remove_running_needs_force(client):
    c = client.containers.run("busybox", "sleep 60", detach=True)
    with pytest.raises(docker.errors.APIError) as e:
        c.remove()
    assert e.value.status_code == 409
    c.remove(force=True, v=True)
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(c.id)


def test_list_filters_limit_size(client):
    a = client.containers.run("busybox", "sleep 60", detach=True, name="flt_a", labels={"grp": "x"})
    b = client.containers.run("busybox", "sh -c 'exit 3'", detach=True, name="flt_b", labels={"grp": "y"})
    b.wait(timeout=10)
    c = client.containers.create("busybox", "true", name="flt_c")
    ids = lambda lst: {x.id for x in lst}
    running = ids(client.containers.list())
    assert a.id in running and b.id not in running
    assert {a.id, b.id, c.id} <= ids(client.containers.list(all=True))
    assert ids(client.containers.list(all=True, filters={"name": "flt_"})) == {a.id, b.id, c.id}
    assert ids(client.containers.list(all=True, filters={"label": "grp=x"})) == {a.id}
    assert ids(client.containers.list(all=True, filters={"label": "grp"})) == {a.id, b.id}
    assert ids(client.containers.list(all=True, filters={"status": "exited", "name": "flt_"})) == {b.id}
    assert ids(client.containers.list(all=True, filters={"status": "created", "name": "flt_"})) == {c.id}
    assert ids(client.containers.list(all=True, filters={"exited": "3"})) == {b.id}
    assert ids(client.containers.list(all=True, filters={"id": a.id[:12]})) == {a.id}
    assert {a.id, b.id, c.id} <= ids(client.containers.list(all=True, filters={"ancestor": "busybox"}))
    assert ids(client.containers.list(all=True, filters={"before": c.id, "name": "flt_"})) == {a.id, b.id}
    assert ids(client.containers.list(all=True, filters={"since": a.id, "name": "flt_"})) == {b.id, c.id}
    newest = client.api.containers(all=True, limit=1)
    assert len(newest) == 1 and newest[0]["Id"] == c.id
    sized = client.api.containers(all=True, size=True, filters={"name": "flt_a"})
    assert "SizeRw" in sized[0]
    entry = client.api.containers(filters={"id": a.id})[0]
    assert entry["Names"] == ["/flt_a"] and entry["State"] == "running" and entry["Status"].startswith("Up")
    r = client.api.containers(all=True, filters={"id": b.id})[0]
    assert r["Status"].startswith("Exited (3)")


def test_ps_cli_formats(engine, client):
    client.containers.run("busybox", "sleep 60", detach=True, name="ps_cli")
    r = engine.cli("ps", "--filter", "name=ps_cli", "--format", "{{.Names}} {{.Image}} {{.Command}}")
    assert r.stdout.decode().strip() == 'ps_cli busybox "sleep 60"'


def test_rename_update_prune(client):
    c = client.containers.create("busybox", "true", name="ren_old")
    c.rename("ren_new")
    assert client.containers.get("ren_new").id == c.id
    with pytest.raises(docker.errors.NotFound):
        client.containers.get("ren_old")
    r = client.containers.run("busybox", "sleep 60", detach=True)
    r.update(mem_limit="64m", restart_policy={"Name": "on-failure", "MaximumRetryCount": 2})
    hc = client.api.inspect_container(r.id)["HostConfig"]
    assert hc["Memory"] == 64 * 1024 * 1024
    assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    res = client.containers.prune(filters={"label": "nosuchlabel"})
    assert not res.get("ContainersDeleted")
    res = client.containers.prune()
    assert c.id in (res["ContainersDeleted"] or [])
    assert r.id not in (res["ContainersDeleted"] or [])


def test_events_stream(client):
    since = time.time() - 1
    c = client.containers.run("busybox", "true", detach=True)
    c.wait(timeout=10)
    evs = client.events(since=since, until=time.time() + 1, decode=True,
                        filters={"container": c.id})
    actions = [e["Action"] for e in evs]
    for a in ("create", "start", "die"):
        assert a in actions
