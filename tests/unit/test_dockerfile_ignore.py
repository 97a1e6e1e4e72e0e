""".dockerignore matching (Docker's patternmatcher rules) and the COPY source/destination logic."""

from __future__ import annotations

import os
import tarfile

import pytest

from dockyard.engine.build import context as ctx
from dockyard.engine.build.ignore import IgnoreMatcher, read_patterns
from dockyard.errors import InvalidParameter, NotFound


@pytest.mark.parametrize("patterns, path, ignored", [
    (["secret.txt"], "secret.txt", True),
    (["secret.txt"], "sub/secret.txt", False),
    (["*.log"], "a.log", True),
    (["*.log"], "dir/a.log", False),           # * stays in one segment
    (["**/*.log"], "dir/deep/a.log", True),
    (["**/*.log"], "a.log", True),
    (["build"], "build/x/y", True),            # a matched directory takes its contents
    (["/build/"], "build/x", True),            # cleaned: leading and trailing slashes
    (["*.md", "!README.md"], "README.md", False),
    (["*.md", "!README.md"], "NOTES.md", True),
    (["*.md", "!README.md", "README*"], "README.md", True),  # the last matching rule wins
    (["a?c"], "abc", True),
    (["a[0-9]"], "a5", True),
    (["a[0-9]"], "ab", False),
    ([], "anything", False),
])
def test_ignore(patterns, path, ignored):
    assert IgnoreMatcher(patterns).ignored(path) is ignored


def test_read_patterns_skips_comments():
    assert read_patterns("# c\n\n  a  \n!b\n") == ["a", "!b"]


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "ctx"
    (root / "sub" / "deep").mkdir(parents=True)
    (root / "one.txt").write_text("1")
    (root / "two.txt").write_text("2")
    (root / "sub" / "a").write_text("a")
    (root / "sub" / "deep" / "b").write_text("b")
    (root / "link").symlink_to("/etc/passwd")   # absolute: resolved inside the context
    return root


def test_resolve_sources_wildcards_and_ignore(tree):
    found = ctx.resolve_sources(str(tree), ["*.txt"], None, "COPY")
    assert [s.rel for s in found] == ["one.txt", "two.txt"]
    found = ctx.resolve_sources(str(tree), ["sub"], IgnoreMatcher(["sub/deep"]), "COPY")
    assert found[0].is_dir
    names = [below for _, below, _ in ctx._walk(found[0], IgnoreMatcher(["sub/deep"]))]
    assert names == ["a"]
    with pytest.raises(NotFound, match="excluded by .dockerignore"):
        ctx.resolve_sources(str(tree), ["one.txt"], IgnoreMatcher(["one.txt"]), "COPY")
    with pytest.raises(InvalidParameter, match="forbidden path outside the build context"):
        ctx.resolve_sources(str(tree), ["../x"], None, "COPY")
    with pytest.raises(NotFound):
        ctx.resolve_sources(str(tree), ["link"], None, "COPY")  # /etc/passwd of the context, not the host


def test_source_hash_tracks_content_not_time(tree):
    src = ctx.resolve_sources(str(tree), ["sub"], None, "COPY")[0]
    h1 = ctx.source_hash(src, None)
    os.utime(tree / "sub" / "a", (1, 1))
    assert ctx.source_hash(src, None) == h1
    (tree / "sub" / "a").write_text("changed")
    assert ctx.source_hash(src, None) != h1 and h1.startswith("dir:")


@pytest.mark.parametrize("dest, workdir, expected", [
    ("/abs", "/w", "/abs"),
    ("rel", "/w", "/w/rel"),
    ("rel/", "/w", "/w/rel/"),
    (".", "/w", "/w/"),
    ("./", "", "/"),
])
def test_normalize_dest(dest, workdir, expected):
    assert ctx.normalize_dest(dest, workdir) == expected


def test_copy_tar_destinations(tree, tmp_path):
    rootfs = tmp_path / "rootfs"
    (rootfs / "existing").mkdir(parents=True)
    out = tmp_path / "out.tar"
    srcs = ctx.resolve_sources(str(tree), ["one.txt"], None, "COPY")
    ctx.write_copy_tar(out, str(rootfs), srcs, "/existing", (5, 6), False, None, "COPY")
    with tarfile.open(out) as tf:
        m = tf.getmember("existing/one.txt")   # an existing directory receives the file
        assert (m.uid, m.gid) == (5, 6)
    ctx.write_copy_tar(out, str(rootfs), srcs, "/new/name", (0, 0), False, None, "COPY")
    with tarfile.open(out) as tf:
        assert tf.getnames() == ["new", "new/name"]
    srcs = ctx.resolve_sources(str(tree), ["*.txt"], None, "COPY")
    with pytest.raises(InvalidParameter, match="must be a directory and end with a /"):
        ctx.write_copy_tar(out, str(rootfs), srcs, "/x", (0, 0), False, None, "COPY")
