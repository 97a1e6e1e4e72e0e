"""Persistent named network namespaces: `<exec_root>/netns/<container_id>`.

A namespace lives as long as a bind mount of its nsfs inode exists, so a
sandbox survives the engine (and the container's processes) until it is
explicitly released.  This is what `ip netns add` does, done in-process:

* a short-lived thread calls unshare(CLONE_NEWNET) - namespaces are per
  thread, so the rest of the engine stays in the host namespace - and
  bind-mounts /proc/thread-self/ns/net onto the file, then exits;
* the netns directory is a shared mount point (like /run/netns) so that a
  later umount propagates into mount namespaces created in between (runc's),
  instead of leaving copies that keep the namespace alive.

Work *inside* a namespace (addresses, routes, loopback) runs the same way:
`run_in(path, fn)` calls fn in a fresh thread that has setns()ed into it.  No
process is spawned on the container start path.
"""

from __future__ import annotations

import ctypes
import errno
import os
import threading
from pathlib import Path
from typing import Callable, TypeVar

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SHARED = 1 << 20
MNT_DETACH = 2

_libc = ctypes.CDLL(None, use_errno=True)


def _check(rc: int, what: str, path: str | Path = "") -> None:
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}", str(path))


def _run_in_thread(fn: Callable[[], T]) -> T:
    """Run fn in a brand new OS thread (which may change its namespace and die)."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed back to the caller
            box["error"] = exc

    t = threading.Thread(target=target, name="dockyard-netns", daemon=True)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box.get("value")  # type: ignore[return-value]


def _is_nsfs_mount(path: Path) -> bool:
    try:
        return os.stat(path).st_dev != os.stat(path.parent).st_dev
    except FileNotFoundError:
        return False


class NetnsDir:
    """The directory of one engine's sandboxes."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._root_lock = threading.Lock()

    def path(self, name: str) -> Path:
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"bad netns name {name!r}")
        return self.root / name

    def _ensure_root(self) -> None:
        with self._root_lock:
            self._ensure_root_locked()

    def _ensure_root_locked(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        r = bytes(self.root)
        # Make the directory a shared mount point, binding it onto itself first
        # when it is not a mount point yet (the iproute2 recipe).
        if _libc.mount(b"none", r, None, MS_SHARED | MS_REC, None) != 0:
            _check(_libc.mount(r, r, None, MS_BIND | MS_REC, None), "bind netns dir", self.root)
            _check(_libc.mount(b"none", r, None, MS_SHARED | MS_REC, None), "share netns dir", self.root)

    def create(self, name: str, setup: Callable[[], T] | None = None) -> tuple[Path, T | None]:
        """Create (or adopt, after a crash) the namespace `name`; run `setup` inside it."""
        path = self.path(name)
        if _is_nsfs_mount(path):
            return path, (self.run_in(path, setup) if setup else None)
        self._ensure_root()
        try:
            os.close(os.open(path, os.O_RDONLY | os.O_CREAT, 0))
        except OSError as exc:
            raise OSError(exc.errno, f"create netns file: {exc.strerror}", str(path)) from None

        def work():
            _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)", path)
            _check(
                _libc.mount(b"/proc/thread-self/ns/net", bytes(path), None, MS_BIND, None),
                "bind netns",
                path,
            )
            return setup() if setup else None

        try:
            return path, _run_in_thread(work)
        except BaseException:
            self.remove(name)
            raise

    def run_in(self, path: Path | str, fn: Callable[[], T]) -> T:
        """Run fn with the calling thread's network namespace set to `path`."""

        def work():
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                _check(_libc.setns(fd, CLONE_NEWNET), "setns", path)
            finally:
                os.close(fd)
            return fn()

        return _run_in_thread(work)

    def remove(self, name: str) -> None:
        """Unmount and delete; a no-op when already gone."""
        path = self.path(name)
        if _libc.umount2(bytes(path), MNT_DETACH) != 0:
            e = ctypes.get_errno()
            if e not in (errno.EINVAL, errno.ENOENT):
                raise OSError(e, f"umount netns: {os.strerror(e)}", str(path))
        try:
            path.unlink()
        except FileNotFoundError:
            pass

    def names(self) -> list[str]:
        try:
            return sorted(p.name for p in self.root.iterdir())
        except FileNotFoundError:
            return []

    def release_root(self) -> None:
        """Undo `_ensure_root` once the directory is empty (engine teardown)."""
        if self.names():
            return
        # Our self-bind (possibly stacked by concurrent first calls): peel until
        # the directory is no longer a mount point (EINVAL).
        for _ in range(8):
            if _libc.umount2(bytes(self.root), MNT_DETACH) != 0:
                break
        try:
            self.root.rmdir()
        except OSError:
            pass
