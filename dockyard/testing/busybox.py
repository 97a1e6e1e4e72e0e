"""A minimal rootfs tarball built from Debian's busybox-static, for `docker import`.

    make_busybox_rootfs_tar("/tmp/rootfs.tar")
    docker import /tmp/rootfs.tar busybox:latest      # or POST /images/create?fromSrc=-

The tar is reproducible (fixed mtimes, sorted entries, numeric root owner),
so two imports of it share one layer.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

BUSYBOX = "/bin/busybox"
FIXED_MTIME = 1_700_000_000

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
app:x:1000:1000:app:/home/app:/bin/sh
"""
GROUP = """root:x:0:
daemon:x:1:
nogroup:x:65534:
app:x:1000:
"""
DIRS = {  # path: mode
    "bin": 0o755, "dev": 0o755, "etc": 0o755, "home": 0o755, "proc": 0o555, "root": 0o700,
    "sys": 0o555, "tmp": 0o1777, "usr": 0o755, "usr/bin": 0o755, "usr/sbin": 0o755, "sbin": 0o755,
    "var": 0o755, "var/tmp": 0o1777, "run": 0o755,
}


def busybox_applets(busybox: str = BUSYBOX) -> list[str]:
    out = subprocess.run([busybox, "--list"], check=True, capture_output=True, text=True).stdout
    return sorted({a.strip() for a in out.split() if a.strip() and a.strip() != "busybox"})


def make_busybox_rootfs_tar(path: str | os.PathLike, busybox: str = BUSYBOX,
                            extra_files: dict[str, bytes] | None = None, compress: bool = False) -> Path:
    """Write the rootfs tar to `path` (gzip-compressed if `compress`) and return the path."""
    path = Path(path)
    with tarfile.open(path, "w:gz" if compress else "w", format=tarfile.PAX_FORMAT) as tf:

        def add(name: str, type_: bytes, mode: int, data: bytes = b"", linkname: str = "",
                uid: int = 0, gid: int = 0) -> None:
            ti = tarfile.TarInfo(name)
            ti.type, ti.mode, ti.mtime, ti.uid, ti.gid = type_, mode, FIXED_MTIME, uid, gid
            ti.uname = ti.gname = "root" if uid == 0 else ""
            ti.linkname = linkname
            ti.size = len(data) if type_ == tarfile.REGTYPE else 0
            tf.addfile(ti, io.BytesIO(data) if type_ == tarfile.REGTYPE else None)

        add(".", tarfile.DIRTYPE, 0o755)
        for d, mode in sorted(DIRS.items()):
            add(d, tarfile.DIRTYPE, mode)
        add("home/app", tarfile.DIRTYPE, 0o755, uid=1000, gid=1000)
        with open(busybox, "rb") as f:
            add("bin/busybox", tarfile.REGTYPE, 0o755, f.read())
        for applet in busybox_applets(busybox):
            add(f"bin/{applet}", tarfile.SYMTYPE, 0o777, linkname="busybox")
        files = {
            "etc/passwd": PASSWD.encode(),
            "etc/group": GROUP.encode(),
            "etc/hostname": b"",
            "etc/hosts": b"",
            "etc/resolv.conf": b"",
        }
        files.update(extra_files or {})
        for name, data in sorted(files.items()):
            add(name.lstrip("/"), tarfile.REGTYPE, 0o644, data)
    return path


def make_runc_bundle(root: str | os.PathLike) -> Path:
    """`<root>/bundle`: this rootfs under runc's default `runc spec` config (runc's own
    defaults, no seccomp profile), for driving runc without an engine."""
    root = Path(root)
    bundle = root / "bundle"
    (bundle / "rootfs").mkdir(parents=True)
    tar = make_busybox_rootfs_tar(root / "rootfs.tar")
    subprocess.run(["tar", "-xf", str(tar), "-C", str(bundle / "rootfs")], check=True)
    subprocess.run(["runc", "spec", "-b", str(bundle)], check=True)
    return bundle
