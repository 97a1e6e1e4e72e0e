"""Garbage collection: delete manifests and blobs that no tag reaches.

Mark: from every tag, follow manifests -> (config, layers | child manifests);
manifests whose `subject` is reached are reached too (signatures, SBOMs).
Sweep: delete unreached manifest revisions, then repository blob links and
blobs nothing reached.

Safety against a concurrent push:
  * anything written or touched within `grace` seconds is kept (uploads in
    flight, a manifest pushed a moment ago, a blob a client just HEADed and
    is about to reference: the server touches blobs it reports as present);
  * the sweep holds the root's exclusive lock, which manifest PUTs, upload
    completions and mounts take shared, so nothing new is published while
    blobs are being deleted.
The lock is a local flock: replicas on other hosts sharing a bucket do not see
it, so a fleet is collected with every replica in read-only maintenance mode
(storage.maintenance.readonly), as with Distribution.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from . import locking, paths
from .errors import RegistryError
from .names import Digest, parse_digest
from .repos import RepositoryService
from .storage import PathNotFound, StorageDriver
from .tags import TagService

log = logging.getLogger("dockyard.registry.gc")


@dataclass
class GCResult:
    manifests_deleted: list[str] = field(default_factory=list)  # "repo@digest"
    blobs_deleted: list[str] = field(default_factory=list)
    links_deleted: int = 0
    uploads_deleted: int = 0
    blobs_kept: int = 0


def _parse(driver: StorageDriver, d: Digest) -> dict[str, Any] | None:
    try:
        doc = json.loads(driver.get_content(paths.blob_data(d)))
        return doc if isinstance(doc, dict) else None
    except (PathNotFound, ValueError):
        return None


def _desc_digest(desc: Any) -> Digest | None:
    try:
        return parse_digest(desc["digest"])
    except (KeyError, TypeError, RegistryError):
        return None


def _revisions(driver: StorageDriver, repo: str) -> dict[Digest, float]:
    """Every manifest revision of `repo` with its link's mtime."""
    out: dict[Digest, float] = {}
    try:
        files = list(driver.walk(paths.revisions(repo)))
    except PathNotFound:
        return out
    for f in files:
        parts = f.path.split("/")
        if parts[-1] != "link":
            continue
        try:
            out[parse_digest(f"{parts[-3]}:{parts[-2]}")] = f.mtime
        except RegistryError:
            continue
    return out


def collect(driver: StorageDriver, lock_dir: str, grace: float = 3600.0, dry_run: bool = False,
            upload_max_age: float = 86400.0) -> GCResult:
    now = time.time()
    res = GCResult()
    repos = RepositoryService(driver).all()
    tags = TagService(driver)
    live_blobs: set[Digest] = set()
    doomed: dict[str, list[Digest]] = {}

    for repo in repos:
        revisions = _revisions(driver, repo)
        docs: dict[Digest, dict[str, Any] | None] = {}
        marked: set[Digest] = set()

        def doc_of(d: Digest) -> dict[str, Any] | None:
            if d not in docs:
                docs[d] = _parse(driver, d)
            return docs[d]

        def mark(d: Digest) -> None:
            if d in marked:
                return
            marked.add(d)
            live_blobs.add(d)
            doc = doc_of(d)
            if doc is None:
                return
            for child in doc.get("manifests") or []:
                cd = _desc_digest(child)
                if cd is not None:
                    mark(cd)
            for desc in [doc.get("config")] + list(doc.get("layers") or []):
                bd = _desc_digest(desc) if desc else None
                if bd is not None:
                    live_blobs.add(bd)

        for t in tags.all(repo):
            try:
                mark(tags.resolve(repo, t))
            except RegistryError:
                continue
        for d, mtime in revisions.items():
            if now - mtime < grace:
                mark(d)
        # Referrers of anything reached are reached; repeat until nothing changes.
        changed = True
        while changed:
            changed = False
            for d in revisions:
                if d in marked:
                    continue
                doc = doc_of(d)
                subj = _desc_digest(doc.get("subject")) if doc and doc.get("subject") else None
                if subj is not None and subj in marked:
                    mark(d)
                    changed = True
        doomed[repo] = [d for d in revisions if d not in marked]

    def sweep() -> None:
        # Blobs to delete: unreached and not touched within the grace period.  Decided
        # under the lock, so a blob HEADed or re-uploaded just before is spared.
        doomed_blobs: set[Digest] = set()
        try:
            blob_files = list(driver.walk(paths.BLOBS))
        except PathNotFound:
            blob_files = []
        for f in blob_files:
            parts = f.path.split("/")
            if parts[-1] != "data":
                continue
            try:
                d = parse_digest(f"{parts[-4]}:{parts[-2]}")
            except (RegistryError, IndexError):
                continue
            if d in live_blobs or now - f.mtime < grace:
                res.blobs_kept += 1
            else:
                doomed_blobs.add(d)
        for repo, ds in doomed.items():
            for d in ds:
                try:  # re-pushed since the mark phase? then it is not ours to delete
                    if now - driver.stat(paths.revision_link(repo, d)).mtime < grace:
                        continue
                except PathNotFound:
                    continue
                res.manifests_deleted.append(f"{repo}@{d}")
                if dry_run:
                    continue
                doc = _parse(driver, d)
                subj = _desc_digest(doc.get("subject")) if doc and doc.get("subject") else None
                for path in [paths.revision_link(repo, d).rsplit("/", 1)[0]] + (
                        [paths.referrer_link(repo, subj, d).rsplit("/", 1)[0]] if subj else []):
                    try:
                        driver.delete(path)
                    except PathNotFound:
                        pass
            # Repository links to blobs nothing reaches.
            try:
                links = list(driver.walk(f"{paths.repo(repo)}/_layers"))
            except PathNotFound:
                links = []
            for f in links:
                parts = f.path.split("/")
                try:
                    d = parse_digest(f"{parts[-3]}:{parts[-2]}")
                except (RegistryError, IndexError):
                    continue
                if d in doomed_blobs or (d not in live_blobs and now - f.mtime >= grace
                                         and driver_missing(d)):
                    res.links_deleted += 1
                    if not dry_run:
                        try:
                            driver.delete(f.path.rsplit("/", 1)[0])
                        except PathNotFound:
                            pass
            # Abandoned upload sessions.
            try:
                uploads = driver.list(f"{paths.repo(repo)}/_uploads")
            except PathNotFound:
                uploads = []
            for u in uploads:
                try:
                    st = driver.stat(f"{u}/startedat")
                except PathNotFound:
                    continue
                if now - st.mtime >= max(grace, upload_max_age):
                    res.uploads_deleted += 1
                    if not dry_run:
                        try:
                            driver.delete(u)
                        except PathNotFound:
                            pass
        if not dry_run:  # parts of multipart uploads whose writer died
            driver.abort_uploads(paths.REPOS, now - max(grace, upload_max_age))
        for d in doomed_blobs:
            res.blobs_deleted.append(str(d))
            if not dry_run:
                try:
                    driver.delete(paths.blob_dir(d))
                except PathNotFound:
                    pass

    def driver_missing(d: Digest) -> bool:
        return not driver.exists(paths.blob_data(d))

    if dry_run:
        sweep()
    else:
        with locking.root_lock(lock_dir, exclusive=True):
            sweep()
    return res
