"""glibc malloc settings for a long-lived engine that streams big buffers.

glibc raises its mmap threshold each time a large block allocated with mmap is
freed (up to 32 MiB), so after one pull or import the multi-MiB transfer buffers
come from the heap and stay resident when freed: the engine's RSS grew by ~10 MiB
after a single `docker import`.

A fixed low mmap threshold (the first remedy) kept RSS flat but made every
transfer buffer a fresh mmap: the kernel zeroed and faulted in each page of each
buffer and unmapped it again, ~2.8 s of system CPU per 420 MB layer, most of the
import's cost.  Instead glibc keeps its dynamic threshold (buffers are reused
from the heap during a transfer) and the engine hands the freed memory back with
`malloc_trim` once a layer transfer is over (`release_freed`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

_libc: ctypes.CDLL | None = None
_loaded = False


def _glibc() -> ctypes.CDLL | None:
    global _libc, _loaded
    if not _loaded:
        _loaded = True
        try:
            lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            lib.malloc_trim  # noqa: B018 - not glibc: nothing to tune
            _libc = lib
        except (OSError, AttributeError) as exc:
            log.debug("malloc tuning unavailable: %s", exc)
    return _libc


def release_freed() -> None:
    """Give freed heap memory back to the kernel (after a transfer's buffers are gone).
    Blocks for a few ms: call it from a worker thread."""
    lib = _glibc()
    if lib is not None:
        lib.malloc_trim(0)
