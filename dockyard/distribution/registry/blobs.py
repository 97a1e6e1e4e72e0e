"""Blobs: the global content-addressed store plus per-repository links."""

from __future__ import annotations

from typing import BinaryIO

from . import paths
from .errors import RegistryError, blob_unknown
from .names import Digest, parse_digest
from .storage import FileInfo, PathNotFound, StorageDriver


class BlobService:
    def __init__(self, driver: StorageDriver, delete_enabled: bool = True) -> None:
        self.driver = driver
        self.delete_enabled = delete_enabled

    def global_stat(self, d: Digest) -> FileInfo | None:
        try:
            return self.driver.stat(paths.blob_data(d))
        except PathNotFound:
            return None

    def is_linked(self, repo: str, d: Digest) -> bool:
        return self.driver.exists(paths.layer_link(repo, d))

    def stat(self, repo: str, d: Digest) -> FileInfo:
        """The blob's info if `repo` links it; BLOB_UNKNOWN otherwise."""
        if not self.is_linked(repo, d):
            raise blob_unknown(str(d))
        info = self.global_stat(d)
        if info is None:
            raise blob_unknown(str(d))
        return info

    def link(self, repo: str, d: Digest) -> None:
        self.driver.put_content(paths.layer_link(repo, d), str(d).encode())

    def touch(self, d: Digest) -> None:
        """Mark a blob as recently used so that a concurrent GC leaves it alone."""
        try:
            self.driver.touch(paths.blob_data(d))
        except PathNotFound:
            pass

    def mount(self, repo: str, d: Digest, source: str | None) -> bool:
        """Link an existing blob into `repo`; from `source` if given, else from anywhere."""
        if source is not None and not self.is_linked(source, d):
            return False
        if self.global_stat(d) is None:
            return False
        self.touch(d)
        self.link(repo, d)
        return True

    def reader(self, d: Digest, offset: int = 0) -> BinaryIO:
        try:
            return self.driver.reader(paths.blob_data(d), offset)
        except PathNotFound:
            raise blob_unknown(str(d)) from None

    def redirect_url(self, d: Digest, method: str) -> str | None:
        return self.driver.redirect_url(paths.blob_data(d), method)

    def local_path(self, d: Digest) -> str | None:
        return self.driver.local_path(paths.blob_data(d))

    def get_bytes(self, d: Digest) -> bytes:
        try:
            return self.driver.get_content(paths.blob_data(d))
        except PathNotFound:
            raise blob_unknown(str(d)) from None

    def put_bytes(self, d: Digest, data: bytes) -> None:
        """Store small content (manifests) whose digest the caller has verified."""
        if self.global_stat(d) is None:
            self.driver.put_content(paths.blob_data(d), data)
        else:
            self.touch(d)

    def delete(self, repo: str, digest: str) -> None:
        """Unlink a blob from a repository; the bytes go when GC finds nothing else uses them."""
        if not self.delete_enabled:
            raise RegistryError("UNSUPPORTED", "blob deletion is disabled")
        d = parse_digest(digest)
        try:
            self.driver.delete(paths.layer_link(repo, d).rsplit("/", 1)[0])
        except PathNotFound:
            raise blob_unknown(digest) from None

    def repo_exists(self, repo: str) -> bool:
        return self.driver.exists(paths.repo(repo))
