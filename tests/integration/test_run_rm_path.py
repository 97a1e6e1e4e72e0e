"""What the fast `docker run --rm` path does in-process stays what runc and the overlay did.

* Init layers are copies of one made per image: a container sees the image's own directory
  modes and owners where the init layer holds a copy of the directory, from the first
  container of the image (made through an overlay mount) to the next ones (copied).
* runc start and the delete of a stopped container happen in the engine for runc: when
  `run --rm` returns, nothing of the container is left (runc state, cgroups, mounts), as
  when runc itself deleted it (the fallback, e.g. for a container sharing the host's PID
  namespace).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

from engine_harness import uniq  # noqa: E402

from dockyard.engine.containers.initlayer import ensure_init_layer
from dockyard.runtime import cgroups

pytestmark = pytest.mark.usefixtures("cleanup_containers")


def _tree(root: Path) -> dict[str, tuple[int, int, int]]:
    """path -> (mode, uid, gid) of every entry under root (times differ by design)."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(dirpath) / name
            st = os.lstat(p)
            out[str(p.relative_to(root))] = (st.st_mode, st.st_uid, st.st_gid)
    return out


def test_init_layer_copies_keep_the_image_directories(engine, tmp_path):
    odd = "dyk-odd-etc:latest"
    engine.cli_ok("run", "--name", "dyk-odd-src", "busybox", "sh", "-c", "chmod 750 /etc && chown 7:8 /etc")
    try:
        engine.cli_ok("commit", "dyk-odd-src", odd)
    finally:
        engine.cli_ok("rm", "dyk-odd-src")
    try:
        # the first start makes the image's template, the next ones copy it
        for _ in range(3):
            assert engine.cli_ok("run", "--rm", odd, "stat", "-c", "%a %u %g", "/etc").split() == ["750", "7", "8"]
            assert engine.cli_ok("run", "--rm", odd, "ls", "-a", "/").split().count(".dockerenv") == 1
        ids = [engine.cli_ok("create", odd, "true").strip() for _ in range(2)]
        for cid in ids:
            engine.cli_ok("start", "-a", cid)
        trees = [_tree(engine.data_root / "containers" / cid / "init") for cid in ids]
        assert trees[0] == trees[1]
        assert trees[0]["etc"][1:] == (7, 8) and trees[0]["etc"][0] & 0o7777 == 0o750
        assert ".dockerenv" in trees[0] and "etc/mtab" in trees[0]
        # the same as one made through an overlay of the image's layers, as every one was before
        lowers = engine.client().api.inspect_container(ids[0])["GraphDriver"]["Data"]["LowerDir"].split(":")[1:]
        made = ensure_init_layer(tmp_path, [Path(p) for p in lowers])
        assert _tree(made) == trees[0]
        for cid in ids:
            engine.cli_ok("rm", cid)
    finally:
        engine.cli("rmi", odd)


def _leftovers(engine, cid: str) -> list[str]:
    left = []
    if (engine.exec_root / "runc" / cid).exists():
        left.append("runc state")
    parent = cgroups.engine_parent(engine.exec_root).strip("/")
    roots = [Path("/sys/fs/cgroup"), *Path("/sys/fs/cgroup").iterdir()]  # v2, or each v1 hierarchy
    left += [str(r / parent / cid) for r in roots if (r / parent / cid).exists()]
    left += [m for m in engine.all_mounts() if cid in m]
    if (engine.data_root / "containers" / cid).exists():
        left.append("container directory")
    return left


@pytest.mark.parametrize("extra", [[], ["--pid", "host"]], ids=["own-pid-ns", "host-pid-ns"])
def test_run_rm_returns_with_nothing_left(engine, tmp_path, extra):
    for i in range(3):
        cidfile = tmp_path / f"cid{i}"
        out = engine.cli_ok("run", "--rm", "--cidfile", str(cidfile), *extra, "busybox", "echo", "ran")
        assert out == "ran\n"
        cid = cidfile.read_text().strip()
        assert _leftovers(engine, cid) == []


