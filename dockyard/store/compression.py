"""Layer compression: deterministic multi-threaded gzip and zstd, and decompression by magic.

Push compresses a layer tar once; registries deduplicate by digest, so the
same tar must always give the same bytes, whichever engine compresses it and
however busy the machine is:

* gzip: python-isal's threaded igzip (ISA-L, pigz-style).  The tar is fed in
  blocks of exactly GZIP_BLOCK bytes; each block is deflated on its own with
  the previous block's last 32 KiB as dictionary, so the output depends only
  on the input, the level and the block size, never on the number of threads
  or on which thread finishes first.  The header has mtime 0, no name, OS 255.
  Nor does it depend on the x86 CPU's SIMD level: ISA-L's SSE4.2, AVX, AVX2
  and AVX-512 paths give the same bytes.  It does depend on the family of
  ISA-L code that runs (gzip_output_family): arm64's assembly, and ISA-L's C
  fallback (an x86 without SSE4.2, e.g. QEMU's qemu64 model; ppc64le, s390x),
  each give other bytes, so a layer compressed there gets another digest than
  on x86: such an engine warns at its first gzip push (README, "Compress once").
  ISA-L runs ~10x faster than zlib level 6 on one core and releases the GIL
  (figures in the README's libraries table).
* zstd: `zstandard` in multi-threaded streaming mode with a fixed level;
  zstd's multi-threaded output is the same for any number of workers >= 1,
  and on any CPU (x86 with or without BMI2, arm64).

Decompression (pull, import, load) sniffs the magic bytes: gzip (ISA-L,
~2.5x zlib), zstd, bzip2, xz, or a plain tar.  It works on non-seekable
streams, so a layer can be unpacked while it is still downloading.
"""

from __future__ import annotations

import bz2
import functools
import hashlib
import io
import logging
import lzma
import os
import platform
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

GZIP = "gzip"
ZSTD = "zstd"
GZIP_LEVEL = 2  # ISA-L's default trade-off; level 3 halves the speed for 0.3 % smaller output
GZIP_BLOCK = 1 << 20
ZSTD_LEVEL = 3  # zstd's default
READ_CHUNK = 1 << 20

Progress = Callable[[int], None]  # uncompressed bytes consumed so far

log = logging.getLogger(__name__)


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:  # pragma: no cover - not Linux
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):  # x86 / arm64
            return set(value.split())
    return set()


def gzip_output_family() -> str:
    """Which ISA-L code compresses here, hence which bytes (and digests) push makes:
    "x86" (SSE4.2 and up: every x86 server since 2008), "arm64" (its assembly, with the CRC32
    instructions) or "c" (ISA-L's portable C, on anything else)."""
    machine = platform.machine().lower()
    flags = _cpu_flags()
    if machine in ("x86_64", "amd64") and "sse4_2" in flags:
        return "x86"
    if machine in ("aarch64", "arm64") and "crc32" in flags:
        return "arm64"
    return "c"


@functools.cache  # once per engine
def _warn_if_not_x86() -> None:
    family = gzip_output_family()
    if family != "x86":
        log.warning("gzip layers are compressed here by ISA-L's %s code, which gives other bytes "
                    "than on x86 CPUs with SSE4.2: a layer pushed from this engine gets another "
                    "digest than the same layer pushed from such a machine (zstd's bytes are the same "
                    "everywhere: --push-compression zstd)", family)


def compressor_threads() -> int:
    """Worker threads for one compression (the output does not depend on it)."""
    return max(1, min(4, os.cpu_count() or 1))


