"""Disk usage of a directory tree (writable layers, volumes, image layers)."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def dir_size(path: Path | str) -> int:
    """Bytes of regular files under `path` (hardlinks counted once); 0 when it is gone."""
    seen: set[int] = set()
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            try:
                st = os.lstat(os.path.join(dirpath, f))
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and st.st_ino not in seen:
                seen.add(st.st_ino)
                total += st.st_size
    return total
