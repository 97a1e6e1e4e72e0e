"""Cgroup drivers: Docker → OCI translation, and the readers for v1 and v2
against fixture trees (plus the real cgroup2 mount when this host has one)."""

import os
import subprocess
import uuid

import pytest

from dockyard.errors import Conflict, InvalidParameter
from dockyard.runtime import cgroups
from dockyard.runtime.cgroups import (CgroupV1Driver, CgroupV2Driver, normalize_resources,
                                      translate_resources)
from dockyard.runtime.update import merge_update, runc_update_resources

MiB = 1024 * 1024


# ------------------------------------------------------------ translation

def test_memory_swap_semantics():
    hc = normalize_resources({"Memory": 32 * MiB})
    assert hc["MemorySwap"] == 64 * MiB  # Docker's default: twice the memory
    assert translate_resources(hc, version=1, blkio_weight=False)["memory"] == {
        "limit": 32 * MiB, "swap": 64 * MiB}
    hc = normalize_resources({"Memory": 32 * MiB, "MemorySwap": -1})
    assert translate_resources(hc, version=1, blkio_weight=False)["memory"]["swap"] == -1
    hc = normalize_resources({"Memory": 32 * MiB}, swap_accounting=False)
    assert "swap" not in translate_resources(hc, version=1, blkio_weight=False,
                                             swap_accounting=False)["memory"]
    assert translate_resources(normalize_resources({}), version=1, blkio_weight=True) == {}


@pytest.mark.parametrize("hc,msg", [
    ({"Memory": 1024}, "Minimum memory limit allowed is 6MB"),
    ({"MemorySwap": 64 * MiB}, "You should always set the Memory limit when using Memoryswap limit"),
    ({"Memory": 64 * MiB, "MemorySwap": 32 * MiB}, "Minimum memoryswap limit should be larger than memory limit"),
    ({"Memory": 16 * MiB, "MemoryReservation": 32 * MiB}, "Minimum memory limit can not be less than memory reservation"),
    ({"NanoCpus": 500_000_000, "CpuQuota": 50000}, "Conflicting options: Nano CPUs and CPU Quota"),
    ({"NanoCpus": 500_000_000, "CpuPeriod": 50000}, "Conflicting options: Nano CPUs and CPU Period"),
    ({"NanoCpus": 1000}, "Range of CPUs is from 0.01 to"),
    ({"CpuPeriod": 10}, "CPU cfs period can not be less than 1ms"),
    ({"CpuQuota": 10}, "CPU cfs quota can not be less than 1ms"),
    ({"BlkioWeight": 5}, "Range of blkio weight is from 10 to 1000"),
    ({"CpusetCpus": "0-"}, "Invalid value 0- for cpuset cpus"),
    ({"CpusetCpus": "7"}, "Requested CPUs are not available - requested 7, available: 0,1"),
    ({"MemorySwappiness": 200}, "valid memory swappiness range is 0-100"),
])
def test_docker_validation_messages(hc, msg):
    with pytest.raises(InvalidParameter, match=msg):
        normalize_resources(hc, online_cpus=2, available_cpus={0, 1})


def test_cpu_translation():
    res = translate_resources(normalize_resources({"NanoCpus": 1_500_000_000}, online_cpus=2),
                              version=1, blkio_weight=False)
    assert res["cpu"] == {"period": 100000, "quota": 150000}
    res = translate_resources({"CpuShares": 512, "CpuQuota": 20000, "CpuPeriod": 50000,
                               "CpusetCpus": "0-1", "CpusetMems": "0"}, version=2, blkio_weight=False)
    assert res["cpu"] == {"shares": 512, "quota": 20000, "period": 50000, "cpus": "0-1", "mems": "0"}


def test_version_specific_fields():
    hc = {"Memory": 32 * MiB, "MemorySwap": 64 * MiB, "OomKillDisable": True, "MemorySwappiness": 10,
          "PidsLimit": 5, "BlkioWeight": 200, "MemoryReservation": 16 * MiB}
    v1 = translate_resources(hc, version=1, blkio_weight=True)
    assert v1["memory"] == {"limit": 32 * MiB, "reservation": 16 * MiB, "swap": 64 * MiB,
                            "swappiness": 10, "disableOOMKiller": True}
    assert v1["pids"] == {"limit": 5} and v1["blockIO"] == {"weight": 200}
    v2 = translate_resources(hc, version=2, blkio_weight=False)
    assert "disableOOMKiller" not in v2["memory"] and "swappiness" not in v2["memory"]
    assert "blockIO" not in v2  # kernel without io.weight: Docker discards it
    assert "pids" not in translate_resources({"PidsLimit": -1}, version=1, blkio_weight=False)


