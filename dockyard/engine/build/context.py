"""The build context on disk, and the file side of COPY/ADD.

Everything here is blocking file work: callers run it in a thread.

- `unpack_context`: the request's tar (plain, gzip, bzip2 or xz; a bare Dockerfile is accepted
  too) unpacked into a private directory: no absolute paths, nothing outside it, no devices.
- `resolve_sources`: COPY/ADD source arguments -> files and directories, with Go-style
  wildcards, symlinks resolved inside their root and .dockerignore applied.
- `source_hash`: Docker's cache checksum of what is copied ("file:", "dir:", "multi:"):
  names, types, modes, link targets and contents, not times.
- `write_copy_tar`: the tar that `engine.files.put(..., "/")` unpacks into the step's container:
  destinations resolved against the image's filesystem the way dockerd does it, owners set to
  --chown (default 0:0), local archives unpacked for ADD.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import shutil
import stat
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

from ...errors import InvalidParameter, NotFound
from ...oci.users import resolve_in_root, resolve_user
from .ignore import IgnoreMatcher, read_patterns

WILDCARD_RE = re.compile(r"(?<!\\)[*?\[]")


# ---------------------------------------------------------------- the context


def _context_filter(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    """tarfile's 'tar' filter (no absolute or escaping paths), keeping mode bits; no devices."""
    if member.isdev():
        return None
    safe = tarfile.tar_filter(member, dest)
    return safe.replace(mode=member.mode & 0o7777 if member.mode is not None else None,
                        uid=0, gid=0, uname="", gname="", deep=False)


_DECOMPRESSORS = {b"\x1f\x8b": "gzip", b"BZh": "bz2", b"\xfd7zXZ\x00": "lzma"}


