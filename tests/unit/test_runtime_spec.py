import json
import platform
import signal
import subprocess
import sys

import pytest

from dockyard.errors import InvalidParameter
from dockyard.oci import capabilities as capmod
from dockyard.oci import kernel_abi, rlimits, seccomp
from dockyard.oci.linux_defaults import MASKED_PATHS, parse_device_cgroup_rule
from dockyard.oci.runtime_spec import build_spec, parse_bind, parse_security_opt, user_mounts
from dockyard.oci.seccomp_default import DEFAULT_PROFILE

ALL = list(capmod.CAPABILITIES)


def spec(config=None, host_config=None, **kw):
    args = dict(rootfs="/rootfs", hostname="h1", netns_path="/run/netns/x", etc_files={},
                cgroups_path="/dockyard/c1", cgroup_resources={}, user=(0, 0, []),
                env=["PATH=/bin"], args=["sh"], cwd="/", engine_caps=ALL, cgroup_version=1)
    args.update(kw)
    return build_spec(config or {}, host_config or {}, **args)


def rules_for(sp, name):
    return [r for r in sp["linux"]["seccomp"]["syscalls"] if name in r["names"]]


def test_defaults():
    s = spec({"Tty": True, "Domainname": "example.org"})
    p = s["process"]
    assert p["terminal"] is True
    assert capmod.mask_from_caps(p["capabilities"]["effective"]) == 0xA80425FB
    assert p["capabilities"]["inheritable"] == []
    assert p["noNewPrivileges"] is False
    assert s["hostname"] == "h1" and s["domainname"] == "example.org"
    assert {"type": "network", "path": "/run/netns/x"} in s["linux"]["namespaces"]
    types = [n["type"] for n in s["linux"]["namespaces"]]
    assert sorted(types) == ["ipc", "mount", "network", "pid", "uts"]  # v1: host cgroupns
    assert s["linux"]["maskedPaths"] == list(MASKED_PATHS)
    assert "/proc/sys" in s["linux"]["readonlyPaths"]
    dests = [m["destination"] for m in s["mounts"]]
    assert dests == ["/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm"]
    shm = s["mounts"][-1]
    assert "size=67108864" in shm["options"]
    assert s["linux"]["resources"]["devices"][0] == {"allow": False, "access": "rwm"}
    json.dumps(s)  # serialisable


def test_cgroup_namespace_private_on_v2_and_network_modes():
    s = spec(cgroup_version=2, netns_path=None)
    types = [n["type"] for n in s["linux"]["namespaces"]]
    assert "cgroup" in types and "network" not in types
    s = spec(netns_path="")
    assert {"type": "network"} in s["linux"]["namespaces"]


def test_host_modes():
    s = spec(host_config={"PidMode": "host", "IpcMode": "host", "UTSMode": "host"})
    types = [n["type"] for n in s["linux"]["namespaces"]]
    assert "pid" not in types and "ipc" not in types and "uts" not in types
    assert "hostname" not in s
    shm = next(m for m in s["mounts"] if m["destination"] == "/dev/shm")
    assert shm["type"] == "bind" and shm["source"] == "/dev/shm"
    s = spec(host_config={"IpcMode": "none"})
    assert "/dev/shm" not in [m["destination"] for m in s["mounts"]]
    with pytest.raises(InvalidParameter):
        spec(host_config={"IpcMode": "bogus"})


def test_joined_ipc_namespace_and_shared_shm():
    s = spec(host_config={"IpcMode": "container:abc"}, ipc_ns_path="/proc/42/ns/ipc",
             shm_source="/data/containers/abc/shm")
    assert {"type": "ipc", "path": "/proc/42/ns/ipc"} in s["linux"]["namespaces"]
    shm = next(m for m in s["mounts"] if m["destination"] == "/dev/shm")
    assert shm["type"] == "bind" and shm["source"] == "/data/containers/abc/shm"
    with pytest.raises(InvalidParameter):  # a container mode without the namespace to join
        spec(host_config={"IpcMode": "container:abc"})


def test_shm_size_and_user_override():
    s = spec(host_config={"ShmSize": 1 << 20})
    assert "size=1048576" in next(m for m in s["mounts"] if m["destination"] == "/dev/shm")["options"]
    s = spec(host_config={"Tmpfs": {"/dev/shm": "size=2m"}})
    shm = [m for m in s["mounts"] if m["destination"] == "/dev/shm"]
    assert len(shm) == 1 and "size=2m" in shm[0]["options"]


