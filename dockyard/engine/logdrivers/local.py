"""local: dockerd's compact driver, in its on-disk format.

`<data-root>/containers/<id>/local-logs/container.log`; each entry is a
protobuf `LogEntry` (source=1, time_nano=2, line=3, partial=4,
partial_log_metadata=5, attrs=6) between two 4-byte big-endian copies of its
length, so it can be read forwards and backwards.  Lines are stored without
their newline; `partial` marks a line that goes on in the next entry.
Defaults as dockerd: max-size 20m, max-file 5, compress true.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from ...errors import InvalidParameter
from .attrs import extra_attributes, parse_tag
from .base import STDERR, STDOUT, STREAM_NAMES, ContainerInfo, LogRecord
from .options import go_atoi, go_bool, human_size
from .rotating import RotatingFile

NAME = "local"
OPTS = {"max-file", "max-size", "compress", "labels", "labels-regex", "env", "env-regex", "tag"}
DEFAULT_MAX_SIZE = 20 * 1024 * 1024
DEFAULT_MAX_FILE = 5


def log_path(ctr_dir: Path) -> Path:
    return ctr_dir / "local-logs" / "container.log"


def parse_opts(opts: dict[str, str]) -> tuple[int, int, bool]:
    """As local.newConfig: values with their messages, then validateConfig."""
    size, files, compress = DEFAULT_MAX_SIZE, DEFAULT_MAX_FILE, True
    if "max-size" in opts:
        v = opts["max-size"]
        try:
            size = human_size(v)
        except InvalidParameter as exc:
            raise InvalidParameter(f"invalid value for max-size: {v}: {exc.message}") from None
    if "max-file" in opts:
        v = opts["max-file"]
        try:
            files = go_atoi(v)
        except InvalidParameter as exc:
            raise InvalidParameter(f"invalid value for max-file: {v}: {exc.message}") from None
    if "compress" in opts:
        try:
            compress = go_bool(opts["compress"])
        except InvalidParameter as exc:
            raise InvalidParameter(f"invalid boolean value for compress: {exc.message}") from None
    if size < 0:
        raise InvalidParameter("max-size must not be negative")
    if files < 0:
        raise InvalidParameter("max-file must not be negative")
    if compress and files <= 1:
        raise InvalidParameter("compression cannot be enabled when max file count is 1")
    return size, files, compress


def validate(opts: dict[str, str]) -> None:
    for key in opts:
        if key not in OPTS:
            raise InvalidParameter(f"unknown log opt '{key}' for log driver local")
    parse_opts(opts)


# ------------------------------------------------------------- protobuf wire
def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # int64 as protobuf encodes negatives
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field_bytes(num: int, data: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(data)) + data


def encode_entry(rec: LogRecord, attrs: list[tuple[str, str]]) -> bytes:
    line, partial = (rec.data[:-1], False) if rec.data.endswith(b"\n") else (rec.data, True)
    body = _field_bytes(1, STREAM_NAMES[rec.stream].encode()) + _varint(2 << 3) + _varint(rec.time_ns)
    if line:
        body += _field_bytes(3, line)
    if partial:
        body += _varint(4 << 3) + b"\x01"
        body += _field_bytes(5, _varint(3 << 3) + _varint(1))  # ordinal 1, not last
    for k, v in attrs:
        body += _field_bytes(6, _field_bytes(1, k.encode()) + _field_bytes(2, v.encode()))
    size = struct.pack(">I", len(body))
    return size + body + size


def _read_varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = n = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            return n, i
        shift += 7


def _decode_attr(body: bytes) -> tuple[str, str]:
    i, kv = 0, ["", ""]
    while i < len(body):
        key, i = _read_varint(body, i)
        ln, i = _read_varint(body, i)
        if key >> 3 in (1, 2):
            kv[(key >> 3) - 1] = body[i:i + ln].decode(errors="replace")
        i += ln
    return kv[0], kv[1]


def decode_entry(body: bytes) -> LogRecord:
    i, source, t, line, partial = 0, b"stdout", 0, b"", False
    attrs: dict[str, str] = {}
    while i < len(body):
        key, i = _read_varint(body, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            val, i = _read_varint(body, i)
            if num == 2:
                t = val - (1 << 64) if val >= 1 << 63 else val
            elif num == 4:
                partial = bool(val)
        elif wire == 2:
            ln, i = _read_varint(body, i)
            val_b = body[i:i + ln]
            i += ln
            if num == 1:
                source = val_b
            elif num == 3:
                line = val_b
            elif num == 6:
                k, v = _decode_attr(val_b)
                attrs[k] = v
        elif wire == 5:
            i += 4
        elif wire == 1:
            i += 8
        else:
            raise ValueError("bad wire type")
    return LogRecord(STDERR if source == b"stderr" else STDOUT, t, line if partial else line + b"\n",
                     attrs or None)


class LocalDriver:
    name = NAME

    def __init__(self, ctr_dir: Path, info: ContainerInfo, opts: dict[str, str], path: Path | None = None) -> None:
        size, files, compress = parse_opts(opts)
        attrs = extra_attributes(info, opts)
        if opts.get("tag"):
            attrs["tag"] = parse_tag(info, opts, "")
        self._attrs = sorted(attrs.items())
        path = path or log_path(ctr_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file = RotatingFile(path, size if size > 0 else -1, max(files, 1), compress)

    def write(self, rec: LogRecord) -> None:
        self.file.write(encode_entry(rec, self._attrs))

    def close(self) -> None:
        self.file.close()


class LocalCodec:
    @staticmethod
    def split(buf: bytes) -> tuple[list[LogRecord], int]:
        out, i = [], 0
        while i + 4 <= len(buf):
            (size,) = struct.unpack_from(">I", buf, i)
            end = i + 8 + size
            if end > len(buf):
                break
            try:
                out.append(decode_entry(buf[i + 4:i + 4 + size]))
            except (ValueError, IndexError):
                pass
            i = end
        return out, i

    @staticmethod
    def tail_offset(f, n: int) -> tuple[int, int]:
        """Walk back along the trailing length words; (offset, entries found)."""
        pos = os.fstat(f.fileno()).st_size
        if n <= 0:
            return pos, 0
        seen = 0
        while pos >= 8 and seen < n:
            f.seek(pos - 4)
            (size,) = struct.unpack(">I", f.read(4))
            start = pos - 8 - size
            if start < 0:
                break
            pos, seen = start, seen + 1
        return pos, seen
