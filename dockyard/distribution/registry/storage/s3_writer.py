"""Resumable S3 writes whose state lives in the bucket, so any replica can resume them.

S3 objects cannot be appended to, and parts of an unfinished multipart upload
can be neither listed cheaply nor read.  So each writer session (one PATCH, one
PUT) writes its bytes as one *chunk object* next to the target:

    <key>.chunks/<offset, 16 digits>-<session id>

streamed as a multipart upload of `part_size` parts while the bytes arrive
(small sessions are one PUT), and completed by close(): a chunk is visible
whole or not at all.  A writer resumed with append=True lists the chunks and
continues after the contiguous run that starts at 0 (or at the end of an
object already committed at <key>), so a session killed mid-way costs only its
own bytes and the client resumes from the reported size.  Chunk names carry
the session id, so two sessions racing at one offset never overwrite each
other; `token` names the exact chunks a size was read from.

commit(dest) assembles the chunks into one object: one chunk is copied
server-side; several become one multipart upload of UploadPartCopy ranges,
where chunks smaller than S3's 5 MiB minimum part are read back and merged
with their neighbours (at most 5 MiB per boundary is read).  Distribution's
s3 driver meets the same minimum by re-uploading small tails into the next
multipart upload; here the small pieces are only merged once, at the end.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import io
import uuid
from typing import TYPE_CHECKING, Any, BinaryIO

from botocore.exceptions import ClientError

from .driver import FileWriter

if TYPE_CHECKING:
    from .s3 import S3Driver

MIN_PART = 5 << 20  # S3's minimum size of any part but the last
_COPY_RANGE = 1 << 30  # UploadPartCopy range size (S3's limit is 5 GiB)
_IN_FLIGHT = 4  # part uploads running at once per writer
CHUNKS = ".chunks/"


def chunk_prefix(key: str) -> str:
    return key + CHUNKS


def list_chunks(driver: "S3Driver", key: str) -> list[tuple[str, int]]:
    """The chunk objects of `key` that form one contiguous run from the committed object's end
    (or 0): [(key, size)], base object first when there is one.  One LIST finds both."""
    base: list[tuple[str, int]] = []
    found: list[tuple[int, str, int]] = []
    prefix = chunk_prefix(key)
    for page in driver._client.get_paginator("list_objects_v2").paginate(Bucket=driver.bucket, Prefix=key):
        for o in page.get("Contents", []):
            if o["Key"] == key:
                base.append((key, int(o["Size"])))
            elif o["Key"].startswith(prefix):
                off, _, _session = o["Key"][len(prefix):].partition("-")
                if off.isdigit():
                    found.append((int(off), o["Key"], int(o["Size"])))
    found.sort()
    sources = base
    expected = base[0][1] if base else 0
    for off, k, size in found:
        if off == expected and size > 0:
            sources.append((k, size))
            expected += size
    return sources


class S3Writer(FileWriter):
    def __init__(self, driver: "S3Driver", path: str, append: bool) -> None:
        self._d = driver
        self._key = driver._key(path)
        self._sources = list_chunks(driver, self._key) if append else []
        self._base = sum(s for _, s in self._sources)
        self._session = uuid.uuid4().hex[:12]
        self._chunk_key = f"{chunk_prefix(self._key)}{self._base:016d}-{self._session}"
        self._buf: list[bytes] = []
        self._buf_len = 0
        self._written = 0
        self._mpu: str | None = None
        self._parts: list[concurrent.futures.Future[dict[str, Any]]] = []
        self._done = False

    @property
    def size(self) -> int:
        return self._base + self._written

    @property
    def token(self) -> str:
        return hashlib.sha256("\n".join(k for k, _ in self._sources).encode()).hexdigest()[:32]

    def write(self, data: bytes) -> int:
        self._buf.append(data)
        self._buf_len += len(data)
        self._written += len(data)
        if self._buf_len >= self._d.part_size:
            self._send_part()
        return len(data)

    def _send_part(self) -> None:
        c = self._d._client
        if self._mpu is None:
            self._mpu = c.create_multipart_upload(Bucket=self._d.bucket, Key=self._chunk_key,
                                                 **self._d._put_args)["UploadId"]
        body = b"".join(self._buf)
        self._buf, self._buf_len = [], 0
        n = len(self._parts) + 1
        while sum(not f.done() for f in self._parts) >= _IN_FLIGHT:
            concurrent.futures.wait(self._parts, return_when=concurrent.futures.FIRST_COMPLETED)
        self._parts.append(self._d._pool.submit(
            lambda: {"PartNumber": n, "ETag": c.upload_part(Bucket=self._d.bucket, Key=self._chunk_key,
                                                           UploadId=self._mpu, PartNumber=n, Body=body)["ETag"]}))

    def _finish_chunk(self) -> None:
        """Make this session's bytes a visible chunk object (nothing if it wrote none)."""
        if self._done:
            return
        self._done = True
        c = self._d._client
        if self._mpu is None:
            if self._written:
                c.put_object(Bucket=self._d.bucket, Key=self._chunk_key, Body=b"".join(self._buf),
                             **self._d._put_args)
        else:
            if self._buf_len:
                self._send_part()
            try:
                parts = [f.result() for f in self._parts]
                c.complete_multipart_upload(Bucket=self._d.bucket, Key=self._chunk_key, UploadId=self._mpu,
                                            MultipartUpload={"Parts": parts})
            except BaseException:
                self._abort()
                raise
        self._buf = []
        if self._written:
            self._sources.append((self._chunk_key, self._written))

    def _abort(self) -> None:
        if self._mpu is not None:
            concurrent.futures.wait(self._parts)
            try:
                self._d._client.abort_multipart_upload(Bucket=self._d.bucket, Key=self._chunk_key,
                                                       UploadId=self._mpu)
            except ClientError:
                pass
            self._mpu = None

    def close(self) -> None:
        self._finish_chunk()

    def commit(self, dest: str | None = None) -> None:
        target = self._d._key(dest) if dest is not None else self._key
        if not self._sources and self._mpu is None and not self._done:
            # All the data is in this session's buffer (a monolithic upload): one PUT, no chunk.
            self._done = True
            self._d._client.put_object(Bucket=self._d.bucket, Key=target, Body=b"".join(self._buf),
                                       **self._d._put_args)
            self._buf = []
            return
        self._finish_chunk()
        compose(self._d, self._sources, target)
        # The chunks composed are deleted; stray ones of killed sessions go with the directory.
        self._d._delete_keys([k for k, _ in self._sources if k != target])

    def cancel(self) -> None:
        self._done = True
        self._abort()
        self._d._delete_keys(self._d._keys_under(chunk_prefix(self._key)) + [self._key])


