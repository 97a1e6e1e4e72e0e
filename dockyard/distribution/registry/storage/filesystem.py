"""The filesystem driver: paths map to files under a root directory.

Whole-file writes go to a temp file in the same directory and are renamed into
place, so a crash leaves the old or the new content.  Writers append to the
target path itself: the registry only writes there under _uploads/, which no
reader looks at, and finishes by move() (a rename) into the blob store.
"""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from typing import BinaryIO, Iterator

from .driver import LocalFileWriter, FileInfo, FileWriter, PathNotFound, StorageDriver, check_path


class _FsWriter(LocalFileWriter):
    def __init__(self, driver: "FilesystemDriver", path: str, append: bool) -> None:
        full = driver._full(path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        super().__init__(full, append)
        self._driver = driver
        self._path = path

    def commit(self, dest: str | None = None) -> None:
        if not self._closed:
            self._f.flush()
            if self._driver.fsync:
                os.fsync(self._f.fileno())
            self.close()
        if dest is not None and dest != self._path:
            self._driver.move(self._path, dest)


class FilesystemDriver(StorageDriver):
    name = "filesystem"

    def __init__(self, root: str, fsync: bool = False) -> None:
        self.root = os.path.abspath(root)
        self.fsync = fsync
        os.makedirs(self.root, exist_ok=True)

    def _full(self, path: str) -> str:
        check_path(path)
        return self.root if path == "/" else self.root + path

    def get_content(self, path: str) -> bytes:
        try:
            with open(self._full(path), "rb") as f:
                return f.read()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise PathNotFound(path) from None

    def put_content(self, path: str, data: bytes) -> None:
        full = self._full(path)
        d = os.path.dirname(full)
        os.makedirs(d, exist_ok=True)
        tmp = os.path.join(d, f".tmp-{uuid.uuid4().hex}")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                if self.fsync:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(tmp, full)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise

    def reader(self, path: str, offset: int = 0) -> BinaryIO:
        try:
            f = open(self._full(path), "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise PathNotFound(path) from None
        if offset:
            f.seek(offset)
        return f

    def writer(self, path: str, append: bool = False) -> FileWriter:
        return _FsWriter(self, path, append)

    def stat(self, path: str) -> FileInfo:
        try:
            st = os.stat(self._full(path))
        except (FileNotFoundError, NotADirectoryError):
            raise PathNotFound(path) from None
        is_dir = os.path.isdir(self._full(path))
        return FileInfo(path, 0 if is_dir else st.st_size, st.st_mtime, is_dir)

    def list(self, path: str) -> list[str]:
        full = self._full(path)
        try:
            names = os.listdir(full)
        except (FileNotFoundError, NotADirectoryError):
            raise PathNotFound(path) from None
        base = "" if path == "/" else path
        return sorted(f"{base}/{n}" for n in names if not n.startswith(".tmp-"))

    def move(self, src: str, dst: str) -> None:
        s, d = self._full(src), self._full(dst)
        os.makedirs(os.path.dirname(d), exist_ok=True)
        try:
            os.replace(s, d)
        except FileNotFoundError:
            raise PathNotFound(src) from None
        except OSError as e:
            if e.errno in (errno.ENOTEMPTY, errno.EISDIR, errno.EEXIST):
                shutil.rmtree(d)
                os.replace(s, d)
            else:
                raise

    def delete(self, path: str) -> None:
        full = self._full(path)
        try:
            if os.path.isdir(full) and not os.path.islink(full):
                # Rename first so a half-finished rmtree is never seen at the old path.
                trash = os.path.join(os.path.dirname(full), f".tmp-{uuid.uuid4().hex}")
                os.rename(full, trash)
                shutil.rmtree(trash, ignore_errors=True)
            else:
                os.unlink(full)
        except (FileNotFoundError, NotADirectoryError):
            raise PathNotFound(path) from None

    def walk(self, path: str) -> Iterator[FileInfo]:
        full = self._full(path)
        if not os.path.exists(full):
            raise PathNotFound(path)
        base = "" if path == "/" else path
        for dirpath, dirnames, filenames in os.walk(full):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".tmp-"))
            rel = dirpath[len(full):]
            for n in sorted(filenames):
                if n.startswith(".tmp-"):
                    continue
                try:
                    st = os.stat(os.path.join(dirpath, n))
                except FileNotFoundError:
                    continue
                yield FileInfo(f"{base}{rel}/{n}", st.st_size, st.st_mtime, False)

    def local_path(self, path: str) -> str | None:
        return self._full(path)

    def touch(self, path: str) -> None:
        try:
            os.utime(self._full(path))
        except FileNotFoundError:
            raise PathNotFound(path) from None
