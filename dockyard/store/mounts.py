"""Mount syscalls (overlay rootfs, unmount) through libc: no fork per mount."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import shutil
from pathlib import Path

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]

MNT_DETACH = 2


def mount(source: str, target: str, fstype: str, flags: int = 0, data: str = "") -> None:
    if _libc.mount(source.encode(), target.encode(), fstype.encode(), flags, data.encode()) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"mount {fstype} on {target}: {os.strerror(e)}")


def unmount(target: str | Path, lazy: bool = True) -> None:
    """Unmount; not mounted is not an error."""
    rc = _libc.umount2(str(target).encode(), MNT_DETACH if lazy else 0)
    if rc != 0:
        e = ctypes.get_errno()
        if e in (errno.EINVAL, errno.ENOENT):
            return
        raise OSError(e, f"umount {target}: {os.strerror(e)}")


def is_mounted(target: str | Path) -> bool:
    t = os.path.realpath(target)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            if line.split()[4] == t:
                return True
    return False


def is_mount_point(target: str | Path) -> bool:
    """Whether a filesystem of its own is mounted on `target` (its device differs from its
    parent's, as for an overlay): two stats, where is_mounted reads /proc/self/mountinfo,
    which grows with every running container. A bind mount within one filesystem is missed:
    use is_mounted for those."""
    return os.path.ismount(target)


def mounts_under(prefix: str | Path) -> list[str]:
    p = os.path.realpath(prefix).rstrip("/") + "/"
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4]
            if mp.startswith(p):
                out.append(mp)
    return out


def mount_overlay(lowers: list[Path], upper: Path, work: Path, target: Path, volatile: bool = False) -> None:
    """Mount an overlay; `volatile`: its upper layer is never synced (see _volatile_option)."""
    opts = "lowerdir=" + ":".join(str(p) for p in lowers) + f",upperdir={upper},workdir={work}"
    if len(opts) > 4000:
        # The option string must fit in one page; shorten paths by chdir-relative
        # names as Docker's overlay2 does with its l/ links: not yet needed.
        raise OSError(errno.E2BIG, "too many layers for one overlay mount")
    if volatile and _volatile_supported is not False:
        try:
            mount("overlay", str(target), "overlay", 0, opts + _volatile_option(work))
            _set_volatile_supported(True)
            return
        except OSError as exc:
            if exc.errno != errno.EINVAL or _volatile_supported:
                raise
            # a kernel before 5.10: the plain mount below tells whether that was the reason
            mount("overlay", str(target), "overlay", 0, opts)
            _set_volatile_supported(False)
            return
    mount("overlay", str(target), "overlay", 0, opts)


# None: not known yet; the first volatile mount tells
_volatile_supported: bool | None = None


def _set_volatile_supported(value: bool) -> None:
    global _volatile_supported
    _volatile_supported = value


def _volatile_option(work: Path) -> str:
    """The `volatile` option, for a layer nobody needs after a crash (a `run --rm` container's).

    Without it the kernel syncs the whole upper filesystem when the overlay is unmounted
    (2-90 ms here, more the busier the disk), on the path of every container's exit. A
    volatile mount leaves `<workdir>/work/incompat/volatile`, and the kernel refuses the
    next mount while it is there (the layer may have lost writes in a crash): the caller
    mounts again only after its own clean unmount, so the marker is removed first.
    """
    marker = work / "work" / "incompat" / "volatile"  # holds a `dirty` file
    shutil.rmtree(marker, ignore_errors=True)
    try:
        os.rmdir(marker.parent)
    except OSError:
        pass
    return ",volatile"


MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
CLONE_NEWNS = 0x00020000
_libc.unshare.argtypes = [ctypes.c_int]


def private_mount_namespace() -> None:
    """Give the calling (single-threaded, forked) process a mount namespace of its own, whose
    mounts never propagate back to the host's."""
    if _libc.unshare(CLONE_NEWNS) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"unshare(CLONE_NEWNS): {os.strerror(e)}")
    if _libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"make / private: {os.strerror(e)}")


def bind(source: str, target: str, read_only: bool = False) -> None:
    mount(source, target, "", MS_BIND | MS_REC)
    if read_only:
        mount(source, target, "", MS_BIND | MS_REMOUNT | MS_RDONLY)
