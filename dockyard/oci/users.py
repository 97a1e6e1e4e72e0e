"""Resolve Config.User against the image's /etc/passwd and /etc/group, the
way Docker (runc's libcontainer/user) does.

    ""            root (0:0), supplementary groups of "root" from /etc/group
    "name"        passwd entry by name (error if missing)
    "1000"        passwd entry by uid, or bare uid 1000 with gid 0
    "name:group"  / "uid:gid"  explicit primary group; no supplementary groups
Plus HostConfig.GroupAdd (names or numbers) appended as supplementary groups.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field

from dockyard.errors import InvalidParameter

MAX_ID = 2**31 - 1


@dataclass
class ResolvedUser:
    uid: int
    gid: int
    additional_gids: list[int] = field(default_factory=list)
    home: str = "/"

    def as_tuple(self) -> tuple[int, int, list[int]]:
        """The `user` argument of runtime_spec.build_spec."""
        return self.uid, self.gid, list(self.additional_gids)


def resolve_in_root(root: str, path: str, _depth: int = 0) -> str:
    """Host path of `path` as seen inside `root`, following symlinks without
    ever leaving `root` (an image may point /etc/passwd anywhere)."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    current = ""
    while parts:
        part = parts.pop(0)
        if part == "..":
            current = current.rsplit("/", 1)[0] if current else ""
            continue
        candidate = f"{current}/{part}"
        host = root + candidate
        if os.path.islink(host):
            if _depth > 40:
                raise OSError(40, "too many levels of symbolic links", path)
            target = os.readlink(host)
            _depth += 1
            if target.startswith("/"):
                current = ""
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        current = candidate
    return root + (current or "/")


MAX_DB_SIZE = 16 << 20  # a passwd or group file larger than this is not one


def read_regular_file(host_path: str, limit: int = MAX_DB_SIZE) -> bytes | None:
    """A container's file, read without trusting it: a FIFO, device or symlink
    there must not block or redirect the engine (O_NONBLOCK, O_NOFOLLOW, regular
    files only, bounded size).  None when it is not a readable regular file."""
    try:
        fd = os.open(host_path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        return os.read(fd, min(st.st_size, limit) + 1)[:limit]
    finally:
        os.close(fd)


def _read_lines(rootfs: str, path: str) -> list[list[str]] | None:
    raw = read_regular_file(resolve_in_root(rootfs, path))
    if raw is None:
        return None
    text = raw.decode(errors="replace")
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        rows.append(line.split(":"))
    return rows


def _int(text: str) -> int | None:
    try:
        value = int(text)
    except ValueError:
        return None
    return value


def _check_range(value: int) -> int:
    if value < 0 or value > MAX_ID:
        raise InvalidParameter("uids and gids must be in range 0-2147483647")
    return value


def resolve_user(rootfs: str, user: str | None, group_add: list[str] | None = None) -> ResolvedUser:
    user = (user or "").strip()
    user_arg, _, group_arg = user.partition(":")
    if not user_arg:
        user_arg = "0"  # "" and ":group" mean root
    passwd = _read_lines(rootfs, "/etc/passwd")
    groups = _read_lines(rootfs, "/etc/group")

    uid: int | None = None
    gid = 0
    home = "/"
    name: str | None = None
    numeric_user = _int(user_arg)
    for row in passwd or []:
        row = (row + [""] * 7)[:7]
        row_uid = _int(row[2])
        if row_uid is None:
            continue
        if row[0] == user_arg or (numeric_user is not None and row_uid == numeric_user):
            name, uid, gid, home = row[0], row_uid, _int(row[3]) or 0, row[5] or "/"
            break
    if uid is None:
        if numeric_user is None:
            raise InvalidParameter(
                f"unable to find user {user_arg}: no matching entries in passwd file")
        uid = _check_range(numeric_user)
    _check_range(uid)

    additional: list[int] = []
    if group_arg:
        numeric_group = _int(group_arg)
        match = None
        for row in groups or []:
            row = (row + [""] * 4)[:4]
            row_gid = _int(row[2])
            if row_gid is None:
                continue
            if row[0] == group_arg or (numeric_group is not None and row_gid == numeric_group):
                match = row_gid
                break
        if match is None:
            if numeric_group is None:
                raise InvalidParameter(
                    f"unable to find group {group_arg}: no matching entries in group file")
            match = numeric_group
        gid = _check_range(match)
    elif name is not None:
        for row in groups or []:
            row = (row + [""] * 4)[:4]
            row_gid = _int(row[2])
            members = [m.strip() for m in row[3].split(",") if m.strip()]
            if row_gid is not None and name in members and row_gid not in additional:
                additional.append(row_gid)

    for g in group_add or []:
        g = str(g).strip()
        numeric = _int(g)
        found = None
        for row in groups or []:
            row = (row + [""] * 4)[:4]
            if row[0] == g or (numeric is not None and _int(row[2]) == numeric):
                found = _int(row[2])
                break
        if found is None:
            if numeric is None:
                raise InvalidParameter(f"Unable to find group {g}: no matching entries in group file")
            found = numeric
        _check_range(found)
        if found not in additional:
            additional.append(found)
    return ResolvedUser(uid=uid, gid=gid, additional_gids=additional, home=home)
