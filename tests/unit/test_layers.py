"""Layer tar unpacking (whiteouts, traversal, metadata) and the layer store's lifecycle.

These run on the real filesystem in temp dirs (root needed for mknod, chown and
trusted.* xattrs, as the engine itself does).
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import shutil
import stat
import subprocess
import tarfile
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockyard.errors import InvalidParameter
from dockyard.oci import digest as dg
from dockyard.store.layers import OPAQUE_XATTR, classify_whiteout, clean_member_name, unpack_tar

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mknod, chown, trusted xattrs)")


def make_tar(entries: list[dict], fmt=tarfile.PAX_FORMAT) -> bytes:
    """entries: {name, type: f|d|l|h|c|b|p, data, link, mode, uid, gid, mtime, xattrs, major, minor}"""
    buf = io.BytesIO()
    types = {"f": tarfile.REGTYPE, "d": tarfile.DIRTYPE, "l": tarfile.SYMTYPE, "h": tarfile.LNKTYPE,
             "c": tarfile.CHRTYPE, "b": tarfile.BLKTYPE, "p": tarfile.FIFOTYPE}
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for e in entries:
            ti = tarfile.TarInfo(e["name"])
            ti.type = types[e.get("type", "f")]
            ti.mode = e.get("mode", 0o755 if e.get("type") == "d" else 0o644)
            ti.uid, ti.gid = e.get("uid", 0), e.get("gid", 0)
            ti.mtime = e.get("mtime", 1_600_000_000)
            ti.linkname = e.get("link", "")
            ti.devmajor, ti.devminor = e.get("major", 0), e.get("minor", 0)
            if e.get("xattrs"):
                ti.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in e["xattrs"].items()}
            data = e.get("data", b"")
            ti.size = len(data) if ti.type == tarfile.REGTYPE else 0
            tf.addfile(ti, io.BytesIO(data) if ti.type == tarfile.REGTYPE else None)
    return buf.getvalue()


def unpack(tmp_path: Path, entries: list[dict]) -> Path:
    tar = tmp_path / "layer.tar"
    tar.write_bytes(make_tar(entries))
    dest = tmp_path / "diff"
    dest.mkdir()
    unpack_tar(tar, dest)
    return dest


# ------------------------------------------------------------------ pure helpers

@pytest.mark.parametrize("name,clean", [
    ("a/b", "a/b"), ("/a/b", "a/b"), ("./a//b/", "a/b"), (".", "."), ("./", "."),
    ("a/../b", "b"), ("a/b/..", "a"),
])
def test_clean_member_name(name, clean):
    assert clean_member_name(name) == clean


@pytest.mark.parametrize("name", ["..", "../x", "a/../../x", "/../etc/passwd", "./a/../.."])
def test_clean_member_name_refuses_escape(name):
    with pytest.raises(InvalidParameter, match="escapes"):
        clean_member_name(name)


@given(st.lists(st.sampled_from(["a", "b", "..", ".", "", ".wh.x"]), max_size=8), st.booleans())
def test_clean_member_name_stays_inside(parts, absolute):
    name = ("/" if absolute else "") + "/".join(parts)
    try:
        rel = clean_member_name(name)
    except InvalidParameter:
        return
    root = "/layer/root"
    joined = os.path.normpath(os.path.join(root, rel))
    assert joined == root or joined.startswith(root + "/")
    assert ".." not in rel.split("/") and not rel.startswith("/")


def test_classify_whiteout():
    assert classify_whiteout("etc/.wh.passwd") == ("whiteout", "etc/passwd")
    assert classify_whiteout(".wh.top") == ("whiteout", "top")
    assert classify_whiteout("d/.wh..wh..opq") == ("opaque", "d")
    assert classify_whiteout(".wh..wh..opq") == ("opaque", ".")
    assert classify_whiteout("d/.wh..wh.plnk") == ("meta", "d/.wh..wh.plnk")
    assert classify_whiteout("d/x.wh.y") is None
    assert classify_whiteout("d/file") is None


# ------------------------------------------------------------------ unpacking

def test_whiteouts_become_overlay_whiteouts(tmp_path):
    d = unpack(tmp_path, [
        {"name": "etc", "type": "d"},
        {"name": "etc/.wh.passwd"},
        {"name": "opq", "type": "d"},
        {"name": "opq/.wh..wh..opq"},
        {"name": "opq/kept", "data": b"new"},
        {"name": "nested/deeper/.wh.gone"},  # parents created on the way
    ])
    st_ = os.lstat(d / "etc/passwd")
    assert stat.S_ISCHR(st_.st_mode) and st_.st_rdev == os.makedev(0, 0)
    assert not (d / "etc/.wh.passwd").exists()
    assert os.getxattr(d / "opq", OPAQUE_XATTR) == b"y"
    assert not (d / "opq/.wh..wh..opq").exists()
    assert (d / "opq/kept").read_bytes() == b"new"
    assert stat.S_ISCHR(os.lstat(d / "nested/deeper/gone").st_mode)


def test_metadata_is_preserved(tmp_path):
    d = unpack(tmp_path, [
        {"name": "bin", "type": "d", "mode": 0o750, "uid": 5, "gid": 6, "mtime": 1_500_000_000},
        {"name": "bin/tool", "data": b"#!/bin/sh\n", "mode": 0o4755, "uid": 1000, "gid": 1000,
         "mtime": 1_400_000_000},
        {"name": "bin/sh", "type": "l", "link": "tool", "uid": 7, "gid": 8},
        {"name": "bin/hard", "type": "h", "link": "bin/tool"},
        {"name": "dev/null", "type": "c", "major": 1, "minor": 3, "mode": 0o666},
        {"name": "dev/sda", "type": "b", "major": 8, "minor": 0, "mode": 0o660},
        {"name": "run/fifo", "type": "p", "mode": 0o600},
        {"name": "x", "data": b"x", "xattrs": {"user.note": "hello"}},
    ])
    st_bin = os.lstat(d / "bin")
    assert stat.S_IMODE(st_bin.st_mode) == 0o750 and (st_bin.st_uid, st_bin.st_gid) == (5, 6)
    assert st_bin.st_mtime == 1_500_000_000  # set after its children were created
    st_tool = os.lstat(d / "bin/tool")
    assert stat.S_IMODE(st_tool.st_mode) == 0o4755  # setuid survives chown
    assert (st_tool.st_uid, st_tool.st_gid, st_tool.st_mtime) == (1000, 1000, 1_400_000_000)
    assert os.readlink(d / "bin/sh") == "tool"
    assert (os.lstat(d / "bin/sh").st_uid, os.lstat(d / "bin/sh").st_gid) == (7, 8)
    assert os.lstat(d / "bin/hard").st_ino == st_tool.st_ino
    null = os.lstat(d / "dev/null")
    assert stat.S_ISCHR(null.st_mode) and null.st_rdev == os.makedev(1, 3)
    assert stat.S_ISBLK(os.lstat(d / "dev/sda").st_mode)
    assert stat.S_ISFIFO(os.lstat(d / "run/fifo").st_mode)
    assert os.getxattr(d / "x", "user.note") == b"hello"


def test_later_entries_replace_earlier_ones(tmp_path):
    d = unpack(tmp_path, [
        {"name": "a", "data": b"one"},
        {"name": "a", "data": b"two"},
        {"name": "b", "type": "d"}, {"name": "b/c", "data": b"c"},
        {"name": "b", "data": b"file now"},
        {"name": "l", "type": "l", "link": "/etc"},
        {"name": "l", "data": b"plain"},
    ])
    assert (d / "a").read_bytes() == b"two"
    assert (d / "b").read_bytes() == b"file now"
    assert not os.path.islink(d / "l") and (d / "l").read_bytes() == b"plain"


@pytest.mark.parametrize("entries", [
    [{"name": "../evil", "data": b"x"}],
    [{"name": "a/../../evil", "data": b"x"}],
    # a symlink to outside, then a file "through" it
    [{"name": "esc", "type": "l", "link": "/tmp"}, {"name": "esc/evil", "data": b"x"}],
    [{"name": "esc", "type": "l", "link": ".."}, {"name": "esc/evil", "data": b"x"}],
    # a hardlink to something outside the layer
    [{"name": "h", "type": "h", "link": "../../../etc/passwd"}],
    [{"name": "h", "type": "h", "link": "missing"}],
    # a whiteout through a symlink
    [{"name": "esc", "type": "l", "link": "/"}, {"name": "esc/.wh.etc"}],
])
def test_traversal_is_refused(tmp_path, entries):
    outside = tmp_path / "evil"
    with pytest.raises(InvalidParameter):
        unpack(tmp_path, entries)
    assert not outside.exists()
    assert not Path("/tmp/evil").exists()


def test_absolute_names_are_relative_to_the_root(tmp_path):
    d = unpack(tmp_path, [{"name": "/etc/hostname", "data": b"box"}, {"name": "./a/./b", "data": b"b"}])
    assert (d / "etc/hostname").read_bytes() == b"box"
    assert (d / "a/b").read_bytes() == b"b"


def test_not_a_tar_is_invalid(tmp_path):
    tar = tmp_path / "junk.tar"
    tar.write_bytes(b"this is not a tar archive at all" * 40)
    (tmp_path / "d").mkdir()
    with pytest.raises(InvalidParameter):
        unpack_tar(tar, tmp_path / "d")


names = st.text("abc", min_size=1, max_size=3)


@settings(max_examples=40)  # health checks and deadline: tests/conftest.py
@given(st.dictionaries(st.lists(names, min_size=1, max_size=3).map("/".join),
                       st.one_of(st.binary(max_size=64), st.just(None), st.just("whiteout")),
                       max_size=12))
def test_random_trees_unpack_as_described(tmp_path_factory, tree):
    """Files, directories and whiteouts from a random tree land exactly where the tar says."""
    tmp = tmp_path_factory.mktemp("tree")
    entries, expect = [], {}
    taken: set[str] = set()
    for path in sorted(tree):
        parts = path.split("/")
        # skip paths whose parent is a file or whiteout in this tree
        if any("/".join(parts[:i]) in taken for i in range(1, len(parts))):
            continue
        v = tree[path]
        if v is None:
            entries.append({"name": path, "type": "d"})
            expect[path] = "dir"
        elif v == "whiteout":
            parent = "/".join(parts[:-1])
            entries.append({"name": (parent + "/" if parent else "") + ".wh." + parts[-1]})
            expect[path] = "whiteout"
            taken.add(path)
        else:
            entries.append({"name": path, "data": v})
            expect[path] = v
            taken.add(path)
    d = unpack(tmp, entries)
    for path, what in expect.items():
        st_ = os.lstat(d / path)
        if what == "dir":
            assert stat.S_ISDIR(st_.st_mode)
        elif what == "whiteout":
            assert stat.S_ISCHR(st_.st_mode) and st_.st_rdev == 0
        else:
            assert (d / path).read_bytes() == what
    for dirpath, dirs, files in os.walk(d):
        assert not any(f.startswith(".wh.") for f in files)


# ------------------------------------------------------------------ the store

def _layer_file(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_compressions_give_the_same_diff_id(store, tmp_path):
    raw = make_tar([{"name": "hello", "data": b"hello world\n" * 100}])
    variants = {
        "plain": raw,
        "gzip": gzip.compress(raw),
        "bzip2": bz2.compress(raw),
        "xz": lzma.compress(raw),
    }
    if shutil.which("zstd"):
        variants["zstd"] = subprocess.run(["zstd", "-q", "-c"], input=raw, capture_output=True,
                                          check=True).stdout
    layers = []
    with store.pinning() as pinned:
        for kind, data in variants.items():
            layers.append(store.import_layer(_layer_file(tmp_path, kind, data), None, pinned))
    assert {l.diff_id for l in layers} == {dg.sha256_bytes(raw)}
    assert {l.chain_id for l in layers} == {dg.sha256_bytes(raw)}
    # The content store keeps the uncompressed tar, byte for byte.
    assert store.tar_path(layers[0].diff_id).read_bytes() == raw
    assert (store.diff_dir(layers[0].chain_id) / "hello").read_bytes() == b"hello world\n" * 100


def test_layers_are_stored_once_and_refcounted(store, tmp_path):
    base = _layer_file(tmp_path, "base", make_tar([{"name": "base", "data": b"b"}]))
    top = _layer_file(tmp_path, "top", make_tar([{"name": "top", "data": b"t"}]))
    with store.pinning() as pinned:
        l1 = store.import_layer(base, None, pinned)
        l2 = store.import_layer(top, l1.chain_id, pinned)
        again = store.import_layer(base, None, pinned)
        store.add_refs("img1", [l1.chain_id, l2.chain_id])
        store.add_refs("img2", [l1.chain_id])
    assert again == l1
    assert l2.chain_id == dg.chain_ids([l1.diff_id, l2.diff_id])[1]
    assert len([p for p in store.root.iterdir() if p.name != "tmp"]) == 2
    assert store.refcount(l1.chain_id) == 2
    store.drop_refs("img1")
    assert store.gc() == [l2.chain_id]
    assert store.dir(l1.chain_id).exists() and not store.dir(l2.chain_id).exists()
    assert not store.content.exists(l2.diff_id)
    store.drop_refs("img2")
    assert store.gc() == [l1.chain_id]
    assert [p.name for p in store.root.iterdir()] == ["tmp"]


def test_pinned_layers_survive_gc(store, tmp_path):
    f = _layer_file(tmp_path, "l", make_tar([{"name": "x", "data": b"x"}]))
    with store.pinning() as pinned:
        layer = store.import_layer(f, None, pinned)
        assert store.gc() == []  # no reference yet, but pinned by the import in progress
    assert store.gc() == [layer.chain_id]


def test_diff_id_mismatch_is_refused(store, tmp_path):
    f = _layer_file(tmp_path, "l", make_tar([{"name": "x", "data": b"x"}]))
    with store.pinning() as pinned, pytest.raises(InvalidParameter, match="mismatch"):
        store.import_layer(f, None, pinned, expected_diff_id="sha256:" + "0" * 64)
    assert store.all() == []
    assert list(store.content.tmp_dir.iterdir()) == []


def test_failed_unpack_leaves_nothing_visible(store, tmp_path):
    bad = _layer_file(tmp_path, "bad", make_tar([{"name": "ok", "data": b"1"},
                                                 {"name": "../evil", "data": b"2"}]))
    with store.pinning() as pinned, pytest.raises(InvalidParameter):
        store.import_layer(bad, None, pinned)
    assert store.all() == []
    assert [p.name for p in store.root.iterdir()] == ["tmp"]
    assert list(store.tmp_dir.iterdir()) == [] and list(store.content.tmp_dir.iterdir()) == []


def test_repair_removes_leftovers_of_interrupted_imports(store, tmp_path):
    keep = _layer_file(tmp_path, "keep", make_tar([{"name": "k", "data": b"k"}]))
    with store.pinning() as pinned:
        kept = store.import_layer(keep, None, pinned)
        store.add_refs("img", [kept.chain_id])
        unref = store.import_layer(_layer_file(tmp_path, "u", make_tar([{"name": "u"}])), None, pinned)
    # A crash mid-unpack, one between rename and the row, and a stray blob write.
    (store.tmp_dir / "unpack-123" / "diff" / "half").mkdir(parents=True)
    orphan = store.root / ("f" * 64)
    (orphan / "diff").mkdir(parents=True)
    (store.content.tmp_dir / "blob-xyz").write_bytes(b"partial")
    stats = store.repair()
    store.content.repair()
    assert stats["tmp"] == 1 and stats["orphan_dirs"] == 1 and stats["unreferenced"] == 1
    assert not orphan.exists() and not store.dir(unref.chain_id).exists()
    assert store.diff_dir(kept.chain_id).is_dir() and store.get(kept.chain_id) is not None
    assert list(store.tmp_dir.iterdir()) == [] and list(store.content.tmp_dir.iterdir()) == []


def test_concurrent_imports_of_one_layer(store, tmp_path):
    f = _layer_file(tmp_path, "l", make_tar([{"name": f"f{i}", "data": os.urandom(1000)} for i in range(50)]))
    results, errors = [], []

    def work():
        try:
            with store.pinning() as pinned:
                results.append(store.import_layer(f, None, pinned))
        except Exception as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len({r.chain_id for r in results}) == 1
    assert len(store.all()) == 1
    assert len(os.listdir(store.diff_dir(results[0].chain_id))) == 50
    assert list(store.tmp_dir.iterdir()) == []


def test_write_diff_tar_turns_overlay_whiteouts_back_into_tar_whiteouts(tmp_path):
    """docker commit's layer: a char device 0:0 becomes .wh.<name>, an opaque dir gets .wh..wh..opq."""
    from dockyard.store.layers import write_diff_tar

    upper = tmp_path / "upper"
    (upper / "etc").mkdir(parents=True)
    (upper / "etc" / "new.conf").write_text("x")
    os.mknod(upper / "etc" / "gone", stat.S_IFCHR | 0o000, os.makedev(0, 0))
    (upper / "opaque").mkdir()
    os.setxattr(upper / "opaque", "trusted.overlay.opaque", b"y")
    (upper / "opaque" / "kept").write_text("k")
    os.link(upper / "etc" / "new.conf", upper / "hardlink")
    out = tmp_path / "layer.tar"
    write_diff_tar(upper, out)
    with tarfile.open(out) as tf:
        names = tf.getnames()
        assert "etc/.wh.gone" in names and "etc/gone" not in names
        assert "opaque/.wh..wh..opq" in names and "opaque/kept" in names
        assert tf.extractfile("etc/new.conf").read() == b"x"
        links = [m for m in tf.getmembers() if m.islnk()]
        assert len(links) == 1  # the second name of one inode is a hard link entry


