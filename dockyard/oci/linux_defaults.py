"""What every Docker container gets unless told otherwise: the standard
mounts, masked and read-only /proc and /sys paths, and the device rules.
Also the helpers for HostConfig.Devices / DeviceCgroupRules and the host
device list that --privileged exposes."""

from __future__ import annotations

import os
import stat

from dockyard.errors import InvalidParameter

DEFAULT_SHM_SIZE = 64 * 1024 * 1024

MASKED_PATHS = (
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")


def default_mounts(*, shm_size: int | None = None, privileged: bool = False,
                   shm: bool = True, host_ipc: bool = False, shm_source: str | None = None) -> list[dict]:
    """Docker's default mount list.

    `shm=False` leaves /dev/shm out (IpcMode "none", or the user mounts one);
    `host_ipc` binds the host's /dev/shm instead of a private tmpfs, `shm_source` a host
    directory instead (a shareable container's tmpfs, or the one of the container it joins).
    A privileged container gets /sys and the cgroup tree read-write.
    """
    ro = "rw" if privileged else "ro"
    mounts = [
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", ro]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", ro]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
    ]
    if shm and (host_ipc or shm_source):
        mounts.append({"destination": "/dev/shm", "type": "bind", "source": shm_source or "/dev/shm",
                       "options": ["rbind", "rprivate"]})
    elif shm:
        size = int(shm_size) if shm_size else DEFAULT_SHM_SIZE
        mounts.append({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                       "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={size}"]})
    return mounts


def _rule(allow: bool, kind: str | None, major: int | None, minor: int | None, access: str) -> dict:
    rule: dict = {"allow": allow, "access": access}
    if kind is not None:
        rule["type"] = kind
    if major is not None:
        rule["major"] = major
    if minor is not None:
        rule["minor"] = minor
    return rule


def default_device_rules() -> list[dict]:
    """Device cgroup: deny everything, then allow the standard character
    devices (runc appends its own list — pts, ptmx, tun, mknod — after these)."""
    return [
        _rule(False, None, None, None, "rwm"),
        _rule(True, "c", 1, 5, "rwm"),    # zero
        _rule(True, "c", 1, 3, "rwm"),    # null
        _rule(True, "c", 1, 9, "rwm"),    # urandom
        _rule(True, "c", 1, 8, "rwm"),    # random
        _rule(True, "c", 5, 0, "rwm"),    # tty
        _rule(True, "c", 5, 1, "rwm"),    # console
        _rule(False, "c", 10, 229, "rwm"),  # fuse
    ]


def privileged_device_rules() -> list[dict]:
    return [_rule(True, None, None, None, "rwm")]


def parse_device_cgroup_rule(text: str) -> dict:
    """`DeviceCgroupRules` entry such as "c 1:3 rwm" or "b *:* m"."""
    parts = text.split()
    if len(parts) != 3 or parts[0] not in ("a", "b", "c") or ":" not in parts[1]:
        raise InvalidParameter(f"invalid device cgroup format '{text}'")
    major_s, _, minor_s = parts[1].partition(":")
    access = parts[2]
    if not access or any(ch not in "rwm" for ch in access):
        raise InvalidParameter(f"invalid device cgroup format '{text}'")

    def num(s: str) -> int | None:
        if s == "*":
            return None
        if not s.isdigit():
            raise InvalidParameter(f"invalid device cgroup format '{text}'")
        return int(s)
    return _rule(True, parts[0], num(major_s), num(minor_s), access)


_SKIP_DEV_DIRS = {"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"}


def _device_entry(host_path: str, container_path: str, st: os.stat_result) -> dict:
    kind = "c" if stat.S_ISCHR(st.st_mode) else "b"
    return {"path": container_path, "type": kind, "major": os.major(st.st_rdev),
            "minor": os.minor(st.st_rdev), "fileMode": stat.S_IMODE(st.st_mode),
            "uid": st.st_uid, "gid": st.st_gid}


def host_devices(root: str = "/dev") -> list[dict]:
    """Every character/block device on the host (what --privileged exposes)."""
    out: list[dict] = []
    for dirpath, dirnames, filenames in os.walk(root):
        if dirpath == root:
            dirnames[:] = [d for d in dirnames if d not in _SKIP_DEV_DIRS]
        for name in filenames:
            path = os.path.join(dirpath, name)
            if path in ("/dev/console", "/dev/ptmx"):
                continue  # runc provides these per container
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                out.append(_device_entry(path, path, st))
    return out


def user_devices(devices: list[dict] | None) -> tuple[list[dict], list[dict]]:
    """HostConfig.Devices → (linux.devices, device cgroup allow rules)."""
    entries: list[dict] = []
    rules: list[dict] = []
    for dev in devices or []:
        host = dev.get("PathOnHost") or ""
        inside = dev.get("PathInContainer") or host
        perms = dev.get("CgroupPermissions") or "rwm"
        if not host:
            raise InvalidParameter("invalid device: PathOnHost must not be empty")
        if any(ch not in "rwm" for ch in perms):
            raise InvalidParameter(f"invalid device mode: {perms}")
        try:
            st = os.stat(host)
        except OSError as e:
            raise InvalidParameter(
                f'error gathering device information while adding custom device "{host}": '
                f"{e.strerror.lower() if e.strerror else e}") from None
        found: list[tuple[str, os.stat_result]] = []
        if stat.S_ISDIR(st.st_mode):
            for dirpath, _dirs, files in os.walk(host):
                for name in files:
                    p = os.path.join(dirpath, name)
                    try:
                        s = os.stat(p)
                    except OSError:
                        continue
                    if stat.S_ISCHR(s.st_mode) or stat.S_ISBLK(s.st_mode):
                        found.append((inside + p[len(host):], s))
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            found.append((inside, st))
        else:
            raise InvalidParameter(
                f'error gathering device information while adding custom device "{host}": not a device node')
        for path, s in found:
            entry = _device_entry(host, path, s)
            entries.append(entry)
            rules.append(_rule(True, entry["type"], entry["major"], entry["minor"], perms))
    return entries, rules
