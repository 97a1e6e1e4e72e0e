"""The S3 driver (boto3): paths map to keys under an optional prefix in one bucket.

S3 objects cannot be appended to, so a writer spools to a local file and
uploads it (multipart, by boto3's transfer manager) on commit().  close()
without commit keeps the spool on local disk, keyed by the path, so that
writer(path, append=True) resumes: an upload session therefore lives on the
registry instance that started it (fine for one instance; a fleet needs
sticky sessions, as with Distribution's in-progress multipart parts).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from typing import Any, BinaryIO, Iterator

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from .driver import FileInfo, FileWriter, LocalFileWriter, PathNotFound, StorageDriver, check_path

_MIB = 1024 * 1024


def _missing(e: ClientError) -> bool:
    code = str(e.response.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound", "NoSuchBucket")


class _S3Writer(LocalFileWriter):
    def __init__(self, driver: "S3Driver", path: str, append: bool) -> None:
        self._d = driver
        self._path = path
        spool = driver._spool_path(path)
        if append and not os.path.exists(spool):
            # Resume from a committed object: bring it back into the spool.
            try:
                driver._client.download_file(driver.bucket, driver._key(path), spool)
            except ClientError as e:
                if not _missing(e):
                    raise
        super().__init__(spool, append)

    def commit(self) -> None:
        self.close()
        self._d._client.upload_file(self._local, self._d.bucket, self._d._key(self._path),
                                    ExtraArgs=self._d._put_args, Config=self._d._transfer)
        os.unlink(self._local)


class S3Driver(StorageDriver):
    name = "s3"

    def __init__(self, bucket: str, region: str = "us-east-1", endpoint_url: str | None = None,
                 access_key: str | None = None, secret_key: str | None = None, prefix: str = "",
                 spool_dir: str | None = None, create_bucket: bool = False,
                 session_token: str | None = None, chunk_size: int | None = None, encrypt: bool = False,
                 kms_key_id: str | None = None, verify: bool = True, storage_class: str | None = None,
                 acl: str | None = None, path_style: bool = True, dualstack: bool = False,
                 accelerate: bool = False) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client = boto3.client(
            "s3", region_name=region, endpoint_url=endpoint_url, verify=verify,
            aws_access_key_id=access_key, aws_secret_access_key=secret_key, aws_session_token=session_token,
            config=Config(max_pool_connections=32, retries={"max_attempts": 3},
                          s3={"addressing_style": "path" if path_style else "auto",
                              "use_dualstack_endpoint": dualstack, "use_accelerate_endpoint": accelerate}),
        )
        part = chunk_size or 64 * _MIB
        self._transfer = TransferConfig(multipart_threshold=part, multipart_chunksize=part, max_concurrency=4)
        # Distribution's encrypt/keyid/storageclass/objectacl: applied to every object written.
        self._put_args: dict[str, str] = {}
        if encrypt:
            self._put_args["ServerSideEncryption"] = "aws:kms" if kms_key_id else "AES256"
            if kms_key_id:
                self._put_args["SSEKMSKeyId"] = kms_key_id
        if storage_class:
            self._put_args["StorageClass"] = storage_class
        if acl:
            self._put_args["ACL"] = acl
        tag = hashlib.sha256(f"{endpoint_url}|{bucket}|{self.prefix}".encode()).hexdigest()[:16]
        self.spool_dir = spool_dir or os.path.join(tempfile.gettempdir(), f"dockyard-s3-spool-{tag}")
        os.makedirs(self.spool_dir, exist_ok=True)
        if create_bucket:
            try:
                self._client.head_bucket(Bucket=bucket)
            except ClientError:
                self._client.create_bucket(Bucket=bucket)

    def _key(self, path: str) -> str:
        check_path(path)
        p = path.lstrip("/")
        return f"{self.prefix}/{p}" if self.prefix else p

    def _dir_prefix(self, path: str) -> str:
        if path == "/":
            return f"{self.prefix}/" if self.prefix else ""
        return self._key(path) + "/"

    def _spool_path(self, path: str) -> str:
        return os.path.join(self.spool_dir, hashlib.sha256(path.encode()).hexdigest())

    def get_content(self, path: str) -> bytes:
        try:
            return self._client.get_object(Bucket=self.bucket, Key=self._key(path))["Body"].read()
        except ClientError as e:
            if _missing(e):
                raise PathNotFound(path) from None
            raise

    def put_content(self, path: str, data: bytes) -> None:
        self._client.put_object(Bucket=self.bucket, Key=self._key(path), Body=data, **self._put_args)

    def reader(self, path: str, offset: int = 0) -> BinaryIO:
        kw: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(path)}
        if offset:
            kw["Range"] = f"bytes={offset}-"
        try:
            return self._client.get_object(**kw)["Body"]
        except ClientError as e:
            if _missing(e):
                raise PathNotFound(path) from None
            if e.response.get("Error", {}).get("Code") == "InvalidRange":
                import io

                return io.BytesIO(b"")
            raise

    def writer(self, path: str, append: bool = False) -> FileWriter:
        self._key(path)
        return _S3Writer(self, path, append)

    def stat(self, path: str) -> FileInfo:
        if path != "/":
            try:
                h = self._client.head_object(Bucket=self.bucket, Key=self._key(path))
                return FileInfo(path, int(h["ContentLength"]), h["LastModified"].timestamp(), False)
            except ClientError as e:
                if not _missing(e):
                    raise
        r = self._client.list_objects_v2(Bucket=self.bucket, Prefix=self._dir_prefix(path), MaxKeys=1)
        if r.get("KeyCount", 0) == 0:
            raise PathNotFound(path)
        return FileInfo(path, 0, r["Contents"][0]["LastModified"].timestamp(), True)

    def list(self, path: str) -> list[str]:
        prefix = self._dir_prefix(path)
        out: set[str] = set()
        base = "" if path == "/" else path
        for page in self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
            for cp in page.get("CommonPrefixes", []):
                out.add(f"{base}/{cp['Prefix'][len(prefix):].rstrip('/')}")
            for obj in page.get("Contents", []):
                out.add(f"{base}/{obj['Key'][len(prefix):]}")
        if not out:
            raise PathNotFound(path)
        return sorted(out)

    def move(self, src: str, dst: str) -> None:
        try:
            self._client.copy({"Bucket": self.bucket, "Key": self._key(src)}, self.bucket, self._key(dst),
                              ExtraArgs=self._put_args, Config=self._transfer)
        except ClientError as e:
            if _missing(e):
                raise PathNotFound(src) from None
            raise
        self._client.delete_object(Bucket=self.bucket, Key=self._key(src))

    def delete(self, path: str) -> None:
        keys: list[str] = []
        if path != "/":
            try:
                self._client.head_object(Bucket=self.bucket, Key=self._key(path))
                keys.append(self._key(path))
            except ClientError as e:
                if not _missing(e):
                    raise
        for page in self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._dir_prefix(path)):
            keys.extend(o["Key"] for o in page.get("Contents", []))
        if not keys:
            raise PathNotFound(path)
        for i in range(0, len(keys), 1000):
            self._client.delete_objects(Bucket=self.bucket,
                                        Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]],
                                                "Quiet": True})

    def walk(self, path: str) -> Iterator[FileInfo]:
        prefix = self._dir_prefix(path)
        base = "" if path == "/" else path
        found = False
        for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for o in page.get("Contents", []):
                found = True
                yield FileInfo(f"{base}/{o['Key'][len(prefix):]}", int(o["Size"]),
                               o["LastModified"].timestamp(), False)
        if not found:
            raise PathNotFound(path)

    def touch(self, path: str) -> None:
        # Copying an object onto itself with new metadata refreshes LastModified (GC grace).
        try:
            self._client.copy_object(Bucket=self.bucket, Key=self._key(path),
                                     CopySource={"Bucket": self.bucket, "Key": self._key(path)},
                                     MetadataDirective="REPLACE", **self._put_args)
        except ClientError as e:
            if _missing(e):
                raise PathNotFound(path) from None
            raise

    def close(self) -> None:
        self._client.close()
