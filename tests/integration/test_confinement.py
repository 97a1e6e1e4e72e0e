"""Docker's default confinement, checked from inside containers run by a real
`dockyard engine` through the docker CLI and docker-py.

What is looked at: /proc/self/status (capabilities, NoNewPrivs, Seccomp), a
small static probe that makes raw syscalls (busybox has no keyctl), masked and
read-only paths, /dev, per-container /etc files, --privileged on this host and
rlimits clamped to what the engine may grant.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess

import docker.errors
import pytest

pytestmark = pytest.mark.usefixtures("cleanup_containers")

DEFAULT_CAPEFF = "00000000a80425fb"
CAP_NET_ADMIN = 1 << 12
CAP_SYS_ADMIN = 1 << 21
CAP_CHOWN = 1 << 0
CAP_NET_RAW = 1 << 13

PROBE_C = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int report(long r) {
    if (r < 0) { printf("errno=%d\n", errno); return 1; }
    printf("ok\n");
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    if (!strcmp(argv[1], "keyctl"))        /* KEYCTL_GET_KEYRING_ID of the session keyring */
        return report(syscall(SYS_keyctl, 0, -3, 0));
    if (!strcmp(argv[1], "unshare_user"))  return report(unshare(CLONE_NEWUSER));
    if (!strcmp(argv[1], "add_key"))
        return report(syscall(SYS_add_key, "user", "dyk", "x", 1, -3));
    return 2;
}
"""


# ------------------------------------------------------------------ helpers