def test_interface_failing_beside_the_runtime_create_undoes_the_start(engine):
    """The interface is plugged while conmon and runc create the container: when plugging
    fails (the macvlan parent is gone), the start answers the driver's 400 and undoes the
    created container (monitor, runc state, mounts), and a later start works."""
    import subprocess

    import docker

    tag = secrets.token_hex(4)
    parent, net = f"dyg{tag}", uniq("mvgone")

    def add_parent() -> None:  # a veth end (this kernel may lack the dummy link type)
        subprocess.run(["ip", "link", "add", parent, "type", "veth", "peer", "name", f"dyh{tag}"], check=True)

    add_parent()
    try:
        engine.cli_ok("network", "create", "-d", "macvlan", "-o", f"parent={parent}",
                      "--subnet", "10.251.77.0/24", net)
        api = engine.api()
        cid = api.create_container("busybox", "true", host_config=api.create_host_config(network_mode=net))["Id"]
        subprocess.run(["ip", "link", "del", parent], check=True)
        with pytest.raises(docker.errors.APIError) as e:
            api.start(cid)
        assert e.value.status_code == 400 and f"parent interface was not found on the host: {parent}" in \
            e.value.explanation
        assert api.inspect_container(cid)["State"]["Status"] == "created"
        assert not any(cid.encode() in open(f"/proc/{p}/cmdline", "rb").read() for p in engine.monitor_pids())
        assert not (engine.exec_root / "runc" / cid).exists()
        assert [m for m in engine.all_mounts() if cid in m] == []
        add_parent()
        api.start(cid)
        assert api.wait(cid, timeout=60)["StatusCode"] == 0
        api.remove_container(cid)
    finally:
        engine.cli("network", "rm", net)
        subprocess.run(["ip", "link", "del", parent], capture_output=True)


def _volatile_root(out: str) -> bool:
    """Whether /proc/mounts (`out`) shows the root overlay volatile (newer kernels: fsync=volatile)."""
    line = next(ln for ln in out.splitlines() if ln.split()[1] == "/")
    return any(o in ("volatile", "fsync=volatile") for o in line.split()[3].split(","))


def test_only_run_rm_layers_are_volatile(engine):
    """A `run --rm` container's writable layer is never synced (it goes at exit, a crash
    included): its unmount skips the sync of the whole upper filesystem. Any other keeps
    its writes durable. A restarted --rm container mounts it again, its data kept."""
    assert _volatile_root(engine.cli_ok("run", "--rm", "busybox", "cat", "/proc/mounts"))
    name = uniq("kept")
    assert not _volatile_root(engine.cli_ok("run", "--name", name, "busybox", "cat", "/proc/mounts"))
    engine.cli_ok("rm", name)
    name = uniq("rmrestart")
    engine.cli_ok("run", "-d", "--rm", "--name", name, "busybox", "sh", "-c", "echo x >> /f; exec sleep 600")
    try:
        engine.cli_ok("restart", "-t", "0", name)
        assert engine.cli_ok("exec", name, "cat", "/f") == "x\nx\n"
    finally:
        engine.cli("rm", "-f", name)


def test_a_start_failing_before_conmon_undoes_the_unplugged_interface(engine):
    """The bridge interface is plugged once conmon is spawned: a start failing before that
    (an unreachable syslog server, at the log driver's setup) still plugs it and undoes it as
    before: the network's connect and disconnect events, no veth, address or mount left, and
    the next container on the bridge starts."""
    import subprocess
    import time

    def bridge_ports() -> list[str]:
        out = subprocess.run(["ip", "-o", "link", "show", "master", engine.bridge],
                             capture_output=True, text=True).stdout
        return sorted(line.split(":")[1].strip() for line in out.splitlines())

    api = engine.api()
    before = bridge_ports()
    since = int(time.time()) - 1
    name = uniq("nosyslog")
    r = engine.cli("run", "--name", name, "--log-driver", "syslog",
                   "--log-opt", "syslog-address=tcp://127.0.0.1:9", "busybox", "true")
    assert r.returncode != 0, r.stdout
    cid = api.inspect_container(name)["Id"]
    assert api.inspect_container(cid)["State"]["Status"] == "created"
    assert api.inspect_container(cid)["NetworkSettings"]["Networks"]["bridge"]["IPAddress"] == ""
    assert bridge_ports() == before or _wait_for(lambda: bridge_ports() == before)
    assert [m for m in engine.all_mounts() if cid in m] == []
    assert not any(cid.encode() in open(f"/proc/{p}/cmdline", "rb").read() for p in engine.monitor_pids())
    events = list(api.events(since=since, until=int(time.time()) + 1, decode=True, filters={"type": "network"}))
    assert [e["Action"] for e in events if e["Actor"]["Attributes"].get("container") == cid] == \
        ["connect", "disconnect"]
    assert engine.cli_ok("run", "--rm", "busybox", "true") == ""
    engine.cli_ok("rm", cid)


def _wait_for(cond, timeout: float = 30) -> bool:
    """The veth goes in the background (the kernel takes an RCU grace period for it)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()
