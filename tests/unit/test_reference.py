"""Docker image reference parsing: examples from Docker's behaviour plus properties."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from dockyard.errors import InvalidParameter
from dockyard.oci import reference as r

HEX64 = "a" * 64


@pytest.mark.parametrize("given_,full,familiar", [
    ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("index.docker.io/library/busybox:1", "docker.io/library/busybox:1", "busybox:1"),
    ("user/app", "docker.io/user/app:latest", "user/app:latest"),
    ("user/app/sub:v2", "docker.io/user/app/sub:v2", "user/app/sub:v2"),
    ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
    ("localhost:5000/a/b:tag", "localhost:5000/a/b:tag", "localhost:5000/a/b:tag"),
    ("host:5000/a/b:tag", "host:5000/a/b:tag", "host:5000/a/b:tag"),
    ("registry.example.com/x", "registry.example.com/x:latest", "registry.example.com/x:latest"),
    ("[::1]:5000/x:y", "[::1]:5000/x:y", "[::1]:5000/x:y"),
    ("a_b-c__d/f---g.h:T_a.g-1", "docker.io/a_b-c__d/f---g.h:T_a.g-1", "a_b-c__d/f---g.h:T_a.g-1"),
    ("a.b/c", "a.b/c:latest", "a.b/c:latest"),  # a dot makes the first component a registry
])
def test_normalisation(given_, full, familiar):
    ref = r.parse_tagged(given_)
    assert str(ref) == full
    assert ref.familiar() == familiar


def test_digest_reference():
    ref = r.parse(f"host:5000/a/b@sha256:{HEX64}")
    assert (ref.domain, ref.path, ref.tag, ref.digest) == ("host:5000", "a/b", None, f"sha256:{HEX64}")
    assert ref.tag_name_only() == ref  # a digest is specific enough: no :latest added
    both = r.parse(f"busybox:1@sha256:{HEX64}")
    assert both.familiar() == f"busybox:1@sha256:{HEX64}"


@pytest.mark.parametrize("bad,fragment", [
    ("", "invalid reference format"),
    ("Busybox", "must be lowercase"),
    ("host:5000/Upper/x", "must be lowercase"),
    (HEX64, "cannot specify 64-byte hexadecimal strings"),
    ("busybox:", "invalid reference format"),
    ("busybox:-tag", "invalid reference format"),
    ("a//b", "invalid reference format"),
    ("-x", "invalid reference format"),
    ("x_", "invalid reference format"),
    ("x@sha256:abc", "invalid reference format"),
    ("x@sha256:" + "A" * 64, "invalid checksum digest format"),
    ("x:" + "t" * 129, "invalid reference format"),
    ("a/" + "b" * 260, "must not be more than 255 characters"),
])
def test_invalid(bad, fragment):
    with pytest.raises(InvalidParameter) as e:
        r.parse(bad)
    assert fragment in e.value.message


def test_repo_tag():
    assert str(r.repo_tag("busybox", "v1")) == "docker.io/library/busybox:v1"
    assert str(r.repo_tag("busybox", None)) == "docker.io/library/busybox:latest"
    assert str(r.repo_tag("busybox:old", "new")) == "docker.io/library/busybox:new"
    with pytest.raises(InvalidParameter, match="cannot create a tag with a digest"):
        r.repo_tag(f"busybox@sha256:{HEX64}", None)
    with pytest.raises(InvalidParameter, match="invalid tag format"):
        r.repo_tag("busybox", "bad tag")
    with pytest.raises(InvalidParameter):
        r.repo_tag("", "x")


def test_id_prefix():
    image_id = "sha256:" + "0123456789abcdef" * 4
    assert r.is_id_prefix(image_id, "0123")
    assert r.is_id_prefix(image_id, "sha256:0123456789ab")
    assert not r.is_id_prefix(image_id, "1234")
    assert not r.is_id_prefix(image_id, "busybox")


def test_glob_match_is_go_path_match():
    assert r.glob_match("busy*", "busybox")
    assert not r.glob_match("*", "user/app")  # * never crosses "/"
    assert r.glob_match("*/*", "user/app")
    assert r.glob_match("b?sybox:[0-9]*", "busybox:1.36")
    assert r.familiar_match("busybox", r.parse_tagged("busybox"))  # the name alone matches
    assert r.familiar_match("busybox:lat*", r.parse_tagged("busybox"))
    assert not r.familiar_match("alpine*", r.parse_tagged("busybox"))


# ------------------------------------------------------------------ properties

alnum = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=6)
separator = st.sampled_from([".", "_", "__", "-", "--"])
component = st.builds(lambda a, rest: a + "".join(s + b for s, b in rest),
                      alnum, st.lists(st.tuples(separator, alnum), max_size=2))
domain_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,5}[a-z0-9])?", fullmatch=True)
domain = st.one_of(
    st.none(),
    st.just("localhost"),
    st.builds(lambda a, b: f"{a}.{b}", domain_label, domain_label),
    st.builds(lambda h, p: f"{h}:{p}", domain_label, st.integers(1, 65535)),
)
tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
hexdigest = st.text("0123456789abcdef", min_size=64, max_size=64)


@st.composite
def references(draw):
    d = draw(domain)
    comps = draw(st.lists(component, min_size=1, max_size=3))
    if d is None and len(comps) > 1:
        # Without a registry the first component must not look like one.
        assume("." not in comps[0] and comps[0] != "localhost")
    path = "/".join(comps)
    s = f"{d}/{path}" if d else path
    t = draw(st.none() | tag)
    dig = draw(st.none() | hexdigest)
    if t:
        s += ":" + t
    if dig:
        s += "@sha256:" + dig
    return s, d, path, t, dig


@given(references())
def test_valid_references_round_trip(case):
    s, d, path, t, dig = case
    assume(len((d + "/" if d else "") + path) <= 255)
    assume(not r.ID_RE.match(s))
    ref = r.parse(s)
    assert ref.tag == t
    assert ref.digest == (f"sha256:{dig}" if dig else None)
    # Normalised and familiar forms name the same thing.
    assert r.parse(str(ref)) == ref
    assert r.parse(ref.familiar()) == ref
    if d is None:
        assert ref.domain == "docker.io"
        assert ref.path == (path if "/" in path else "library/" + path)
        assert ref.familiar_name == path.removeprefix("library/") if path.count("/") == 1 else True
    else:
        assert ref.domain == ("docker.io" if d == "index.docker.io" else d)
    # TagNameOnly adds :latest only when there is neither tag nor digest.
    tn = ref.tag_name_only()
    assert tn.tag == (t if (t or dig) else "latest")


@given(st.text(max_size=80))
def test_parser_never_crashes(s):
    try:
        ref = r.parse(s)
    except InvalidParameter as exc:
        assert exc.message
    else:
        assert r.parse(str(ref)) == ref
        assert ref.path == ref.path.lower()


@given(references(), st.sampled_from("ABCXYZ"))
def test_uppercase_repository_is_rejected(case, upper):
    s, d, path, t, dig = case
    # Upper case in the first component would make it a registry name, which is
    # allowed; after an explicit registry it is a repository name, which is not.
    bad = f"{d or 'docker.io'}/{upper}{path}"
    with pytest.raises(InvalidParameter):
        r.parse(bad)


@given(st.lists(st.sampled_from(["a", "b", "*", "?", "/"]), max_size=8),
       st.lists(st.sampled_from(["a", "b", "/"]), max_size=8))
def test_glob_star_never_crosses_slash(pat, val):
    pattern, value = "".join(pat), "".join(val)
    if r.glob_match(pattern, value):
        assert pattern.count("/") == value.count("/")