# ----------------------------------------------------------------- update

def test_update_merge_and_runc_json():
    cur = normalize_resources({"Memory": 32 * MiB})
    body = {"Memory": 48 * MiB}
    merged = merge_update(cur, body)
    assert merged["Memory"] == 48 * MiB and merged["MemorySwap"] == 64 * MiB
    assert runc_update_resources(merged, body) == {"memory": {"limit": 48 * MiB, "swap": 64 * MiB}}
    body = {"PidsLimit": 0, "CpuShares": 256, "NanoCpus": 250_000_000, "BlkioWeight": 100}
    merged = merge_update(cur, body, online_cpus=2)
    out = runc_update_resources(merged, body, blkio_weight=True)
    assert out == {"pids": {"limit": -1}, "cpu": {"shares": 256, "period": 100000, "quota": 25000},
                   "blockIO": {"weight": 100}}
    assert runc_update_resources(merged, body, blkio_weight=False).get("blockIO") is None
    assert runc_update_resources(cur, {}) == {}


def test_update_conflicts():
    with pytest.raises(Conflict, match="update the memoryswap at the same time"):
        merge_update(normalize_resources({"Memory": 32 * MiB}), {"Memory": 128 * MiB})
    merged = merge_update(normalize_resources({"Memory": 32 * MiB}),
                          {"Memory": 128 * MiB, "MemorySwap": 256 * MiB})
    assert merged["MemorySwap"] == 256 * MiB
    with pytest.raises(Conflict, match="CPU Quota cannot be updated as NanoCPUs"):
        merge_update({"NanoCpus": 500_000_000}, {"CpuQuota": 20000})
    with pytest.raises(Conflict, match="Nano CPUs cannot be updated as CPU Quota"):
        merge_update({"CpuQuota": 20000}, {"NanoCpus": 500_000_000})
    with pytest.raises(InvalidParameter, match="Minimum memory limit allowed"):
        merge_update({}, {"Memory": 1000})


# -------------------------------------------------------------- v1 reader

def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


