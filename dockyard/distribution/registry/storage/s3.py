"""The S3 driver (boto3): paths map to keys under an optional prefix in one bucket.

Writers keep their state in the bucket (s3_writer.py): an upload started by one
replica is continued and finished by any other, with no local spool and no
sticky sessions.  redirect_url() presigns GET/HEAD URLs so blob downloads can
go straight to the bucket.
"""

from __future__ import annotations

import concurrent.futures
import io
from typing import Any, BinaryIO, Iterator

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from .driver import FileInfo, FileWriter, PathNotFound, StorageDriver, check_path
from .s3_writer import CHUNKS, ChainReader, S3Writer, list_chunks

_MIB = 1024 * 1024
_REDIRECT_EXPIRY = 20 * 60  # seconds, as Distribution's s3 driver


def _missing(e: ClientError) -> bool:
    code = str(e.response.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound", "NoSuchBucket")


def _hidden(rel: str) -> bool:
    """Chunk objects of unfinished writes are not files of the namespace."""
    return any(part.endswith(CHUNKS[:-1]) for part in rel.split("/"))


class S3Driver(StorageDriver):
    name = "s3"

    def __init__(self, bucket: str, region: str = "us-east-1", endpoint_url: str | None = None,
                 access_key: str | None = None, secret_key: str | None = None, prefix: str = "",
                 create_bucket: bool = False,
                 session_token: str | None = None, chunk_size: int | None = None, encrypt: bool = False,
                 kms_key_id: str | None = None, verify: bool = True, storage_class: str | None = None,
                 acl: str | None = None, path_style: bool = True, dualstack: bool = False,
                 accelerate: bool = False) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        # Distribution's chunksize: the part size of writes (S3's minimum is 5 MiB).
        self.part_size = max(int(chunk_size or 10 * _MIB), 5 * _MIB)
        self._client = boto3.client(
            "s3", region_name=region, endpoint_url=endpoint_url, verify=verify,
            aws_access_key_id=access_key, aws_secret_access_key=secret_key, aws_session_token=session_token,
            config=Config(max_pool_connections=32, retries={"max_attempts": 3},
                          s3={"addressing_style": "path" if path_style else "auto",
                              "use_dualstack_endpoint": dualstack, "use_accelerate_endpoint": accelerate}),
        )
        self._transfer = TransferConfig(multipart_threshold=64 * _MIB, multipart_chunksize=64 * _MIB,
                                        max_concurrency=4)
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="s3-part")
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
        if create_bucket:
            try:
                self._client.head_bucket(Bucket=bucket)
            except ClientError:
                self._client.create_bucket(Bucket=bucket)

    @staticmethod
    def _is_missing(e: ClientError) -> bool:
        return _missing(e)

    def _keys_under(self, prefix: str) -> list[str]:
        keys: list[str] = []
        for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(o["Key"] for o in page.get("Contents", []))
        return keys

    def _delete_keys(self, keys: list[str]) -> None:
        for i in range(0, len(keys), 1000):
            self._client.delete_objects(Bucket=self.bucket,
                                        Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]],
                                                "Quiet": True})

    def _key(self, path: str) -> str:
        check_path(path)
        p = path.lstrip("/")
        return f"{self.prefix}/{p}" if self.prefix else p

    def _dir_prefix(self, path: str) -> str:
        if path == "/":
            return f"{self.prefix}/" if self.prefix else ""
        return self._key(path) + "/"

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
            if e.response.get("Error", {}).get("Code") == "InvalidRange":
                return io.BytesIO(b"")
            if not _missing(e):
                raise
        # Not committed: an unfinished write's chunks, read as one stream.
        sources = list_chunks(self, self._key(path))
        if not sources:
            raise PathNotFound(path)
        return ChainReader(self, sources, offset)  # type: ignore[return-value]

    def writer(self, path: str, append: bool = False) -> FileWriter:
        return S3Writer(self, check_path(path), append)

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
                name = cp["Prefix"][len(prefix):].rstrip("/")
                if not _hidden(name):
                    out.add(f"{base}/{name}")
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
        if path == "/":
            keys = self._keys_under(self._dir_prefix(path))
        else:
            # One LIST finds the file, its unfinished-write chunks and everything below it.
            key = self._key(path)
            keys = [k for k in self._keys_under(key)
                    if k == key or k.startswith(key + "/") or k.startswith(key + CHUNKS)]
        if not keys:
            raise PathNotFound(path)
        self._delete_keys(keys)

    def walk(self, path: str) -> Iterator[FileInfo]:
        prefix = self._dir_prefix(path)
        base = "" if path == "/" else path
        found = False
        for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for o in page.get("Contents", []):
                if _hidden(o["Key"][len(prefix):]):
                    continue
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

    def abort_uploads(self, path: str, older_than: float) -> int:
        """Abort multipart uploads below `path` started before `older_than` (a writer killed
        mid-session leaves one); their parts cost storage until aborted."""
        prefix = self._dir_prefix(path)
        todo = []
        for page in self._client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket,
                                                                                 Prefix=prefix):
            for u in page.get("Uploads", []):
                if u["Initiated"].timestamp() < older_than:
                    todo.append((u["Key"], u["UploadId"]))
        for key, upload_id in todo:
            try:
                self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            except ClientError as e:
                if not _missing(e) and e.response.get("Error", {}).get("Code") != "NoSuchUpload":
                    raise
        return len(todo)

    def redirect_url(self, path: str, method: str) -> str | None:
        op = {"GET": "get_object", "HEAD": "head_object"}.get(method)
        if op is None:
            return None
        return self._client.generate_presigned_url(op, Params={"Bucket": self.bucket, "Key": self._key(path)},
                                                   ExpiresIn=_REDIRECT_EXPIRY)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._client.close()
