"""The referrers index: for each subject digest, descriptors of manifests that name it."""

from __future__ import annotations

import json
from typing import Any

from . import paths
from .mediatypes import OCI_INDEX
from .names import Digest, parse_digest
from .storage import PathNotFound, StorageDriver


class ReferrerService:
    def __init__(self, driver: StorageDriver) -> None:
        self.driver = driver

    def add(self, repo: str, subject: Digest, descriptor: dict[str, Any]) -> None:
        d = parse_digest(descriptor["digest"])
        self.driver.put_content(paths.referrer_link(repo, subject, d), json.dumps(descriptor).encode())

    def remove(self, repo: str, subject: Digest, d: Digest) -> None:
        try:
            self.driver.delete(paths.referrer_link(repo, subject, d).rsplit("/", 1)[0])
        except PathNotFound:
            pass

    def list(self, repo: str, subject: str, artifact_type: str | None) -> dict[str, Any]:
        """An image index of the referrers of `subject` (empty, never 404, when none)."""
        s = parse_digest(subject)
        base = paths.referrers_dir(repo, s)
        descriptors: list[dict[str, Any]] = []
        try:
            files = [f for f in self.driver.walk(base) if f.path.endswith("/link")]
        except PathNotFound:
            files = []
        for f in files:
            try:
                desc = json.loads(self.driver.get_content(f.path))
            except (PathNotFound, ValueError):
                continue
            if artifact_type is not None and desc.get("artifactType") != artifact_type:
                continue
            descriptors.append(desc)
        descriptors.sort(key=lambda x: x["digest"])
        return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}
