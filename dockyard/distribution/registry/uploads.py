"""Blob upload sessions: start, append (PATCH), status, finish (PUT), cancel.

Any replica on the same storage can serve any request of an upload: the data
lives in the storage driver (resumable writers, see storage/driver.py) and so
does the running hash.  Bytes are hashed as they are written; after each
request the hash state is saved beside the data at the offset it covers
(`_uploads/<id>/hashstates/<alg>/<offset>`, tagged with the writer's token), so
the next request, on this replica or another, resumes it instead of re-reading
the upload.  A replica keeps its last state in memory too (no read when the
same replica continues).  Only if no matching state exists (a replica died
between storing a chunk and its hash state, or the digest algorithm changes at
PUT) is the stored data re-hashed once.  Finishing moves the verified data into
the blob store in one step (a rename, or one S3 copy/compose).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from . import paths
from .blobs import BlobService
from .errors import RangeNotSatisfiable, RegistryError
from .hashstate import ResumableHash
from .names import Digest, parse_algorithm, parse_digest
from .storage import FileWriter, PathNotFound, StorageDriver
from .uploadstate import UploadStateSigner

log = logging.getLogger("dockyard.registry.uploads")
_UUID_RE = re.compile(r"^[0-9a-f]{32}\Z")
_RANGE_RE = re.compile(r"^(?:bytes[ =])?([0-9]+)-([0-9]+)(?:/([0-9]+|\*))?\Z")


@dataclass
class _HashState:
    algorithm: str
    hasher: ResumableHash
    offset: int
    token: str = ""  # the writer token the offset was reached with
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class PurgeResult:
    uploads: list[str] = field(default_factory=list)  # "repo/uuid"
    multipart_aborted: int = 0


def parse_content_range(value: str) -> tuple[int, int]:
    """`start-end` (OCI) or `bytes start-end/total`; inclusive bounds."""
    m = _RANGE_RE.match(value.strip())
    if not m:
        raise RegistryError("BLOB_UPLOAD_INVALID", f"malformed Content-Range {value[:100]!r}")
    start, end = int(m.group(1)), int(m.group(2))
    if end < start:
        raise RangeNotSatisfiable(f"invalid Content-Range {value[:100]!r}")
    return start, end


class UploadSession:
    """One request's view of an upload: an open writer plus the running hash."""

    def __init__(self, service: "UploadService", repo: str, upload_id: str, started: float | None,
                 writer: FileWriter, state: _HashState) -> None:
        self.service = service
        self.repo = repo
        self.upload_id = upload_id
        self.started = started
        self.writer = writer
        self.state = state
        self.closed = False

    @property
    def size(self) -> int:
        return self.writer.size

    def headers(self) -> dict[str, str]:
        return self.service.status_headers(self.repo, self.upload_id, self.size, self.started)

    def check_range(self, content_range: str | None, content_length: int | None) -> None:
        """416 unless the chunk starts exactly where the upload ends (and its length agrees)."""
        if content_range is None:
            return
        start, end = parse_content_range(content_range)
        if start != self.size:
            raise RangeNotSatisfiable(
                f"chunk starts at {start} but the upload has {self.size} bytes", self.headers())
        if content_length is not None and end - start + 1 != content_length:
            raise RangeNotSatisfiable(
                f"Content-Range covers {end - start + 1} bytes but Content-Length is {content_length}",
                self.headers())

    def write_chunks(self, chunks: list[bytes]) -> None:
        """Blocking: append and hash (the hash releases the GIL on big buffers)."""
        self.writer.writelines(chunks)
        h = self.state.hasher
        for c in chunks:
            h.update(c)
        self.state.offset = self.writer.size

    def close(self) -> None:
        """Keep the data and the hash state for a later PATCH/PUT, here or on another replica
        (also after a client disconnect)."""
        if self.closed:
            return
        self.closed = True
        try:
            before = self.writer.token
            self.writer.close()
            self.state.token = self.writer.token
            if self.state.token != before:
                self.service._save_hash(self.repo, self.upload_id, self.state)
        finally:
            self.state.lock.release()

    def finish(self, digest: str, size: int | None = None) -> Digest:
        """Verify `digest` against everything written and publish the blob in the repository."""
        d = parse_digest(digest)
        if size is not None and size != self.size:
            raise RegistryError("SIZE_INVALID", f"upload has {self.size} bytes, expected {size}")
        if self.state.algorithm == d.algorithm and self.state.offset == self.size:
            computed = self.state.hasher.hexdigest()
        else:
            self.writer.close()
            computed = self.service._hash_stored(self.repo, self.upload_id, d.algorithm).hexdigest()
        if computed != d.hex:
            raise RegistryError("DIGEST_INVALID", f"content digest {d.algorithm}:{computed} does not match {d}",
                                {"digest": str(d)})
        self.service._publish(self.repo, self.upload_id, d, self.writer)
        self.closed = True
        self.state.lock.release()
        return d


