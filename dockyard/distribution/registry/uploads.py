"""Blob upload sessions: start, append (PATCH), status, finish (PUT), cancel.

Bytes are hashed as they are written, so finishing a 512 MiB upload does not
re-read it.  The running hash lives in memory next to the byte count it
covers; if the two disagree (server restarted, hash algorithm changed at PUT)
the stored data is re-hashed once.  Data stays under _uploads/ until verified,
then one move() (a rename on the filesystem) publishes it in the blob store.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from . import paths
from .blobs import BlobService
from .errors import RangeNotSatisfiable, RegistryError
from .names import Digest, parse_algorithm, parse_digest
from .storage import FileWriter, PathNotFound, StorageDriver

_UUID_RE = re.compile(r"^[0-9a-f]{32}\Z")
_RANGE_RE = re.compile(r"^(?:bytes[ =])?([0-9]+)-([0-9]+)(?:/([0-9]+|\*))?\Z")


@dataclass
class _HashState:
    algorithm: str
    hasher: Any
    offset: int
    lock: threading.Lock = field(default_factory=threading.Lock)


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

    def __init__(self, service: "UploadService", repo: str, upload_id: str,
                 writer: FileWriter, state: _HashState) -> None:
        self.service = service
        self.repo = repo
        self.upload_id = upload_id
        self.writer = writer
        self.state = state
        self.closed = False

    @property
    def size(self) -> int:
        return self.writer.size

    def check_range(self, content_range: str | None, content_length: int | None) -> None:
        """416 unless the chunk starts exactly where the upload ends (and its length agrees)."""
        if content_range is None:
            return
        start, end = parse_content_range(content_range)
        headers = self.service.status_headers(self.repo, self.upload_id, self.size)
        if start != self.size:
            raise RangeNotSatisfiable(
                f"chunk starts at {start} but the upload has {self.size} bytes", headers)
        if content_length is not None and end - start + 1 != content_length:
            raise RangeNotSatisfiable(
                f"Content-Range covers {end - start + 1} bytes but Content-Length is {content_length}", headers)

    def write_chunks(self, chunks: list[bytes]) -> None:
        """Blocking: append and hash (hashlib releases the GIL on big buffers)."""
        self.writer.writelines(chunks)
        h = self.state.hasher
        for c in chunks:
            h.update(c)
        self.state.offset = self.writer.size

    def close(self) -> None:
        """Keep the data for a later PATCH/PUT (also after a client disconnect)."""
        if not self.closed:
            self.closed = True
            try:
                self.writer.close()
            finally:
                self.state.lock.release()

    def finish(self, digest: str, size: int | None = None) -> Digest:
        """Verify `digest` against everything written and publish the blob in the repository."""
        d = parse_digest(digest)
        if size is not None and size != self.size:
            raise RegistryError("SIZE_INVALID", f"upload has {self.size} bytes, expected {size}")
        self.writer.commit()
        if self.state.algorithm != d.algorithm or self.state.offset != self.size:
            computed = self.service._rehash(self.repo, self.upload_id, d.algorithm)
        else:
            computed = self.state.hasher.hexdigest()
        if computed != d.hex:
            raise RegistryError("DIGEST_INVALID", f"content digest {d.algorithm}:{computed} does not match {d}",
                                {"digest": str(d)})
        self.service._publish(self.repo, self.upload_id, d)
        self.closed = True
        self.state.lock.release()
        return d


class UploadService:
    def __init__(self, driver: StorageDriver, blobs: BlobService) -> None:
        self.driver = driver
        self.blobs = blobs
        self._states: dict[str, _HashState] = {}
        self._states_lock = threading.Lock()

    def status_headers(self, repo: str, upload_id: str, size: int) -> dict[str, str]:
        return {
            "Location": f"/v2/{repo}/blobs/uploads/{upload_id}",
            "Range": f"0-{size - 1}" if size else "0-0",
            "Docker-Upload-UUID": upload_id,
        }

    def start(self, repo: str, algorithm: str | None = None) -> str:
        alg = parse_algorithm(algorithm)
        upload_id = uuid.uuid4().hex
        info = json.dumps({"started": time.time(), "algorithm": alg}).encode()
        self.driver.put_content(paths.upload_info(repo, upload_id), info)
        with self._states_lock:
            self._states[upload_id] = _HashState(alg, hashlib.new(alg), 0)
        return upload_id

    def _info(self, repo: str, upload_id: str) -> dict[str, Any]:
        if not _UUID_RE.match(upload_id):
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", f"blob upload unknown: {upload_id[:100]!r}")
        try:
            return json.loads(self.driver.get_content(paths.upload_info(repo, upload_id)))
        except (PathNotFound, ValueError):
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", f"blob upload unknown: {upload_id}") from None

    def open(self, repo: str, upload_id: str, timeout: float = 60.0) -> UploadSession:
        """Blocking: lock the upload against concurrent requests and open its writer."""
        info = self._info(repo, upload_id)
        with self._states_lock:
            state = self._states.get(upload_id)
            if state is None:
                alg = info.get("algorithm", "sha256")
                state = self._states[upload_id] = _HashState(alg, hashlib.new(alg), -1)
        if not state.lock.acquire(timeout=timeout):
            raise RegistryError("BLOB_UPLOAD_INVALID", "upload is busy with another request")
        try:
            self._info(repo, upload_id)  # cancelled while we waited?
            writer = self.driver.writer(paths.upload_data(repo, upload_id), append=True)
        except BaseException:
            state.lock.release()
            raise
        if state.offset != writer.size:
            # Lost or stale hash state: rebuild it from the stored bytes.
            writer.close()
            state.hasher = self._hash_stored(repo, upload_id, state.algorithm)
            writer = self.driver.writer(paths.upload_data(repo, upload_id), append=True)
            state.offset = writer.size
        return UploadSession(self, repo, upload_id, writer, state)

    def size(self, repo: str, upload_id: str) -> int:
        self._info(repo, upload_id)
        with self._states_lock:
            state = self._states.get(upload_id)
        if state is not None:
            # Wait for a request still writing (e.g. one whose client just vanished),
            # so the Range we report is where the next chunk must start.
            if not state.lock.acquire(timeout=30):
                raise RegistryError("BLOB_UPLOAD_INVALID", "upload is busy with another request")
            try:
                if state.offset >= 0:
                    return state.offset
            finally:
                state.lock.release()
        w = self.driver.writer(paths.upload_data(repo, upload_id), append=True)
        try:
            return w.size
        finally:
            w.close()

    def _hash_stored(self, repo: str, upload_id: str, algorithm: str) -> Any:
        h = hashlib.new(algorithm)
        try:
            with self.driver.reader(paths.upload_data(repo, upload_id)) as f:
                while chunk := f.read(4 << 20):
                    h.update(chunk)
        except PathNotFound:
            pass
        return h

    def _rehash(self, repo: str, upload_id: str, algorithm: str) -> str:
        return self._hash_stored(repo, upload_id, algorithm).hexdigest()

    def _publish(self, repo: str, upload_id: str, d: Digest) -> None:
        data = paths.upload_data(repo, upload_id)
        if self.blobs.global_stat(d) is None:
            try:
                self.driver.move(data, paths.blob_data(d))
            except PathNotFound:
                # An empty upload may never have created its data file.
                self.driver.put_content(paths.blob_data(d), b"")
        else:
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
