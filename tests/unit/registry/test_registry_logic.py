"""Pure logic of the registry: names, digests, pagination, ranges, negotiation, scopes."""

from __future__ import annotations

import pytest

from dockyard.distribution.registry.auth.access import AccessPolicy, Scope, parse_scope
from dockyard.distribution.registry.config import AccessRule
from dockyard.distribution.registry.errors import CODES, RangeNotSatisfiable, RegistryError
from dockyard.distribution.registry.mediatypes import (DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST,
                                                       acceptable, is_non_distributable)
from dockyard.distribution.registry.names import is_tag, parse_digest, validate_name
from dockyard.distribution.registry.tags import paginate, parse_n
from dockyard.distribution.registry.uploads import parse_content_range


@pytest.mark.parametrize("name", ["a", "a/b", "a-b/c__d/e.f", "x" * 255, "a--b", "0/1/2"])
def test_valid_names(name):
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["", "A", "a/", "/a", "a//b", "a_", "-a", "a/_x", "a\n", "x" * 256, "a___b"])
def test_invalid_names(name):
    with pytest.raises(RegistryError) as e:
        validate_name(name)
    assert e.value.code == "NAME_INVALID" and e.value.status == 400


def test_digests():
    d = parse_digest("sha256:" + "a" * 64)
    assert (d.algorithm, str(d)) == ("sha256", "sha256:" + "a" * 64)
    assert parse_digest("sha512:" + "0" * 128).algorithm == "sha512"
    for bad in ["sha256:" + "a" * 63, "sha256:" + "A" * 64, "md5:" + "0" * 32, "sha256", "", "sha256:" + "a" * 64 + "\n"]:
        with pytest.raises(RegistryError) as e:
            parse_digest(bad)
        assert e.value.code == "DIGEST_INVALID"


def test_tags():
    assert is_tag("latest") and is_tag("_x") and is_tag("v1.2-rc_3") and is_tag("a" * 128)
    assert not is_tag(".x") and not is_tag("-x") and not is_tag("a" * 129) and not is_tag("a/b")


def test_paginate_is_ascii_sorted_and_exclusive():
    items = ["b", "a", "C", "c"]
    assert paginate(items, None, None) == (["C", "a", "b", "c"], False)
    assert paginate(items, 2, None) == (["C", "a"], True)
    assert paginate(items, 2, "a") == (["b", "c"], False)
    assert paginate(items, 0, None) == ([], True)
    assert paginate(items, None, "zz") == ([], False)


def test_parse_n():
    assert parse_n(None) is None and parse_n("5") == 5 and parse_n("0") == 0
    for bad in ("-1", "x", "1e3", "100001"):
        with pytest.raises(RegistryError) as e:
            parse_n(bad)
        assert e.value.code == "PAGINATION_NUMBER_INVALID"


def test_content_range():
    assert parse_content_range("0-99") == (0, 99)
    assert parse_content_range("bytes 100-199/1000") == (100, 199)
    assert parse_content_range("bytes=5-5/*") == (5, 5)
    with pytest.raises(RangeNotSatisfiable):
        parse_content_range("10-5")
    with pytest.raises(RegistryError) as e:
        parse_content_range("abc")
    assert e.value.status == 400


def test_negotiation():
    assert acceptable(OCI_MANIFEST, [])
    assert acceptable(OCI_MANIFEST, ["*/*"])
    assert acceptable(DOCKER_LIST, [f"{DOCKER_MANIFEST}, {DOCKER_LIST}"])
    assert not acceptable(DOCKER_LIST, [OCI_MANIFEST, OCI_INDEX])
    assert acceptable(OCI_INDEX, [DOCKER_MANIFEST, f"{OCI_INDEX};q=0.5"])
    assert acceptable(OCI_MANIFEST, ["text/html"])  # says nothing about manifests: serve
    assert is_non_distributable("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip")
    assert is_non_distributable("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip")
    assert not is_non_distributable("application/vnd.oci.image.layer.v1.tar+gzip")


def test_scopes_and_policy():
    s = parse_scope("repository:a/b:pull,push")
    assert s == Scope("repository", "a/b", ("pull", "push")) and str(s) == "repository:a/b:pull,push"
    assert parse_scope("repository(plugin):x:pull") == Scope("repository", "x", ("pull",))
    assert parse_scope("registry:catalog:*") == Scope("registry", "catalog", ("*",))
    assert parse_scope("nonsense") is None
    open_policy = AccessPolicy([], anonymous_pull=True)
    assert open_policy.granted(None, s) == ("pull",)
    assert open_policy.granted("alice", s) == ("pull", "push")
    closed = AccessPolicy([], anonymous_pull=False)
    assert closed.granted(None, s) == ()
    rules = AccessPolicy([AccessRule("alice", "alice/*", ["pull", "push"]), AccessRule("*", "*", ["pull"])], False)
    assert rules.granted("alice", Scope("repository", "alice/x", ("pull", "push"))) == ("pull", "push")
    assert rules.granted("alice", Scope("repository", "bob/x", ("pull", "push"))) == ("pull",)
    assert rules.granted(None, Scope("repository", "bob/x", ("pull",))) == ()


def test_error_table_matches_spec():
    spec = ["BLOB_UNKNOWN", "BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN", "DIGEST_INVALID", "MANIFEST_BLOB_UNKNOWN",
            "MANIFEST_INVALID", "MANIFEST_UNKNOWN", "NAME_INVALID", "NAME_UNKNOWN", "SIZE_INVALID", "UNAUTHORIZED",
            "DENIED", "UNSUPPORTED", "TOOMANYREQUESTS"]
    assert set(spec) <= set(CODES)
    assert CODES["UNAUTHORIZED"][0] == 401 and CODES["DENIED"][0] == 403 and CODES["NAME_UNKNOWN"][0] == 404
    body = RegistryError("BLOB_UNKNOWN", detail={"digest": "x"}).body()
    assert body == {"errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown to registry",
                                "detail": {"digest": "x"}}]}
