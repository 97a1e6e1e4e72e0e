"""Content digests ("sha256:<hex>"), chain IDs and short IDs."""

from __future__ import annotations

import hashlib
import re

from ..errors import InvalidParameter

SHA256_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
HEX64_RE = re.compile(r"^[a-f0-9]{64}$")
# The OCI digest grammar: algorithm ":" encoded.
DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")


def sha256_bytes(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def validate(digest: str) -> str:
    """Return `digest` if it is a well-formed sha256 digest, else InvalidParameter."""
    if not isinstance(digest, str) or not DIGEST_RE.match(digest):
        raise InvalidParameter(f"invalid digest format: {digest!r}")
    if not SHA256_RE.match(digest):
        algo = digest.partition(":")[0]
        if algo != "sha256":
            raise InvalidParameter(f"unsupported digest algorithm: {algo}")
        raise InvalidParameter(f"invalid checksum digest length: {digest!r}")
    return digest


def hex_of(digest: str) -> str:
    return validate(digest).partition(":")[2]


def short_id(id_or_digest: str) -> str:
    """Docker's 12-character short form (TruncateID)."""
    return id_or_digest.partition(":")[2][:12] if ":" in id_or_digest else id_or_digest[:12]


def chain_ids(diff_ids: list[str]) -> list[str]:
    """OCI chain IDs: ChainID(L0)=DiffID(L0), ChainID(Ln)=sha256(ChainID(Ln-1) + " " + DiffID(Ln))."""
    out: list[str] = []
    for d in diff_ids:
        out.append(d if not out else sha256_bytes(f"{out[-1]} {d}".encode()))
    return out
