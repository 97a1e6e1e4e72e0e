"""Content-addressed blob store: data_root/content/blobs/sha256/<hex>.

Every blob is written to a temp file under content/tmp, hashed as it is
written, checked against the expected digest (if one was given), fsynced and
renamed into place.  A crash therefore leaves either no blob or a whole,
verified one; `repair()` sweeps the temp files of interrupted writes.

All methods are blocking: callers on the event loop use asyncio.to_thread.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterable

from ..errors import InvalidParameter, NotFound
from ..oci import digest as dg

CHUNK = 1 << 20


class BlobWriter:
    """A file-like sink that hashes what it is given; `commit()` verifies and renames."""

    def __init__(self, store: "ContentStore") -> None:
        self._store = store
        fd, name = tempfile.mkstemp(dir=store.tmp_dir, prefix="blob-")
        self._f = os.fdopen(fd, "wb")
        self.tmp_path = Path(name)
        self._h = hashlib.sha256()
        self.size = 0
        self._done = False

    def write(self, data: bytes) -> int:
        self._f.write(data)
        self._h.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        """Make the bytes so far visible to readers of tmp_path."""
        self._f.flush()

    @property
    def digest(self) -> str:
        return "sha256:" + self._h.hexdigest()

    def commit(self, expected: str | None = None) -> str:
        """Verify against `expected`, make durable, rename into place; returns the digest."""
        d = self.digest
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        self._done = True
        if expected is not None and expected != d:
            self.tmp_path.unlink(missing_ok=True)
            raise InvalidParameter(f"digest mismatch: expected {expected}, got {d}")
        dst = self._store.path(d)
        if dst.exists():
            self.tmp_path.unlink(missing_ok=True)
        else:
            os.chmod(self.tmp_path, 0o644)
            os.replace(self.tmp_path, dst)
        return d

    def abort(self) -> None:
        if not self._done:
            self._f.close()
            self._done = True
        self.tmp_path.unlink(missing_ok=True)

    def __enter__(self) -> "BlobWriter":
        return self

    def __exit__(self, *exc) -> None:
        if not self._done:
            self.abort()


class ContentStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.blobs_dir = self.root / "blobs" / "sha256"
        self.tmp_dir = self.root / "tmp"
        self.blobs_dir.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        return self.blobs_dir / dg.hex_of(digest)

    def exists(self, digest: str) -> bool:
        return self.path(digest).exists()

    def size(self, digest: str) -> int:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None

    def writer(self) -> BlobWriter:
        return BlobWriter(self)

    def put_bytes(self, data: bytes, expected: str | None = None) -> str:
        with self.writer() as w:
            w.write(data)
            return w.commit(expected)

    def put_stream(self, src: BinaryIO | Iterable[bytes], expected: str | None = None) -> tuple[str, int]:
        with self.writer() as w:
            if hasattr(src, "read"):
                shutil.copyfileobj(src, w, CHUNK)  # type: ignore[arg-type]
            else:
                for chunk in src:
                    w.write(chunk)
            size = w.size
            return w.commit(expected), size

    def read_bytes(self, digest: str) -> bytes:
        try:
            return self.path(digest).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None

    def delete(self, digest: str) -> None:
        self.path(digest).unlink(missing_ok=True)

    def digests(self) -> list[str]:
        return ["sha256:" + p.name for p in self.blobs_dir.iterdir() if dg.HEX64_RE.match(p.name)]

    def temp_file(self, prefix: str = "upload-") -> Path:
        """A scratch file next to the blobs (same filesystem, swept by repair())."""
        fd, name = tempfile.mkstemp(dir=self.tmp_dir, prefix=prefix)
        os.close(fd)
        return Path(name)

    def temp_dir(self, prefix: str = "work-") -> Path:
        return Path(tempfile.mkdtemp(dir=self.tmp_dir, prefix=prefix))

    def repair(self) -> int:
        """Remove leftovers of interrupted writes; returns how many were removed."""
        n = 0
        for p in self.tmp_dir.iterdir():
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            n += 1
        return n
