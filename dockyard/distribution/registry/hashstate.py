"""Resumable sha256/sha512: a running hash whose state can be saved and resumed elsewhere.

Replicas of a fleet continue each other's uploads, so the running digest of an
upload must travel with it (Distribution stores Go's marshalled hash state in
the bucket).  hashlib cannot export its state, and the PyPI options fall short
(`rehash` refuses OpenSSL 3; `resumablesha256` is a portable C sha256, 4x
slower than OpenSSL's SHA-NI code, and has no sha512).  So this module drives
libcrypto's SHA256_/SHA512_ functions through ctypes on a context buffer we
own: SHA256_CTX and SHA512_CTX are public, fixed-layout structs (openssl/sha.h),
the speed is hashlib's (ctypes releases the GIL during the call), and the
state is the buffer's bytes.  The state is tagged with the algorithm, struct
size and byte order; anything else is refused, and callers re-hash the stored
data instead.  Without a usable libcrypto, hashes are plain hashlib objects
that cannot be saved (state() is None).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import sys
from typing import Any

_CTX_SIZE = {"sha256": 112, "sha512": 216}
_DIGEST_SIZE = {"sha256": 32, "sha512": 64}
_PREFIX = {"sha256": "SHA256", "sha512": "SHA512"}


def _load() -> Any:
    name = ctypes.util.find_library("crypto")
    if not name:
        return None
    try:
        lib = ctypes.CDLL(name)
        for p in _PREFIX.values():
            for fn in ("Init", "Update", "Final"):
                f = getattr(lib, f"{p}_{fn}")
                f.restype = ctypes.c_int
            getattr(lib, f"{p}_Update").argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
        return lib
    except (OSError, AttributeError):
        return None


_LIB = _load()


def _tag(algorithm: str) -> bytes:
    return f"openssl-{algorithm}-{_CTX_SIZE[algorithm]}-{sys.byteorder}\n".encode()


class ResumableHash:
    """hashlib-like: update(), hexdigest(); plus state() and from_state()."""

    def __init__(self, algorithm: str, _ctx: Any = None) -> None:
        self.algorithm = algorithm
        self._ctx = _ctx
        self._fallback: Any = None
        if _ctx is None:
            if _LIB is None or algorithm not in _CTX_SIZE:
                self._fallback = hashlib.new(algorithm)
            else:
                self._ctx = ctypes.create_string_buffer(_CTX_SIZE[algorithm])
                getattr(_LIB, f"{_PREFIX[algorithm]}_Init")(self._ctx)

    def update(self, data: bytes) -> None:
        if self._fallback is not None:
            self._fallback.update(data)
        else:
            getattr(_LIB, f"{_PREFIX[self.algorithm]}_Update")(self._ctx, bytes(data), len(data))

    def hexdigest(self) -> str:
        if self._fallback is not None:
            return self._fallback.hexdigest()
        # Final() consumes the context: finish a copy so the hash can go on.
        ctx = ctypes.create_string_buffer(self._ctx.raw, len(self._ctx))
        out = ctypes.create_string_buffer(_DIGEST_SIZE[self.algorithm])
        getattr(_LIB, f"{_PREFIX[self.algorithm]}_Final")(out, ctx)
        return out.raw.hex()

    def state(self) -> bytes | None:
        if self._fallback is not None:
            return None
        return _tag(self.algorithm) + self._ctx.raw

    @classmethod
    def from_state(cls, algorithm: str, state: bytes) -> "ResumableHash | None":
        """The hash saved by state(), or None if it was saved by an incompatible process."""
        if _LIB is None or algorithm not in _CTX_SIZE:
            return None
        tag = _tag(algorithm)
        if not state.startswith(tag) or len(state) != len(tag) + _CTX_SIZE[algorithm]:
            return None
        return cls(algorithm, ctypes.create_string_buffer(state[len(tag):], _CTX_SIZE[algorithm]))
