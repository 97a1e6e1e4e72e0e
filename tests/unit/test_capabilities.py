import pytest

from dockyard.errors import InvalidParameter
from dockyard.oci import capabilities as c

ENGINE_NO_SYS_RESOURCE = [x for x in c.CAPABILITIES if x != "CAP_SYS_RESOURCE"]


def test_default_mask_matches_docker():
    assert c.mask_from_caps(c.DEFAULT_CAPABILITIES) == 0xA80425FB
    caps = c.container_capabilities(None, None, False, list(c.CAPABILITIES))
    assert c.mask_from_caps(caps) == 0xA80425FB


def test_mask_round_trip():
    assert c.caps_from_mask(0x1FFFEFFFFFF) == ENGINE_NO_SYS_RESOURCE
    assert c.caps_from_mask(0) == []


def test_normalize_accepts_docker_spellings():
    assert c.normalize(["net_admin", "CAP_SYS_TIME", "all", "Chown"], "CapAdd") == [
        "CAP_NET_ADMIN", "CAP_SYS_TIME", "ALL", "CAP_CHOWN"]


def test_unknown_capability_message():
    with pytest.raises(InvalidParameter) as e:
        c.normalize(["FOO"], "CapAdd")
    assert e.value.message == 'invalid CapAdd: unknown capability: "CAP_FOO"'
    with pytest.raises(InvalidParameter, match='invalid CapDrop: unknown capability: "CAP_BAR"'):
        c.container_capabilities([], ["bar"], False, list(c.CAPABILITIES))


def test_add_and_drop():
    caps = c.container_capabilities(["NET_ADMIN"], ["CHOWN"], False, list(c.CAPABILITIES))
    assert "CAP_NET_ADMIN" in caps and "CAP_CHOWN" not in caps
    assert c.mask_from_caps(caps) == (0xA80425FB | 1 << 12) & ~1


def test_drop_all_keeps_only_adds():
    assert c.container_capabilities(["CHOWN"], ["ALL"], False, list(c.CAPABILITIES)) == ["CAP_CHOWN"]
    assert c.container_capabilities([], ["ALL"], False, list(c.CAPABILITIES)) == []


def test_add_all_is_the_engine_set_minus_drops():
    caps = c.container_capabilities(["ALL"], ["MKNOD"], False, ENGINE_NO_SYS_RESOURCE)
    assert "CAP_SYS_RESOURCE" not in caps and "CAP_MKNOD" not in caps
    assert len(caps) == len(ENGINE_NO_SYS_RESOURCE) - 1


def test_privileged_is_the_engine_set():
    caps = c.container_capabilities(["SYS_RESOURCE"], ["ALL"], True, ENGINE_NO_SYS_RESOURCE)
    assert caps == ENGINE_NO_SYS_RESOURCE


def test_explicit_add_of_missing_engine_cap_is_refused():
    with pytest.raises(InvalidParameter, match="CAP_SYS_RESOURCE is not available"):
        c.container_capabilities(["SYS_RESOURCE"], [], False, ENGINE_NO_SYS_RESOURCE)


def test_defaults_shrink_to_engine_set():
    engine = [x for x in c.CAPABILITIES if x != "CAP_NET_RAW"]
    assert "CAP_NET_RAW" not in c.container_capabilities(None, None, False, engine)


def test_engine_capabilities_reads_bounding_set(tmp_path):
    status = tmp_path / "status"
    status.write_text("Name:\tx\nCapInh:\t0000000000000000\nCapPrm:\t000001fffeffffff\n"
                      "CapEff:\t000001fffeffffff\nCapBnd:\t000001fffeffffff\n")
    caps = c.engine_capabilities(str(status))
    assert "CAP_SYS_RESOURCE" not in caps and "CAP_SYS_ADMIN" in caps
    assert len(caps) == 40