@pytest.fixture
def v1_tree(tmp_path):
    h = {}
    for ctrl in ("memory", "cpu", "cpuacct", "pids", "blkio", "cpuset", "freezer"):
        h[ctrl] = (str(tmp_path / ctrl), "/")
    cg = "/dy/c1"
    m = str(tmp_path / "memory") + cg
    _write(m + "/memory.usage_in_bytes", "1048576\n")
    _write(m + "/memory.max_usage_in_bytes", "2097152\n")
    _write(m + "/memory.limit_in_bytes", "33554432\n")
    _write(m + "/memory.failcnt", "3\n")
    _write(m + "/memory.stat", "cache 4096\nrss 8192\ntotal_inactive_file 100\n")
    _write(m + "/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
    _write(m + "/cgroup.procs", "42\n43\n")
    a = str(tmp_path / "cpuacct") + cg
    _write(a + "/cpuacct.usage", "123456789\n")
    _write(a + "/cpuacct.usage_percpu", "100000000 23456789 \n")
    _write(a + "/cpuacct.stat", "user 5\nsystem 7\n")
    _write(str(tmp_path / "cpu") + cg + "/cpu.stat", "nr_periods 10\nnr_throttled 2\nthrottled_time 999\n")
    p = str(tmp_path / "pids") + cg
    _write(p + "/pids.current", "2\n")
    _write(p + "/pids.max", "max\n")
    _write(str(tmp_path / "blkio") + cg + "/blkio.throttle.io_service_bytes_recursive",
           "8:0 Read 4096\n8:0 Write 8192\nTotal 12288\n")
    _write(str(tmp_path / "cpuset") + "/cpuset.effective_cpus", "0-3\n")
    _write(str(tmp_path / "cpuset") + "/cpuset.effective_mems", "0\n")
    os.makedirs(str(tmp_path / "memory") + "/dy/orphan")
    return CgroupV1Driver("/dy", hierarchies=h)


def test_v1_reader(v1_tree):
    d = v1_tree
    assert d.oci_cgroups_path("c1") == "/dy/c1"
    s = d.stats("c1")
    assert s["memory_stats"] == {"usage": 1048576, "max_usage": 2097152, "failcnt": 3,
                                 "limit": 33554432,
                                 "stats": {"cache": 4096, "rss": 8192, "total_inactive_file": 100}}
    cu = s["cpu_stats"]["cpu_usage"]
    assert cu["total_usage"] == 123456789 and cu["percpu_usage"] == [100000000, 23456789]
    assert cu["usage_in_usermode"] == 5 * 1_000_000_000 // cgroups.CLK_TCK
    assert s["cpu_stats"]["throttling_data"] == {"periods": 10, "throttled_periods": 2, "throttled_time": 999}
    assert s["cpu_stats"]["online_cpus"] == 4
    assert s["cpu_stats"]["system_cpu_usage"] > 0
    assert s["pids_stats"] == {"current": 2}
    assert s["blkio_stats"]["io_service_bytes_recursive"] == [
        {"major": 8, "minor": 0, "op": "Read", "value": 4096},
        {"major": 8, "minor": 0, "op": "Write", "value": 8192}]
    assert d.oom_killed("c1") is True and d.oom_killed("other") is False
    assert d.pids("c1") == [42, 43]
    assert d.available_cpus() == {0, 1, 2, 3}
    assert d.leftovers({"c1"}) == ["orphan"]
    assert d.leftovers(set()) == ["c1", "orphan"]


def test_v1_remove_only_when_empty(tmp_path):
    # A fixture tree cannot emulate "busy" rmdir; use empty directories.
    h = {"memory": (str(tmp_path / "memory"), "/"), "pids": (str(tmp_path / "pids"), "/")}
    for ctrl in h:
        os.makedirs(str(tmp_path / ctrl) + "/dy/c2/sub")
    d = CgroupV1Driver("/dy", hierarchies=h)
    assert d.remove("c2") is True
    assert d.leftovers(set()) == []


def test_v1_nested_mount_root(tmp_path):
    # Inside a container the hierarchy's mount root is not "/".
    h = {"memory": (str(tmp_path / "m"), "/outer")}
    d = CgroupV1Driver("/outer/dy", hierarchies=h)
    assert d.directories("c") == [str(tmp_path / "m") + "/dy/c"]


# -------------------------------------------------------------- v2 reader

@pytest.fixture
def v2_tree(tmp_path):
    root = tmp_path / "cg2"
    _write(str(root / "cgroup.controllers"), "cpuset cpu io memory pids\n")
    _write(str(root / "cpuset.cpus.effective"), "0-1\n")
    _write(str(root / "cpuset.mems.effective"), "0\n")
    c = str(root / "dy" / "c1")
    _write(c + "/memory.current", "5000000\n")
    _write(c + "/memory.max", "67108864\n")
    _write(c + "/memory.peak", "6000000\n")
    _write(c + "/memory.stat", "anon 4096\nfile 8192\n")
    _write(c + "/memory.events", "low 0\nhigh 0\nmax 10\noom 1\noom_kill 1\n")
    _write(c + "/memory.swap.max", "max\n")
    _write(c + "/io.weight", "default 100\n")
    _write(c + "/cpu.stat", "usage_usec 2000\nuser_usec 1500\nsystem_usec 500\n"
                            "nr_periods 4\nnr_throttled 1\nthrottled_usec 30\n")
    _write(c + "/pids.current", "3\n")
    _write(c + "/pids.max", "100\n")
    _write(c + "/io.stat", "8:0 rbytes=4096 wbytes=512 rios=1 wios=2 dbytes=0 dios=0\n")
    _write(c + "/cgroup.procs", "7\n")
    _write(str(root / "dy" / "c2" / "memory.events"), "oom 0\noom_kill 0\n")
    return CgroupV2Driver("/dy", root=str(root))


def test_v2_reader(v2_tree):
    d = v2_tree
    s = d.stats("c1")
    assert s["memory_stats"] == {"usage": 5000000, "limit": 67108864, "max_usage": 6000000,
                                 "stats": {"anon": 4096, "file": 8192}}
    cu = s["cpu_stats"]["cpu_usage"]
    assert (cu["total_usage"], cu["usage_in_usermode"], cu["usage_in_kernelmode"]) == (2_000_000, 1_500_000, 500_000)
    assert s["cpu_stats"]["throttling_data"] == {"periods": 4, "throttled_periods": 1, "throttled_time": 30000}
    assert s["pids_stats"] == {"current": 3, "limit": 100}
    assert s["blkio_stats"]["io_service_bytes_recursive"] == [
        {"major": 8, "minor": 0, "op": "read", "value": 4096},
        {"major": 8, "minor": 0, "op": "write", "value": 512}]
    assert s["blkio_stats"]["io_serviced_recursive"][1]["value"] == 2
    assert d.oom_killed("c1") is True and d.oom_killed("c2") is False
    assert d.pids("c1") == [7]
    assert d.swap_accounting() is True and d.blkio_weight_supported() is True
    assert d.available_cpus() == {0, 1}
    assert d.leftovers({"c2"}) == ["c1"]
    res = d.resources({"Memory": 32 * MiB, "OomKillDisable": True, "BlkioWeight": 500})
    assert res == {"memory": {"limit": 32 * MiB, "swap": 64 * MiB}, "blockIO": {"weight": 500}}
    with pytest.raises(InvalidParameter, match="Requested CPUs are not available"):
        d.resources({"CpusetCpus": "5"})


def test_detect_picks_layout(tmp_path, v2_tree):
    assert isinstance(cgroups.detect("/dy", root=v2_tree.root), CgroupV2Driver)
    assert isinstance(cgroups.detect("/dy", root=str(tmp_path / "nothing")), CgroupV1Driver)


def test_v2_on_the_real_cgroup2_mount():
    """This hybrid host has a cgroup2 mount with no resource controllers:
    exercise the v2 driver's cpu.stat reader and cleanup on it for real."""
    mount = "/sys/fs/cgroup/unified"
    if not os.path.exists(os.path.join(mount, "cgroup.procs")) or os.geteuid() != 0:
        pytest.skip("no writable cgroup2 mount")
    if cgroups.is_unified("/sys/fs/cgroup"):
        mount = "/sys/fs/cgroup"
    parent = f"/dyunit-{uuid.uuid4().hex[:8]}"
    d = CgroupV2Driver(parent, root=mount)
    path = d.directories("c1")[0]
    os.makedirs(path)
    proc = subprocess.Popen(["sh", "-c", "echo $$ > %s/cgroup.procs; i=0; "
                             "while [ $i -lt 200000 ]; do i=$((i+1)); done; exec sleep 30" % path])
    try:
        deadline = 200
        while not d.pids("c1") and deadline:
            deadline -= 1
            os.sched_yield()
        stats = d.stats("c1")
        while stats["cpu_stats"]["cpu_usage"]["total_usage"] == 0 and proc.poll() is None:
            stats = d.stats("c1")
        assert d.pids("c1")
        assert stats["cpu_stats"]["cpu_usage"]["total_usage"] > 0
        assert d.leftovers(set()) == ["c1"]
        assert d.oom_killed("c1") is False
    finally:
        proc.kill()
        proc.wait()
        cgroups.wait_for_empty(d, "c1")
        assert d.remove("c1") is True
        os.rmdir(mount + parent)
    assert not os.path.exists(path)


def test_each_exec_root_has_its_own_parent():
    from dockyard.runtime.cgroups import engine_parent

    assert engine_parent("/run/dockyard") == engine_parent("/run/dockyard/") == "/dockyard"
    other = engine_parent("/tmp/x/run")
    assert other.startswith("/dockyard-") and other == engine_parent("/tmp/x/../x/run")
    assert other != engine_parent("/tmp/y/run")


def test_host_capabilities_are_remembered_once_found(tmp_path):
    """Swap accounting and blkio weights, asked at every create and start: looked for again
    while missing, remembered once found (a kernel feature does not go away)."""
    root = tmp_path / "cg2"
    _write(str(root / "cgroup.controllers"), "cpuset cpu io memory pids\n")
    _write(str(root / "other" / "cgroup.procs"), "")
    d = CgroupV2Driver("/dy", root=str(root))
    assert d.swap_accounting() is False and d.blkio_weight_supported() is False
    _write(str(root / "other" / "memory.swap.max"), "max\n")
    _write(str(root / "other" / "io.weight"), "default 100\n")
    assert d.swap_accounting() is True and d.blkio_weight_supported() is True
    os.unlink(root / "other" / "memory.swap.max")
    os.unlink(root / "other" / "io.weight")
    assert d.swap_accounting() is True and d.blkio_weight_supported() is True
    assert CgroupV2Driver("/dy", root=str(root)).swap_accounting() is False  # per driver, not global