class UploadService:
    def __init__(self, driver: StorageDriver, blobs: BlobService, secret: str | None = None) -> None:
        self.driver = driver
        self.blobs = blobs
        self.signer = UploadStateSigner(secret)
        self._states: dict[str, _HashState] = {}
        self._states_lock = threading.Lock()

    def status_headers(self, repo: str, upload_id: str, size: int, started: float | None = None,
                       ) -> dict[str, str]:
        token = self.signer.pack(repo, upload_id, size, started)
        return {
            "Location": f"/v2/{repo}/blobs/uploads/{upload_id}?_state={token}",
            "Range": f"0-{size - 1}" if size else "0-0",
            "Docker-Upload-UUID": upload_id,
        }

    def check_state(self, token: str | None, repo: str, upload_id: str) -> None:
        """A `_state` from the Location must be ours (same http.secret); one may be omitted."""
        if token is not None:
            self.signer.verify(token, repo, upload_id)

    def start(self, repo: str, algorithm: str | None = None) -> tuple[str, float]:
        alg = parse_algorithm(algorithm)
        upload_id = uuid.uuid4().hex
        started = time.time()
        info = json.dumps({"started": started, "algorithm": alg}).encode()
        self.driver.put_content(paths.upload_info(repo, upload_id), info)
        with self._states_lock:
            self._states[upload_id] = _HashState(alg, ResumableHash(alg), 0, "")
        return upload_id, started

    def _info(self, repo: str, upload_id: str) -> dict[str, Any]:
        if not _UUID_RE.match(upload_id):
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", f"blob upload unknown: {upload_id[:100]!r}")
        try:
            info = json.loads(self.driver.get_content(paths.upload_info(repo, upload_id)))
        except (PathNotFound, ValueError):
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", f"blob upload unknown: {upload_id}") from None
        return info if isinstance(info, dict) else {}

    def _state(self, upload_id: str, algorithm: str) -> _HashState:
        with self._states_lock:
            state = self._states.get(upload_id)
            if state is None:
                state = self._states[upload_id] = _HashState(algorithm, ResumableHash(algorithm), -1)
            return state

    def open(self, repo: str, upload_id: str, timeout: float = 60.0) -> UploadSession:
        """Blocking: lock the upload against concurrent requests on this replica, open its writer
        and bring the running hash to the writer's offset."""
        info = self._info(repo, upload_id)
        state = self._state(upload_id, str(info.get("algorithm", "sha256")))
        if not state.lock.acquire(blocking=False):
            if not state.lock.acquire(timeout=timeout):
                raise RegistryError("BLOB_UPLOAD_INVALID", "upload is busy with another request")
            try:
                self._info(repo, upload_id)  # cancelled while we waited?
            except BaseException:
                state.lock.release()
                raise
        try:
            writer = self.driver.writer(paths.upload_data(repo, upload_id), append=True)
            if state.offset != writer.size or state.token != writer.token:
                self._resume_hash(repo, upload_id, state, writer)
        except BaseException:
            state.lock.release()
            raise
        return UploadSession(self, repo, upload_id, info.get("started"), writer, state)

    def _resume_hash(self, repo: str, upload_id: str, state: _HashState, writer: FileWriter) -> None:
        """Another replica (or an earlier life of this one) wrote last: take its saved hash state,
        or re-hash the stored bytes when there is none for exactly this data."""
        size, token = writer.size, writer.token
        hasher = None
        if size == 0:
            hasher = ResumableHash(state.algorithm)
        else:
            try:
                saved = self.driver.get_content(paths.upload_hashstate(repo, upload_id, state.algorithm, size))
                saved_token, _, blob = saved.partition(b"\n")
                if saved_token.decode(errors="replace") == token:
                    hasher = ResumableHash.from_state(state.algorithm, blob)
            except PathNotFound:
                pass
        if hasher is None:
            log.info("upload %s: no saved hash state at offset %d, re-hashing the stored data", upload_id, size)
            hasher = self._hash_stored(repo, upload_id, state.algorithm)
        state.hasher, state.offset, state.token = hasher, size, token

    def _save_hash(self, repo: str, upload_id: str, state: _HashState) -> None:
        blob = state.hasher.state()
        if blob is not None:
            self.driver.put_content(paths.upload_hashstate(repo, upload_id, state.algorithm, state.offset),
                                    state.token.encode() + b"\n" + blob)

    def size(self, repo: str, upload_id: str) -> tuple[int, float | None]:
        info = self._info(repo, upload_id)
        with self._states_lock:
            state = self._states.get(upload_id)
        if state is not None:
            # Wait for a request of this replica still writing (e.g. one whose client just
            # vanished), so the Range we report is where the next chunk must start.
            if not state.lock.acquire(timeout=30):
                raise RegistryError("BLOB_UPLOAD_INVALID", "upload is busy with another request")
            state.lock.release()
        w = self.driver.writer(paths.upload_data(repo, upload_id), append=True)
        try:
            return w.size, info.get("started")
        finally:
            w.close()

    def _hash_stored(self, repo: str, upload_id: str, algorithm: str) -> ResumableHash:
        h = ResumableHash(algorithm)
        try:
            with self.driver.reader(paths.upload_data(repo, upload_id)) as f:
                while chunk := f.read(4 << 20):
                    h.update(chunk)
        except PathNotFound:
            pass
        return h

    def _publish(self, repo: str, upload_id: str, d: Digest, writer: FileWriter) -> None:
        if self.blobs.global_stat(d) is None:
            writer.commit(paths.blob_data(d))
        else:
            writer.cancel()
            self.blobs.touch(d)  # already stored once: keep the existing bytes
        self.blobs.link(repo, d)
        self._drop(repo, upload_id)

    def _drop(self, repo: str, upload_id: str) -> None:
        with self._states_lock:
            self._states.pop(upload_id, None)
        try:
            self.driver.delete(paths.upload_dir(repo, upload_id))
        except PathNotFound:
            pass

    def cancel(self, repo: str, upload_id: str) -> None:
        self._info(repo, upload_id)
        self._drop(repo, upload_id)

    def purge(self, max_age: float, dry_run: bool = False) -> PurgeResult:
        """Delete upload sessions started more than `max_age` seconds ago (Distribution's
        uploadpurging), and abort the driver's unfinished writes of that age."""
        res = PurgeResult()
        cutoff = time.time() - max_age
        for repo in self._repos_with_uploads():
            try:
                dirs = self.driver.list(f"{paths.repo(repo)}/_uploads")
            except PathNotFound:
                continue
            for u in dirs:
                upload_id = u.rsplit("/", 1)[1]
                try:
                    started = float(json.loads(self.driver.get_content(f"{u}/startedat")).get("started", 0))
                except (PathNotFound, ValueError, AttributeError, TypeError):
                    try:
                        started = self.driver.stat(u).mtime
                    except PathNotFound:
                        continue
                if started >= cutoff:
                    continue
                res.uploads.append(f"{repo}/{upload_id}")
                if not dry_run:
                    self._drop(repo, upload_id)
        if not dry_run:
            res.multipart_aborted = self.driver.abort_uploads(paths.REPOS, cutoff)
        return res

    def _repos_with_uploads(self) -> list[str]:
        """Repositories holding an _uploads directory (also those with nothing else yet)."""
        out: list[str] = []

        def visit(path: str, name: str) -> None:
            try:
                leaves = {c.rsplit("/", 1)[1] for c in self.driver.list(path)}
            except PathNotFound:
                return
            if name and "_uploads" in leaves:
                out.append(name)
            for leaf in sorted(leaves):
                if not leaf.startswith(("_", ".")):
                    visit(f"{path}/{leaf}", f"{name}/{leaf}" if name else leaf)

        visit(paths.REPOS, "")
        return out
