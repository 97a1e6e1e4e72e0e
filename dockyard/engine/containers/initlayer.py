"""The container's init layer: mount points the image lacks, kept out of the writable layer.

dockerd puts a read-only "-init" layer between the image and the container's writable layer,
holding the files and directories it mounts over (/etc/hosts, /etc/hostname,
/etc/resolv.conf, /dev/console…) and /.dockerenv, created only where the image has none. The
runtime then never has to create them in the writable layer, so they are no change: not in
`docker diff`, not in a committed layer; `docker export` shows them (the image's own files
where it has them).
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import shutil
import stat
from pathlib import Path

from ...store import mounts

# moby's daemon/initlayer: path -> "dir", "file", or a symlink's target
INIT_PATHS: tuple[tuple[str, str], ...] = (
    ("/dev/pts", "dir"), ("/dev/shm", "dir"), ("/proc", "dir"), ("/sys", "dir"),
    ("/.dockerenv", "file"), ("/etc/resolv.conf", "file"), ("/etc/hosts", "file"),
    ("/etc/hostname", "file"), ("/dev/console", "file"), ("/etc/mtab", "/proc/mounts"),
)
INIT_DIR = "init"


def container_lowers(cdir: Path, image_lowers: list[Path], templates: Path | None = None) -> list[Path]:
    """The overlay lower dirs of a container's rootfs: its init layer above the image's layers.

    Made on first use (containers created before init layers existed get one too), as a
    copy of the one in `templates` made for the same image layers, if given.
    """
    lowers = list(image_lowers)
    if not lowers:
        (cdir / "empty").mkdir(exist_ok=True)
        return [ensure_init_layer(cdir, [cdir / "empty"]), cdir / "empty"]
    return [ensure_init_layer(cdir, lowers, templates), *lowers]


def mount_rootfs(cdir: Path, image_lowers: list[Path], templates: Path | None, volatile: bool = False) -> None:
    """Mount the container's rootfs (`<cdir>/rootfs`): its upper layer over the init layer
    and the image's layers. Blocking, in one thread hop: run it with asyncio.to_thread."""
    lowers = container_lowers(cdir, image_lowers, templates)
    mounts.mount_overlay(lowers, cdir / "upper", cdir / "work", cdir / "rootfs", volatile)


def ensure_init_layer(cdir: Path, lowers: list[Path], templates: Path | None = None) -> Path:
    """The container's init layer, made once.

    With `templates`, it is a copy of the layer made for the same image layers before: its
    content depends on them only, and copying a dozen empty entries costs far less than the
    overlay mount, setup and unmount of a build (3-4 ms on an idle machine, tens of ms on a
    busy one).
    """
    init = cdir / INIT_DIR
    if init.is_dir():
        return init
    for stale in cdir.glob(INIT_DIR + ".*"):  # an engine crash in the middle of a setup
        mounts.unmount(stale / "merged")
        shutil.rmtree(stale, ignore_errors=True)
    if templates is None:
        _build(cdir, init, lowers)
        return init
    template = templates / hashlib.sha256("\0".join(map(str, lowers)).encode()).hexdigest()[:32]
    if not template.is_dir():
        templates.mkdir(exist_ok=True)
        _build(templates, template, lowers)
    tmp = cdir / f"{INIT_DIR}.{secrets.token_hex(4)}"
    try:
        _copy_layer(template, tmp)
        _rename_into_place(tmp, init)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return init


def sweep_templates(templates: Path) -> None:
    """Forget every template (engine start): a crash may have left one half made, and
    those of deleted images are of no use. Each next first use makes one again."""
    for mp in mounts.mounts_under(templates):
        mounts.unmount(mp)
    shutil.rmtree(templates, ignore_errors=True)


def _build(workdir: Path, dest: Path, lowers: list[Path]) -> None:
    """Make an init layer at `dest` through an overlay of the image's layers."""
    tmp = workdir / f"{dest.name}.{secrets.token_hex(4)}"
    for sub in ("diff", "work", "merged"):
        (tmp / sub).mkdir(parents=True)
    try:
        # seen through the image (whiteouts and opaque dirs included), as dockerd sets it up
        # volatile: no sync of the upper filesystem at the unmount below; the layer is copied
        # or renamed from the page cache, and a crash leaves only a half-made one, remade
        mounts.mount_overlay(lowers, tmp / "diff", tmp / "work", tmp / "merged", volatile=True)
        try:
            _setup(tmp / "merged")
        finally:
            _unmount_setup(tmp / "merged")
        _rename_into_place(tmp / "diff", dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _rename_into_place(src: Path, dest: Path) -> None:
    try:
        os.rename(src, dest)
    except OSError:
        if not dest.is_dir():  # else a concurrent first use made it: keep that one
            raise


def _copy_layer(src: Path, dst: Path) -> None:
    """Copy a small layer tree: entries with their modes, owners, times and xattrs, except
    overlay's own (they describe the overlay the template was made in, not this layer)."""
    st = os.lstat(src)
    if stat.S_ISDIR(st.st_mode):
        os.mkdir(dst)
        for name in os.listdir(src):
            _copy_layer(src / name, dst / name)
    elif stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), dst)
    elif stat.S_ISREG(st.st_mode):
        shutil.copyfile(src, dst)
    else:
        raise OSError(errno.EINVAL, "unexpected file type in an init layer", str(src))
    for attr in os.listxattr(src, follow_symlinks=False):
        if not attr.startswith("trusted.overlay."):
            os.setxattr(dst, attr, os.getxattr(src, attr, follow_symlinks=False), follow_symlinks=False)
    os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(dst, stat.S_IMODE(st.st_mode))  # after chown, which clears set-id bits
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _unmount_setup(merged: Path) -> None:
    """Unmount the setup view. A mount namespace made at this instant (runc creating another
    container, a chrooted copy child) holds a copy of it, and the kernel then answers EBUSY:
    detach it instead; the files are already in the upper dir, which is all we keep."""
    try:
        mounts.unmount(merged, lazy=False)
    except OSError as exc:
        if exc.errno != errno.EBUSY:
            raise
        mounts.unmount(merged, lazy=True)


def _setup(root: Path) -> None:
    for path, kind in INIT_PATHS:
        parts = path.strip("/").split("/")
        if not _walkable(root, parts[:-1]):
            continue  # a parent is a symlink or a file: leave it to the runtime's confined join
        target = root.joinpath(*parts)
        if os.path.lexists(target):
            continue
        root.joinpath(*parts[:-1]).mkdir(mode=0o755, parents=True, exist_ok=True)
        if kind == "dir":
            target.mkdir(mode=0o755)
        elif kind == "file":
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW, 0o755))
        else:
            os.symlink(kind, target)


def _walkable(root: Path, parts: list[str]) -> bool:
    """Every existing component is a real directory: nothing we create follows a symlink."""
    cur = root
    for part in parts:
        cur = cur / part
        try:
            st = os.lstat(cur)
        except FileNotFoundError:
            return True  # the rest is created by us, as directories
        if not stat.S_ISDIR(st.st_mode):
            return False
    return True