def run(engine, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    """`docker run --rm <args>`; with ok=True the run must succeed."""
    r = engine.cli("run", "--rm", *args, timeout=90)
    if ok:
        assert r.returncode == 0, (f"docker run {' '.join(args)} -> rc={r.returncode}\n"
                                   f"stdout={r.stdout!r}\nstderr={r.stderr!r}\n{engine.log_tail(1500)}")
    return r


def out(engine, *args: str) -> str:
    return run(engine, *args).stdout.decode()


def status_fields(text: str) -> dict[str, str]:
    fields = {}
    for line in text.splitlines():
        k, sep, v = line.partition(":")
        if sep:
            fields[k.strip()] = v.strip()
    return fields


def container_status(engine, *opts: str) -> dict[str, str]:
    return status_fields(out(engine, *opts, "busybox", "cat", "/proc/self/status"))


def engine_status(engine) -> dict[str, str]:
    with open(f"/proc/{engine.proc.pid}/status") as f:
        return status_fields(f.read())


@pytest.fixture(scope="module")
def probe_dir(tmp_path_factory):
    gcc = shutil.which("gcc")
    if not gcc:
        pytest.skip("gcc is needed to build the static syscall probe")
    d = tmp_path_factory.mktemp("probe")
    (d / "probe.c").write_text(PROBE_C)
    r = subprocess.run([gcc, "-static", "-O2", "-o", str(d / "probe"), str(d / "probe.c")],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot build a static probe: {r.stderr[-300:]}")
    return str(d)


def probe(engine, probe_dir: str, what: str, *opts: str) -> str:
    r = run(engine, *opts, "-v", f"{probe_dir}:/probe:ro", "busybox", "/probe/probe", what, ok=False)
    assert r.returncode in (0, 1), r.stderr
    return r.stdout.decode().strip()


# ------------------------------------------------------------- capabilities

def test_default_capability_set(engine):
    st = container_status(engine)
    assert st["CapEff"] == DEFAULT_CAPEFF
    assert st["CapPrm"] == DEFAULT_CAPEFF
    assert st["CapBnd"] == DEFAULT_CAPEFF
    assert st["CapInh"] == "0000000000000000"
    assert st["CapAmb"] == "0000000000000000"


def test_cap_add_and_drop(engine):
    eff = int(container_status(engine, "--cap-add", "NET_ADMIN", "--cap-drop", "CHOWN")["CapEff"], 16)
    assert eff & CAP_NET_ADMIN
    assert not eff & CAP_CHOWN
    assert eff == (int(DEFAULT_CAPEFF, 16) | CAP_NET_ADMIN) & ~CAP_CHOWN
    # the CAP_ prefix and lower case are accepted, as by Docker
    eff = int(container_status(engine, "--cap-add", "cap_sys_admin")["CapEff"], 16)
    assert eff == int(DEFAULT_CAPEFF, 16) | CAP_SYS_ADMIN


def test_cap_drop_all_and_add_back(engine):
    assert container_status(engine, "--cap-drop", "ALL")["CapEff"] == "0000000000000000"
    st = container_status(engine, "--cap-drop", "ALL", "--cap-add", "NET_RAW")
    assert int(st["CapEff"], 16) == CAP_NET_RAW
    assert int(st["CapBnd"], 16) == CAP_NET_RAW


def test_cap_add_all_is_every_engine_capability(engine):
    st = container_status(engine, "--cap-add", "ALL")
    assert st["CapEff"] == engine_status(engine)["CapEff"]


def test_dropped_capability_is_enforced(engine):
    r = run(engine, "--cap-drop", "CHOWN", "busybox", "sh", "-c", "touch /tmp/f && chown 1:1 /tmp/f",
            ok=False)
    assert r.returncode != 0
    assert b"Operation not permitted" in r.stderr
    run(engine, "busybox", "sh", "-c", "touch /tmp/f && chown 1:1 /tmp/f")


def test_unknown_capability_is_a_clear_error(engine, api):
    r = run(engine, "--cap-add", "NOT_A_CAP", "busybox", "true", ok=False)
    assert r.returncode == 125
    assert b"NOT_A_CAP" in r.stderr


def test_privileged_works_on_this_host(engine):
    """dockerd 20.10 fails here: the bounding set lacks CAP_SYS_RESOURCE."""
    st = container_status(engine, "--privileged")
    eng = engine_status(engine)
    assert st["CapEff"] == eng["CapEff"]
    assert st["CapBnd"] == eng["CapBnd"]
    assert st["Seccomp"] == "0"
    # every device of the host, and /sys writable
    r = out(engine, "--privileged", "busybox", "sh", "-c",
            "test -e /dev/kmsg && echo kmsg; grep ' /sys ' /proc/mounts")
    assert "kmsg" in r
    assert " rw," in r.splitlines()[-1]


# ------------------------------------------------------------------ seccomp

def test_default_seccomp_blocks_namespaces(engine):
    st = container_status(engine)
    assert st["Seccomp"] == "2"
    assert st["NoNewPrivs"] == "0"
    for flag in ("-U", "-m"):
        r = run(engine, "busybox", "unshare", flag, "true", ok=False)
        assert r.returncode != 0, flag
        assert b"Operation not permitted" in r.stderr


def test_seccomp_unconfined(engine):
    st = container_status(engine, "--security-opt", "seccomp=unconfined")
    assert st["Seccomp"] == "0"
    # the user namespace was refused by the filter, not by the kernel
    run(engine, "--security-opt", "seccomp=unconfined", "busybox", "unshare", "-U", "true")


def test_seccomp_blocks_keyctl(engine, probe_dir):
    assert probe(engine, probe_dir, "keyctl") == "errno=1"        # EPERM from the filter
    assert probe(engine, probe_dir, "add_key") == "errno=1"
    assert probe(engine, probe_dir, "unshare_user") == "errno=1"
    free = probe(engine, probe_dir, "keyctl", "--security-opt", "seccomp=unconfined")
    assert free != "errno=1"  # reaches the kernel: ok, or ENOKEY/EACCES


def test_cap_sys_admin_opens_namespace_syscalls(engine):
    """Docker's profile allows unshare/mount when CAP_SYS_ADMIN is granted."""
    run(engine, "--cap-add", "SYS_ADMIN", "busybox", "unshare", "-m", "true")


def test_no_new_privileges(engine):
    assert container_status(engine, "--security-opt", "no-new-privileges")["NoNewPrivs"] == "1"
    assert container_status(engine, "--security-opt", "no-new-privileges=true")["NoNewPrivs"] == "1"
    assert container_status(engine, "--security-opt", "no-new-privileges=false")["NoNewPrivs"] == "0"


def test_bad_security_opt_is_rejected(engine):
    r = run(engine, "--security-opt", "seccomp=/does/not/exist.json", "busybox", "true", ok=False)
    assert r.returncode != 0
    r = run(engine, "--security-opt", "bogus=1", "busybox", "true", ok=False)
    assert r.returncode == 125
    assert b"bogus" in r.stderr


# ---------------------------------------------------------- masked, readonly

def test_masked_paths_read_empty(engine):
    text = out(engine, "busybox", "sh", "-c",
               "for f in /proc/keys /proc/timer_list /proc/kcore /proc/sched_debug; do "
               "  [ -e $f ] && echo \"$f $(wc -c < $f)\"; done; "
               "echo firmware $(ls -A /sys/firmware | wc -l); "
               "echo acpi $(ls -A /proc/acpi 2>/dev/null | wc -l)")
    sizes = dict(line.rsplit(" ", 1) for line in text.splitlines())
    assert sizes["/proc/keys"] == "0"
    assert sizes["/proc/timer_list"] == "0"
    assert sizes["firmware"] == "0"
    assert sizes["acpi"] == "0"
    for f in ("/proc/kcore", "/proc/sched_debug"):
        if f in sizes:          # absent when the kernel lacks it
            assert sizes[f] == "0", f
    # outside a container those files have content (so the mask is what empties them)
    if os.path.exists("/proc/timer_list"):
        with open("/proc/timer_list", "rb") as fh:
            assert fh.read(64)


def test_readonly_paths(engine):
    text = out(engine, "busybox", "sh", "-c",
               "for p in /proc/sys /proc/bus /proc/irq /proc/sysrq-trigger /sys; do "
               "  m=$(awk -v p=$p '$2==p {print $4}' /proc/mounts | tail -1); "
               "  echo \"$p ${m%%,*}\"; done; "
               "echo x > /proc/sys/kernel/hostname 2>/dev/null && echo wrote-sys; "
               "touch /sys/dyk 2>/dev/null && echo wrote-sysfs; true")
    lines = text.splitlines()
    modes = dict(line.split(" ", 1) for line in lines if line.startswith("/"))
    for p in ("/proc/sys", "/proc/bus", "/proc/irq", "/sys"):
        assert modes[p] == "ro", (p, text)
    assert "wrote-sys" not in lines
    assert "wrote-sysfs" not in lines


def test_systempaths_unconfined_lifts_masks(engine):
    text = out(engine, "--security-opt", "systempaths=unconfined", "busybox", "sh", "-c",
               "awk '$2==\"/proc/sys\" || $2==\"/proc/keys\"' /proc/mounts | wc -l")
    assert text.strip() == "0"


# ---------------------------------------------------------------------- /dev

def test_private_dev(engine):
    text = out(engine, "busybox", "sh", "-c",
               "awk '{print $2, $3}' /proc/mounts; echo ---; ls /dev; echo ---; "
               "df -k /dev/shm | tail -1")
    mounts_part, devs, shm = text.split("---\n")
    mounts = dict(line.split() for line in mounts_part.splitlines())
    assert mounts["/dev"] == "tmpfs"
    assert mounts["/dev/pts"] == "devpts"
    assert mounts["/dev/mqueue"] == "mqueue"
    assert mounts["/dev/shm"] == "tmpfs"
    names = set(devs.split())
    assert {"null", "zero", "full", "random", "urandom", "tty", "pts", "ptmx", "shm", "mqueue",
            "fd", "stdin", "stdout", "stderr"} <= names
    # no host devices leak in
    assert not names & {"kmsg", "mem", "sda", "vda", "loop0"}
    assert shm.split()[1] == str(64 * 1024)  # Docker's default /dev/shm: 64 MiB


def test_shm_size(engine):
    text = out(engine, "--shm-size", "32m", "busybox", "df", "-k", "/dev/shm")
    assert text.splitlines()[-1].split()[1] == str(32 * 1024)
    # the size is a real limit
    r = run(engine, "--shm-size", "1m", "busybox", "dd", "if=/dev/zero", "of=/dev/shm/big",
            "bs=1024", "count=2048", ok=False)
    assert r.returncode != 0
    assert b"No space left" in r.stderr


def test_devices_cgroup_denies_mknod_use(engine):
    # mknod is allowed (Docker's default) but the device cgroup refuses opening it
    r = run(engine, "busybox", "sh", "-c", "mknod /tmp/vda b 253 0 && head -c1 /tmp/vda", ok=False)
    assert r.returncode != 0
    assert b"Operation not permitted" in r.stderr


def test_tty_gets_devpts(engine, client):
    c = client.containers.run("busybox", ["sh", "-c", "tty; ls -l /proc/self/fd/0"], tty=True,
                              detach=True)
    assert c.wait(timeout=30)["StatusCode"] == 0
    logs = c.logs().decode()
    assert "/dev/pts/0" in logs


# ------------------------------------------------------------------ /etc

def test_etc_files_per_container(engine, client):
    a = client.containers.run("busybox", ["sleep", "60"], detach=True, hostname="alpha",
                              extra_hosts={"db.test": "10.9.9.9"}, dns=["10.53.53.53"])
    b = client.containers.run("busybox", ["sleep", "60"], detach=True)
    host_hosts = open("/etc/hosts").read()

    def cat(c, path):
        r = engine.cli("exec", c.id, "cat", path)
        if r.returncode != 0:  # no exec on this engine: read the bind source instead
            return None
        return r.stdout.decode()

    ia, ib = client.api.inspect_container(a.id), client.api.inspect_container(b.id)
    assert ia["Config"]["Hostname"] == "alpha"
    assert ib["Config"]["Hostname"] == b.id[:12]
    for info in (ia, ib):
        for key in ("HostsPath", "HostnamePath", "ResolvConfPath"):
            assert info[key] and os.path.exists(info[key]), (key, info[key])
    assert ia["HostsPath"] != ib["HostsPath"]
    hosts_a = open(ia["HostsPath"]).read()
    assert "alpha" in hosts_a and "10.9.9.9\tdb.test" in hosts_a
    assert open(ia["HostnamePath"]).read() == "alpha\n"
    assert "nameserver 10.53.53.53" in open(ia["ResolvConfPath"]).read()
    assert "db.test" not in open(ib["HostsPath"]).read()
    assert b.id[:12] in open(ib["HostsPath"]).read()
    for c, name in ((a, "alpha"), (b, b.id[:12])):
        got = cat(c, "/etc/hostname")
        if got is not None:
            assert got == name + "\n"
    a.remove(force=True)
    b.remove(force=True)
    assert open("/etc/hosts").read() == host_hosts


def test_etc_files_inside_and_isolated(engine):
    text = out(engine, "--hostname", "beta", "--add-host", "svc.test:10.8.8.8",
               "--dns", "10.53.0.1", "busybox", "sh", "-c",
               "cat /etc/hostname; hostname; grep -c svc.test /etc/hosts; "
               "grep nameserver /etc/resolv.conf; echo '10.1.1.1 mine' >> /etc/hosts; "
               "awk '$2 ~ /^\\/etc\\// {print $2}' /proc/mounts | sort")
    lines = text.splitlines()
    assert lines[:4] == ["beta", "beta", "1", "nameserver 10.53.0.1"]
    assert lines[4:] == ["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"]
    # another container does not see the first one's edit
    assert "mine" not in out(engine, "busybox", "cat", "/etc/hosts")
    with open("/etc/hosts") as f:
        assert "10.1.1.1 mine" not in f.read()


# ----------------------------------------------------------------- rlimits

def test_ulimit_applied(engine):
    text = out(engine, "--ulimit", "nofile=1024:4096", "--ulimit", "nproc=500",
               "busybox", "sh", "-c", "ulimit -Sn; ulimit -Hn; ulimit -u")
    assert text.split() == ["1024", "4096", "500"]


def engine_nofile_hard(engine) -> int:
    with open(f"/proc/{engine.proc.pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                hard = line.split()[4]
                return resource.RLIM_INFINITY if hard == "unlimited" else int(hard)
    raise AssertionError("no Max open files line")


def test_ulimit_clamped_to_what_the_engine_may_grant(engine):
    """podman fails here by asking for more than the hard limit: dockyard clamps."""
    hard = engine_nofile_hard(engine)
    want = hard * 4 if hard != resource.RLIM_INFINITY else 1 << 20
    text = out(engine, "--ulimit", f"nofile={want}:{want}", "busybox", "sh", "-c",
               "ulimit -Sn; ulimit -Hn")
    soft_in, hard_in = (int(x) for x in text.split())
    if hard != resource.RLIM_INFINITY:
        assert hard_in == hard
        assert soft_in == hard
    assert soft_in <= hard_in


def test_default_rlimits_within_engine_limits(engine):
    hard = engine_nofile_hard(engine)
    text = out(engine, "busybox", "sh", "-c", "ulimit -Sn; ulimit -Hn")
    soft_in, hard_in = (int(x) for x in text.split())
    assert soft_in <= hard_in
    if hard != resource.RLIM_INFINITY:
        assert hard_in <= hard


def test_bad_ulimit_is_a_clear_error(client):
    with pytest.raises(docker.errors.APIError) as ei:
        client.containers.run("busybox", "true", remove=True,
                              ulimits=[docker.types.Ulimit(name="nofile", soft=100, hard=10)])
    assert ei.value.response.status_code == 400
    with pytest.raises(docker.errors.APIError) as ei:
        client.containers.run("busybox", "true", remove=True,
                              ulimits=[docker.types.Ulimit(name="notalimit", soft=1, hard=1)])
    assert ei.value.response.status_code == 400
