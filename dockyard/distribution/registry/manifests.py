"""Manifests: validation, storage (as blobs, byte for byte), tags, referrers, deletion."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from . import paths
from .blobs import BlobService
from .errors import RegistryError, manifest_unknown
from .mediatypes import (DOCKER_V1_SIGNED, IMAGE_MANIFESTS, INDEXES, MANIFEST_TYPES, OCI_INDEX,
                         OCI_MANIFEST, bare, is_non_distributable)
from .names import Digest, digest_bytes, is_digest_ref, is_tag, parse_digest
from .referrers import ReferrerService
from .storage import PathNotFound, StorageDriver
from .tags import TagService
from .validation import ManifestPolicy


@dataclass(frozen=True)
class Manifest:
    digest: Digest
    media_type: str
    body: bytes


@dataclass(frozen=True)
class PutResult:
    digest: Digest
    subject: Digest | None
    tags: list[str]
    media_type: str = ""


def _invalid(msg: str, detail: Any = None) -> RegistryError:
    return RegistryError("MANIFEST_INVALID", msg, detail)


def _descriptor(obj: Any, where: str) -> Digest:
    if not isinstance(obj, dict) or not isinstance(obj.get("digest"), str):
        raise _invalid(f"{where}: not a descriptor")
    if not isinstance(obj.get("mediaType", ""), str):
        raise _invalid(f"{where}: mediaType must be a string")
    size = obj.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise _invalid(f"{where}: size must be a non-negative integer")
    try:
        return parse_digest(obj["digest"])
    except RegistryError:
        raise _invalid(f"{where}: invalid digest {str(obj['digest'])[:200]!r}") from None


class _LRU:
    """Manifests are immutable by digest: a small cache saves a read per GET."""

    def __init__(self, capacity: int = 2048) -> None:
        self._d: OrderedDict[str, bytes] = OrderedDict()
        self._cap = capacity
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            v = self._d.get(key)
            if v is not None:
                self._d.move_to_end(key)
            return v

    def put(self, key: str, value: bytes) -> None:
        if len(value) > 256 * 1024:
            return
        with self._lock:
            self._d[key] = value
            self._d.move_to_end(key)
            while len(self._d) > self._cap:
                self._d.popitem(last=False)


class ManifestService:
    def __init__(self, driver: StorageDriver, blobs: BlobService, tags: TagService,
                 referrers: ReferrerService, max_size: int = 4 << 20, delete_enabled: bool = True,
                 policy: ManifestPolicy | None = None) -> None:
        self.driver = driver
        self.policy = policy or ManifestPolicy()
        self.blobs = blobs
        self.tags = tags
        self.referrers = referrers
        self.max_size = max_size
        self.delete_enabled = delete_enabled
        self._cache = _LRU()

    # --- reading -----------------------------------------------------------------

    def _revision(self, repo: str, d: Digest) -> str:
        """The stored media type of manifest `d` in `repo`; MANIFEST_UNKNOWN if absent."""
        try:
            link = self.driver.get_content(paths.revision_link(repo, d)).decode()
        except PathNotFound:
            raise manifest_unknown(str(d)) from None
        parts = link.split("\n")
        return parts[1] if len(parts) > 1 else ""

    def exists(self, repo: str, d: Digest) -> bool:
        return self.driver.exists(paths.revision_link(repo, d))

    def resolve(self, repo: str, ref: str) -> Digest:
        if is_digest_ref(ref):
            return parse_digest(ref)
        if not is_tag(ref):
            raise manifest_unknown(ref[:200])
        return self.tags.resolve(repo, ref)

    def get(self, repo: str, ref: str) -> Manifest:
        d = self.resolve(repo, ref)
        media_type = self._revision(repo, d)
        body = self._cache.get(str(d))
        if body is None:
            try:
                body = self.blobs.get_bytes(d)
            except RegistryError:
                raise manifest_unknown(ref) from None
            self._cache.put(str(d), body)
        return Manifest(d, media_type or _sniff_type(body), body)

    # --- writing -----------------------------------------------------------------

    def put(self, repo: str, ref: str, body: bytes, content_type: str | None,
            extra_tags: list[str] | None = None) -> PutResult:
        if len(body) > self.max_size:
            raise RegistryError("SIZE_INVALID", f"manifest is larger than {self.max_size} bytes", status=413)
        if is_digest_ref(ref):
            want = parse_digest(ref)
            d = digest_bytes(body, want.algorithm)
            if d != want:
                raise RegistryError("DIGEST_INVALID", f"manifest digest {d} does not match {want}",
                                    {"digest": str(want)})
            tag = None
        else:
            if not is_tag(ref):
                raise RegistryError("TAG_INVALID", f"invalid tag {ref[:200]!r}", {"tag": ref[:200]})
            d = digest_bytes(body, "sha256")
            tag = ref
        for t in extra_tags or []:
            if not is_tag(t):
                raise RegistryError("TAG_INVALID", f"invalid tag {t[:200]!r}", {"tag": t[:200]})

        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise _invalid("manifest is not valid JSON") from None
        if not isinstance(doc, dict):
            raise _invalid("manifest must be a JSON object")
        media_type = self._media_type(doc, content_type)
        if doc.get("schemaVersion") != 2:
            raise _invalid("schemaVersion must be 2")
        subject = self._check_references(repo, doc, media_type)

        self.blobs.put_bytes(d, body)
        self.driver.put_content(paths.revision_link(repo, d), f"{d}\n{media_type}".encode())
        self._cache.put(str(d), body)
        if subject is not None:
            self.referrers.add(repo, subject, self._referrer_descriptor(doc, media_type, d, len(body)))
        tags = ([tag] if tag else []) + list(extra_tags or [])
        for t in tags:
            self.tags.set(repo, t, d)
        return PutResult(d, subject, tags, media_type)

    def store_cached(self, repo: str, body: bytes, media_type: str, tag: str | None) -> Digest:
        """Store a manifest fetched (and verified) by the pull-through cache: its blobs are
        fetched on demand, so the references are not checked."""
        d = digest_bytes(body, "sha256")
        self.blobs.put_bytes(d, body)
        self.driver.put_content(paths.revision_link(repo, d), f"{d}\n{media_type}".encode())
        self._cache.put(str(d), body)
        if tag is not None:
            self.tags.set(repo, tag, d)
        return d

    def _media_type(self, doc: dict[str, Any], content_type: str | None) -> str:
        declared = doc.get("mediaType")
        if declared is not None and not isinstance(declared, str):
            raise _invalid("mediaType must be a string")
        ct = bare(content_type)
        if declared and ct and ct in MANIFEST_TYPES | {DOCKER_V1_SIGNED} and ct != declared:
            raise _invalid(f"Content-Type {ct} does not match the manifest's mediaType {declared}")
        mt = declared or (ct if ct in MANIFEST_TYPES else "") or _sniff_type_doc(doc)
        if mt not in MANIFEST_TYPES:
            raise _invalid(f"unsupported manifest media type {mt[:200]!r}")
        return mt

    def _check_references(self, repo: str, doc: dict[str, Any], media_type: str) -> Digest | None:
        missing: list[dict[str, str]] = []
        if media_type in IMAGE_MANIFESTS:
            cfg = _descriptor(doc.get("config"), "config")
            if not self.blobs.is_linked(repo, cfg) or self.blobs.global_stat(cfg) is None:
                missing.append({"digest": str(cfg)})
            else:
                self.blobs.touch(cfg)
            layers = doc.get("layers", [])
            if not isinstance(layers, list):
                raise _invalid("layers must be a list")
            for i, layer in enumerate(layers):
                ld = _descriptor(layer, f"layers[{i}]")
                self.policy.check_urls(layer, f"layers[{i}]")
                if is_non_distributable(layer.get("mediaType", "")):
                    continue
                if not self.blobs.is_linked(repo, ld) or self.blobs.global_stat(ld) is None:
                    missing.append({"digest": str(ld)})
                else:
                    self.blobs.touch(ld)
        else:
            children = doc.get("manifests", [])
            if not isinstance(children, list):
                raise _invalid("manifests must be a list")
            for i, child in enumerate(children):
                cd = _descriptor(child, f"manifests[{i}]")
                if self.policy.child_must_exist(child) and not self.exists(repo, cd):
                    missing.append({"digest": str(cd)})
        if missing:
            raise RegistryError("MANIFEST_BLOB_UNKNOWN",
                                f"manifest references {len(missing)} unknown blob(s) or manifest(s)",
                                missing if len(missing) > 1 else missing[0])
        if "subject" in doc and doc["subject"] is not None:
            return _descriptor(doc["subject"], "subject")
        return None

    @staticmethod
    def _referrer_descriptor(doc: dict[str, Any], media_type: str, d: Digest, size: int) -> dict[str, Any]:
        desc: dict[str, Any] = {"mediaType": media_type, "digest": str(d), "size": size}
        artifact_type = doc.get("artifactType")
        if not artifact_type and media_type in IMAGE_MANIFESTS:
            artifact_type = (doc.get("config") or {}).get("mediaType")
        if artifact_type:
            desc["artifactType"] = artifact_type
        if isinstance(doc.get("annotations"), dict) and doc["annotations"]:
            desc["annotations"] = doc["annotations"]
        return desc

    # --- deleting ----------------------------------------------------------------

    def delete(self, repo: str, ref: str) -> None:
        if not self.delete_enabled:
            raise RegistryError("UNSUPPORTED", "deletion is disabled")
        if not is_digest_ref(ref):
            if not is_tag(ref):
                raise manifest_unknown(ref[:200])
            self.tags.delete(repo, ref)
            return
        d = parse_digest(ref)
        self._revision(repo, d)
        subject = self._subject_of(d)
        for t in self.tags.pointing_to(repo, d):
            self.tags.delete(repo, t)
        try:
            self.driver.delete(paths.revision_link(repo, d).rsplit("/", 1)[0])
        except PathNotFound:
            raise manifest_unknown(ref) from None
        if subject is not None:
            self.referrers.remove(repo, subject, d)

    def _subject_of(self, d: Digest) -> Digest | None:
        try:
            doc = json.loads(self.blobs.get_bytes(d))
            return parse_digest(doc["subject"]["digest"])
        except Exception:  # no subject, or not a manifest we can read: nothing to unindex
            return None


def _sniff_type_doc(doc: dict[str, Any]) -> str:
    if isinstance(doc.get("mediaType"), str):
        return doc["mediaType"]
    if "manifests" in doc:
        return OCI_INDEX
    if "config" in doc or "layers" in doc:
        return OCI_MANIFEST
    return ""


def _sniff_type(body: bytes) -> str:
    try:
        doc = json.loads(body)
        return _sniff_type_doc(doc) if isinstance(doc, dict) else OCI_MANIFEST
    except ValueError:
        return OCI_MANIFEST


__all__ = ["Manifest", "ManifestService", "PutResult", "INDEXES"]
