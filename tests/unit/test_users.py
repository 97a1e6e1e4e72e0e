import os

import pytest

from dockyard.errors import InvalidParameter
from dockyard.oci.users import resolve_in_root, resolve_user


@pytest.fixture
def rootfs(tmp_path):
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\n"
        "# comment\n"
        "app:x:1000:1001:app:/home/app:/bin/sh\n"
        "nobody:x:65534:65534::/nonexistent:/bin/false\n")
    (etc / "group").write_text(
        "root:x:0:\nwheel:x:10:root\napp:x:1001:\ndev:x:2000:app,other\nops:x:3000:app\n"
        "nogroup:x:65534:\n")
    return str(tmp_path)


def test_default_is_root_with_its_groups(rootfs):
    u = resolve_user(rootfs, "")
    assert (u.uid, u.gid, u.additional_gids, u.home) == (0, 0, [10], "/root")


def test_name(rootfs):
    u = resolve_user(rootfs, "app")
    assert u.as_tuple() == (1000, 1001, [2000, 3000])
    assert u.home == "/home/app"


def test_numeric_uid_in_passwd(rootfs):
    assert resolve_user(rootfs, "1000").as_tuple() == (1000, 1001, [2000, 3000])


def test_numeric_uid_not_in_passwd(rootfs):
    assert resolve_user(rootfs, "4242").as_tuple() == (4242, 0, [])


def test_explicit_group_drops_supplementary(rootfs):
    assert resolve_user(rootfs, "app:ops").as_tuple() == (1000, 3000, [])
    assert resolve_user(rootfs, "1000:5555").as_tuple() == (1000, 5555, [])
    assert resolve_user(rootfs, "nobody:nogroup").as_tuple() == (65534, 65534, [])


def test_unknown_user_message(rootfs):
    with pytest.raises(InvalidParameter) as e:
        resolve_user(rootfs, "ghost")
    assert e.value.message == "unable to find user ghost: no matching entries in passwd file"


def test_unknown_group(rootfs):
    with pytest.raises(InvalidParameter, match="unable to find group ghosts"):
        resolve_user(rootfs, "app:ghosts")


def test_group_add(rootfs):
    assert resolve_user(rootfs, "app", ["wheel", "4000", "ops"]).as_tuple() == (1000, 1001, [2000, 3000, 10, 4000])
    with pytest.raises(InvalidParameter):
        resolve_user(rootfs, "", ["nosuchgroup"])


def test_missing_files(tmp_path):
    assert resolve_user(str(tmp_path), "").as_tuple() == (0, 0, [])
    assert resolve_user(str(tmp_path), "1:2").as_tuple() == (1, 2, [])
    with pytest.raises(InvalidParameter):
        resolve_user(str(tmp_path), "app")


def test_range(rootfs):
    with pytest.raises(InvalidParameter, match="uids and gids must be in range"):
        resolve_user(rootfs, "4294967296")


def test_symlinked_passwd_stays_in_root(tmp_path, rootfs):
    # /etc/passwd → /../../host/passwd must resolve inside the rootfs.
    root = tmp_path / "r2"
    (root / "etc").mkdir(parents=True)
    (root / "real").mkdir()
    (root / "real" / "passwd").write_text("svc:x:77:77::/:/bin/sh\n")
    os.symlink("/../../real/passwd", root / "etc" / "passwd")
    assert resolve_in_root(str(root), "/etc/passwd") == str(root) + "/real/passwd"
    assert resolve_user(str(root), "svc").as_tuple() == (77, 77, [])
