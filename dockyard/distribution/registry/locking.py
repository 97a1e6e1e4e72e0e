"""A cross-process lock between `registry gc` and manifest writes on one root.

Manifest PUTs take it shared (many at once), GC's sweep takes it exclusive, so a
manifest is never accepted while GC is deleting blobs it may reference.  It is
a local flock: with the S3 driver it protects only instances on this host.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from typing import Iterator


@contextlib.contextmanager
def root_lock(lock_dir: str, exclusive: bool) -> Iterator[None]:
    os.makedirs(lock_dir, exist_ok=True)
    fd = os.open(os.path.join(lock_dir, ".gc.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing releases the lock