def test_mount_order_etc_files_init():
    s = spec(host_config={"Binds": ["/srv/a/b:/data/sub", "/srv/a:/data:ro"]},
             etc_files={"/etc/hosts": "/x/hosts", "/etc/resolv.conf": "/x/resolv"},
             init_path="/usr/bin/tini-static", args=["app", "-v"])
    dests = [m["destination"] for m in s["mounts"]]
    assert dests[:7] == ["/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm"]
    assert dests[7:] == ["/etc/hosts", "/etc/resolv.conf", "/sbin/docker-init", "/data", "/data/sub"]
    assert s["process"]["args"] == ["/sbin/docker-init", "--", "app", "-v"]
    data = next(m for m in s["mounts"] if m["destination"] == "/data")
    assert data["options"] == ["rbind", "rprivate", "ro"]


def test_user_bind_over_etc_file_wins():
    s = spec(host_config={"Binds": ["/mine/hosts:/etc/hosts"]}, etc_files={"/etc/hosts": "/x/hosts"})
    hosts = [m for m in s["mounts"] if m["destination"] == "/etc/hosts"]
    assert [m["source"] for m in hosts] == ["/mine/hosts"]


@pytest.mark.parametrize("bad,msg", [
    ("/a", "invalid volume specification"),
    ("/a:/b:ro:x", "invalid volume specification"),
    ("/a:b", "mount path must be absolute"),
    ("/a:/", "destination can't be '/'"),
    ("/a:/b:rx", "invalid mode: rx"),
    ("/a:/b:ro,rw", "invalid mode"),
    ("", "invalid volume specification"),
])
def test_bad_binds(bad, msg):
    with pytest.raises(InvalidParameter, match=msg):
        parse_bind(bad)


def test_bind_modes():
    b = parse_bind("/src/:/dst/x/:ro,z,rshared")
    assert b == {"source": "/src", "destination": "/dst/x", "named": False, "read_only": True,
                 "propagation": "rshared"}
    assert parse_bind("vol1:/data")["named"] is True


def test_named_volume_needs_a_path():
    with pytest.raises(InvalidParameter, match="no such volume: vol1"):
        user_mounts({"Binds": ["vol1:/data"]})
    m = user_mounts({"Binds": ["vol1:/data:ro"]}, {"vol1": "/var/lib/v/vol1/_data"})
    assert m[0]["source"] == "/var/lib/v/vol1/_data" and "ro" in m[0]["options"]


def test_mounts_field(tmp_path):
    m = user_mounts({"Mounts": [
        {"Type": "bind", "Source": str(tmp_path), "Target": "/b", "ReadOnly": True,
         "BindOptions": {"NonRecursive": True}},
        {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 4096, "Mode": 0o700}},
    ]})
    assert m[0]["options"] == ["bind", "rprivate", "ro"]
    assert m[1]["options"] == ["noexec", "nosuid", "nodev", "size=4096", "mode=700"]
    with pytest.raises(InvalidParameter, match="bind source path does not exist"):
        user_mounts({"Mounts": [{"Type": "bind", "Source": "/nonexistent/x", "Target": "/b"}]})
    with pytest.raises(InvalidParameter, match="Duplicate mount point: /b"):
        user_mounts({"Mounts": [{"Type": "tmpfs", "Target": "/b"}], "Tmpfs": {"/b": ""}})
    with pytest.raises(InvalidParameter, match="mount type unknown"):
        user_mounts({"Mounts": [{"Type": "npipe", "Target": "/b"}]})


def test_tmpfs_option_merge():
    m = user_mounts({"Tmpfs": {"/run": "exec,size=65536k"}})
    assert m[0]["options"] == ["nosuid", "nodev", "exec", "size=65536k"]


