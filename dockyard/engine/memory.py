"""glibc malloc settings for a long-lived engine that streams big buffers.

glibc raises its mmap threshold each time a large block allocated with mmap is
freed (up to 32 MiB), so after one pull or import the multi-MiB transfer buffers
come from the heap and stay resident when freed: the engine's RSS grew by ~10 MiB
after a single `docker import`.  A fixed threshold keeps big buffers in mmap (given
back to the kernel on free), as at start.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # mallopt parameter numbers, from glibc's malloc.h
MMAP_THRESHOLD = 256 * 1024


def fix_mmap_threshold() -> None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        if not libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD):
            log.debug("mallopt(M_MMAP_THRESHOLD) refused")
    except (OSError, AttributeError) as exc:  # not glibc: nothing to tune
        log.debug("malloc tuning unavailable: %s", exc)
