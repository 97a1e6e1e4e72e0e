"""Confinement and resources checked from inside real runc containers.

Each test builds a spec with dockyard.oci.runtime_spec.build_spec, runs it
with runc 1.1 in a bundle of its own (busybox-static rootfs plus a small
static probe program that makes raw syscalls), and looks at the result from
inside the container and from the host's cgroup tree.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import time
import uuid

import pytest

from dockyard.errors import InvalidParameter
from dockyard.oci import capabilities as capmod
from dockyard.oci.runtime_spec import build_spec
from dockyard.oci.users import resolve_user
from dockyard.runtime import cgroups
from dockyard.runtime.update import merge_update, runc_update_resources

RUNC = shutil.which("runc")
pytestmark = pytest.mark.skipif(os.geteuid() != 0 or RUNC is None or not shutil.which("busybox"),
                                reason="needs root, runc and busybox-static")

PROBE_C = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int report(long r) {
    if (r < 0) { printf("errno=%d\n", errno); return 1; }
    printf("ok\n");
    return 0;
}

static long do_clone(unsigned long flags) {
    long r = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
    if (r == 0) _exit(0);
    if (r > 0) waitpid((pid_t)r, 0, 0);
    return r;
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    const char *w = argv[1];
    if (!strcmp(w, "keyctl"))          /* KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING */
        return report(syscall(SYS_keyctl, 0, -3, 0));
    if (!strcmp(w, "clone_newuser"))   return report(do_clone(CLONE_NEWUSER));
    if (!strcmp(w, "clone_plain"))     return report(do_clone(0));
    if (!strcmp(w, "unshare_user"))    return report(unshare(CLONE_NEWUSER));
    if (!strcmp(w, "personality"))     return report(syscall(SYS_personality, strtoul(argv[2], 0, 0)));
    if (!strcmp(w, "mount"))           return report(mount("none", "/mnt", "tmpfs", 0, 0));
    if (!strcmp(w, "vsock"))           return report(socket(40, SOCK_STREAM, 0));
    if (!strcmp(w, "inet"))            return report(socket(AF_INET, SOCK_STREAM, 0));
    return 2;
}
"""

DEFAULT_MASK = "00000000a80425fb"


# ----------------------------------------------------------------- fixtures

