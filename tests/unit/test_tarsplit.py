"""A plain layer tar is kept as a skeleton beside the unpacked files and rebuilt byte for byte."""

from __future__ import annotations

import io
import random
import tarfile

import pytest

from dockyard.oci import digest as dg
from dockyard.store.layers import SKELETON, LayerStore


def _tar(entries: list[tuple], fmt=tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for e in entries:
            kind, name = e[0], e[1]
            ti = tarfile.TarInfo(name)
            ti.mtime = 1_700_000_000
            if kind == "file":
                data = e[2]
                ti.size, ti.mode = len(data), 0o644
                tf.addfile(ti, io.BytesIO(data))
            elif kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(ti)
            elif kind == "link":
                ti.type, ti.linkname = tarfile.LNKTYPE, e[2]
                tf.addfile(ti)
            elif kind == "sym":
                ti.type, ti.linkname = tarfile.SYMTYPE, e[2]
                tf.addfile(ti)
    return buf.getvalue()


def _roundtrip(store: LayerStore, raw: bytes) -> None:
    with store.pinning() as pinned:
        layer = store.import_stream(io.BytesIO(raw), None, pinned)
    assert layer.diff_id == dg.sha256_bytes(raw)
    assert not store.content.exists(layer.diff_id)  # not kept twice
    assert (store.dir(layer.chain_id) / SKELETON).is_file()
    assert store.tar_size(layer.diff_id) == len(raw)
    with store.open_tar(layer.diff_id) as f:  # streamed, not written out
        assert f.read() == raw
    assert not store.content.exists(layer.diff_id)
    assert store.tar_path(layer.diff_id).read_bytes() == raw


R = random.Random(3)
CASES = {
    "plain": [("dir", "etc"), ("file", "etc/a", b"a" * 1000), ("file", "big", R.randbytes(3_000_000)),
              ("file", "empty", b""), ("sym", "s", "big")],
    "long names and PAX": [("file", "d/" + "x" * 200, b"long"), ("file", "é/ü", b"utf8")],
    "gnu format": [("file", "g/" + "y" * 150, b"gnu" * 999)],
    "duplicate name": [("file", "a", b"first" * 1000), ("file", "a", b"second")],
    "whiteout of a file of the same layer": [("file", "w", b"gone" * 500), ("file", ".wh.w", b"")],
    "file replaced by a directory": [("file", "x", b"was a file" * 100), ("dir", "x"), ("file", "x/y", b"y")],
    "directory replaced by a file": [("dir", "d"), ("file", "d/in", b"inside" * 100), ("file", "d", b"now a file")],
    "hardlinks": [("file", "orig", b"shared" * 300), ("link", "hl", "orig"), ("file", "orig", b"new")],
}


@pytest.mark.parametrize("case", list(CASES))
def test_tar_rebuilds_byte_for_byte(store, case):
    fmt = tarfile.GNU_FORMAT if "gnu" in case else tarfile.PAX_FORMAT
    _roundtrip(store, _tar(CASES[case], fmt) + b"\0" * 10240)  # trailing blocks after the end too


def test_layer_kept_as_skeleton_goes_with_gc(store):
    raw = _tar([("file", "f", b"data" * 100)])
    with store.pinning() as pinned:
        layer = store.import_stream(io.BytesIO(raw), None, pinned)
    store.tar_path(layer.diff_id)  # rebuilt into the content store on demand
    assert store.content.exists(layer.diff_id)
    assert store.gc() == [layer.chain_id]
    assert not store.content.exists(layer.diff_id) and not store.dir(layer.chain_id).exists()
