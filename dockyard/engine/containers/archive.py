"""`docker cp`, `docker export`, `docker diff`: files of a container, seen as the container sees them.

Every read and write of the container's files happens in a forked child that
has chroot()ed into the container's root first, so paths and symlinks resolve
inside the container (an absolute symlink planted in an image cannot send a
copy to the host's /etc, the classic `docker cp` escape).  A running container
is entered through /proc/<pid>/root, which includes its volumes, binds and
tmpfs mounts; a stopped one gets its overlay rootfs mounted for the duration.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import stat as stat_mod
import tarfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator, Callable

from ...errors import InvalidParameter, NotFound, SystemError_
from ...store import mounts
from .initlayer import INIT_DIR
from .mountpoints import mount_points

CHUNK = 1 << 16

# Go's os.FileMode bits, which the docker CLI decodes from the stat header.
_GO_DIR, _GO_SYMLINK, _GO_DEVICE, _GO_PIPE, _GO_SOCKET = 1 << 31, 1 << 27, 1 << 26, 1 << 25, 1 << 24
_GO_SETUID, _GO_SETGID, _GO_CHARDEV, _GO_STICKY = 1 << 23, 1 << 22, 1 << 21, 1 << 20


def go_file_mode(st_mode: int) -> int:
    mode = st_mode & 0o777
    kind = stat_mod.S_IFMT(st_mode)
    mode |= {stat_mod.S_IFDIR: _GO_DIR, stat_mod.S_IFLNK: _GO_SYMLINK, stat_mod.S_IFIFO: _GO_PIPE,
             stat_mod.S_IFSOCK: _GO_SOCKET, stat_mod.S_IFBLK: _GO_DEVICE,
             stat_mod.S_IFCHR: _GO_DEVICE | _GO_CHARDEV}.get(kind, 0)
    if st_mode & stat_mod.S_ISUID:
        mode |= _GO_SETUID
    if st_mode & stat_mod.S_ISGID:
        mode |= _GO_SETGID
    if st_mode & stat_mod.S_ISVTX:
        mode |= _GO_STICKY
    return mode


def _path_stat(path: str) -> dict[str, Any]:
    st = os.lstat(path)
    return {"name": os.path.basename(path.rstrip("/")) or "/", "size": st.st_size,
            "mode": go_file_mode(st.st_mode),
            "mtime": datetime.fromtimestamp(st.st_mtime, tz=timezone.utc).isoformat().replace("+00:00", "Z"),
            "linkTarget": os.readlink(path) if stat_mod.S_ISLNK(st.st_mode) else ""}


def _run_chrooted(root: str, fn: Callable[..., None], *args: Any, binds: tuple[Bind, ...] = ()) -> int:
    """Fork; the child chroots into `root`, runs fn(*args), exits 0 or 1. Returns the child's pid.

    `binds` are mounted first, in a mount namespace of the child's own (gone when it exits):
    a stopped container's volumes and bind mounts, as dockerd mounts them for a copy.
    """
    keep = {a for a in args if isinstance(a, int) and not isinstance(a, bool)}
    pid = os.fork()
    if pid == 0:  # child: no event loop, no threads; only fn and _exit
        code = 1
        try:
            # only our pipe ends stay open: a stray copy of a write end would keep a reader waiting
            for fd in [int(x) for x in os.listdir("/proc/self/fd")]:
                if fd > 2 and fd not in keep:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            if binds:
                _mount_binds(root, binds)
            os.chroot(root)
            os.chdir("/")
            fn(*args)
            code = 0
        except BaseException as exc:  # report on the error pipe when there is one
            err_fd = args[-1] if args and isinstance(args[-1], int) else None
            if err_fd is not None:
                try:
                    os.write(err_fd, json.dumps({"error": _describe(exc)}).encode())
                except OSError:
                    pass
        finally:
            os._exit(code)
    return pid


@dataclass(frozen=True)
class Bind:
    """A host directory or file to mount at `destination` in the container's root."""
    source: str
    destination: str
    read_only: bool


