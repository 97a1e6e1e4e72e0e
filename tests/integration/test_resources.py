"""Resource limits through a real `dockyard engine`: what `docker run` and
`docker update` ask for is what the container's cgroup holds (read on the host
and from inside), the OOM killer is reported in State, `--init` runs tini, and
`docker stats` / `docker top` show the container's figures.

The cgroup files are found through dockyard's own driver (v1 or v2, whichever
runc uses on this host); the names differ between the layouts, the values do
not.
"""

from __future__ import annotations

import json
import os
import time

import docker.errors
import pytest

from dockyard.runtime import cgroups

pytestmark = pytest.mark.usefixtures("cleanup_containers")

MiB = 1024 * 1024
DRIVER = cgroups.detect()  # re-made with the session engine's own cgroup parent below
V1 = DRIVER.version == 1


@pytest.fixture(autouse=True)
def _engine_cgroups(engine):
    """The session engine's containers live under its own parent (by its exec root)."""
    global DRIVER
    DRIVER = cgroups.detect(cgroups.engine_parent(engine.exec_root))


# ------------------------------------------------------------------ helpers

def cg_file(cid: str, v1: tuple[str, str], v2: str) -> str:
    """Host path of a container's cgroup file: v1 (controller, file) or v2 file."""
    if V1:
        ctrl, name = v1
        d = DRIVER._cg(ctrl, cid)  # type: ignore[attr-defined]
        assert d, f"no {ctrl} hierarchy"
        return os.path.join(d, name)
    return os.path.join(DRIVER._cg(cid), v2)  # type: ignore[attr-defined]


def read_cg(cid: str, v1: tuple[str, str], v2: str) -> str:
    with open(cg_file(cid, v1, v2)) as f:
        return f.read().strip()


MEM_LIMIT = (("memory", "memory.limit_in_bytes"), "memory.max")
CPU_SHARES = ("cpu", "cpu.shares")
PIDS_MAX = (("pids", "pids.max"), "pids.max")
CPUSET = (("cpuset", "cpuset.cpus"), "cpuset.cpus")


def cpu_quota_period(cid: str) -> tuple[str, str]:
    if V1:
        return (read_cg(cid, ("cpu", "cpu.cfs_quota_us"), ""),
                read_cg(cid, ("cpu", "cpu.cfs_period_us"), ""))
    quota, period = read_cg(cid, ("", ""), "cpu.max").split()
    return ("-1" if quota == "max" else quota), period


def swap_total(cid: str) -> int | None:
    """Memory+swap limit in bytes (v1 memsw; v2 memory.max + memory.swap.max)."""
    if V1:
        p = cg_file(cid, ("memory", "memory.memsw.limit_in_bytes"), "")
        return int(open(p).read()) if os.path.exists(p) else None
    p = cg_file(cid, ("", ""), "memory.swap.max")
    if not os.path.exists(p):
        return None
    return int(read_cg(cid, ("", ""), "memory.max")) + int(open(p).read())


def wait_exit(client, cid: str, timeout: float = 60) -> dict:
    client.api.wait(cid, timeout=timeout)
    return client.api.inspect_container(cid)["State"]


def sleeper(client, **kw):
    return client.containers.run("busybox", ["sleep", "300"], detach=True, **kw)


# ------------------------------------------------------------------ memory

def test_memory_and_swap_limits(client):
    c = sleeper(client, mem_limit="32m", memswap_limit="64m")
    assert int(read_cg(c.id, *MEM_LIMIT)) == 32 * MiB
    total = swap_total(c.id)
    if total is not None:
        assert total == 64 * MiB
    hc = client.api.inspect_container(c.id)["HostConfig"]
    assert hc["Memory"] == 32 * MiB
    assert hc["MemorySwap"] == 64 * MiB


def test_memory_swap_defaults_to_twice_memory(client):
    c = sleeper(client, mem_limit="16m")
    assert int(read_cg(c.id, *MEM_LIMIT)) == 16 * MiB
    if DRIVER.swap_accounting():
        assert swap_total(c.id) == 32 * MiB
        assert client.api.inspect_container(c.id)["HostConfig"]["MemorySwap"] == 32 * MiB


