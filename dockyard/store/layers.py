"""Layer snapshots for overlayfs: data_root/layers/<chain-hex>/diff.

Lifecycle of a layer (compare containerd's snapshotter Prepare/Apply/Commit):

1. `import_stream(src)` reads the (gzip, zstd, bzip2, xz or plain) tar once:
   the bytes as received are hashed (and a compressed blob is kept as it
   came, for later pushes), decompressed, hashed again (the layer's DiffID,
   which with the parent's ChainID gives this layer's ChainID), kept as the
   layer tar and unpacked, all as they arrive (a pull feeds it from the
   download), into layers/tmp/<random>/diff, converting OCI/Docker whiteouts
   to overlayfs ones (`.wh.x` -> character device 0:0 named x;
   `.wh..wh..opq` -> xattr trusted.overlay.opaque=y on the directory).
2. Only when every digest matched is the directory renamed to
   layers/<chain-hex> (unless that ChainID exists already) and the blobs
   renamed into the content store.  A crash or a bad byte mid-way leaves only
   temp debris, never a half layer under its final name.
3. The row goes into SQLite; the uncompressed tar kept under its DiffID lets
   `docker save` reproduce the layer byte for byte.

Layers are shared: each is stored once per ChainID, and images hold
references to it (`add_refs(owner, chain_ids)` in the same transaction that
records the image).  A layer with no reference is garbage: `gc()` removes it.
Between step 1 and the image's commit a fresh layer has no reference yet, so
importers "pin" it; gc skips pinned layers.  `repair()` at engine start
removes temp debris, directories with no row and rows with no reference.

Everything here blocks; services call it through asyncio.to_thread.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import shutil
import stat
import tarfile
import tempfile
import threading
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Collection, Iterator

from ..errors import InvalidParameter, NotFound
from ..oci import digest as dg
from . import compression
from .compressed import CompressedBlobs
from .content import CHUNK, BlobWriter, ContentStore
from .metadata import Database
from .pipe import BackgroundWriter, ForwardReader, HashSink, IterReader, PipeClosed, TeeReader
from . import tarsplit
from .tarsplit import SkeletonWriter

log = logging.getLogger(__name__)

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
WHITEOUT_OPAQUE = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
# Layers that arrive in these are kept as received (what push sends) instead of as a tar.
KEPT_COMPRESSED = (compression.GZIP, compression.ZSTD)
SKELETON = "tar-split"  # beside diff/: what rebuilds a plain tar from the layer (tarsplit)

SCHEMA = """
CREATE TABLE IF NOT EXISTS layers (
    chain_id TEXT PRIMARY KEY,
    diff_id  TEXT NOT NULL,
    parent   TEXT,
    size     INTEGER NOT NULL,
    created  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS layers_diff ON layers(diff_id);
CREATE TABLE IF NOT EXISTS layer_refs (
    owner    TEXT NOT NULL,
    chain_id TEXT NOT NULL REFERENCES layers(chain_id),
    PRIMARY KEY (owner, chain_id)
);
CREATE INDEX IF NOT EXISTS layer_refs_chain ON layer_refs(chain_id);
"""


@dataclass(frozen=True)
class Layer:
    chain_id: str
    diff_id: str
    parent: str | None
    size: int  # bytes of regular files in this layer (Docker's layer size)


# ------------------------------------------------------------ pure helpers


def clean_member_name(name: str) -> str:
    """A tar member name relative to the layer root; refuses escapes.

    Leading "/" and "./" are dropped as tar does; "." is the root itself.
    Any ".." that would climb above the root is an InvalidParameter.
    """
    if "\x00" in name:
        raise InvalidParameter(f"invalid tar member name {name!r}")
    parts: list[str] = []
    for comp in name.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if not parts:
                raise InvalidParameter(f"invalid tar: path {name!r} escapes the layer root")
            parts.pop()
            continue
        parts.append(comp)
    return "/".join(parts) or "."


def classify_whiteout(rel: str) -> tuple[str, str] | None:
    """("opaque", dir) | ("whiteout", path) | ("meta", path) for whiteout names, else None."""
    parent, _, base = rel.rpartition("/")
    if not base.startswith(WHITEOUT_PREFIX):
        return None
    if base == WHITEOUT_OPAQUE:
        return "opaque", parent or "."
    if base.startswith(WHITEOUT_META_PREFIX):
        return "meta", rel
    target = base[len(WHITEOUT_PREFIX):]
    if not target or target in (".", ".."):
        raise InvalidParameter(f"invalid whiteout {rel!r}")
    return "whiteout", (parent + "/" + target) if parent else target


# ------------------------------------------------------------ unpacking


def _remove_path(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _ensure_parent(root: str, rel: str) -> str:
    """Create missing parent directories of `rel`; refuse to go through a symlink or file."""
    parts = rel.split("/")[:-1]
    cur = root
    for comp in parts:
        cur = os.path.join(cur, comp)
        try:
            st = os.lstat(cur)
        except FileNotFoundError:
            os.mkdir(cur, 0o755)
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise InvalidParameter(f"invalid tar: {rel!r} goes through non-directory {comp!r}")
    return os.path.join(root, rel)


def _apply_xattrs(path: str, member: tarfile.TarInfo) -> None:
    for key, value in member.pax_headers.items():
        if not key.startswith("SCHILY.xattr."):
            continue
        name = key[len("SCHILY.xattr."):]
        try:
            os.setxattr(path, name, value.encode("utf-8", "surrogateescape"), follow_symlinks=False)
        except OSError as exc:
            # Filesystems without user/security xattrs: keep going, as Docker does
            # for ENOTSUP; anything else is a real failure.
            if exc.errno not in (errno.ENOTSUP, errno.EPERM):
                raise
            log.debug("xattr %s on %s not applied: %s", name, path, exc)


def unpack_tar(tar: Path | BinaryIO, dest: Path, split: SkeletonWriter | None = None) -> int:
    """Unpack an uncompressed layer tar (a path, or a stream read once) into `dest`.

    Whiteouts become overlayfs ones.  Returns the layer size (bytes of regular
    files).  `dest` must exist.  `split`, fed the same stream, is told where each
    file's contents lie (and before any file of ours is replaced), so the tar can
    be rebuilt from the layer (`tarsplit`).
    """
    root = str(dest)
    size = 0
    dir_times: list[tuple[str, int]] = []
    try:
        if isinstance(tar, Path):
            tf = tarfile.open(tar, "r:", errorlevel=2)
        else:  # read once, members in order: tarfile parses headers, we copy the contents
            tf = tarfile.open(fileobj=ForwardReader(tar, CHUNK), mode="r:", errorlevel=2)  # type: ignore[arg-type]
    except tarfile.ReadError as exc:
        raise InvalidParameter(f"invalid tar archive: {exc}") from None
    with tf:
        try:
            members = iter(tf)
            for m in members:
                size += _unpack_member(tf, m, root, dir_times, split)
        except tarfile.TarError as exc:
            raise InvalidParameter(f"invalid tar archive: {exc}") from None
    # Directory mtimes last: creating children would change them.
    for path, mtime in reversed(dir_times):
        os.utime(path, ns=(mtime, mtime), follow_symlinks=False)
    return size


def _unpack_member(tf: tarfile.TarFile, m: tarfile.TarInfo, root: str, dir_times: list,
                   split: SkeletonWriter | None = None) -> int:
    rel = clean_member_name(m.name)
    wh = classify_whiteout(rel) if rel != "." else None
    # Contents that land as a file of the layer as they are (not sparse, not a whiteout).
    spliced = split is not None and wh is None and rel != "." and m.isreg() and not m.issparse() and m.size > 0
    if split is not None and not spliced:
        split.other(m.offset_data)

    def _remove(path: str) -> None:
        if split is not None:
            split.removing(path)
        _remove_path(path)

    if wh is not None:
        kind, target = wh
        if kind == "opaque":
            d = root if target == "." else _ensure_parent(root, target + "/x")[:-2]
            if not os.path.isdir(d) or os.path.islink(d):
                os.mkdir(d, 0o755)
            os.setxattr(d, OPAQUE_XATTR, b"y", follow_symlinks=False)
        elif kind == "whiteout":
            path = _ensure_parent(root, target)
            _remove(path)
            os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))
            os.chown(path, m.uid, m.gid, follow_symlinks=False)
        # "meta" (.wh..wh.plnk and friends, aufs bookkeeping): skipped.
        return 0

    path = root if rel == "." else _ensure_parent(root, rel)
    mode = m.mode & 0o7777
    size = 0
    if m.isdir():
        try:
            st = os.lstat(path)
            if not stat.S_ISDIR(st.st_mode):
                _remove(path)
                os.mkdir(path, 0o700)
        except FileNotFoundError:
            os.mkdir(path, 0o700)
    elif rel == ".":
        raise InvalidParameter("invalid tar: the root must be a directory")
    elif m.isreg():
        _remove(path)
        if spliced:  # after the removal: a file of the same name earlier in the tar is not this one
            split.file(m.offset_data, m.size, path, rel)  # type: ignore[union-attr]
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            _copy_contents(tf, m, fd)
        finally:
            os.close(fd)
        size = m.size
    elif m.issym():
        _remove(path)
        os.symlink(m.linkname, path)
    elif m.islnk():
        target_rel = clean_member_name(m.linkname)
        if target_rel == ".":
            raise InvalidParameter(f"invalid tar: hardlink {m.name!r} to the root")
        target = _ensure_parent(root, target_rel)
        if not os.path.lexists(target):
            raise InvalidParameter(f"invalid tar: hardlink {m.name!r} to missing {m.linkname!r}")
        _remove(path)
        os.link(target, path, follow_symlinks=False)
        return 0  # metadata is the target's; size counted once
    elif m.ischr() or m.isblk() or m.isfifo():
        _remove(path)
        kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
        os.mknod(path, kind | mode, os.makedev(m.devmajor, m.devminor) if not m.isfifo() else 0)
    else:
        log.warning("skipping tar member %r of unsupported type %r", m.name, m.type)
        return 0

    os.chown(path, m.uid, m.gid, follow_symlinks=False)
    if not m.issym():
        os.chmod(path, mode)  # after chown, which clears setuid/setgid
    _apply_xattrs(path, m)
    mtime = int(m.mtime * 1_000_000_000)
    if m.isdir():
        dir_times.append((path, mtime))
    else:
        os.utime(path, ns=(mtime, mtime), follow_symlinks=False)
    return size




def _copy_contents(tf: tarfile.TarFile, m: tarfile.TarInfo, fd: int) -> None:
    """A regular member's contents into `fd`."""
    src = tf.fileobj
    if isinstance(src, ForwardReader) and not m.issparse():
        # One buffer, one write per MiB (extractfile + copyfileobj copied each byte ~3 times more).
        src.seek(m.offset_data)
        if src.copy_to(fd, m.size) != m.size:
            raise tarfile.ReadError("unexpected end of data")
        return
    f = tf.extractfile(m)
    if f is not None:
        with os.fdopen(os.dup(fd), "wb") as out:
            shutil.copyfileobj(f, out, CHUNK)


class _Both:
    """Writes to two sinks."""

    def __init__(self, a, b) -> None:  # type: ignore[no-untyped-def]
        self.a, self.b = a, b

    def write(self, data: bytes) -> int:
        self.a.write(data)
        self.b.write(data)
        return len(data)


# ------------------------------------------------------------ the store


class LayerStore:
    def __init__(self, root: Path, db: Database, content: ContentStore) -> None:
        self.root = Path(root)
        self.tmp_dir = self.root / "tmp"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o711)
        self.db = db
        self.content = content
        db.ensure_schema(SCHEMA)
        self._lock = threading.Lock()
        self._pins: Counter[str] = Counter()
        self.compressed = CompressedBlobs(db, content)

    # -- queries

    def dir(self, chain_id: str) -> Path:
        return self.root / dg.hex_of(chain_id)

    def diff_dir(self, chain_id: str) -> Path:
        return self.dir(chain_id) / "diff"

    def get(self, chain_id: str) -> Layer | None:
        row = self.db.query_one("SELECT * FROM layers WHERE chain_id=?", (chain_id,))
        if row is None:
            return None
        return Layer(row["chain_id"], row["diff_id"], row["parent"], row["size"])

    def require(self, chain_id: str) -> Layer:
        layer = self.get(chain_id)
        if layer is None:
            raise NotFound(f"layer {chain_id} does not exist")
        return layer

    def all(self) -> list[Layer]:
        return [Layer(r["chain_id"], r["diff_id"], r["parent"], r["size"])
                for r in self.db.query("SELECT * FROM layers")]

    def refcount(self, chain_id: str) -> int:
        return int(self.db.scalar("SELECT COUNT(*) FROM layer_refs WHERE chain_id=?", (chain_id,)))

    def tar_path(self, diff_id: str) -> Path:
        """The layer's uncompressed tar, byte-identical to what was imported.

        A layer that arrived compressed is kept compressed only (one copy less to
        write on pull); its tar is inflated into the content store when first asked
        for (`docker save`, a push in another compression) and verified.
        """
        p = self.content.path(diff_id)
        if p.exists():
            return p
        for kind in KEPT_COMPRESSED:
            kept = self.compressed.find(diff_id, kind)
            if kept is None:
                continue
            with self.content.open(kept.digest) as f, compression.decompressed(f) as (plain, _), \
                    self.content.writer() as w:
                shutil.copyfileobj(plain, w, CHUNK)
                w.commit(diff_id)
            return p
        skeleton = self._skeleton(diff_id)
        if skeleton is not None:
            with self.content.writer() as w:
                tarsplit.rebuild(skeleton, skeleton.parent / "diff", w)  # type: ignore[arg-type]
                w.commit(diff_id)  # verified: a wrong splice can never pass for the layer
            return p
        raise NotFound(f"layer tar {diff_id} is missing from the content store")

    @contextmanager
    def open_tar(self, diff_id: str) -> Iterator[BinaryIO]:
        """The layer's tar as a stream, without writing it out (push compresses from it).
        Unverified here: the reader hashes what it reads and compares with the DiffID."""
        p = self.content.path(diff_id)
        if p.exists():
            with open(p, "rb") as f:
                yield f
            return
        skeleton = self._skeleton(diff_id)
        if skeleton is not None:
            yield io.BufferedReader(IterReader(tarsplit.chunks(skeleton, skeleton.parent / "diff")), CHUNK)
            return
        for kind in KEPT_COMPRESSED:
            kept = self.compressed.find(diff_id, kind)
            if kept is not None:
                with self.content.open(kept.digest) as f, compression.decompressed(f) as (plain, _):
                    yield plain  # type: ignore[misc]
                return
        raise NotFound(f"layer tar {diff_id} is missing from the content store")

    def _skeleton(self, diff_id: str) -> Path | None:
        for r in self.db.query("SELECT chain_id FROM layers WHERE diff_id=?", (diff_id,)):
            p = self.dir(r["chain_id"]) / SKELETON
            if p.is_file():
                return p
        return None

    def tar_size(self, diff_id: str) -> int:
        """Bytes of the layer's tar, without inflating a layer kept compressed."""
        p = self.content.path(diff_id)
        if p.exists():
            return p.stat().st_size
        for kind in KEPT_COMPRESSED:
            kept = self.compressed.find(diff_id, kind)
            if kept is not None:
                return kept.tar_size
        skeleton = self._skeleton(diff_id)
        if skeleton is not None:
            return tarsplit.tar_size(skeleton)
        raise NotFound(f"layer tar {diff_id} is missing from the content store")

    # -- pins

    def unpin(self, chain_ids: list[str]) -> None:
        with self._lock:
            for c in chain_ids:
                self._pins[c] -= 1
                if self._pins[c] <= 0:
                    del self._pins[c]

    @contextmanager
    def pinning(self) -> Iterator[list[str]]:
        """Layers imported inside this block are safe from gc() until it ends."""
        pinned: list[str] = []
        try:
            yield pinned
        finally:
            self.unpin(pinned)

    # -- import

    def import_layer(self, src: Path, parent: str | None, pinned: list[str],
                     expected_diff_id: str | None = None, name: str | None = None) -> Layer:
        """Import one layer from a (possibly compressed) tar file; pins it into `pinned`."""
        with open(src, "rb") as f:
            return self.import_stream(f, parent, pinned, expected_diff_id, name=name)

    def import_stream(self, raw: BinaryIO, parent: str | None, pinned: list[str],
                      expected_diff_id: str | None = None, *, expected_digest: str | None = None,
                      name: str | None = None) -> Layer:
        """Import one layer from a stream, in one pass; pins it into `pinned`.

        The bytes are hashed as they are read (`expected_digest`: the blob's
        digest, checked at the end) and unpacked into a temp dir while they
        arrive.  The tar itself is kept either as the compressed blob received
        (gzip, zstd: `self.compressed`, what push sends) or, for a plain tar,
        as a skeleton beside the unpacked files (`tarsplit`): never twice.
        Nothing is kept unless every check passed.  `name` (the layer as the
        user knows it) goes into error messages.
        """
        what = name or "layer"
        packed = self.content.writer()
        packed_bg = BackgroundWriter(packed)  # hashed and written by a thread of its own
        tar_hash = HashSink()
        hash_bg = BackgroundWriter(tar_hash)
        work = Path(tempfile.mkdtemp(dir=self.tmp_dir, prefix="unpack-"))
        split = SkeletonWriter(work / SKELETON)
        try:
            tee = TeeReader(raw, packed_bg)
            tar = TeeReader(tee, hash_bg)  # replaced by the decompressed stream below
            kind = "unknown"
            try:
                with compression.decompressed(io.BufferedReader(tee, CHUNK)) as (plain, kind):
                    if kind not in KEPT_COMPRESSED:
                        tee.sink = None  # no compressed blob to keep
                    tar = TeeReader(plain, _Both(hash_bg, split) if kind not in KEPT_COMPRESSED else hash_bg)
                    (work / "diff").mkdir()
                    os.chmod(work / "diff", 0o755)
                    size = unpack_tar(tar, work / "diff",  # type: ignore[arg-type]
                                      split if kind not in KEPT_COMPRESSED else None)
                    tar.drain()
                tee.drain()
                packed_bg.wait()
                hash_bg.wait()
                split.close()
            except (InvalidParameter, *compression.decode_errors()) as exc:
                if isinstance(exc, PipeClosed):
                    raise
                # Were the bytes the ones asked for?  The plain tee has seen all of a plain tar.
                if kind == "tar":
                    tar.sink = tar_hash
                    hash_bg.wait()
                    self._check_received(tar, tar_hash, expected_digest)
                else:
                    tee.sink = packed
                    packed_bg.wait()
                    self._check_received(tee, packed, expected_digest)
                detail = exc.message if isinstance(exc, InvalidParameter) else f"invalid layer archive: {exc}"
                raise InvalidParameter(f"{what}: {detail}") from None
            received = tar_hash if kind == "tar" else packed
            if expected_digest is not None and received.digest != expected_digest:
                raise InvalidParameter(f"filesystem layer verification failed for digest {expected_digest}")
            diff_id = tar_hash.digest
            if expected_diff_id is not None and expected_diff_id != diff_id:
                raise InvalidParameter(f"{what}: layer digest mismatch: config says {expected_diff_id}, "
                                       f"tar is {diff_id}")
            chain_id = diff_id if parent is None else dg.sha256_bytes(f"{parent} {diff_id}".encode())
            with self._lock:
                self._pins[chain_id] += 1
            pinned.append(chain_id)
            if kind in KEPT_COMPRESSED:
                digest, csize = packed.digest, packed.size
                packed.commit(digest)
                self.compressed.add(diff_id, kind, digest, csize, tar_hash.size)
                tarsplit.remove(work / SKELETON)
            else:
                packed.abort()
            existing = self.get(chain_id)
            if existing is not None and self.diff_dir(chain_id).is_dir():
                return existing
            try:
                os.rename(work, self.dir(chain_id))
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
                # Someone unpacked the same layer concurrently: theirs wins.
        finally:
            packed_bg.stop()
            hash_bg.stop()
            split.abort()
            packed.abort()
            shutil.rmtree(work, ignore_errors=True)
        self.db.execute(
            "INSERT OR IGNORE INTO layers(chain_id, diff_id, parent, size, created) "
            "VALUES (?,?,?,?,strftime('%s','now'))",
            (chain_id, diff_id, parent, size),
        )
        return self.require(chain_id)

    @staticmethod
    def _check_received(reader: TeeReader, received: BlobWriter | HashSink, expected_digest: str | None) -> None:
        """After a bad archive: were the bytes the ones asked for?  A corrupt download is
        reported as a verification failure (as dockerd does), not as a broken image.
        `reader` is the tee whose sink `received` has seen every byte read so far."""
        if expected_digest is None:
            return
        try:
            reader.drain()
        except compression.decode_errors():
            return
        if received.digest != expected_digest:
            raise InvalidParameter(f"filesystem layer verification failed for digest {expected_digest}")

    # -- references (call inside the owner's db transaction)

    def add_refs(self, owner: str, chain_ids: list[str]) -> None:
        for c in chain_ids:
            self.db.execute("INSERT OR IGNORE INTO layer_refs(owner, chain_id) VALUES (?,?)", (owner, c))

    def drop_refs(self, owner: str) -> None:
        self.db.execute("DELETE FROM layer_refs WHERE owner=?", (owner,))

    # -- garbage

    def gc(self, only: Collection[str] | None = None) -> list[str]:
        """Remove layers nobody references or pins; returns their chain IDs.

        `only`: look at these layers alone (an image's delete reports the layers that went
        with it, not every orphan the store holds, such as a failed pull's, kept for reuse).
        """
        with self._lock:
            rows = self.db.query(
                "SELECT chain_id, diff_id FROM layers WHERE chain_id NOT IN (SELECT chain_id FROM layer_refs)"
            )
            victims = [(r["chain_id"], r["diff_id"]) for r in rows if r["chain_id"] not in self._pins
                       and (only is None or r["chain_id"] in only)]
            with self.db.transaction():
                for chain_id, _ in victims:
                    self.db.execute("DELETE FROM layers WHERE chain_id=?", (chain_id,))
        for chain_id, diff_id in victims:
            self._remove_dir(self.dir(chain_id))
            if self.db.scalar("SELECT COUNT(*) FROM layers WHERE diff_id=?", (diff_id,)) == 0:
                self.content.delete(diff_id)
                self.compressed.forget(diff_id)
        return [c for c, _ in victims]

    def _remove_dir(self, d: Path) -> None:
        # Rename first so a crash mid-delete leaves debris in tmp, not a half layer.
        if not d.exists():
            return
        trash = Path(tempfile.mkdtemp(dir=self.tmp_dir, prefix="del-"))
        try:
            os.rename(d, trash / "x")
        except FileNotFoundError:
            pass
        shutil.rmtree(trash, ignore_errors=True)

    def repair(self) -> dict[str, int]:
        """Engine start: drop temp debris, orphan directories and unreferenced layers."""
        stats = {"tmp": 0, "orphan_dirs": 0, "missing_dirs": 0, "unreferenced": 0}
        for p in self.tmp_dir.iterdir():
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() and not p.is_symlink() else p.unlink()
            stats["tmp"] += 1
        known = {dg.hex_of(r["chain_id"]): r["chain_id"] for r in self.db.query("SELECT chain_id FROM layers")}
        for p in self.root.iterdir():
            if p.name == "tmp":
                continue
            if p.name not in known:
                log.info("removing orphan layer directory %s", p)
                self._remove_dir(p)
                stats["orphan_dirs"] += 1
        for hexid, chain_id in known.items():
            if not (self.root / hexid / "diff").is_dir():
                log.warning("layer %s has no directory; forgetting it", chain_id)
                with self.db.transaction():
                    self.db.execute("DELETE FROM layer_refs WHERE chain_id=?", (chain_id,))
                    self.db.execute("DELETE FROM layers WHERE chain_id=?", (chain_id,))
                stats["missing_dirs"] += 1
        stats["unreferenced"] = len(self.gc())
        return stats


