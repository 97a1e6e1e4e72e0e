"""HostConfig.MaskedPaths/ReadonlyPaths: what the docker CLI sends for
`--security-opt systempaths=unconfined` (empty lists), and their checks."""

from __future__ import annotations

import pytest

from dockyard.errors import InvalidParameter
from dockyard.oci.linux_defaults import MASKED_PATHS, READONLY_PATHS
from dockyard.oci.runtime_spec import build_spec


def spec(host_config):
    return build_spec({}, host_config, rootfs="/r", hostname="h", netns_path=None, etc_files={},
                      cgroups_path="/dockyard/x", cgroup_resources={}, user=(0, 0, []),
                      env=[], args=["true"], cwd="/")


def test_absent_means_docker_defaults():
    linux = spec({})["linux"]
    assert linux["maskedPaths"] == list(MASKED_PATHS)
    assert linux["readonlyPaths"] == list(READONLY_PATHS)
    linux = spec({"MaskedPaths": None, "ReadonlyPaths": None})["linux"]
    assert linux["maskedPaths"] == list(MASKED_PATHS)


def test_given_lists_win_even_empty():
    linux = spec({"MaskedPaths": [], "ReadonlyPaths": ["/proc/sys"]})["linux"]
    assert linux["maskedPaths"] == []
    assert linux["readonlyPaths"] == ["/proc/sys"]


@pytest.mark.parametrize("value", ["/proc/keys", ["relative"], [1]])
def test_bad_values_are_invalid(value):
    with pytest.raises(InvalidParameter):
        spec({"MaskedPaths": value})