def test_memory_limit_visible_inside(engine):
    if not V1:
        pytest.skip("v1 path inside the container")
    r = engine.cli("run", "--rm", "-m", "24m", "busybox", "cat",
                   "/sys/fs/cgroup/memory/memory.limit_in_bytes")
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) == 24 * MiB


def test_memory_errors_are_400(client):
    for kw, msg in (({"mem_limit": "1m"}, "Minimum memory limit allowed is 6MB"),
                    ({"mem_limit": "32m", "memswap_limit": "16m"}, "memoryswap limit should be larger")):
        with pytest.raises(docker.errors.APIError) as ei:
            client.containers.create("busybox", "true", **kw)
        assert ei.value.response.status_code == 400
        assert msg in ei.value.explanation


def test_oom_killer_reported_in_state(client, engine):
    # the shell doubles a string until the 8 MiB limit (no swap) is hit
    c = client.containers.run("busybox", ["sh", "-c", 'x=a; while :; do x="$x$x"; done'],
                              detach=True, mem_limit="8m", memswap_limit="8m")
    st = wait_exit(client, c.id)
    assert st["OOMKilled"] is True, st
    assert st["ExitCode"] == 137
    assert st["Status"] == "exited"
    r = engine.cli("inspect", "-f", "{{.State.OOMKilled}} {{.State.ExitCode}}", c.id)
    assert r.stdout.decode().split() == ["true", "137"]


def test_normal_exit_is_not_oom(client):
    c = client.containers.run("busybox", ["sh", "-c", "exit 3"], detach=True, mem_limit="32m")
    st = wait_exit(client, c.id)
    assert st["OOMKilled"] is False
    assert st["ExitCode"] == 3


def test_oom_kill_disable_accepted(client):
    c = sleeper(client, mem_limit="32m", oom_kill_disable=True)
    assert client.api.inspect_container(c.id)["HostConfig"]["OomKillDisable"] is True
    if V1:
        kv = dict(line.split() for line in
                  read_cg(c.id, ("memory", "memory.oom_control"), "").splitlines())
        assert kv["oom_kill_disable"] == "1"


# --------------------------------------------------------------------- cpu

def test_nano_cpus(client):
    c = sleeper(client, nano_cpus=500_000_000)
    assert cpu_quota_period(c.id) == ("50000", "100000")
    assert client.api.inspect_container(c.id)["HostConfig"]["NanoCpus"] == 500_000_000


def test_cpus_cli(engine):
    r = engine.cli("run", "-d", "--cpus", "1.5", "busybox", "sleep", "300")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.decode().strip()
    assert cpu_quota_period(cid) == ("150000", "100000")


def test_cpu_quota_and_period(client):
    c = sleeper(client, cpu_quota=30000, cpu_period=60000)
    assert cpu_quota_period(c.id) == ("30000", "60000")