def secure_join(root: str, path: str) -> str:
    """`root` + `path` with every symlink resolved as if `root` were "/" (runc's securejoin):
    the result never leaves `root`. Components that do not exist are kept as they are."""
    parts = [p for p in path.split("/") if p]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == ".":
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        here = os.path.join(root, *resolved, part)
        try:
            st = os.lstat(here)
        except FileNotFoundError:
            resolved.append(part)
            continue
        if not stat_mod.S_ISLNK(st.st_mode):
            resolved.append(part)
            continue
        links += 1
        if links > 255:
            raise OSError(errno.ELOOP, f"too many levels of symbolic links: {path}")
        target = os.readlink(here)
        if target.startswith("/"):
            resolved = []
        parts = [p for p in target.split("/") if p] + parts
    return os.path.join(root, *resolved)


def _mount_binds(root: str, binds: tuple[Bind, ...]) -> None:
    mounts.private_mount_namespace()
    for b in sorted(binds, key=lambda x: x.destination.count("/")):  # parents first
        target = secure_join(root, b.destination)
        if not os.path.lexists(target):  # as the runtime makes a mount point
            if os.path.isdir(b.source):
                os.makedirs(target, mode=0o755, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
                os.close(os.open(target, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW, 0o644))
        mounts.bind(b.source, target, b.read_only)


class ReadOnlyTarget(Exception):
    """dockerd's errors for a copy into something read-only."""


def _check_writable(dest: str, read_only_mounts: list[tuple[str, bool]], readonly_rootfs: bool) -> None:
    """In the chroot: the innermost mount that holds `dest` (symlinks resolved) decides."""
    real = os.path.realpath(dest)
    holders = [(d, ro) for d, ro in read_only_mounts if real == d or real.startswith(d.rstrip("/") + "/")]
    if holders:
        if max(holders, key=lambda h: len(h[0]))[1]:
            raise ReadOnlyTarget("mounted volume is marked read-only")
    elif readonly_rootfs:
        raise ReadOnlyTarget("container rootfs is marked read-only")


def _describe(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, FileNotFoundError):
        return {"kind": "notfound", "message": f"Could not find the file {exc.filename} in container"}
    if isinstance(exc, ReadOnlyTarget):
        return {"kind": "invalid", "message": str(exc)}
    if isinstance(exc, (NotADirectoryError, IsADirectoryError, tarfile.TarError, ValueError, PermissionError)):
        return {"kind": "invalid", "message": str(exc)}
    if isinstance(exc, OSError):
        return {"kind": "invalid", "message": f"{type(exc).__name__}: {exc}"}
    # anything else is a bug of ours, not the client's: a 500, not a 400 that hides it
    return {"kind": "internal", "message": f"{type(exc).__name__}: {exc}"}


def _child_stat(path: str, out_fd: int, err_fd: int) -> None:
    os.write(out_fd, json.dumps(_path_stat(path)).encode())


def _child_get(path: str, out_fd: int, err_fd: int) -> None:
    info = _path_stat(path)  # raises before any byte of tar
    os.write(err_fd, json.dumps({"stat": info}).encode())
    os.close(err_fd)
    with os.fdopen(out_fd, "wb") as out, tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        name = os.path.basename(path.rstrip("/")) or "."
        if path.endswith("/.") or path == "/":
            for entry in sorted(os.listdir(path)):
                tf.add(os.path.join(path, entry), arcname=entry)
        else:
            tf.add(path, arcname=name)


def _child_put(dest: str, in_fd: int, copy_uid_gid: bool, no_overwrite_dir_non_dir: bool,
               writable: tuple[list[tuple[str, bool]], bool], err_fd: int) -> None:
    st = os.stat(dest)  # follows symlinks: inside the chroot, so inside the container
    if not stat_mod.S_ISDIR(st.st_mode):
        raise NotADirectoryError(f"extraction point is not a directory: {dest}")
    _check_writable(dest, *writable)
    with os.fdopen(in_fd, "rb") as src, tarfile.open(fileobj=src, mode="r|*") as tf:
        for member in tf:
            target = os.path.join(dest, member.name)
            if no_overwrite_dir_non_dir and os.path.lexists(target):
                existing_dir = os.path.isdir(target) and not os.path.islink(target)
                if existing_dir != member.isdir():
                    raise ValueError(f"cannot overwrite {'directory' if existing_dir else 'non-directory'} "
                                     f"\"{target}\" with {'directory' if member.isdir() else 'non-directory'}")
            if not copy_uid_gid:
                member.uid = member.gid = 0
                member.uname = member.gname = "root"
            tf.extract(member, dest, filter=_confined_keep_modes, numeric_owner=True)


def _confined_keep_modes(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    """tarfile's "tar" filter keeps paths and links inside `dest`; unlike it, keep every
    mode bit (setuid, sticky, group/other write), as `docker cp` does."""
    checked = tarfile.tar_filter(member, dest)
    return None if checked is None else checked.replace(mode=member.mode, deep=False)


async def _wait_child(pid: int) -> int:
    _, status = await asyncio.to_thread(os.waitpid, pid, 0)
    return os.waitstatus_to_exitcode(status)


def _raise_from(msg: dict[str, Any] | None, path: str) -> None:
    err = (msg or {}).get("error") or {"kind": "invalid", "message": f"could not access {path}"}
    if err["kind"] == "notfound":
        raise NotFound(err["message"])
    if err["kind"] == "internal":
        raise SystemError_(err["message"])
    raise InvalidParameter(err["message"])


class ContainerFiles:
    def __init__(self, containers: Any) -> None:
        self.containers = containers

    @contextlib.asynccontextmanager
    async def root(self, ref: str, live: bool = True) -> AsyncIterator[tuple[str, tuple[Bind, ...]]]:
        """The container's root and the mounts to make in it.

        Running: its live mount namespace, where its volumes and binds are. Otherwise (and for
        live=False, which is the filesystem alone, as `docker export` wants it) the rootfs, with
        the volumes and bind mounts to mount for the copy unless live=False.
        """
        c = self.containers.get(ref)
        if live and c.state.status in ("running", "paused") and c.state.pid \
                and os.path.exists(f"/proc/{c.state.pid}/root"):
            yield f"/proc/{c.state.pid}/root", ()
            return
        binds = await asyncio.to_thread(self._binds, c) if live else ()
        async with self.containers.rootfs_in_use(c) as rootfs:
            yield str(rootfs), binds

    def _binds(self, c: Any) -> tuple[Bind, ...]:
        out = []
        for mp in mount_points(c):
            if mp.type == "volume":
                out.append(Bind(self.containers.volumes.path_for_use(mp.source), mp.destination, mp.read_only))
            elif mp.type == "bind" and os.path.exists(mp.source):
                out.append(Bind(mp.source, mp.destination, mp.read_only))
        return tuple(out)

    def _writable(self, ref: str) -> tuple[list[tuple[str, bool]], bool]:
        c = self.containers.get(ref)
        return ([(mp.destination, mp.read_only) for mp in mount_points(c)],
                bool(c.host_config.get("ReadonlyRootfs")))

    async def stat(self, ref: str, path: str) -> dict[str, Any]:
        _check_path(path)
        async with self.root(ref) as (root, binds):
            r, w = os.pipe()
            pid = _run_chrooted(root, _child_stat, path, w, w, binds=binds)
            os.close(w)
            data = await asyncio.to_thread(_read_all, r)
            code = await _wait_child(pid)
        msg = json.loads(data) if data else None
        if code != 0 or msg is None or "error" in msg:
            _raise_from(msg, path)
        return msg

    async def get(self, ref: str, path: str, live: bool = True) -> tuple[dict[str, Any], AsyncIterator[bytes]]:
        """The path's stat and a tar stream of it (its base name at the top)."""
        _check_path(path)
        cm = self.root(ref, live)
        root, binds = await cm.__aenter__()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        pid = _run_chrooted(root, _child_get, path, out_w, err_w, binds=binds)
        os.close(out_w)
        os.close(err_w)
        first = await asyncio.to_thread(_read_all, err_r)
        msg = json.loads(first) if first else None
        if msg is None or "stat" not in msg:
            os.close(out_r)
            await _wait_child(pid)
            await cm.__aexit__(None, None, None)
            _raise_from(msg, path)

        async def stream() -> AsyncIterator[bytes]:
            try:
                while chunk := await asyncio.to_thread(os.read, out_r, CHUNK):
                    yield chunk
            finally:
                os.close(out_r)
                await _wait_child(pid)
                await cm.__aexit__(None, None, None)

        return msg["stat"], stream()

    async def put(self, ref: str, path: str, body: AsyncIterator[bytes], *, copy_uid_gid: bool,
                  no_overwrite_dir_non_dir: bool, with_mounts: bool = True) -> None:
        """Extract a tar at `path`; with_mounts=False writes to the container's own filesystem
        only (a build step's layer), not to its volumes or bind mounts."""
        _check_path(path)
        writable = self._writable(ref) if with_mounts else ([], False)
        async with self.root(ref, live=with_mounts) as (root, binds):
            in_r, in_w = os.pipe()
            err_r, err_w = os.pipe()
            pid = _run_chrooted(root, _child_put, path, in_r, copy_uid_gid, no_overwrite_dir_non_dir,
                                writable, err_w, binds=binds)
            os.close(in_r)
            os.close(err_w)
            try:
                async for chunk in body:
                    try:
                        await asyncio.to_thread(_write_all, in_w, chunk)
                    except BrokenPipeError:
                        break  # the child failed: its error says why
            finally:
                os.close(in_w)
            err = await asyncio.to_thread(_read_all, err_r)
            code = await _wait_child(pid)
        if code != 0:
            _raise_from(json.loads(err) if err else None, path)

    async def export(self, ref: str) -> AsyncIterator[bytes]:
        """The filesystem only (image layers + writable layer), not /proc or mounts: docker export."""
        _, stream = await self.get(ref, "/", live=False)
        return stream

    def changes(self, ref: str) -> list[dict[str, Any]]:
        """docker diff: walk the writable layer; kinds 0 modified, 1 added, 2 deleted."""
        c = self.containers.get(ref)
        upper = self.containers.ctr_dir(c.id) / "upper"
        lowers = [Path(p) for p in self.containers.images.layer_dirs(c.image_id)]
        lowers.insert(0, self.containers.ctr_dir(c.id) / INIT_DIR)
        out: list[dict[str, Any]] = []
        for dirpath, dirnames, filenames in os.walk(upper):
            for name in sorted(dirnames + filenames):
                host = os.path.join(dirpath, name)
                rel = "/" + os.path.relpath(host, upper)
                st = os.lstat(host)
                if stat_mod.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                    out.append({"Path": rel, "Kind": 2})
                elif any(os.path.lexists(str(lo) + rel) for lo in lowers):
                    out.append({"Path": rel, "Kind": 0})
                else:
                    out.append({"Path": rel, "Kind": 1})
        return sorted(out, key=lambda x: x["Path"])



def _check_path(path: str) -> None:
    if not path or not path.startswith("/"):
        raise InvalidParameter(f"path must be absolute: {path!r}")
    if "\0" in path:
        raise InvalidParameter("invalid path")


def _read_all(fd: int) -> bytes:
    out = b""
    try:
        while chunk := os.read(fd, CHUNK):
            out += chunk
    finally:
        os.close(fd)
    return out


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]
