"""The storage driver interface, in the spirit of CNCF Distribution's.

A driver stores opaque byte strings under slash-separated paths ("/a/b/c").
The registry builds everything on top of these few calls:

    get_content / put_content   small whole files (links, metadata); put is atomic
    reader(path, offset)        a file object positioned at `offset`, for big blobs
    writer(path, append)        a resumable writer: write(), then either
                                  commit(dest=None) -> the content becomes visible at
                                               `path` (or at `dest`, moved there)
                                  close()   -> kept for later; writer(path, append=True)
                                               resumes at .size, in this process or any
                                               other on the same storage; reader(path)
                                               reads what was kept
                                  cancel()  -> discarded
                                .token names the data a resumed writer found, so
                                state saved beside it (a running hash) can be matched
    stat / list / walk          metadata, direct children, recursive files
    move(src, dst)              atomic from the reader's point of view (rename)
    delete(path)                a file or a whole subtree
    redirect_url(path, method)  a URL a client may fetch the file from directly, or None
    abort_uploads(path, t)      discard unfinished internal writes below path begun before t

Every method is blocking: the server calls them through asyncio.to_thread.
Errors: a missing path raises PathNotFound; nothing else is part of the contract.
All implementations pass tests/integration/registry/test_registry_storage_drivers.py.
"""

from __future__ import annotations

import abc
import os
import re
from dataclasses import dataclass
from typing import BinaryIO, Iterator

_PATH_RE = re.compile(r"^(/[A-Za-z0-9._=+-]+)+$")


class PathNotFound(FileNotFoundError):
    def __init__(self, path: str) -> None:
        super().__init__(f"path not found: {path}")
        self.path = path


class InvalidPath(ValueError):
    pass


def check_path(path: str) -> str:
    """Reject anything but absolute, normalised paths: no '..', no '//', no trailing '/'."""
    if path == "/":
        return path
    if not _PATH_RE.match(path) or "/../" in path + "/" or "/./" in path + "/":
        raise InvalidPath(f"invalid storage path {path!r}")
    return path


@dataclass(frozen=True)
class FileInfo:
    path: str
    size: int
    mtime: float
    is_dir: bool


class FileWriter(abc.ABC):
    """An append-only writer; see the module docstring for the commit/close protocol."""

    @property
    @abc.abstractmethod
    def size(self) -> int:
        """Bytes written so far, including what a resumed writer found."""

    @abc.abstractmethod
    def write(self, data: bytes) -> int: ...

    def writelines(self, chunks: list[bytes]) -> None:
        for c in chunks:
            self.write(c)

    @property
    def token(self) -> str:
        """Identifies the stored data this writer resumed plus what it wrote."""
        return str(self.size)

    @abc.abstractmethod
    def commit(self, dest: str | None = None) -> None: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    @abc.abstractmethod
    def cancel(self) -> None: ...

    def __enter__(self) -> "FileWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalFileWriter(FileWriter):
    """A writer onto a local file (the filesystem driver's data, the S3 driver's spool)."""

    def __init__(self, local_path: str, append: bool) -> None:
        self._local = local_path
        self._f = open(local_path, "ab" if append else "wb")
        self._size = self._f.seek(0, os.SEEK_END)
        self._closed = False

    @property
    def size(self) -> int:
        return self._size

    def write(self, data: bytes) -> int:
        n = self._f.write(data)
        self._size += n
        return n

    def writelines(self, chunks: list[bytes]) -> None:
        self._f.writelines(chunks)
        self._size += sum(len(c) for c in chunks)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._f.close()

    def cancel(self) -> None:
        self.close()
        try:
            os.unlink(self._local)
        except FileNotFoundError:
            pass


class StorageDriver(abc.ABC):
    name: str = "abstract"

    @abc.abstractmethod
    def get_content(self, path: str) -> bytes: ...

    @abc.abstractmethod
    def put_content(self, path: str, data: bytes) -> None: ...

    @abc.abstractmethod
    def reader(self, path: str, offset: int = 0) -> BinaryIO: ...

    @abc.abstractmethod
    def writer(self, path: str, append: bool = False) -> FileWriter: ...

    @abc.abstractmethod
    def stat(self, path: str) -> FileInfo: ...

    @abc.abstractmethod
    def list(self, path: str) -> list[str]:
        """Full paths of the direct children of directory `path`, sorted; PathNotFound if none."""

    @abc.abstractmethod
    def move(self, src: str, dst: str) -> None: ...

    @abc.abstractmethod
    def delete(self, path: str) -> None: ...

    @abc.abstractmethod
    def walk(self, path: str) -> Iterator[FileInfo]:
        """Every file (not directory) below `path`, recursively."""

    def exists(self, path: str) -> bool:
        try:
            self.stat(path)
            return True
        except PathNotFound:
            return False

    def local_path(self, path: str) -> str | None:
        """A local filesystem path for `path` when the driver has one (lets the server use sendfile)."""
        return None

    def touch(self, path: str) -> None:
        """Refresh a file's mtime (GC grace period); drivers without mtimes may do nothing."""

    def redirect_url(self, path: str, method: str) -> str | None:
        """A time-limited URL serving `path` for `method` (GET/HEAD) without the registry, if any."""
        return None

    def abort_uploads(self, path: str, older_than: float) -> int:
        """Discard the driver's own unfinished writes below `path` begun before `older_than`
        (epoch seconds), e.g. multipart uploads of a killed process; returns how many."""
        return 0

    def close(self) -> None:
        """Release clients and temporary files."""