@pytest.fixture(scope="session")
def base_rootfs(tmp_path_factory):
    root = tmp_path_factory.mktemp("rootfs-base") / "rootfs"
    (root / "bin").mkdir(parents=True)
    for d in ("etc", "tmp", "mnt", "proc", "sys", "dev", "home/app", "data"):
        (root / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(shutil.which("busybox"), root / "bin" / "busybox")
    applets = subprocess.run([str(root / "bin" / "busybox"), "--list"], capture_output=True,
                             text=True, check=True).stdout.split()
    for a in applets:
        if a != "busybox" and not (root / "bin" / a).exists():
            os.symlink("busybox", root / "bin" / a)
    (root / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n")
    (root / "etc" / "group").write_text(
        "root:x:0:\nwheel:x:10:root\napp:x:1000:\nextra:x:2000:app\nother:x:3000:\n")
    os.chmod(root / "tmp", 0o1777)
    gcc = shutil.which("gcc")
    if gcc:
        src = root.parent / "probe.c"
        src.write_text(PROBE_C)
        r = subprocess.run([gcc, "-static", "-O2", "-o", str(root / "bin" / "probe"), str(src)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            (root / "bin" / "probe").unlink(missing_ok=True)
    return root


@pytest.fixture(scope="session")
def cgroup_parent():
    parent = f"/dockyard-test-{uuid.uuid4().hex[:8]}"
    driver = cgroups.detect(parent)
    yield parent, driver
    # Whatever a failing test left: remove container cgroups, then the parent.
    for cid in driver.leftovers(set()):
        driver.remove(cid)
    for p in driver.parent_directories():
        try:
            os.rmdir(p)
        except OSError:
            pass


class Runner:
    """Builds bundles and runs runc with a private --root; cleans up after."""

    def __init__(self, tmp_path, base_rootfs, cgroup_parent):
        self.tmp = tmp_path
        self.base = base_rootfs
        self.parent, self.driver = cgroup_parent
        self.state = tmp_path / "runc-state"
        self.state.mkdir()
        self.ids: list[str] = []

    def new_id(self) -> str:
        cid = f"dyt{uuid.uuid4().hex[:12]}"
        self.ids.append(cid)
        return cid

    def spec(self, cid: str, cmd: list[str], config=None, host_config=None, *, user=None,
             netns_path: str | None = "", init_path=None, etc_files=None, hostname="box"):
        config = config or {}
        host_config = host_config or {}
        bundle = self.tmp / cid
        rootfs = bundle / "rootfs"
        shutil.copytree(self.base, rootfs, symlinks=True)
        if user is None:
            user = resolve_user(str(rootfs), config.get("User"), host_config.get("GroupAdd")).as_tuple()
        spec = build_spec(
            config, host_config, rootfs=str(rootfs), hostname=hostname, netns_path=netns_path,
            etc_files=etc_files or {}, cgroups_path=self.driver.oci_cgroups_path(cid),
            cgroup_resources=self.driver.resources(host_config), user=user,
            env=["PATH=/bin", "HOME=/"], args=cmd, cwd="/", init_path=init_path)
        (bundle / "config.json").write_text(json.dumps(spec, indent=1))
        return bundle

    def runc(self, *args, **kw):
        return subprocess.run([RUNC, "--root", str(self.state), *args], **kw)

    def run(self, cmd, config=None, host_config=None, **kw) -> subprocess.CompletedProcess:
        cid = self.new_id()
        bundle = self.spec(cid, cmd, config, host_config, **kw)
        return self.runc("run", "--bundle", str(bundle), cid, stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=60)

    def out(self, cmd, config=None, host_config=None, **kw) -> str:
        r = self.run(cmd, config, host_config, **kw)
        assert r.returncode == 0, f"rc={r.returncode} out={r.stdout!r} err={r.stderr!r}"
        return r.stdout

    def sh(self, script, host_config=None, **kw) -> str:
        return self.out(["sh", "-c", script], None, host_config, **kw)

    def start_detached(self, cmd, config=None, host_config=None, **kw) -> str:
        cid = self.new_id()
        bundle = self.spec(cid, cmd, config, host_config, **kw)
        with open(bundle / "out", "wb") as out:
            r = self.runc("run", "-d", "--bundle", str(bundle), cid, stdin=subprocess.DEVNULL,
                          stdout=out, stderr=subprocess.STDOUT, timeout=60)
        assert r.returncode == 0, (bundle / "out").read_text()
        return cid

    def status(self, cid: str) -> str:
        r = self.runc("state", cid, capture_output=True, text=True)
        return json.loads(r.stdout)["status"] if r.returncode == 0 else "gone"

    def wait_stopped(self, cid: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.status(cid) in ("stopped", "gone"):
                return
            time.sleep(0.1)
        raise AssertionError(f"container {cid} still running")

    def cleanup(self) -> None:
        for cid in self.ids:
            self.runc("delete", "--force", cid, capture_output=True)
            cgroups.wait_for_empty(self.driver, cid, timeout=5)
            self.driver.remove(cid)


@pytest.fixture
def rt(tmp_path, base_rootfs, cgroup_parent):
    runner = Runner(tmp_path, base_rootfs, cgroup_parent)
    yield runner
    runner.cleanup()
    assert not any(cid in runner.driver.leftovers(set()) for cid in runner.ids), "cgroup leaked"


def status_field(text: str, key: str) -> str:
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"{key} not in {text!r}")


def engine_mask() -> str:
    return f"{capmod.mask_from_caps(capmod.engine_capabilities()):016x}"


def need_probe(base_rootfs):
    if not (base_rootfs / "bin" / "probe").exists():
        pytest.skip("no C compiler to build the syscall probe")


# ------------------------------------------------------------- capabilities

def test_default_capabilities(rt):
    status = rt.out(["cat", "/proc/self/status"])
    assert status_field(status, "CapEff") == DEFAULT_MASK
    assert status_field(status, "CapPrm") == DEFAULT_MASK
    assert status_field(status, "CapBnd") == DEFAULT_MASK
    assert status_field(status, "CapInh") == "0000000000000000"
    assert status_field(status, "NoNewPrivs") == "0"
    assert status_field(status, "Seccomp") == "2"


@pytest.mark.parametrize("hc,expected", [
    ({"CapAdd": ["NET_ADMIN"]}, 0xA80425FB | 1 << 12),
    ({"CapDrop": ["CHOWN", "cap_kill"]}, 0xA80425FB & ~1 & ~(1 << 5)),
    ({"CapDrop": ["ALL"]}, 0),
    ({"CapDrop": ["ALL"], "CapAdd": ["CAP_CHOWN"]}, 1),
])
def test_cap_add_drop(rt, hc, expected):
    status = rt.out(["cat", "/proc/self/status"], None, hc)
    assert status_field(status, "CapEff") == f"{expected:016x}"


def test_cap_add_all_is_what_engine_holds(rt):
    status = rt.out(["cat", "/proc/self/status"], None, {"CapAdd": ["ALL"], "CapDrop": ["MKNOD"]})
    want = capmod.mask_from_caps(capmod.engine_capabilities()) & ~(1 << 27)
    assert status_field(status, "CapEff") == f"{want:016x}"


def test_unknown_capability_is_invalid(rt):
    with pytest.raises(InvalidParameter, match='invalid CapAdd: unknown capability: "CAP_FOO"'):
        rt.run(["true"], None, {"CapAdd": ["FOO"]})


def test_privileged_gets_every_engine_capability(rt):
    out = rt.sh("cat /proc/self/status; echo ---; cat /proc/mounts; echo ---; ls /dev | wc -l",
                {"Privileged": True})
    status, mounts, ndev = out.split("---\n")
    assert status_field(status, "CapEff") == engine_mask()
    assert status_field(status, "CapBnd") == engine_mask()
    assert status_field(status, "Seccomp") == "0"
    sys_line = next(line for line in mounts.splitlines() if line.split()[1] == "/sys")
    assert sys_line.split()[3].startswith("rw")
    assert not any(line.split()[1] == "/proc/kcore" for line in mounts.splitlines())
    host_devs = len(os.listdir("/dev"))
    assert int(ndev) > 10 and int(ndev) >= host_devs // 2


# ------------------------------------------------------------------ seccomp

def test_seccomp_blocks_like_docker(rt, base_rootfs):
    need_probe(base_rootfs)
    out = rt.sh("for t in keyctl clone_newuser unshare_user clone_plain mount vsock inet; do "
                "echo $t=$(probe $t); done; echo pers8=$(probe personality 8); "
                "echo persnorand=$(probe personality 0x40000)")
    got = dict(line.split("=", 1) for line in out.split())
    assert got["keyctl"] == "errno=1"
    assert got["clone_newuser"] == "errno=1"
    assert got["unshare_user"] == "errno=1"
    assert got["mount"] == "errno=1"
    assert got["vsock"] == "errno=1"
    assert got["clone_plain"] == "ok"
    assert got["inet"] == "ok"
    assert got["pers8"] == "ok"            # PER_LINUX32 is allowed
    assert got["persnorand"] == "errno=1"  # ADDR_NO_RANDOMIZE is not


def test_seccomp_unconfined_lifts_the_filter(rt, base_rootfs):
    need_probe(base_rootfs)
    out = rt.sh("grep Seccomp: /proc/self/status; probe keyctl; probe clone_newuser; "
                "probe personality 0x40000; true", {"SecurityOpt": ["seccomp=unconfined"]})
    lines = out.splitlines()
    assert lines[0].split()[1] == "0"
    assert lines[1] != "errno=1"           # keyctl reaches the kernel
    assert lines[2] == "ok"                # user namespaces need no capability
    assert lines[3] == "ok"


def test_seccomp_follows_capabilities(rt, base_rootfs):
    """With CAP_SYS_ADMIN, Docker's profile allows mount and namespace clones."""
    need_probe(base_rootfs)
    out = rt.sh("probe mount; probe clone_newuser; true", {"CapAdd": ["SYS_ADMIN"]})
    assert out.split() == ["ok", "ok"]


def test_custom_seccomp_profile(rt, base_rootfs, tmp_path):
    need_probe(base_rootfs)
    from dockyard.oci.seccomp_default import DEFAULT_PROFILE
    profile = json.loads(json.dumps(DEFAULT_PROFILE))
    profile["syscalls"].insert(0, {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13})
    out = rt.sh("probe inet; true", {"SecurityOpt": [f"seccomp={json.dumps(profile)}"]})
    assert out.strip() == "errno=13"


def test_no_new_privileges(rt):
    for opt in ("no-new-privileges", "no-new-privileges:true", "no-new-privileges=true"):
        status = rt.out(["cat", "/proc/self/status"], None, {"SecurityOpt": [opt]})
        assert status_field(status, "NoNewPrivs") == "1"


def test_bad_security_opt_is_invalid(rt):
    with pytest.raises(InvalidParameter):
        rt.run(["true"], None, {"SecurityOpt": ["seccomp=/nonexistent/profile.json"]})
    with pytest.raises(InvalidParameter):
        rt.run(["true"], None, {"SecurityOpt": ["bogus"]})


# ------------------------------------------------------ filesystem confinement

def test_masked_and_readonly_paths(rt):
    out = rt.sh("echo kcore=$(wc -c < /proc/kcore); echo keys=$(wc -c < /proc/keys); "
                "echo firmware=$(ls /sys/firmware | wc -l); "
                "echo timer=$(wc -c < /proc/timer_list); "
                "if echo 1 > /proc/sys/kernel/domainname 2>/dev/null; then echo sys=rw; else echo sys=ro; fi; "
                "if touch /sys/x 2>/dev/null; then echo sysfs=rw; else echo sysfs=ro; fi; "
                "grep -E ' /proc/(sys|bus|irq|fs) ' /proc/mounts | awk '{print $4}' | cut -c1-2 | sort -u")
    lines = out.split()
    got = dict(line.split("=", 1) for line in lines if "=" in line)
    if not os.path.exists("/proc/kcore"):  # this kernel has no /proc/kcore: nothing to mask
        got.pop("kcore")
        want = {"keys": "0", "firmware": "0", "timer": "0", "sys": "ro", "sysfs": "ro"}
    else:
        want = {"kcore": "0", "keys": "0", "firmware": "0", "timer": "0", "sys": "ro", "sysfs": "ro"}
    assert got == want
    # The host shows content there, so the zeros above come from the masks.
    with open("/proc/timer_list") as f:
        assert f.read()
    assert os.listdir("/sys/firmware")
    assert [line for line in lines if "=" not in line] == ["ro"]


def test_dev_layout_and_shm_size(rt):
    out = rt.sh("grep -E ' /dev(/pts|/shm|/mqueue)? ' /proc/mounts; df -k /dev/shm | tail -1",
                {"ShmSize": 128 * 1024 * 1024})
    mounts = {line.split()[1]: line.split() for line in out.splitlines() if line.startswith(("tmpfs", "devpts", "mqueue", "shm"))}
    assert mounts["/dev"][2] == "tmpfs"
    assert mounts["/dev/pts"][2] == "devpts" and "gid=5" in mounts["/dev/pts"][3]
    assert "ptmxmode=666" in mounts["/dev/pts"][3]
    assert mounts["/dev/mqueue"][2] == "mqueue"
    assert mounts["/dev/shm"][2] == "tmpfs"
    df = out.splitlines()[-1].split()
    assert int(df[1]) == 131072


def test_default_shm_is_64m(rt):
    df = rt.sh("df -k /dev/shm | tail -1").split()
    assert int(df[1]) == 65536


def test_readonly_rootfs_binds_and_tmpfs(rt, tmp_path):
    rw_dir = tmp_path / "rw"
    ro_dir = tmp_path / "ro"
    rw_dir.mkdir()
    ro_dir.mkdir()
    hc = {"ReadonlyRootfs": True,
          "Binds": [f"{rw_dir}:/data/rw", f"{ro_dir}:/data/ro:ro"],
          "Mounts": [{"Type": "tmpfs", "Target": "/scratch", "TmpfsOptions": {"SizeBytes": 1 << 20}}],
          "Tmpfs": {"/run": "size=2m"}}
    out = rt.sh("touch /x 2>/dev/null && echo root=rw || echo root=ro; "
                "echo hi > /data/rw/f && echo rw=ok; "
                "touch /data/ro/f 2>/dev/null && echo ro=rw || echo ro=ro; "
                "echo scratch=$(df -k /scratch | tail -1 | awk '{print $2}'); "
                "echo run=$(df -k /run | tail -1 | awk '{print $2}')", hc)
    got = dict(line.split("=", 1) for line in out.split())
    assert got == {"root": "ro", "rw": "ok", "ro": "ro", "scratch": "1024", "run": "2048"}
    assert (rw_dir / "f").read_text() == "hi\n"


def test_etc_files_hostname_and_init(rt, tmp_path):
    tini = shutil.which("tini-static")
    if not tini:
        pytest.skip("tini-static not installed")
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n10.0.0.5 box\n")
    hostname = tmp_path / "hostname"
    hostname.write_text("box\n")
    out = rt.out(["sh", "-c", "cat /etc/hosts; hostname; cat /proc/1/comm; cat /etc/hostname"],
                 {"Domainname": "example.org"}, {},
                 etc_files={"/etc/hosts": str(hosts), "/etc/hostname": str(hostname)},
                 init_path=tini)
    assert out.splitlines() == ["127.0.0.1 localhost", "10.0.0.5 box", "box", "docker-init", "box"]


def test_bad_bind_is_invalid(rt):
    with pytest.raises(InvalidParameter, match="invalid volume specification"):
        rt.run(["true"], None, {"Binds": ["/a:/b:/c:/d"]})
    with pytest.raises(InvalidParameter, match="invalid mode"):
        rt.run(["true"], None, {"Binds": ["/tmp:/b:rx"]})


# ---------------------------------------------------------------- users

def test_user_resolution_inside(rt):
    out = rt.out(["id"], {"User": "app"}, {"GroupAdd": ["other"]})
    assert out.startswith("uid=1000(app) gid=1000(app)")
    assert "2000(extra)" in out and "3000(other)" in out
    out = rt.out(["id"], {"User": "1000:3000"})
    assert out.startswith("uid=1000(app) gid=3000(other)")
    assert "extra" not in out


# ---------------------------------------------------------------- rlimits

def test_ulimits_apply_and_are_clamped(rt):
    _soft, engine_hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    out = rt.sh("ulimit -n; ulimit -Hn")
    default = min(1048576, engine_hard)
    assert out.split() == [str(default), str(default)]
    out = rt.sh("ulimit -n; ulimit -Hn",
                {"Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]})
    assert out.split() == ["1024", "2048"]
    out = rt.sh("ulimit -n; ulimit -Hn",
                {"Ulimits": [{"Name": "nofile", "Soft": 10_000_000, "Hard": 10_000_000}]})
    assert out.split() == [str(engine_hard), str(engine_hard)]


def test_oom_score_adj(rt):
    assert rt.sh("cat /proc/self/oom_score_adj", {"OomScoreAdj": 500}).strip() == "500"


# ---------------------------------------------------------------- cgroups

def _cg_value(rt, cid, controller, filename):
    for d in rt.driver.directories(cid):
        p = os.path.join(d, filename)
        if os.path.exists(p):
            with open(p) as f:
                return f.read().strip()
    raise AssertionError(f"{filename} not found for {cid}")


def test_memory_cpu_pids_limits_visible(rt):
    hc = {"Memory": 32 * 1024 * 1024, "NanoCpus": 500_000_000, "PidsLimit": 20,
          "CpusetCpus": "0", "CpuShares": 512}
    if rt.driver.version == 1:
        script = ("cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us "
                  "/sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpuset/cpuset.cpus "
                  "/sys/fs/cgroup/cpu/cpu.shares")
        assert rt.sh(script, hc).split() == ["33554432", "50000", "20", "0", "512"]
    else:
        script = "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max /sys/fs/cgroup/pids.max"
        assert rt.sh(script, hc).split() == ["33554432", "50000", "100000", "20"]


def test_blkio_weight_when_supported(rt):
    if not rt.driver.blkio_weight_supported():
        pytest.skip("kernel has no blkio/io weight")
    cid = rt.start_detached(["sleep", "30"], None, {"BlkioWeight": 300})
    names = ("blkio.weight", "blkio.bfq.weight", "io.weight", "io.bfq.weight")
    values = []
    for d in rt.driver.directories(cid):
        for n in names:
            p = os.path.join(d, n)
            if os.path.exists(p):
                values.append(open(p).read().split()[-1])
    assert "300" in values


def test_oom_kill_is_reported(rt):
    cid = rt.start_detached(["sh", "-c", "head -c 200m /dev/zero | tail > /dev/null"], None,
                            {"Memory": 32 * 1024 * 1024})
    rt.wait_stopped(cid)
    assert rt.driver.oom_killed(cid) is True


def test_no_oom_without_pressure(rt):
    cid = rt.start_detached(["true"], None, {"Memory": 32 * 1024 * 1024})
    rt.wait_stopped(cid)
    assert rt.driver.oom_killed(cid) is False


def test_stats_of_running_container(rt):
    cid = rt.start_detached(["sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 30"],
                            None, {"Memory": 64 * 1024 * 1024, "PidsLimit": 50})
    deadline = time.monotonic() + 20
    stats = rt.driver.stats(cid)
    while stats["cpu_stats"]["cpu_usage"]["total_usage"] == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
        stats = rt.driver.stats(cid)
    assert stats["cpu_stats"]["cpu_usage"]["total_usage"] > 0
    assert stats["cpu_stats"]["system_cpu_usage"] > 0
    assert stats["cpu_stats"]["online_cpus"] >= 1
    assert stats["memory_stats"]["usage"] > 0
    assert stats["memory_stats"]["limit"] == 64 * 1024 * 1024
    assert stats["pids_stats"]["current"] >= 1
    assert stats["pids_stats"]["limit"] == 50
    assert rt.driver.pids(cid)
    assert cid in rt.driver.leftovers(set())
    assert cid not in rt.driver.leftovers({cid})


def test_live_update_through_runc(rt):
    hc = rt.driver.resources({"Memory": 32 * 1024 * 1024})
    assert hc["memory"]["limit"] == 32 * 1024 * 1024
    current = cgroups.normalize_resources({"Memory": 32 * 1024 * 1024})
    cid = rt.start_detached(["sleep", "30"], None, {"Memory": 32 * 1024 * 1024})
    body = {"Memory": 64 * 1024 * 1024, "MemorySwap": 128 * 1024 * 1024, "PidsLimit": 7,
            "CpuQuota": 20000}
    merged = merge_update(current, body)
    update = runc_update_resources(merged, body, version=rt.driver.version,
                                   swap_accounting=rt.driver.swap_accounting())
    r = rt.runc("update", "--resources", "-", cid, input=json.dumps(update), text=True,
                capture_output=True)
    assert r.returncode == 0, r.stderr
    if rt.driver.version == 1:
        assert _cg_value(rt, cid, "memory", "memory.limit_in_bytes") == str(64 * 1024 * 1024)
        assert _cg_value(rt, cid, "pids", "pids.max") == "7"
        assert _cg_value(rt, cid, "cpu", "cpu.cfs_quota_us") == "20000"
    # Lifting the pids limit again.
    body = {"PidsLimit": 0}
    update = runc_update_resources(merge_update(merged, body), body, version=rt.driver.version)
    r = rt.runc("update", "--resources", "-", cid, input=json.dumps(update), text=True,
                capture_output=True)
    assert r.returncode == 0, r.stderr
    assert _cg_value(rt, cid, "pids", "pids.max") == "max"


def test_remove_cleans_cgroups(rt):
    cid = rt.start_detached(["true"], None, {"Memory": 16 * 1024 * 1024})
    rt.wait_stopped(cid)
    assert any(os.path.isdir(d) for d in rt.driver.directories(cid))
    rt.runc("delete", "--force", cid, capture_output=True)
    rt.driver.remove(cid)
    assert not any(os.path.isdir(d) for d in rt.driver.directories(cid))
    assert cid not in rt.driver.leftovers(set())


# ------------------------------------------------------------ namespaces

def _host_ifaces() -> int:
    with open("/proc/net/dev") as f:
        return len(f.read().splitlines()) - 2


def test_network_namespace_modes(rt):
    private = rt.sh("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '")
    assert private.split() == ["lo"]
    host = rt.sh("tail -n +3 /proc/net/dev | wc -l", netns_path=None)
    assert int(host) == _host_ifaces()


def test_pid_mode_host_and_cgroupns(rt):
    mine = str(os.getpid())
    out = rt.sh(f"test -d /proc/{mine} && echo seen || echo hidden", {"PidMode": "host"})
    assert out.strip() == "seen"
    assert rt.sh(f"test -d /proc/{mine} && echo seen || echo hidden").strip() == "hidden"
    assert rt.sh("echo $$").strip() == "1"
    out = rt.sh("grep memory /proc/self/cgroup", {"CgroupnsMode": "private"})
    assert out.strip().endswith(":/")


def test_privileged_can_mount(rt, base_rootfs):
    out = rt.sh("mount -t tmpfs none /mnt && echo mounted", {"Privileged": True})
    assert out.strip() == "mounted"


def test_readonly_rootfs_with_etc_files(rt, tmp_path):
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 10.0.0.1\n")
    out = rt.sh("cat /etc/resolv.conf; touch /etc/x 2>/dev/null && echo w || echo ro",
                {"ReadonlyRootfs": True}, etc_files={"/etc/resolv.conf": str(resolv)})
    assert out.split("\n")[:2] == ["nameserver 10.0.0.1", "ro"]