def write_diff_tar(upper: Path, dest: Path) -> None:
    """A container's writable layer as an image layer tar (`docker commit`).

    The reverse of unpacking: overlay's whiteouts (char devices 0:0) become
    `.wh.<name>` entries and opaque directories get a `.wh..wh..opq` entry.
    """
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tf:
        for dirpath, dirnames, filenames in os.walk(upper):
            dirnames.sort()
            rel_dir = os.path.relpath(dirpath, upper)
            prefix = "" if rel_dir == "." else rel_dir + "/"
            if prefix:
                try:
                    opaque = os.getxattr(dirpath, OPAQUE_XATTR) == b"y"
                except OSError:
                    opaque = False
                if opaque:
                    tf.addfile(_empty(prefix + WHITEOUT_OPAQUE))
            for name in sorted(dirnames + filenames):
                host = os.path.join(dirpath, name)
                st = os.lstat(host)
                if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                    tf.addfile(_empty(prefix + WHITEOUT_PREFIX + name))
                    continue
                ti = tf.gettarinfo(host, arcname=prefix + name)
                ti.uname = ti.gname = ""
                if ti.isreg():
                    with open(host, "rb") as f:
                        tf.addfile(ti, f)
                else:
                    tf.addfile(ti)


def _empty(name: str) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.mode = 0o644
    return ti
