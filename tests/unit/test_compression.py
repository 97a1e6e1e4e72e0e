"""Layer compression and the one-pass import: determinism, round trips, bad input leaves nothing."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import random
import tarfile
import threading

import pytest
import zstandard

from dockyard.errors import InvalidParameter
from dockyard.store import compression
from dockyard.store.layers import LayerStore
from dockyard.store.pipe import ChunkPipe, PipeClosed


def _data(n: int = 3_000_000, seed: int = 1) -> bytes:
    r = random.Random(seed)
    text = b"".join(b"line %d status=%d id=%x\n" % (i, r.choice((200, 404)), r.getrandbits(40))
                    for i in range(n // 40))
    return (r.randbytes(n // 2) + text)[:n]


class Chunked(io.RawIOBase):
    """A non-seekable reader that hands out odd-sized chunks (as a socket would)."""

    def __init__(self, data: bytes, sizes=(1, 7, 4096, 65537, 1 << 20)) -> None:
        self.data, self.pos, self.sizes, self.i = data, 0, sizes, 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = min(len(b), self.sizes[self.i % len(self.sizes)], len(self.data) - self.pos)
        self.i += 1
        b[:n] = self.data[self.pos:self.pos + n]
        self.pos += n
        return n


def _compress(data: bytes, kind: str, threads: int, src_chunks=None) -> bytes:
    out = io.BytesIO()
    src = Chunked(data, src_chunks) if src_chunks else io.BytesIO(data)
    digest, size = compression.compress_stream(src, out, kind, threads=threads)  # type: ignore[arg-type]
    assert digest == "sha256:" + hashlib.sha256(out.getvalue()).hexdigest() and size == len(out.getvalue())
    return out.getvalue()


@pytest.mark.parametrize("kind", [compression.GZIP, compression.ZSTD])
def test_output_does_not_depend_on_threads_or_read_sizes(kind):
    data = _data()
    outs = {_compress(data, kind, t) for t in (1, 2, 4)}
    outs.add(_compress(data, kind, 3, src_chunks=(1, 4096, 999_999, 17)))
    assert len(outs) == 1
    [out] = outs
    back = gzip.decompress(out) if kind == compression.GZIP else zstandard.ZstdDecompressor().decompressobj().decompress(out)
    assert back == data


# The push gzip of _data(), by the family of ISA-L code that compresses (gzip_output_family).
# x86: the same bytes with ISA-L's SSE4.2, AVX, AVX2 and AVX-512 functions (python-isal 1.9.1
# rebuilt with each dispatch forced; the stock wheel under qemu-x86_64 -cpu Nehalem, SandyBridge,
# Haswell).  arm64: ISA-L's aarch64 assembly (built with a cross compiler, run under qemu-aarch64,
# fed the blocks python-isal feeds it).  c: ISA-L's C fallback (-cpu qemu64, or arch=noarch).
# README, "Compress once".  A failure here, e.g. after an isal upgrade, means this ISA-L compresses
# differently: engines would push one layer under two digests.
GZIP_DIGESTS = {
    "x86": ("sha256:16fa543411528ff1d31818f7284fcdf09194f19bd62b26969555dd17a6cc0b78", 1961596),
    "arm64": ("sha256:f3a590a5be0daf9eedf6504fe328588763efa1840ba7501d018b1b9c4961d285", 1954773),
    "c": ("sha256:a7e91258c32521b1dff799a84ada357af2ac149377b8bd12ac91a008414e67a0", 1956040),
}


def test_gzip_digest_is_the_one_of_this_cpus_family():
    out = io.BytesIO()
    got = compression.compress_stream(io.BytesIO(_data()), out, compression.GZIP, threads=2)  # type: ignore[arg-type]
    family = compression.gzip_output_family()
    assert got == GZIP_DIGESTS[family], f"ISA-L's {family} output changed: push digests would change"


# zstd's bytes are the same on every CPU: the same from zstandard here, from libzstd 1.5.7 (the
# version it bundles) built for x86 and run under qemu-x86_64 -cpu qemu64 (no BMI2) and Haswell,
# and built for arm64 and run under qemu-aarch64 (README, "Compress once").
ZSTD_DIGEST = "sha256:d9bf36de2066df879ae87b20497f4380a73e5fdb135ac4ef39cc058556901630"


def test_zstd_digest_is_the_same_on_every_cpu():
    out = io.BytesIO()
    digest, _ = compression.compress_stream(io.BytesIO(_data()), out, compression.ZSTD, threads=2)  # type: ignore[arg-type]
    assert digest == ZSTD_DIGEST, "zstd's output changed: push digests would change"


def test_gzip_header_has_no_time_and_no_name():
    out = _compress(b"x" * 100, compression.GZIP, 2)
    assert out[:4] == b"\x1f\x8b\x08\x00"  # deflate, no FNAME/FEXTRA/FCOMMENT flags
    assert out[4:8] == b"\0\0\0\0"  # mtime 0


def test_empty_input_compresses_to_a_valid_stream():
    assert gzip.decompress(_compress(b"", compression.GZIP, 2)) == b""


@pytest.mark.parametrize("kind", ["tar", "gzip", "zstd", "bzip2", "xz"])
def test_decompressed_sniffs_without_seeking(kind):
    data = _data(200_000)
    packed = {"tar": data, "gzip": gzip.compress(data), "bzip2": bz2.compress(data), "xz": lzma.compress(data),
              "zstd": zstandard.ZstdCompressor().compress(data)}[kind]
    with compression.decompressed(Chunked(packed)) as (reader, found):  # type: ignore[arg-type]
        assert found == kind
        assert reader.read() == data


def test_pipe_passes_bytes_and_errors():
    pipe = ChunkPipe(depth=2)
    got = bytearray()

    def reader() -> None:
        while chunk := pipe.read(3):
            got.extend(chunk)

    t = threading.Thread(target=reader)
    t.start()
    for c in (b"abc", b"defgh", b"", b"ij"):
        pipe.put(c) if c else None
    pipe.finish()
    t.join(10)
    assert bytes(got) == b"abcdefghij"

    pipe = ChunkPipe()
    pipe.put(b"xy")
    assert pipe.read(1) == b"x"
    pipe.fail(InvalidParameter("boom"))  # an abort: what was not read yet is dropped
    assert pipe.read(1) == b"y"
    with pytest.raises(InvalidParameter):
        pipe.read(2)

    pipe = ChunkPipe(depth=1)
    pipe.close()  # the reader went away: the producer is told instead of blocking
    with pytest.raises(PipeClosed):
        pipe.put(b"a")
        pipe.put(b"b")


# ---------------------------------------------------------------- one-pass import


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _state(store: LayerStore) -> tuple[list[str], list[str], list[str], list[str]]:
    return (sorted(p.name for p in store.root.iterdir() if p.name != "tmp"),
            sorted(p.name for p in store.content.blobs_dir.iterdir()),
            sorted(p.name for p in store.tmp_dir.iterdir()),
            sorted(p.name for p in store.content.tmp_dir.iterdir()))


def test_stream_import_keeps_the_compressed_blob_as_received(store):
    raw = _tar({"a": _data(100_000)})
    packed = gzip.compress(raw, compresslevel=9, mtime=42)
    with store.pinning() as pinned:
        layer = store.import_stream(Chunked(packed), None, pinned, expected_digest=_sha(packed))  # type: ignore[arg-type]
    assert layer.diff_id == _sha(raw)
    with store.open_tar(layer.diff_id) as f:
        assert f.read() == raw
    assert store.tar_path(layer.diff_id).read_bytes() == raw
    kept = store.compressed.find(layer.diff_id, compression.GZIP)
    assert kept is not None and kept.digest == _sha(packed) and kept.size == len(packed)
    assert store.content.path(kept.digest).read_bytes() == packed
    # a plain tar keeps no second copy
    with store.pinning() as pinned:
        plain = store.import_stream(Chunked(_tar({"b": b"b"})), None, pinned)  # type: ignore[arg-type]
    assert store.compressed.find(plain.diff_id, compression.GZIP) is None
    # gc of the layer forgets its compressed blob too
    assert set(store.gc()) == {layer.chain_id, plain.chain_id}
    assert not store.content.exists(kept.digest) and store.compressed.find(layer.diff_id, compression.GZIP) is None


def _sha(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


@pytest.mark.parametrize("damage", ["truncated", "flipped", "wrong-digest", "wrong-diff-id", "not-a-tar"])
def test_bad_stream_leaves_nothing(store, damage):
    raw = _tar({"a": _data(300_000), "b": b"hello"})
    good = gzip.compress(raw, mtime=0)
    data, digest, diff_id = good, _sha(good), _sha(raw)
    if damage == "truncated":
        data = good[: len(good) // 2]
    elif damage == "flipped":
        data = bytearray(good)
        data[len(data) // 2] ^= 0xFF
        data = bytes(data)
    elif damage == "wrong-digest":
        digest = "sha256:" + "1" * 64
    elif damage == "wrong-diff-id":
        diff_id = "sha256:" + "2" * 64
    elif damage == "not-a-tar":
        data = gzip.compress(b"definitely not a tar archive" * 100)
        digest = _sha(data)
    before = _state(store)
    with store.pinning() as pinned:
        with pytest.raises(InvalidParameter) as exc:
            store.import_stream(Chunked(data), None, pinned, diff_id, expected_digest=digest,  # type: ignore[arg-type]
                                name=f"layer {digest}")
    msg = exc.value.message
    assert digest in msg or diff_id in msg, msg
    if damage in ("flipped", "truncated", "wrong-digest"):
        assert "verification failed" in msg
    assert _state(store) == before == ([], [], [], [])
