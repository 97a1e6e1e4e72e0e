"""Containers outlive the engine: SIGKILL, exits while it is down, crash repair, SIGTERM behaviour."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time



def _running_pid(api, cid: str) -> int:
    st = api.inspect_container(cid)["State"]
    assert st["Running"], st
    return st["Pid"]


def test_sigkill_engine_containers_keep_running(private_engine):
    eng = private_engine()
    api = eng.api()
    cid = api.create_container("busybox", ["sh", "-c", "i=0; while true; do echo line$i; i=$((i+1)); sleep 0.2; done"])["Id"]
    api.start(cid)
    pid = _running_pid(api, cid)
    time.sleep(0.6)
    eng.kill9()
    assert os.path.exists(f"/proc/{pid}"), "container died with the engine"
    time.sleep(0.6)  # lines written while the engine is down
    eng.start()
    api = eng.api()
    assert _running_pid(api, cid) == pid
    time.sleep(0.5)
    logs = api.logs(cid).decode().split()
    assert logs[:3] == ["line0", "line1", "line2"]
    assert len(logs) >= 8  # before, during and after the downtime, none lost
    assert logs == [f"line{i}" for i in range(len(logs))]
    # attach still works: we see new lines
    sock = api.attach_socket(cid, params={"stdout": 1, "stream": 1})
    sock._sock.settimeout(5)
    data = sock._sock.recv(4096)
    assert b"line" in data
    sock.close()
    api.stop(cid, timeout=1)
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    api.remove_container(cid)
    assert eng.mounts() == []


def test_exit_while_engine_down_is_recorded(private_engine):
    eng = private_engine()
    api = eng.api()
    cid = api.create_container("busybox", ["sh", "-c", "sleep 1; exit 17"])["Id"]
    api.start(cid)
    eng.kill9()
    time.sleep(2)
    t_exit_upper = time.time()
    eng.start()
    api = eng.api()
    st = api.inspect_container(cid)["State"]
    assert st["Status"] == "exited" and st["ExitCode"] == 17
    from datetime import datetime, timezone
    finished = datetime.fromisoformat(st["FinishedAt"][:26]).replace(tzinfo=timezone.utc).timestamp()
    assert finished < t_exit_upper  # the real exit time, not the engine's restart time
    assert api.wait(cid, timeout=5)["StatusCode"] == 17
    api.remove_container(cid)
    assert eng.mounts() == []
    assert eng.monitor_pids() == []


def test_auto_removed_containers_not_running_are_removed_at_engine_start(private_engine, tmp_path):
    # as dockerd's restore: `--rm` containers never started, or exited while the engine was
    # down, are gone once it is back; one still running stays
    eng = private_engine()
    created = eng.cli_ok("create", "--rm", "--name", "never-started", "busybox", "true").strip()
    gate = tmp_path / "gate"
    gate.mkdir()
    exits = eng.cli_ok("run", "-d", "--rm", "-v", f"{gate}:/gate", "busybox", "sh", "-c",
                       "while [ ! -e /gate/go ]; do sleep 0.1; done").strip()
    runs = eng.cli_ok("run", "-d", "--rm", "busybox", "sleep", "300").strip()
    kept = eng.cli_ok("create", "--name", "kept", "busybox", "true").strip()
    eng.kill9()
    (gate / "go").touch()  # it exits now, while the engine is down: wait for conmon's record of it
    exit_file = eng.exec_root / "exits" / exits
    deadline = time.time() + 60
    while not exit_file.exists() and time.time() < deadline:
        time.sleep(0.1)
    assert exit_file.exists(), "the gated container did not exit within 60 s"
    eng.start()
    listed = set(eng.cli_ok("ps", "-aq", "--no-trunc").split())
    assert created not in listed and exits not in listed
    assert {runs, kept} <= listed
    eng.cli_ok("rm", "-f", runs, kept)
    assert eng.mounts() == [] and eng.monitor_pids() == []


def test_sigterm_leaves_containers_running_by_default(private_engine):
    eng = private_engine()
    api = eng.api()
    cid = api.create_container("busybox", "sleep 60")["Id"]
    api.start(cid)
    pid = _running_pid(api, cid)
    assert eng.stop(signal.SIGTERM) == 0
    assert os.path.exists(f"/proc/{pid}")
    eng.start()
    assert _running_pid(eng.api(), cid) == pid
    eng.api().remove_container(cid, force=True)


def test_flag_stops_containers_on_sigterm(private_engine):
    eng = private_engine(["--stop-containers-on-shutdown"])
    api = eng.api()
    cid = api.create_container("busybox", "sleep 60")["Id"]
    api.start(cid)
    pid = _running_pid(api, cid)
    assert eng.stop(signal.SIGTERM) == 0
    deadline = time.time() + 5
    while os.path.exists(f"/proc/{pid}") and time.time() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid}")
    eng.start()
    st = eng.api().inspect_container(cid)["State"]
    assert st["Status"] == "exited"


def test_sigkill_during_parallel_creates_leaves_consistent_state(private_engine):
    eng = private_engine()
    errors: list[Exception] = []

    def worker(i: int) -> None:
        try:
            api = eng.api(timeout=10)
            cid = api.create_container("busybox", "sleep 60", name=f"par{i}")["Id"]
            api.start(cid)
        except Exception as exc:  # the engine dies under us: expected for some
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    time.sleep(0.35)
    eng.kill9()
    for t in threads:
        t.join(15)
    eng.start()
    api = eng.api()
    listed = api.containers(all=True)
    data_dirs = set(os.listdir(eng.data_root / "containers"))
    assert {c["Id"] for c in listed} == data_dirs  # no orphan directory, no record without one
    for c in listed:
        st = api.inspect_container(c["Id"])["State"]
        assert st["Status"] in ("created", "running", "exited")
        if st["Status"] == "running":
            assert os.path.exists(f"/proc/{st['Pid']}")
    # every survivor can be started, stopped and removed
    for c in listed:
        api.remove_container(c["Id"], force=True)
    assert api.containers(all=True) == []
    assert eng.mounts() == []
    assert eng.monitor_pids() == []
    assert not (eng.exec_root / "runc").exists() or os.listdir(eng.exec_root / "runc") == []
    # names can be reused: nothing half-created holds them
    cid = api.create_container("busybox", "true", name="par0")["Id"]
    api.remove_container(cid)


def test_crash_repair_removes_stale_mounts_and_monitors(private_engine):
    eng = private_engine()
    api = eng.api()
    keep = api.create_container("busybox", "sleep 60")["Id"]
    api.start(keep)
    gone = api.create_container("busybox", "sleep 60")["Id"]
    api.start(gone)
    gone_pid = _running_pid(api, gone)
    eng.kill9()
    # simulate a removal the engine never finished: its record disappears, its monitor,
    # mount and runtime state stay behind
    import sqlite3
    db = sqlite3.connect(eng.data_root / "metadata.db")
    db.execute("DELETE FROM containers WHERE id=?", (gone,))
    db.commit()
    db.close()
    eng.start()
    deadline = time.time() + 5
    while os.path.exists(f"/proc/{gone_pid}") and time.time() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{gone_pid}")
    assert not any(gone in m for m in eng.mounts())
    assert not (eng.data_root / "containers" / gone).exists()
    assert all(str(p) for p in eng.monitor_pids())
    assert len(eng.monitor_pids()) == 1
    assert _running_pid(eng.api(), keep)
    eng.api().remove_container(keep, force=True)


def test_no_leaks_after_100_cycles(private_engine):
    eng = private_engine()
    api = eng.api()

    import ipaddress
    subnet = str(ipaddress.ip_interface(eng.bip).network)
    created: list[str] = []

    def host_state():
        """What this engine may leave behind, filtered from other engines sharing the host."""
        ports = subprocess.run(["ip", "-o", "link", "show", "master", eng.bridge],
                               capture_output=True, text=True).stdout
        veths = sorted(l.split(":")[1].strip() for l in ports.splitlines())
        rules = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
        rules = sorted(l for l in rules.splitlines() if l.startswith("-A") and (eng.bridge in l or subnet in l))
        cgroups = []
        for root, dirs, _ in os.walk("/sys/fs/cgroup"):
            cgroups += [os.path.join(root, d) for d in dirs if d in created]
        netns = os.listdir(eng.exec_root / "netns") if (eng.exec_root / "netns").exists() else []
        return veths, rules, sorted(cgroups), netns

    warm = api.create_container("busybox", "true")["Id"]
    api.start(warm)
    api.wait(warm)
    api.remove_container(warm)
    before = host_state()
    fds_mid = 0
    for i in range(100):
        cid = api.create_container("busybox", "true")["Id"]
        created.append(cid)
        api.start(cid)
        api.wait(cid)
        api.remove_container(cid)
        if i == 49:  # worker threads and their netlink sockets exist by now
            fds_mid = len(os.listdir(f"/proc/{eng.proc.pid}/fd"))
    time.sleep(0.5)  # veths are deleted in the background
    assert host_state() == before
    assert host_state()[2] == []  # no cgroup of any of the 100 containers
    assert eng.mounts() == []
    assert eng.monitor_pids() == []
    assert os.listdir(eng.data_root / "containers") == []
    fds_after = len(os.listdir(f"/proc/{eng.proc.pid}/fd"))
    assert fds_after <= fds_mid + 2  # no growth per container