def test_readonly_rootfs_and_privileged():
    s = spec(host_config={"ReadonlyRootfs": True, "Privileged": True},
             engine_caps=[c for c in ALL if c != "CAP_SYS_RESOURCE"])
    assert s["root"]["readonly"] is True
    assert "CAP_SYS_RESOURCE" not in s["process"]["capabilities"]["bounding"]
    assert len(s["process"]["capabilities"]["bounding"]) == len(ALL) - 1
    assert "seccomp" not in s["linux"] and "maskedPaths" not in s["linux"]
    assert s["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    sysfs = next(m for m in s["mounts"] if m["destination"] == "/sys")
    assert "rw" in sysfs["options"]


def test_security_opts():
    assert parse_security_opt(["no-new-privileges"])["no_new_privileges"] is True
    assert parse_security_opt(["no-new-privileges:true"])["no_new_privileges"] is True
    assert parse_security_opt(["no-new-privileges=false"])["no_new_privileges"] is False
    assert parse_security_opt(["seccomp=unconfined", "apparmor=unconfined", "label=disable"])["seccomp"] == "unconfined"
    for bad in (["nonsense"], ["no-new-privileges=maybe"], ["seccomp={bad json"], ["foo=bar"]):
        with pytest.raises(InvalidParameter):
            parse_security_opt(bad)
    s = spec(host_config={"SecurityOpt": ["seccomp=unconfined", "no-new-privileges"]})
    assert "seccomp" not in s["linux"] and s["process"]["noNewPrivileges"] is True


def test_seccomp_is_capability_conditional():
    s = spec()
    assert rules_for(s, "ptrace")  # minKernel 4.8 rule
    assert not rules_for(s, "mount") and not rules_for(s, "reboot")
    clone = rules_for(s, "clone")
    assert clone == [{"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 0, "value": 0x7E020000, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}]
    assert rules_for(s, "clone3")[0]["errnoRet"] == 38
    s = spec(host_config={"CapAdd": ["SYS_ADMIN", "SYS_BOOT"]})
    assert rules_for(s, "mount") and rules_for(s, "reboot")
    assert all("args" not in r for r in rules_for(s, "clone"))
    assert not [r for r in rules_for(s, "clone3") if r["action"] == "SCMP_ACT_ERRNO"]


def test_seccomp_architectures_and_personality():
    oci = seccomp.to_oci(DEFAULT_PROFILE, [], machine="x86_64", kernel="6.1.0", x32=True)
    assert oci["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    no_x32 = seccomp.to_oci(DEFAULT_PROFILE, [], machine="x86_64", kernel="6.1.0", x32=False)
    assert no_x32["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]
    assert no_x32["syscalls"] == oci["syscalls"]
    # a profile's own architectures are the user's word: kept as given
    own = seccomp.to_oci({**DEFAULT_PROFILE, "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"]}, [],
                         machine="x86_64", x32=False)
    assert own["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"]
    assert oci["defaultAction"] == "SCMP_ACT_ERRNO" and oci["defaultErrnoRet"] == 1
    personas = sorted(r["args"][0]["value"] for r in oci["syscalls"] if r["names"] == ["personality"])
    assert personas == [0, 8, 0x20000, 0x20008, 0xFFFFFFFF]
    names = {n for r in oci["syscalls"] for n in r["names"]}
    assert "arch_prctl" in names and "riscv_flush_icache" not in names
    assert "keyctl" not in names and "add_key" not in names
    old = seccomp.to_oci(DEFAULT_PROFILE, [], machine="x86_64", kernel="4.4.0")
    assert not [r for r in old["syscalls"] if "ptrace" in r["names"]]
    arm = seccomp.to_oci(DEFAULT_PROFILE, [], machine="aarch64", kernel="6.1.0")
    assert arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert "arch_prctl" not in {n for r in arm["syscalls"] for n in r["names"]}


def test_seccomp_bad_profiles():
    with pytest.raises(InvalidParameter):
        seccomp.to_oci({"defaultAction": "SCMP_ACT_NOPE"}, [])
    with pytest.raises(InvalidParameter):
        seccomp.to_oci({"defaultAction": "SCMP_ACT_ERRNO",
                        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                                      "args": [{"index": 0, "value": 1, "op": "LT"}]}]}, [])
    with pytest.raises(InvalidParameter, match="opening seccomp profile"):
        seccomp.load_profile("/nonexistent.json")


def test_rlimits_clamped_to_engine():
    limits = lambda t: (1024, 20000)  # noqa: E731
    assert rlimits.build_rlimits(None, limits=limits) == [
        {"type": "RLIMIT_NOFILE", "hard": 20000, "soft": 20000}]
    out = rlimits.build_rlimits([{"Name": "nofile", "Soft": 100, "Hard": 50000},
                                 {"Name": "nproc", "Soft": -1, "Hard": -1}], limits=limits)
    assert {"type": "RLIMIT_NOFILE", "hard": 20000, "soft": 100} in out
    assert {"type": "RLIMIT_NPROC", "hard": 20000, "soft": 20000} in out
    big = rlimits.build_rlimits(None, limits=lambda t: (1024, rlimits.INFINITY))
    assert big == [{"type": "RLIMIT_NOFILE", "hard": 1048576, "soft": 1048576}]
    with pytest.raises(InvalidParameter, match="invalid ulimit type: bogus"):
        rlimits.build_rlimits([{"Name": "bogus", "Soft": 1, "Hard": 1}], limits=limits)
    with pytest.raises(InvalidParameter, match="soft limit must be less than or equal"):
        rlimits.build_rlimits([{"Name": "core", "Soft": 2, "Hard": 1}], limits=limits)


def test_sysctls_and_oom_score():
    s = spec(host_config={"Sysctls": {"net.ipv4.ip_forward": "1", "kernel.shmmax": "1000"}})
    assert s["linux"]["sysctl"] == {"net.ipv4.ip_forward": "1", "kernel.shmmax": "1000"}
    with pytest.raises(InvalidParameter, match="is not allowed"):
        spec(host_config={"Sysctls": {"vm.swappiness": "1"}})
    with pytest.raises(InvalidParameter, match="host network namespace"):
        spec(host_config={"Sysctls": {"net.ipv4.ip_forward": "1"}}, netns_path=None)
    assert spec(host_config={"OomScoreAdj": 300})["process"]["oomScoreAdj"] == 300
    with pytest.raises(InvalidParameter, match="range for oom score adj"):
        spec(host_config={"OomScoreAdj": 1001})
    with pytest.raises(InvalidParameter, match="CAP_SYS_RESOURCE"):
        spec(host_config={"OomScoreAdj": -500}, engine_caps=[c for c in ALL if c != "CAP_SYS_RESOURCE"])


def test_devices_and_rules():
    s = spec(host_config={"Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/mynull",
                                       "CgroupPermissions": "rw"}],
                          "DeviceCgroupRules": ["c 42:* rmw"]})
    assert s["linux"]["devices"][0]["path"] == "/dev/mynull"
    assert s["linux"]["devices"][0]["major"] == 1 and s["linux"]["devices"][0]["minor"] == 3
    rules = s["linux"]["resources"]["devices"]
    assert {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"} in rules
    assert {"allow": True, "type": "c", "major": 42, "access": "rmw"} in rules
    with pytest.raises(InvalidParameter, match="error gathering device information"):
        spec(host_config={"Devices": [{"PathOnHost": "/dev/nonexistent"}]})
    for bad in ("c 1:3", "x 1:3 rwm", "c a:3 rwm", "c 1:3 rwx"):
        with pytest.raises(InvalidParameter):
            parse_device_cgroup_rule(bad)


def test_misc_validation():
    with pytest.raises(InvalidParameter):
        spec(args=[])
    with pytest.raises(InvalidParameter, match="absolute path"):
        spec(cwd="relative")
    s = spec(user=(1000, 1000, [10, 20]), cgroup_resources={"memory": {"limit": 1 << 25}})
    assert s["process"]["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [10, 20]}
    assert s["linux"]["resources"]["memory"] == {"limit": 1 << 25}


def test_systempaths_and_writable_cgroups():
    s = spec(host_config={"SecurityOpt": ["systempaths=unconfined", "writable-cgroups=true"]})
    assert "maskedPaths" not in s["linux"] and "readonlyPaths" not in s["linux"]
    assert "seccomp" in s["linux"]
    cg = next(m for m in s["mounts"] if m["destination"] == "/sys/fs/cgroup")
    assert "rw" in cg["options"] and "ro" not in cg["options"]
    with pytest.raises(InvalidParameter):
        parse_security_opt(["systempaths=confined"])


def test_console_size_from_host_config_only_with_a_tty():
    from dockyard.oci.runtime_spec import build_spec

    def spec(tty: bool, size):
        return build_spec({"Tty": tty}, {"ConsoleSize": size}, rootfs="/r", hostname="h", netns_path=None,
                          etc_files={}, cgroups_path="/x", cgroup_resources={}, user=(0, 0, []),
                          env=[], args=["sh"], cwd="/")["process"]

    assert spec(True, [24, 80])["consoleSize"] == {"height": 24, "width": 80}
    assert "consoleSize" not in spec(False, [24, 80])
    assert "consoleSize" not in spec(True, [0, 0])


X32_GETPID = """
import ctypes, os, sys
r = ctypes.CDLL(None, use_errno=True).syscall(ctypes.c_long(0x40000000 | 39))
print("runs" if r == os.getpid() else "enosys" if ctypes.get_errno() == 38 else f"other {r} {ctypes.get_errno()}")
"""


@pytest.mark.skipif(platform.machine() != "x86_64", reason="x32 is an x86_64 ABI")
def test_x32_probe_agrees_with_an_x32_call_in_a_process_of_its_own():
    r = subprocess.run([sys.executable, "-c", X32_GETPID], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:  # killed: a filter without x32 around this test run
        assert r.returncode == -signal.SIGSYS and kernel_abi.runs_x32() is False
        return
    assert r.stdout.strip() in ("runs", "enosys"), r.stdout
    assert kernel_abi.runs_x32() is (r.stdout.strip() == "runs")
    archs = seccomp.default_profile([])["architectures"]
    assert ("SCMP_ARCH_X32" in archs) is kernel_abi.runs_x32() and "SCMP_ARCH_X86" in archs
