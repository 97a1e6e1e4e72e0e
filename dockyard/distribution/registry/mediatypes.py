"""Manifest media types and content negotiation (pure)."""

from __future__ import annotations

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_V1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"

IMAGE_MANIFESTS = {DOCKER_MANIFEST, OCI_MANIFEST}
INDEXES = {DOCKER_LIST, OCI_INDEX}
MANIFEST_TYPES = IMAGE_MANIFESTS | INDEXES


def bare(content_type: str | None) -> str:
    """The media type without parameters, lower-cased."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_non_distributable(media_type: str) -> bool:
    """Layers the registry need not hold (OCI non-distributable, Docker foreign)."""
    mt = media_type.lower()
    return ".nondistributable." in mt or "rootfs.foreign." in mt


def acceptable(stored: str, accept_headers: list[str]) -> bool:
    """Whether a manifest of type `stored` may be returned given the request's Accept headers.

    No Accept, wildcards or plain JSON accept anything (old clients).  A client that
    names manifest types but not this one gets MANIFEST_UNKNOWN rather than a
    type it said it cannot read; we never convert between formats.
    """
    types = [bare(t) for h in accept_headers for t in h.split(",") if t.strip()]
    if not types:
        return True
    for t in types:
        if t in ("*/*", "application/*", "application/json", stored):
            return True
    return not any(t in MANIFEST_TYPES or t == DOCKER_V1_SIGNED for t in types)
