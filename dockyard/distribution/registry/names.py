"""Validation of repository names, tags and digests (pure, no I/O)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from .errors import RegistryError

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*\Z")
TAG_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}\Z")
DIGEST_RE = re.compile(r"^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)\Z")
MAX_NAME = 255

# Algorithms we can verify, with the exact length of their hex encoding.
ALGORITHMS: dict[str, int] = {"sha256": 64, "sha512": 128}


@dataclass(frozen=True)
class Digest:
    algorithm: str
    hex: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    def hasher(self) -> "hashlib._Hash":
        return hashlib.new(self.algorithm)


def validate_name(name: str) -> str:
    if len(name) > MAX_NAME or not NAME_RE.match(name):
        raise RegistryError("NAME_INVALID", f"invalid repository name: {name[:300]!r}", {"name": name[:300]})
    return name


def parse_digest(value: str) -> Digest:
    """Parse and check a digest; unknown algorithms and bad encodings are DIGEST_INVALID (400)."""
    m = DIGEST_RE.match(value or "")
    if not m:
        raise RegistryError("DIGEST_INVALID", f"invalid digest: {value[:200]!r}", {"digest": value[:200]})
    alg, enc = m.groups()
    if alg not in ALGORITHMS:
        raise RegistryError("DIGEST_INVALID", f"unsupported digest algorithm: {alg[:50]!r}", {"digest": value[:200]})
    if len(enc) != ALGORITHMS[alg] or not re.fullmatch(r"[a-f0-9]+", enc):
        raise RegistryError("DIGEST_INVALID", f"invalid {alg} digest encoding", {"digest": value[:200]})
    return Digest(alg, enc)


def is_digest_ref(ref: str) -> bool:
    return ":" in ref


def is_tag(ref: str) -> bool:
    return bool(TAG_RE.match(ref))


def parse_algorithm(value: str | None) -> str:
    alg = value or "sha256"
    if alg not in ALGORITHMS:
        raise RegistryError("DIGEST_INVALID", f"unsupported digest algorithm: {alg[:50]!r}")
    return alg


def digest_bytes(data: bytes, algorithm: str = "sha256") -> Digest:
    return Digest(algorithm, hashlib.new(algorithm, data).hexdigest())