def test_cpu_shares(client):
    c = sleeper(client, cpu_shares=512)
    if V1:
        assert read_cg(c.id, CPU_SHARES, "") == "512"
    else:
        # runc converts shares to cgroup v2 weight: 1 + ((shares-2)*9999)/262142
        assert read_cg(c.id, ("", ""), "cpu.weight") == str(1 + ((512 - 2) * 9999) // 262142)


def test_cpuset_cpus(client):
    c = sleeper(client, cpuset_cpus="0")
    assert read_cg(c.id, *CPUSET) == "0"
    with pytest.raises(docker.errors.APIError) as ei:
        client.containers.run("busybox", "true", cpuset_cpus="4096", remove=True)
    assert ei.value.response.status_code == 400
    assert "Requested CPUs are not available" in ei.value.explanation


def test_cpuset_refused_at_create_like_docker(client):
    with pytest.raises(docker.errors.APIError) as ei:
        client.containers.create("busybox", "true", cpuset_cpus="4096")
    assert ei.value.response.status_code == 400
    assert "Requested CPUs are not available" in ei.value.explanation


def test_cpu_errors_are_400(client):
    ncpu = os.cpu_count() or 1
    with pytest.raises(docker.errors.APIError) as ei:
        client.containers.create("busybox", "true", nano_cpus=(ncpu + 1) * 1_000_000_000)
    assert ei.value.response.status_code == 400
    assert "Range of CPUs" in ei.value.explanation
    with pytest.raises(docker.errors.APIError) as ei:
        client.containers.create("busybox", "true", nano_cpus=1_000_000_000, cpu_quota=50000)
    assert ei.value.response.status_code == 400


# -------------------------------------------------------------- pids, blkio

def test_pids_limit_contains_a_fork_bomb(engine):
    # a bounded "bomb" (100 sleepers), safe for the host even if the limit failed
    r = engine.cli("run", "--name", "pidsbomb", "--pids-limit", "20", "busybox", "sh", "-c",
                   "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max; "
                   "for i in $(seq 100); do sleep 60 & done; echo survived", timeout=120)
    assert r.stdout.decode().splitlines()[0] == "20"
    assert r.returncode != 0
    assert b"can't fork" in r.stderr or b"Resource temporarily unavailable" in r.stderr
    assert b"survived" not in r.stdout


def test_pids_limit_in_cgroup(client):
    c = sleeper(client, pids_limit=33)
    assert read_cg(c.id, *PIDS_MAX) == "33"
    assert client.api.inspect_container(c.id)["HostConfig"]["PidsLimit"] == 33


def test_blkio_weight(client):
    if not DRIVER.blkio_weight_supported():
        pytest.skip("the kernel has no blkio/io weight here")
    c = sleeper(client, blkio_weight=300)
    if V1:
        names = ("blkio.weight", "blkio.bfq.weight")
        for n in names:
            p = cg_file(c.id, ("blkio", n), "")
            if os.path.exists(p):
                assert open(p).read().split()[-1] == "300"
                break
        else:
            raise AssertionError("no blkio weight file")
    else:
        for n in ("io.bfq.weight", "io.weight"):
            p = cg_file(c.id, ("", ""), n)
            if os.path.exists(p):
                assert open(p).read().split()[-1] != ""
                break


# ------------------------------------------------------------------ update

def test_update_changes_limits_live(client, engine):
    c = sleeper(client, mem_limit="64m", nano_cpus=1_000_000_000, pids_limit=50, cpu_shares=1024)
    assert int(read_cg(c.id, *MEM_LIMIT)) == 64 * MiB
    pid = client.api.inspect_container(c.id)["State"]["Pid"]
    r = engine.cli("update", "-m", "128m", "--memory-swap", "256m", "--cpus", "0.5",
                   "--cpu-shares", "256", "--pids-limit", "30", c.id)
    assert r.returncode == 0, r.stderr
    assert int(read_cg(c.id, *MEM_LIMIT)) == 128 * MiB
    total = swap_total(c.id)
    if total is not None:
        assert total == 256 * MiB
    assert cpu_quota_period(c.id) == ("50000", "100000")
    assert read_cg(c.id, *PIDS_MAX) == "30"
    if V1:
        assert read_cg(c.id, CPU_SHARES, "") == "256"
    info = client.api.inspect_container(c.id)
    hc = info["HostConfig"]
    assert (hc["Memory"], hc["MemorySwap"], hc["NanoCpus"], hc["PidsLimit"], hc["CpuShares"]) == \
        (128 * MiB, 256 * MiB, 500_000_000, 30, 256)
    # the same process, still running: the limits changed under it
    assert info["State"]["Running"] and info["State"]["Pid"] == pid
    # docker-py's update_container too
    client.api.update_container(c.id, mem_limit="96m", memswap_limit="192m")
    assert int(read_cg(c.id, *MEM_LIMIT)) == 96 * MiB
    # Docker refuses a quota on a container whose CPUs were set as NanoCpus
    with pytest.raises(docker.errors.APIError) as ei:
        client.api.update_container(c.id, cpu_quota=20000)
    assert ei.value.response.status_code == 409
    assert cpu_quota_period(c.id) == ("50000", "100000")


def test_update_quota_and_period_live(client):
    c = sleeper(client, cpu_quota=50000, cpu_period=100000)
    client.api.update_container(c.id, cpu_quota=20000, cpu_period=80000)
    assert cpu_quota_period(c.id) == ("20000", "80000")


def test_update_pids_and_cpuset_live(client):
    c = sleeper(client)
    client.api.update_container(c.id, cpuset_cpus="0")
    assert read_cg(c.id, *CPUSET) == "0"
    r = client.api._post_json(client.api._url("/containers/{0}/update", c.id),
                              data={"PidsLimit": 12})
    client.api._raise_for_status(r)
    assert read_cg(c.id, *PIDS_MAX) == "12"


def test_update_invalid_is_400(client):
    c = sleeper(client, mem_limit="64m")
    with pytest.raises(docker.errors.APIError) as ei:
        client.api.update_container(c.id, mem_limit="1m")
    assert ei.value.response.status_code == 400
    assert int(read_cg(c.id, *MEM_LIMIT)) == 64 * MiB


# -------------------------------------------------------------------- init

def test_init_runs_tini_as_pid1(engine):
    r = engine.cli("run", "--rm", "--init", "busybox", "sh", "-c", "cat /proc/1/comm; ps -o pid,args")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert lines[0] in ("docker-init", "tini", "tini-static")
    pid1 = next(line for line in lines[1:] if line.split()[0] == "1")
    assert "sh -c" in pid1 or "--" in pid1  # init with our command as its child
    assert any("ps -o" in line and line.split()[0] != "1" for line in lines[1:])
    # without --init the command itself is PID 1
    r = engine.cli("run", "--rm", "busybox", "cat", "/proc/1/comm")
    assert r.stdout.decode().strip() == "cat"


def test_init_forwards_signals_and_exit_code(client):
    c = client.containers.run("busybox", ["sh", "-c", "sleep 300"], detach=True, init=True)
    assert client.api.inspect_container(c.id)["HostConfig"]["Init"] is True
    # A SIGTERM that reaches tini (the namespace's PID 1) before it blocked signals is dropped
    # by the kernel (no handler yet), and the stop ends in SIGKILL: dockerd has the same race.
    # tini blocks them before it spawns its child, so wait for the child.
    deadline = time.monotonic() + 60
    while not any("sleep 300" in " ".join(p) for p in c.top()["Processes"]):
        assert time.monotonic() < deadline, c.top()
        time.sleep(0.05)
    c.stop(timeout=10)
    st = client.api.inspect_container(c.id)["State"]
    # tini passes SIGTERM to sh, which dies of it: 143, not a SIGKILL after the timeout
    assert st["ExitCode"] == 143, st


# ------------------------------------------------------------------- stats

def test_stats_one_shot(client):
    c = sleeper(client, mem_limit="64m", pids_limit=40)
    s = c.stats(stream=False, one_shot=True)
    assert s["id"] == c.id and s["name"] == "/" + c.name
    assert s["memory_stats"]["limit"] == 64 * MiB
    assert 0 < s["memory_stats"]["usage"] <= 64 * MiB
    assert s["pids_stats"]["current"] >= 1
    assert s["pids_stats"].get("limit") == 40
    assert s["cpu_stats"]["system_cpu_usage"] > 0
    assert s["cpu_stats"]["online_cpus"] >= 1
    assert s["precpu_stats"].get("system_cpu_usage", 0) == 0
    assert s["preread"] == "0001-01-01T00:00:00Z"
    assert "eth0" in s["networks"]
    assert set(s["networks"]["eth0"]) >= {"rx_bytes", "rx_packets", "tx_bytes", "tx_packets"}


def test_stats_no_stream_has_precpu(client):
    c = client.containers.run("busybox", ["sh", "-c", "while :; do :; done"], detach=True,
                              nano_cpus=500_000_000)
    s = c.stats(stream=False)
    pre, cur = s["precpu_stats"], s["cpu_stats"]
    assert pre["system_cpu_usage"] > 0
    assert cur["system_cpu_usage"] > pre["system_cpu_usage"]
    assert cur["cpu_usage"]["total_usage"] > pre["cpu_usage"]["total_usage"]
    assert s["preread"] != "0001-01-01T00:00:00Z"


def test_stats_stream_chains_samples(client):
    c = sleeper(client)
    frames = []
    for frame in c.stats(stream=True, decode=True):
        frames.append(frame)
        if len(frames) == 3:
            break
    assert frames[0]["preread"] == "0001-01-01T00:00:00Z"
    for prev, cur in zip(frames, frames[1:]):
        assert cur["preread"] == prev["read"]
        assert cur["precpu_stats"] == prev["cpu_stats"]


def test_stats_stream_ends_when_container_is_removed(engine, client):
    c = sleeper(client)
    resp = engine.api()._get(engine.api()._url("/containers/{0}/stats", c.id), stream=True)
    lines = resp.iter_lines()
    assert json.loads(next(lines))["id"] == c.id
    c.remove(force=True)
    rest = list(lines)  # returns: the stream ends with the container
    assert all(json.loads(x)["id"] == c.id for x in rest if x)


def test_stats_cli_no_stream(engine, client):
    c = client.containers.run("busybox", ["sh", "-c", "while :; do :; done"], detach=True,
                              nano_cpus=500_000_000, mem_limit="64m", name="statsbusy")
    r = engine.cli("stats", "--no-stream", "--format", "{{json .}}", c.id)
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout)
    assert row["Name"] == "statsbusy"
    cpu = float(row["CPUPerc"].rstrip("%"))
    assert 0 < cpu <= 100 * (os.cpu_count() or 1)
    assert cpu < 80  # limited to half a CPU
    usage, limit = (x.strip() for x in row["MemUsage"].split("/"))
    assert limit == "64MiB"
    assert usage != "0B"
    assert row["PIDs"] == "1"
    # the table form, as people read it
    r = engine.cli("stats", "--no-stream", c.id)
    header, line = r.stdout.decode().splitlines()
    assert header.split()[:4] == ["CONTAINER", "ID", "NAME", "CPU"]
    assert "/ 64MiB" in line


