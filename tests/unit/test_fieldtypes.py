"""Go-decoder-like type checks of create bodies: wrong types are 400s, null and unknown fields pass."""

import pytest
from hypothesis import given, strategies as st

from dockyard.engine.containers.fieldtypes import check_create
from dockyard.errors import InvalidParameter


def test_accepts_a_docker_cli_body():
    check_create({"Image": "busybox", "Cmd": ["sh"], "Env": ["A=1"], "Labels": {"a": "b"},
                  "Entrypoint": "sh", "Unknown": 1, "Volumes": None,
                  "HostConfig": {"Binds": ["/a:/b"], "Memory": 0, "RestartPolicy": {"Name": "no"},
                                 "Mounts": [{"Type": "tmpfs", "Target": "/t"}], "LogConfig": None},
                  "NetworkingConfig": {"EndpointsConfig": {"bridge": {"Aliases": ["x"]}}}})


@pytest.mark.parametrize("body,msg", [
    ({"Env": "A=1"}, "ContainerConfig.Env of type []string"),
    ({"Cmd": 5}, "ContainerConfig.Cmd"),
    ({"Tty": "yes"}, "ContainerConfig.Tty of type bool"),
    ({"Labels": {"a": 1}}, "ContainerConfig.Labels"),
    ({"HostConfig": []}, "HostConfig"),
    ({"HostConfig": {"Memory": "1g"}}, "HostConfig.Memory of type int64"),
    ({"HostConfig": {"Memory": True}}, "HostConfig.Memory"),
    ({"HostConfig": {"RestartPolicy": {"MaximumRetryCount": "3"}}}, "RestartPolicy.MaximumRetryCount"),
    ({"HostConfig": {"Mounts": [{"Target": 1}]}}, "Mounts.Target"),
    ({"HostConfig": {"Mounts": ["x"]}}, "HostConfig.Mounts"),
    ({"NetworkingConfig": {"EndpointsConfig": {"n": {"Aliases": "a"}}}}, "EndpointSettings.Aliases"),
])
def test_wrong_types_are_invalid_parameter(body, msg):
    with pytest.raises(InvalidParameter) as e:
        check_create({"Image": "busybox", **body})
    assert msg in e.value.message
    assert e.value.message.startswith("json: cannot unmarshal")


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                           lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
                           max_leaves=8)


@given(st.dictionaries(st.sampled_from(["Env", "Cmd", "Tty", "HostConfig", "Labels", "NetworkingConfig",
                                         "StopTimeout", "Entrypoint", "Healthcheck"]), json_values))
def test_never_raises_anything_but_invalid_parameter(body):
    try:
        check_create(body)
    except InvalidParameter:
        pass

