"""glibc malloc settings for a long-lived engine that streams big buffers.

glibc raises its mmap threshold each time a large block allocated with mmap is
freed (up to 32 MiB), so after one pull or import the multi-MiB transfer buffers
come from the heap and stay resident when freed: the engine's RSS grew by ~10 MiB
after a single `docker import`.

A fixed low mmap threshold (the first remedy) kept RSS flat but made every
transfer buffer a fresh mmap: the kernel zeroed and faulted in each page of each
buffer and unmapped it again, ~2.8 s of system CPU per 420 MB layer, most of the
import's cost.  Now glibc keeps its dynamic threshold (buffers are reused from the
heap during a transfer), the engine gives the freed memory back with
`malloc_trim` once a transfer is over (`release_freed`), and every thread
allocates from the main arena (`one_arena`), the one whose free top malloc_trim
returns: push's compressor threads otherwise kept ~15 MiB in arenas of their own.
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


M_ARENA_MAX = -8  # mallopt parameter number, from glibc's malloc.h


def one_arena() -> None:
    """Every thread allocates from the main arena: `malloc_trim` gives back the free
    top of the main heap only, so memory a worker thread freed in an arena of its
    own would stay resident."""
    lib = _glibc()
    if lib is not None and not lib.mallopt(M_ARENA_MAX, 1):
        log.debug("mallopt(M_ARENA_MAX) refused")


def release_freed() -> None:
    """Give freed heap memory back to the kernel (after a transfer's buffers are gone).
    Blocks for a few ms: call it from a worker thread."""
    lib = _glibc()
    if lib is not None:
        lib.malloc_trim(0)