def _gnu_and_pax_tar() -> tuple[bytes, dict[str, bytes]]:
    """Long names (GNU and PAX records), sizes around the 512-byte block and the 1 MiB buffer."""
    files = {
        "d/" + "n" * 150: os.urandom(513),
        "e/" + "p" * 120 + "/f": os.urandom((1 << 20) + 7),
        "empty": b"",
        "block": os.urandom(512),
        "odd": os.urandom(511),
        "big": os.urandom(3 * (1 << 20) + 1),
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for i, (name, data) in enumerate(files.items()):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            if i % 2:
                ti.pax_headers = {"comment": "x" * 700}  # a PAX record spanning blocks
            tf.format = tarfile.PAX_FORMAT if i % 2 else tarfile.GNU_FORMAT
            tf.addfile(ti, io.BytesIO(data))
    return out.getvalue(), files


def test_stream_import_in_odd_pieces_round_trips(store):
    """A plain tar read once from a non-seekable stream in pieces that split headers and
    contents anywhere: files unpacked whole, the tar rebuilt byte for byte."""
    from dockyard.store.pipe import IterReader

    raw, files = _gnu_and_pax_tar()
    pieces = [raw[i:i + 7777] for i in range(0, len(raw), 7777)]
    with store.pinning() as pinned:
        layer = store.import_stream(IterReader(pieces), None, pinned)  # type: ignore[arg-type]
    assert layer.diff_id == dg.sha256_bytes(raw)
    for name, data in files.items():
        assert (store.diff_dir(layer.chain_id) / name).read_bytes() == data
    assert store.tar_path(layer.diff_id).read_bytes() == raw


def test_stream_cut_inside_file_contents_is_refused(store):
    from dockyard.store.pipe import IterReader

    raw, _ = _gnu_and_pax_tar()
    cut = raw[:len(raw) - (2 << 20)]  # inside "big"
    with store.pinning() as pinned, pytest.raises(InvalidParameter):
        store.import_stream(IterReader([cut]), None, pinned)  # type: ignore[arg-type]
    assert store.all() == []
    assert list(store.tmp_dir.iterdir()) == []
