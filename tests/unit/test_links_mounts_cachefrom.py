"""Pure rules behind legacy links, --volumes-from, docker cp path resolution and cache_from."""

from __future__ import annotations

import os

import pytest

from dockyard.engine.build.cachefrom import layer_for_history_index, valid_parent
from dockyard.engine.containers import links, mountpoints
from dockyard.engine.containers.archive import secure_join
from dockyard.engine.containers.model import Container
from dockyard.errors import InvalidParameter


def _ctr(name: str, **kw) -> Container:
    return Container(id=name * 8, name=name, created="", image_id="", image_ref="", path="true", args=[],
                     config=kw.pop("config", {}), host_config=kw.pop("host_config", {}), **kw)


def test_parse_link():
    assert links.parse_link("web:db") == ("web", "db")
    assert links.parse_link("/web") == ("web", "web")
    with pytest.raises(InvalidParameter, match="bad format for links: a:b:c"):
        links.parse_link("a:b:c")
    with pytest.raises(InvalidParameter, match="empty string specified for links"):
        links.parse_link("")


def test_link_env_single_port_and_env():
    env = links.link_env("app", "my-db", "10.0.0.2", {"5432/tcp": {}}, ["PATH=/bin", "HOME=/", "PW=x=y"])
    assert env == ["MY_DB_PORT=tcp://10.0.0.2:5432", "MY_DB_PORT_5432_TCP=tcp://10.0.0.2:5432",
                   "MY_DB_PORT_5432_TCP_ADDR=10.0.0.2", "MY_DB_PORT_5432_TCP_PORT=5432",
                   "MY_DB_PORT_5432_TCP_PROTO=tcp", "MY_DB_NAME=/app/my-db", "MY_DB_ENV_PW=x=y"]
    assert links.link_env("app", "x", "1.2.3.4", None, None) == ["X_NAME=/app/x"]


def test_link_hosts_line_names_alias_hostname_and_name():
    child = _ctr("web", config={"Hostname": "abc"})
    assert links.hosts_entries([("db", child, "1.2.3.4")]) == [("db abc web", "1.2.3.4")]
    assert links.hosts_entries([("web", child, "1.2.3.4")]) == [("web abc", "1.2.3.4")]


def test_mount_points_and_volumes_from():
    src = _ctr("a", host_config={"Binds": ["/host:/b:ro", "named:/n"], "Tmpfs": {"/t": ""}},
               volumes={"/n": "named", "/anon": "f" * 64})
    mps = {m.destination: m for m in mountpoints.mount_points(src)}
    assert mps["/b"] == mountpoints.MountPoint("/b", "bind", "/host", True)
    assert mps["/n"].type == "volume" and not mps["/n"].read_only and mps["/t"].type == "tmpfs"
    got = mountpoints.inherit(["a:rw"], lambda ref: src, own_destinations={"/n"})
    assert {m["Target"]: m["ReadOnly"] for m in got} == {"/anon": False, "/b": True, "/t": False}
    got = mountpoints.inherit(["a:ro"], lambda ref: src, own_destinations=set())
    assert all(m["ReadOnly"] for m in got)
    with pytest.raises(InvalidParameter, match="invalid mode: bogus"):
        mountpoints.inherit(["a:bogus"], lambda ref: src, own_destinations=set())


def test_secure_join_never_leaves_the_root(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    os.symlink("/etc", root / "abs")
    os.symlink("../../../../..", root / "up")
    os.symlink("loop2", root / "loop1")
    os.symlink("loop1", root / "loop2")
    assert secure_join(str(root), "/abs/passwd") == str(root / "etc" / "passwd")
    assert secure_join(str(root), "/up/etc") == str(root / "etc")
    assert secure_join(str(root), "/../../x") == str(root / "x")
    with pytest.raises(OSError):
        secure_join(str(root), "/loop1")


def test_cache_from_parent_rules():
    h = [{"created_by": "a"}, {"created_by": "b", "empty_layer": True}, {"created_by": "c"}]
    target = {"history": h, "rootfs": {"diff_ids": ["sha256:1", "sha256:2"]}}
    assert valid_parent(target, None)
    assert valid_parent(target, {"history": h[:1], "rootfs": {"diff_ids": ["sha256:1"]}})
    assert not valid_parent(target, {"history": h[:1], "rootfs": {"diff_ids": ["sha256:9"]}})
    assert not valid_parent(target, {"history": [{"created_by": "z"}], "rootfs": {"diff_ids": ["sha256:1"]}})
    assert not valid_parent(target, target)
    assert layer_for_history_index(target, 0) == "sha256:1"
    assert layer_for_history_index(target, 1) is None
    assert layer_for_history_index(target, 2) == "sha256:2"