def compose(driver: "S3Driver", sources: list[tuple[str, int]], target: str) -> None:
    c, bucket = driver._client, driver.bucket
    if not sources:
        c.put_object(Bucket=bucket, Key=target, Body=b"", **driver._put_args)
        return
    if len(sources) == 1:
        if sources[0][0] != target:
            c.copy({"Bucket": bucket, "Key": sources[0][0]}, bucket, target, ExtraArgs=driver._put_args,
                   Config=driver._transfer)
        return
    mpu = c.create_multipart_upload(Bucket=bucket, Key=target, **driver._put_args)["UploadId"]
    parts: list[dict[str, Any]] = []

    def put(body: bytes) -> None:
        n = len(parts) + 1
        parts.append({"PartNumber": n, "ETag": c.upload_part(
            Bucket=bucket, Key=target, UploadId=mpu, PartNumber=n, Body=body)["ETag"]})

    def copy(key: str, start: int, end: int) -> None:
        n = len(parts) + 1
        r = c.upload_part_copy(Bucket=bucket, Key=target, UploadId=mpu, PartNumber=n,
                               CopySource={"Bucket": bucket, "Key": key}, CopySourceRange=f"bytes={start}-{end}")
        parts.append({"PartNumber": n, "ETag": r["CopyPartResult"]["ETag"]})

    def read(key: str, start: int, length: int) -> bytes:
        return c.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{start + length - 1}")["Body"].read()

    try:
        buf = bytearray()
        for key, size in sources:
            off = 0
            if buf:  # top the pending small piece up to a full part from this source's head
                take = min(MIN_PART - len(buf), size)
                buf += read(key, 0, take)
                off = take
                if len(buf) >= MIN_PART:
                    put(bytes(buf))
                    buf = bytearray()
            rest = size - off
            if rest >= MIN_PART:
                while rest > 0:
                    n = _COPY_RANGE if rest - _COPY_RANGE >= MIN_PART else rest
                    copy(key, off, off + n - 1)
                    off += n
                    rest -= n
            elif rest > 0:
                buf += read(key, off, rest)
        if buf:
            put(bytes(buf))
        c.complete_multipart_upload(Bucket=bucket, Key=target, UploadId=mpu, MultipartUpload={"Parts": parts})
    except BaseException:
        try:
            c.abort_multipart_upload(Bucket=bucket, Key=target, UploadId=mpu)
        except ClientError:
            pass
        raise


class ChainReader(io.RawIOBase):
    """Reads a list of objects as one stream, from an offset (an unfinished write's data)."""

    def __init__(self, driver: "S3Driver", sources: list[tuple[str, int]], offset: int) -> None:
        super().__init__()
        self._d = driver
        self._todo: list[tuple[str, int]] = []
        for key, size in sources:
            if offset >= size:
                offset -= size
                continue
            self._todo.append((key, offset))
            offset = 0
        self._cur: BinaryIO | None = None

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        out = bytearray()
        while n < 0 or len(out) < n:
            if self._cur is None:
                if not self._todo:
                    break
                key, off = self._todo.pop(0)
                kw: dict[str, Any] = {"Bucket": self._d.bucket, "Key": key}
                if off:
                    kw["Range"] = f"bytes={off}-"
                self._cur = self._d._client.get_object(**kw)["Body"]
            data = self._cur.read(-1 if n < 0 else n - len(out))
            if not data:
                self._cur.close()
                self._cur = None
                continue
            out += data
        return bytes(out)

    def close(self) -> None:
        if self._cur is not None:
            self._cur.close()
            self._cur = None
        super().close()