def _plain_padded(archive: Path) -> int:
    """Decompress in place, and pad to whole blocks plus an end-of-archive marker.

    The docker CLI appends a Dockerfile from outside the context to the tar without padding
    its last member or writing the two zero blocks that end an archive (Go's reader accepts
    that, Python's does not).
    """
    with open(archive, "rb") as f:
        head = f.read(6)
    kind = next((k for magic, k in _DECOMPRESSORS.items() if head.startswith(magic)), None)
    if kind is not None:
        import bz2
        import gzip
        import lzma

        opener = {"gzip": gzip.open, "bz2": bz2.open, "lzma": lzma.open}[kind]
        plain = archive.with_name(archive.name + ".plain")
        try:
            with opener(archive, "rb") as src, open(plain, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
        except (OSError, EOFError, lzma.LZMAError) as exc:
            plain.unlink(missing_ok=True)
            raise InvalidParameter(f"invalid build context: {exc}") from None
        os.replace(plain, archive)
    size = archive.stat().st_size
    with open(archive, "ab") as f:
        f.write(b"\0" * ((-size % 512) + 1024))
    return size


def unpack_context(archive: Path, dest: Path) -> None:
    """Unpack the request body into `dest`. A body that is not a tar is taken as the Dockerfile."""
    dest.mkdir(parents=True, exist_ok=True)
    if archive.stat().st_size == 0:
        return
    size = _plain_padded(archive)
    try:
        with tarfile.open(archive, "r:*") as tf:
            tf.extractall(dest, filter=_context_filter, numeric_owner=True)
    except tarfile.ReadError:
        data = archive.read_bytes()[:size]
        if b"\0" in data[:8192]:
            raise InvalidParameter("the build context is neither a tar archive nor a Dockerfile") from None
        (dest / "Dockerfile").write_bytes(data)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise InvalidParameter(f"invalid build context: {exc}") from None


def read_dockerfile(root: Path, name: str) -> str:
    """The Dockerfile named by the `dockerfile` parameter (a path inside the context)."""
    name = name or "Dockerfile"
    candidates = [name] + (["dockerfile"] if name == "Dockerfile" else [])
    for cand in candidates:
        rel = posixpath.normpath("/" + cand)
        path = resolve_in_root(str(root), rel)
        if os.path.isfile(path):
            with open(path, "rb") as f:
                return f.read().decode("utf-8", errors="replace").lstrip("\ufeff")
    raise InvalidParameter(f"Cannot locate specified Dockerfile: {name}")


def read_ignore(root: Path) -> IgnoreMatcher:
    path = root / ".dockerignore"
    if not path.is_file() or path.is_symlink():
        return IgnoreMatcher([])
    return IgnoreMatcher(read_patterns(path.read_text(errors="replace")))


# ---------------------------------------------------------------- sources


@dataclass
class Source:
    host: str            # where it is on this machine (inside the context or a mounted stage)
    rel: str             # its path below the source root, '/'-separated ("" for the root)
    is_dir: bool
    hash: str = ""


def _go_match_regex(pattern: str) -> re.Pattern[str]:
    """filepath.Match: `*` and `?` within one segment, [classes], backslash escapes."""
    out = ["^"]
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise InvalidParameter(f"syntax error in pattern: {pattern}")
            out.append("[" + pattern[i + 1:end].replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.escape(ch))
        i += 1
    out.append("$")
    return re.compile("".join(out))


def _clean(src: str, cmd: str) -> str:
    rel = posixpath.normpath(src.lstrip("/") or ".")
    if rel == ".." or rel.startswith("../"):
        raise InvalidParameter(f"{cmd} failed: forbidden path outside the build context: {src} ()")
    return "" if rel == "." else rel


def _not_found(cmd: str, src: str) -> NotFound:
    return NotFound(f"{cmd} failed: file not found in build context or excluded by .dockerignore: "
                    f"stat {src}: file does not exist")


def resolve_sources(root: str, patterns: list[str], ignore: IgnoreMatcher | None, cmd: str) -> list[Source]:
    """The files and directories that COPY/ADD arguments name under `root`."""
    out: list[Source] = []
    for src in patterns:
        rel = _clean(src, cmd)
        if WILDCARD_RE.search(rel):
            rx = _go_match_regex(rel)
            found = []
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames.sort()
                base = os.path.relpath(dirpath, root)
                base = "" if base == "." else base
                keep = []
                for name in dirnames + sorted(filenames):
                    r = f"{base}/{name}" if base else name
                    if ignore and ignore.ignored(r):
                        continue
                    if rx.match(r):
                        host = os.path.join(dirpath, name)
                        is_dir = stat.S_ISDIR(os.lstat(host).st_mode)
                        found.append(Source(host, r, is_dir))
                    elif name in dirnames:
                        keep.append(name)
                dirnames[:] = keep  # a matched directory is copied whole, not searched again
            out += sorted(found, key=lambda s: s.rel)
            continue
        host = resolve_in_root(root, "/" + rel)
        real_rel = host[len(root):].strip("/") if host.startswith(root) else rel
        if not os.path.lexists(host) or (ignore and real_rel and ignore.ignored(real_rel)):
            raise _not_found(cmd, src)
        out.append(Source(host, real_rel, os.path.isdir(host)))
    if not out:
        raise InvalidParameter(f"{cmd} failed: no source files were specified")
    return out


def _walk(src: Source, ignore: IgnoreMatcher | None):
    """(host path, path below the source dir, lstat) of everything under a directory source, sorted."""
    for dirpath, dirnames, filenames in os.walk(src.host):
        dirnames.sort()
        base = os.path.relpath(dirpath, src.host)
        base = "" if base == "." else base
        keep = []
        for name in dirnames + sorted(filenames):
            below = f"{base}/{name}" if base else name
            ctx_rel = f"{src.rel}/{below}" if src.rel else below
            host = os.path.join(dirpath, name)
            st = os.lstat(host)
            is_dir = name in dirnames and stat.S_ISDIR(st.st_mode)
            if ignore and ignore.ignored(ctx_rel):
                if is_dir and any(p.exclusion for p in ignore.patterns):
                    keep.append(name)  # a `!pattern` may bring back something below
                continue
            if is_dir:
                keep.append(name)
            yield host, below, st
        dirnames[:] = keep


def _file_digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _entry_line(name: str, host: str, st: os.stat_result) -> str:
    kind = stat.S_IFMT(st.st_mode)
    extra = ""
    if stat.S_ISREG(st.st_mode):
        extra = _file_digest(host)
    elif stat.S_ISLNK(st.st_mode):
        extra = os.readlink(host)
    return f"{name}\0{kind:o}\0{st.st_mode & 0o7777:o}\0{extra}\n"


def source_hash(src: Source, ignore: IgnoreMatcher | None) -> str:
    h = hashlib.sha256()
    if not src.is_dir:
        st = os.lstat(src.host)
        h.update(_entry_line("", src.host, st).encode())
        return "file:" + h.hexdigest()
    for host, below, st in _walk(src, ignore):
        h.update(_entry_line(below, host, st).encode(errors="surrogateescape"))
    return "dir:" + h.hexdigest()


def combined_hash(sources: list[Source]) -> str:
    if len(sources) == 1:
        return sources[0].hash
    return "multi:" + hashlib.sha256(",".join(s.hash for s in sources).encode()).hexdigest()


# ---------------------------------------------------------------- destination


def normalize_dest(dest: str, workdir: str) -> str:
    """Relative destinations are relative to WORKDIR; a trailing slash is kept."""
    if dest.startswith("/"):
        return dest
    slash = dest.endswith("/") or dest in (".", "") or dest.endswith("/.")
    out = posixpath.join("/", workdir or "/", dest)
    out = posixpath.normpath(out)
    return out.rstrip("/") + "/" if slash else out


def resolve_chown(rootfs: str, spec: str) -> tuple[int, int]:
    """--chown=user[:group] against the image's /etc/passwd and /etc/group (a lone user is
    also taken as the group name, as dockerd does)."""
    user, _, group = spec.partition(":")
    group = group or user
    if not user:
        raise InvalidParameter(f"invalid --chown value {spec!r}")
    try:
        uid = resolve_user(rootfs, user).uid
        gid = resolve_user(rootfs, f"0:{group}").gid
    except InvalidParameter as exc:
        raise InvalidParameter(f"unable to convert uid/gid chown string to host mapping: {exc.message}") from None
    return uid, gid


def is_archive(path: str) -> bool:
    """A local tar (plain, gzip, bzip2 or xz) that ADD unpacks."""
    try:
        with tarfile.open(path, "r:*") as tf:
            return tf.next() is not None
    except (tarfile.TarError, EOFError, OSError):
        return False


class _CopyTar:
    """Builds the tar; knows which directories the image already has."""

    def __init__(self, tf: tarfile.TarFile, rootfs: str, owner: tuple[int, int]) -> None:
        self.tf = tf
        self.rootfs = rootfs
        self.uid, self.gid = owner
        self.made: set[str] = set()
        self.now = time.time()

    def exists(self, path: str) -> bool:
        return path in self.made or os.path.lexists(resolve_in_root(self.rootfs, path))

    def is_dir(self, path: str) -> bool:
        return path in self.made or os.path.isdir(resolve_in_root(self.rootfs, path))

    def ensure_dir(self, path: str) -> None:
        """Entries for the missing directories of `path` (0755, owned by the --chown user)."""
        cur = ""
        for part in [p for p in path.split("/") if p]:
            cur = f"{cur}/{part}"
            if self.exists(cur):
                continue
            ti = tarfile.TarInfo(cur.lstrip("/"))
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, self.now
            ti.uid, ti.gid = self.uid, self.gid
            self.tf.addfile(ti)
            self.made.add(cur)

    def add(self, host: str, target: str) -> None:
        ti = self.tf.gettarinfo(host, arcname=target.lstrip("/"))
        if ti is None:  # sockets: nothing to copy
            return
        if ti.isdev() or ti.isfifo():
            return
        ti.uid, ti.gid, ti.uname, ti.gname = self.uid, self.gid, "", ""
        if ti.isreg():
            with open(host, "rb") as f:
                self.tf.addfile(ti, f)
        else:
            self.tf.addfile(ti)
        if ti.isdir():
            self.made.add(target)

    def add_archive(self, host: str, target_dir: str) -> None:
        """ADD of a local archive: its members below target_dir, owners as in the archive."""
        with tarfile.open(host, "r:*") as src:
            for m in src:
                name = posixpath.normpath("/" + m.name).lstrip("/")
                if not name or name == ".":
                    continue
                m = m.replace(name=posixpath.join(target_dir, name).lstrip("/"), deep=False)
                if m.islnk():
                    link = posixpath.normpath("/" + m.linkname).lstrip("/")
                    m = m.replace(linkname=posixpath.join(target_dir, link).lstrip("/"), deep=False)
                if m.isdev():
                    continue
                self.tf.addfile(m, src.extractfile(m) if m.isreg() else None)


def write_copy_tar(out: Path, rootfs: str, sources: list[Source], dest: str, owner: tuple[int, int],
                   decompress: bool, ignore: IgnoreMatcher | None, cmd: str) -> None:
    """The tar (names relative to /) that puts `sources` at `dest` in the image at `rootfs`."""
    dir_dest = dest.endswith("/")
    if len(sources) > 1 and not dir_dest:
        raise InvalidParameter(f"When using {cmd} with more than one source file, the destination must be a "
                               "directory and end with a /")
    base = dest.rstrip("/") or "/"
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tf:
        ct = _CopyTar(tf, rootfs, owner)
        for src in sources:
            if src.is_dir:
                ct.ensure_dir(base)
                for host, below, _ in _walk(src, ignore):
                    ct.add(host, posixpath.join(base, below))
            elif decompress and is_archive(src.host):
                ct.ensure_dir(base)
                ct.add_archive(src.host, base)
            else:
                name = posixpath.basename(src.rel or src.host)
                if dir_dest or ct.is_dir(base):
                    ct.ensure_dir(base)
                    target = posixpath.join(base, name)
                else:
                    ct.ensure_dir(posixpath.dirname(base))
                    target = base
                ct.add(src.host, target)


def workdir_tar(out: Path, rootfs: str, workdir: str) -> bool:
    """A tar creating WORKDIR (root-owned, 0755) if the image lacks it; False when it exists."""
    if os.path.isdir(resolve_in_root(rootfs, workdir)):
        return False
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tf:
        _CopyTar(tf, rootfs, (0, 0)).ensure_dir(workdir)
    return True
