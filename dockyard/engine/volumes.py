"""Volumes: named and anonymous, the `local` driver, Docker's copy-up on first use.

A volume is a directory `<data-root>/volumes/<name>/_data` (what `Mountpoint`
shows), recorded in SQLite.  With driver options (`type`, `device`, `o`, as
`docker volume create --opt` gives them) the directory is a mount point that
is mounted when a container first needs it and unmounted when the volume is
removed.  Containers bind the directory; which containers use which volume
is asked of the container service, so there is one source of truth.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import stat as stat_mod
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from ..errors import Conflict, InvalidParameter, NotFound
from ..store import mounts
from ..store.usage import dir_size
from ..store.metadata import Database
from .events import EventBus
from .filters import Filters

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS volumes (
    name TEXT PRIMARY KEY,
    driver TEXT NOT NULL,
    created REAL NOT NULL,
    labels TEXT NOT NULL,
    options TEXT NOT NULL,
    anonymous INTEGER NOT NULL DEFAULT 0
);
"""


@dataclass
class Volume:
    name: str
    created: float
    mountpoint: Path
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    anonymous: bool = False
    driver: str = "local"

    def to_docker(self) -> dict[str, Any]:
        ts = datetime.fromtimestamp(self.created, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        labels = dict(self.labels)
        if self.anonymous:
            labels.setdefault("com.docker.volume.anonymous", "")
        return {"CreatedAt": ts, "Driver": self.driver, "Labels": labels or None,
                "Mountpoint": str(self.mountpoint), "Name": self.name,
                "Options": self.options or None, "Scope": "local"}


class VolumeService:
    def __init__(self, data_root: Path, db: Database, events: EventBus) -> None:
        self.root = data_root / "volumes"
        self.root.mkdir(parents=True, exist_ok=True)
        self.db = db
        self.events = events
        db.ensure_schema(SCHEMA)
        # set by the container service: name -> ids of containers using it
        self.users: Callable[[str], list[str]] = lambda name: []

    def _row(self, r) -> Volume:
        return Volume(name=r["name"], created=r["created"], mountpoint=self.root / r["name"] / "_data",
                      labels=json.loads(r["labels"]), options=json.loads(r["options"]),
                      anonymous=bool(r["anonymous"]), driver=r["driver"])

    def get(self, name: str) -> Volume:
        r = self.db.query_one("SELECT * FROM volumes WHERE name=?", (name,))
        if r is None:
            raise NotFound(f"get {name}: no such volume")
        return self._row(r)

    def exists(self, name: str) -> bool:
        return self.db.query_one("SELECT 1 FROM volumes WHERE name=?", (name,)) is not None

    def create(self, name: str | None = None, driver: str | None = None,
               options: dict[str, str] | None = None, labels: dict[str, str] | None = None,
               anonymous: bool = False) -> Volume:
        driver = driver or "local"
        if driver != "local":
            raise NotFound(f'plugin "{driver}" not found')
        if name:
            if len(name) > 255:  # a directory name under the volumes root: NAME_MAX
                raise InvalidParameter(f"create {name[:32]}...: volume name is too long (at most 255 characters)")
            if not NAME_RE.fullmatch(name):
                raise InvalidParameter(
                    f'create {name}: "{name}" includes invalid characters for a local volume name, '
                    'only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host '
                    "directory, use absolute path")
            if self.exists(name):
                return self.get(name)  # Docker: creating an existing volume returns it
        else:
            name = secrets.token_hex(32)
            anonymous = True
        options = {str(k): str(v) for k, v in (options or {}).items()}
        for k in options:
            if k not in ("type", "device", "o", "size"):
                raise InvalidParameter(f'create {name}: invalid option key: "{k}"')
        if options and not options.get("type"):
            raise InvalidParameter(f"create {name}: missing required option: \"type\"")
        (self.root / name / "_data").mkdir(parents=True, exist_ok=True)
        self.db.execute(
            "INSERT INTO volumes(name, driver, created, labels, options, anonymous) VALUES(?,?,?,?,?,?)",
            (name, driver, time.time(), json.dumps(labels or {}), json.dumps(options), int(anonymous)))
        self.events.publish("volume", "create", name, driver=driver)
        return self.get(name)

    def path_for_use(self, name: str) -> str:
        """The directory to bind into a container, mounting the volume first if it has options."""
        v = self.get(name)
        if v.options and not mounts.is_mounted(v.mountpoint):
            o = v.options
            data = o.get("o", "")
            if o.get("size"):
                data = ",".join(x for x in (data, f"size={o['size']}") if x)
            try:
                mounts.mount(o.get("device") or o["type"], str(v.mountpoint), o["type"], 0, data)
            except OSError as exc:
                raise InvalidParameter(f"error while mounting volume '{v.mountpoint}': {exc.strerror}") from None
        return str(v.mountpoint)

    def copy_up(self, name: str, rootfs: Path, dest: str) -> None:
        """Docker's rule: an empty volume takes the image's content at its mount point.

        `dest` is resolved inside the container's rootfs (an image's symlink must
        not point the copy at the host), and nothing is followed or opened but
        regular files: devices and FIFOs are recreated, not read.
        """
        from ..oci.users import resolve_in_root

        target = Path(self.path_for_use(name))
        source = resolve_in_root(str(rootfs), dest)
        try:
            st = os.lstat(source)
        except OSError:
            return
        if not stat_mod.S_ISDIR(st.st_mode) or any(target.iterdir()):
            return
        _copy_tree(source, str(target))
        _copy_owner(source, str(target))

    def remove(self, name: str, force: bool = False) -> None:
        v = self.get(name)
        users = self.users(name)
        if users:
            raise Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
        if v.options:
            mounts.unmount(v.mountpoint)
        shutil.rmtree(self.root / name, ignore_errors=True)
        self.db.execute("DELETE FROM volumes WHERE name=?", (name,))
        self.events.publish("volume", "destroy", name, driver=v.driver)

    def list(self, filters: Filters | None = None) -> list[Volume]:
        f = filters or Filters()
        f.validate({"dangling", "driver", "label", "name"})
        dangling = f.bool_value("dangling")
        out = []
        for r in self.db.query("SELECT * FROM volumes ORDER BY name"):
            v = self._row(r)
            if f.get("name") and not any(n in v.name for n in f.get("name")):
                continue
            if f.get("driver") and v.driver not in f.get("driver"):
                continue
            if not f.match_labels(v.labels):
                continue
            if dangling is not None and bool(self.users(v.name)) == dangling:
                continue
            out.append(v)
        return out

    def prune(self, filters: Filters, *, all_volumes: bool) -> tuple[list[str], int]:
        f = filters
        f.validate({"label", "label!", "all"})
        everything = all_volumes or f.bool_value("all") is True
        deleted, space = [], 0
        for v in self.list(Filters({k: vals for k, vals in f.values.items() if k == "label"})):
            if self.users(v.name) or (not everything and not v.anonymous):
                continue
            if f.excluded_by_labels(v.labels):
                continue
            space += dir_size(v.mountpoint)
            self.remove(v.name)
            deleted.append(v.name)
        self.events.publish("volume", "prune", "", reclaimed=str(space))
        return deleted, space

    def size(self, name: str) -> int:
        return dir_size(self.get(name).mountpoint)

    def unmount_all(self) -> None:
        for v in self.list():
            if v.options:
                mounts.unmount(v.mountpoint)


def _copy_owner(src: str, dst: str) -> None:
    st = os.lstat(src)
    os.lchown(dst, st.st_uid, st.st_gid)
    if not os.path.islink(dst):
        os.chmod(dst, st.st_mode & 0o7777)
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))


def _copy_tree(src: str, dst: str) -> None:
    """Copy a directory's entries without following a single symlink."""
    with os.scandir(src) as it:
        entries = sorted(it, key=lambda e: e.name)
    for e in entries:
        s, d = e.path, os.path.join(dst, e.name)
        st = os.lstat(s)
        mode = st.st_mode
        if stat_mod.S_ISDIR(mode):
            os.mkdir(d)
            _copy_tree(s, d)
        elif stat_mod.S_ISLNK(mode):
            os.symlink(os.readlink(s), d)
        elif stat_mod.S_ISREG(mode):
            fd = os.open(s, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            with os.fdopen(fd, "rb") as fsrc, open(d, "wb") as fdst:
                shutil.copyfileobj(fsrc, fdst, 1 << 20)
        elif stat_mod.S_ISCHR(mode) or stat_mod.S_ISBLK(mode) or stat_mod.S_ISFIFO(mode):
            os.mknod(d, mode, st.st_rdev)
        else:
            continue  # sockets are not copied
        _copy_owner(s, d)
