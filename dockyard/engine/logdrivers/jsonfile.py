"""json-file: Docker's default driver, byte for byte in Docker's format and place.

`<data-root>/containers/<id>/<id>-json.log`, one JSON object a line:
`{"log":"hello\\n","stream":"stdout","time":"2026-11-30T12:00:00.123456789Z"}`,
with `"attrs":{...}` before `time` when labels/env/tag options ask for them, so
log shippers configured for Docker's files read ours unchanged.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ...errors import InvalidParameter
from .attrs import extra_attributes, parse_tag
from .base import STDERR, STDOUT, STREAM_NAMES, ContainerInfo, LogRecord, format_time, parse_time
from .options import go_atoi, go_bool, human_size
from .rotating import RotatingFile

NAME = "json-file"
OPTS = {"max-file", "max-size", "compress", "labels", "labels-regex", "env", "env-regex", "tag"}


def log_path(ctr_dir: Path, cid: str) -> Path:
    return ctr_dir / f"{cid}-json.log"


def parse_opts(opts: dict[str, str]) -> tuple[int, int, bool]:
    """max-size, max-file, compress, checked as jsonfilelog.New checks them."""
    size = -1
    if "max-size" in opts:
        size = human_size(opts["max-size"])
        if size <= 0:
            raise InvalidParameter("max-size must be a positive number")
    files = 1
    if "max-file" in opts:
        files = go_atoi(opts["max-file"])
        if files < 1:
            raise InvalidParameter("max-file cannot be less than 1")
    compress = False
    if "compress" in opts:
        compress = go_bool(opts["compress"])
        if compress and (files == 1 or size == -1):
            raise InvalidParameter("compress cannot be true when max-file is less than 2 or max-size is not set")
    return size, files, compress


def validate(opts: dict[str, str]) -> None:
    for key in opts:
        if key not in OPTS:
            raise InvalidParameter(f"unknown log opt '{key}' for json-file log driver")
    parse_opts(opts)


def _go_json(obj: object) -> str:
    # Go's encoder escapes these for HTML safety; shippers see the same bytes as from dockerd
    s = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return (s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


class JSONFileDriver:
    name = NAME

    def __init__(self, ctr_dir: Path, info: ContainerInfo, opts: dict[str, str]) -> None:
        size, files, compress = parse_opts(opts)
        attrs = extra_attributes(info, opts)
        tag = parse_tag(info, opts, "") if opts.get("tag") else ""
        if tag:
            attrs["tag"] = tag
        self._attrs = ',"attrs":' + _go_json(attrs) if attrs else ""
        self.file = RotatingFile(log_path(ctr_dir, info.id), size, files, compress)

    def write(self, rec: LogRecord) -> None:
        line = (f'{{"log":{_go_json(rec.data.decode(errors="replace"))},'
                f'"stream":"{STREAM_NAMES[rec.stream]}"{self._attrs},"time":"{format_time(rec.time_ns)}"}}\n')
        self.file.write(line.encode())

    def close(self) -> None:
        self.file.close()


class JSONCodec:
    """Decoding for readers: complete lines only, a half-written last line waits."""

    @staticmethod
    def split(buf: bytes) -> tuple[list[LogRecord], int]:
        end = buf.rfind(b"\n") + 1
        out = []
        for line in buf[:end].splitlines():
            try:
                d = json.loads(line)
                out.append(LogRecord(STDERR if d.get("stream") == "stderr" else STDOUT,
                                     parse_time(d["time"]), d.get("log", "").encode(), d.get("attrs")))
            except (ValueError, KeyError, TypeError, AttributeError):
                continue  # a torn line left by a crash: skip it, as dockerd's decoder resyncs
        return out, end

    @staticmethod
    def tail_offset(f, n: int, block: int = 1 << 16) -> tuple[int, int]:
        """Where the last `n` lines start, and how many were found (fewer: offset 0)."""
        end = os.fstat(f.fileno()).st_size
        if n <= 0:
            return end, 0
        pos, seen = end, 0  # an unfinished last line holds no newline: it is not counted
        while pos > 0:
            step = min(block, pos)
            pos -= step
            f.seek(pos)
            buf = f.read(step)
            i = len(buf)
            while True:
                i = buf.rfind(b"\n", 0, i)
                if i < 0:
                    break
                seen += 1
                if seen > n:
                    return pos + i + 1, n
        return 0, seen
