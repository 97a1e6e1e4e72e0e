"""Storage drivers: one interface (driver.py), a filesystem and an S3 implementation."""

from __future__ import annotations

from typing import Any

from .driver import FileInfo, FileWriter, PathNotFound, StorageDriver


def make_driver(kind: str, root: str, options: dict[str, Any]) -> StorageDriver:
    if kind == "filesystem":
        from .filesystem import FilesystemDriver

        return FilesystemDriver(root, fsync=bool(options.get("fsync", False)))
    if kind == "s3":
        from .s3 import S3Driver

        return S3Driver(**options)
    raise ValueError(f"unknown storage driver {kind!r}")


__all__ = ["FileInfo", "FileWriter", "PathNotFound", "StorageDriver", "make_driver"]