class _HashingFile(io.RawIOBase):
    """A write-only sink that hashes and counts what goes through to `f`."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.h = hashlib.sha256()
        self.n = 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:  # type: ignore[override]
        self.f.write(b)
        self.h.update(b)
        n = len(b) if not isinstance(b, memoryview) else b.nbytes
        self.n += n
        return n

    def flush(self) -> None:
        self.f.flush()

    def close(self) -> None:  # the caller closes the underlying file
        super().close()


def _blocks(f: BinaryIO, size: int) -> Iterator[bytes]:
    """Exactly `size`-byte chunks (the last one shorter): block boundaries must not depend on reads."""
    buf = b""
    while True:
        chunk = f.read(size - len(buf))
        if not chunk:
            break
        buf += chunk
        if len(buf) == size:
            yield buf
            buf = b""
    if buf:
        yield buf


def compress_stream(src: BinaryIO, dst: BinaryIO, kind: str, progress: Progress | None = None,
                    threads: int | None = None) -> tuple[str, int]:
    """Compress `src` into `dst`; returns (sha256 digest, size) of the compressed bytes."""
    threads = threads or compressor_threads()
    sink = _HashingFile(dst)
    done = 0
    if kind == GZIP:
        from isal import igzip_threaded  # imported on first push: not needed by an idle engine

        _warn_if_not_x86()
        # block_size is also the BufferedWriter's size, so each of our writes is one block.
        with igzip_threaded.open(sink, "wb", compresslevel=GZIP_LEVEL, threads=threads,
                                 block_size=GZIP_BLOCK) as gz:
            for block in _blocks(src, GZIP_BLOCK):
                gz.write(block)
                done += len(block)
                if progress:
                    progress(done)
    elif kind == ZSTD:
        import zstandard

        params = zstandard.ZstdCompressionParameters.from_level(ZSTD_LEVEL, threads=threads,
                                                                write_checksum=True)
        cctx = zstandard.ZstdCompressor(compression_params=params)
        with cctx.stream_writer(sink, closefd=False) as zw:
            for block in _blocks(src, READ_CHUNK):
                zw.write(block)
                done += len(block)
                if progress:
                    progress(done)
    else:
        raise ValueError(f"unknown compression {kind!r}")
    dst.flush()
    return "sha256:" + sink.h.hexdigest(), sink.n


def compress_file(src: Path, dst: Path, kind: str, progress: Progress | None = None,
                  threads: int | None = None) -> tuple[str, int]:
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        return compress_stream(fin, fout, kind, progress, threads)


# ---------------------------------------------------------------- decompression


def magic_kind(head: bytes) -> str:
    if head.startswith(b"\x1f\x8b"):
        return GZIP
    if head.startswith(b"BZh"):
        return "bzip2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return ZSTD
    return "tar"


class _Prefixed(io.RawIOBase):
    """`head` followed by the rest of `f`: sniffing magic bytes without seeking."""

    def __init__(self, head: bytes, f: BinaryIO) -> None:
        self.head, self.f = head, f

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        if self.head:
            n = min(len(b), len(self.head))
            b[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        return self.f.readinto(b)


def _read_head(f: BinaryIO, n: int = 6) -> bytes:
    head = b""
    while len(head) < n:
        chunk = f.read(n - len(head))
        if not chunk:
            break
        head += chunk
    return head


# What a corrupt or truncated compressed stream raises, by library.
def decode_errors() -> tuple[type[BaseException], ...]:
    errs: list[type[BaseException]] = [EOFError, OSError, lzma.LZMAError, ValueError]
    try:
        import zstandard
        errs.append(zstandard.ZstdError)
    except ImportError:  # pragma: no cover - a dependency
        pass
    try:
        from isal import isal_zlib
        errs.append(isal_zlib.error)
    except ImportError:  # pragma: no cover
        pass
    return tuple(errs)


@contextmanager
def decompressed(f: BinaryIO) -> Iterator[tuple[BinaryIO, str]]:
    """(reader of the uncompressed bytes, kind) for a possibly compressed stream; no seeking."""
    head = _read_head(f)
    kind = magic_kind(head)
    raw = io.BufferedReader(_Prefixed(head, f), READ_CHUNK)
    if kind == "tar":
        yield raw, kind
    elif kind == GZIP:
        from isal import igzip

        with igzip.GzipFile(fileobj=raw, mode="rb") as g:
            yield g, kind  # type: ignore[misc]
    elif kind == ZSTD:
        import zstandard

        # read_across_frames: a layer may be several concatenated frames, like multi-member gzip.
        with zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True, closefd=False) as z:
            yield z, kind  # type: ignore[misc]
    elif kind == "bzip2":
        with bz2.BZ2File(raw, "rb") as b:
            yield b, kind  # type: ignore[misc]
    else:
        with lzma.LZMAFile(raw, "rb") as x:
            yield x, kind  # type: ignore[misc]


def media_type_of(kind: str, oci: bool = False) -> str | None:
    """The layer media type of a compressed blob kind (Docker's for gzip unless `oci`)."""
    from ..oci import image as oimg

    if kind == GZIP:
        return oimg.OCI_LAYER_GZIP if oci else oimg.DOCKER_LAYER_GZIP
    if kind == ZSTD:
        return oimg.OCI_LAYER_ZSTD
    return None