def test_stats_of_stopped_container(client):
    c = client.containers.create("busybox", "true")
    s = c.stats(stream=False)
    assert s["id"] == c.id and s["name"] == "/" + c.name
    assert s["read"] == "0001-01-01T00:00:00Z"
    assert s["memory_stats"] == {} and s["pids_stats"] == {}
    assert s["cpu_stats"]["cpu_usage"]["total_usage"] == 0


def test_stats_errors(engine, client):
    api = engine.api()
    r = api._get(api._url("/containers/{0}/stats", "no-such-container"), params={"stream": "0"})
    assert r.status_code == 404
    assert "No such container" in r.json()["message"]
    c = sleeper(client)
    r = api._get(api._url("/containers/{0}/stats", c.id), params={"stream": "1", "one-shot": "1"})
    assert r.status_code == 400
    r = api._get(api._url("/containers/{0}/stats", c.id), params={"stream": "maybe"})
    assert r.status_code == 400


# --------------------------------------------------------------------- top

def test_top_default_columns(client, engine):
    script = "sleep 300 & sleep 301; echo " + "x" * 150  # longer than ps's 80 columns
    c = client.containers.run("busybox", ["sh", "-c", script], detach=True)
    deadline = time.monotonic() + 10
    while True:
        top = c.top()
        if len(top["Processes"]) >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert top["Titles"] == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    cmds = [p[-1] for p in top["Processes"]]
    assert "sleep 300" in cmds and "sleep 301" in cmds
    assert "sh -c " + script in cmds
    main_pid = client.api.inspect_container(c.id)["State"]["Pid"]
    assert str(main_pid) in [p[1] for p in top["Processes"]]
    assert all(p[0] == "root" for p in top["Processes"])
    r = engine.cli("top", c.id)
    assert r.returncode == 0 and b"sleep 301" in r.stdout


def test_top_ps_args(client, engine):
    c = sleeper(client)
    top = c.top(ps_args="-o pid,comm")
    assert top["Titles"] == ["PID", "COMMAND"]
    assert top["Processes"] == [[str(client.api.inspect_container(c.id)["State"]["Pid"]), "sleep"]]
    r = engine.cli("top", c.id, "aux")
    assert r.returncode == 0, r.stderr
    assert b"%CPU" in r.stdout and b"sleep 300" in r.stdout


def test_top_errors(client, engine):
    c = client.containers.create("busybox", "true")
    with pytest.raises(docker.errors.APIError) as ei:
        c.top()
    assert ei.value.response.status_code == 409
    with pytest.raises(docker.errors.NotFound):
        client.api.top("no-such-container")
    s = sleeper(client)
    with pytest.raises(docker.errors.APIError) as ei:
        s.top(ps_args="-o user=PID")
    assert ei.value.response.status_code == 400
    with pytest.raises(docker.errors.APIError) as ei:
        s.top(ps_args="--no-such-option")
    assert ei.value.response.status_code == 400
