"""A log file rotated as dockerd's loggerutils.LogFile rotates it.

`<name>` is written until it reaches max-size; then `<name>.N-1` → `<name>.N` …,
`<name>` → `<name>.1`, and with `compress` the rotated file becomes `<name>.1.gz`
(so every rotated file is gzipped, as with dockerd once its compression ran).
With max-file 1 the full file is simply started again.  Readers find the files
with `rotated_files`, oldest first.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
from pathlib import Path


class RotatingFile:
    def __init__(self, path: Path, max_size: int, max_file: int, compress: bool, perms: int = 0o640) -> None:
        self.path = path
        self.max_size = max_size  # -1: never rotate
        self.max_file = max_file
        self.compress = compress and max_file > 1
        self.perms = perms
        if self.compress and os.path.exists(f"{path}.1"):
            # a daemon killed while compressing left the whole `.1` (and maybe a `.1.gz.tmp`):
            # finish it, or the next rotation would overwrite it and the `.tmp` stay for good
            _compress(f"{path}.1")
        self.f = self._open()
        self.size = os.fstat(self.f.fileno()).st_size

    def _open(self):
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, self.perms)
        return os.fdopen(fd, "ab", buffering=0)

    def write(self, data: bytes) -> None:
        """One marshalled record; rotates first when the file is full, as dockerd does."""
        if self.max_size > 0 and self.size >= self.max_size:
            self.rotate()
        self.f.write(data)
        self.size += len(data)

    def rotate(self) -> None:
        self.f.close()
        name = str(self.path)
        if self.max_file > 1:
            ext = ".gz" if self.compress else ""
            _unlink(f"{name}.{self.max_file - 1}{ext}")
            for i in range(self.max_file - 1, 1, -1):
                try:
                    os.rename(f"{name}.{i - 1}{ext}", f"{name}.{i}{ext}")
                except FileNotFoundError:
                    pass
            os.rename(name, f"{name}.1")
            if self.compress:
                _compress(f"{name}.1")
        else:
            _unlink(name)
        self.f = self._open()
        self.size = 0

    def close(self) -> None:
        self.f.close()


def _unlink(p: str) -> None:
    try:
        os.unlink(p)
    except FileNotFoundError:
        pass


def _compress(p: str) -> None:
    """`p` → `p.gz`, the plain file removed only once the compressed one is whole."""
    tmp = p + ".gz.tmp"
    with open(p, "rb") as src, gzip.open(tmp, "wb", compresslevel=6) as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    os.rename(tmp, p + ".gz")
    os.unlink(p)


def rotated_files(path: Path) -> list[Path]:
    """The rotated files of `path`, oldest first (`.N.gz`/`.N` … `.1`); the live file not included."""
    rx = re.compile(re.escape(path.name) + r"\.(\d+)(\.gz)?$")
    found: dict[int, Path] = {}
    try:
        names = os.listdir(path.parent)
    except FileNotFoundError:
        return []
    for n in names:
        m = rx.match(n)
        if m:
            i = int(m.group(1))
            # during compression both exist: the plain one is complete, prefer it
            if i not in found or not m.group(2):
                found[i] = path.parent / n
    return [found[i] for i in sorted(found, reverse=True)]
