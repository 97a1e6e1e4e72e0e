"""The stored container record: `to_row` (shallow, for json.dumps at once) stores what
dataclasses.asdict stored, and reads back to the same container."""

from __future__ import annotations

import dataclasses
import json

from dockyard.engine.containers.model import Container


def _container() -> Container:
    c = Container(
        id="a" * 64, name="web", created="2026-11-30T18:00:00.123456789Z", image_id="sha256:" + "b" * 64,
        image_ref="busybox", path="sh", args=["-c", "true"],
        config={"Env": ["A=1"], "Labels": {"k": "v"}, "ExposedPorts": {"80/tcp": {}}, "Healthcheck": None},
        host_config={"RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}, "Binds": ["/a:/b:ro"],
                     "LogConfig": {"Type": "json-file", "Config": {"max-size": "1m"}}},
        networking_config={"EndpointsConfig": {"n": {"Aliases": ["x"]}}}, network_mode="n",
        networks={"n": {"IPAddress": "10.0.0.2", "Aliases": ["x"]}}, volumes={"/data": "v1"},
        anonymous_volumes=["v1"], volumes_from=[{"Type": "volume", "Source": "v1", "Target": "/d"}],
        links=[{"id": "c" * 64, "alias": "db"}], sandbox_path="/run/netns/x", has_been_started=True)
    c.state.status, c.state.pid, c.state.exit_code = "running", 42, 3
    c.state.health = {"Status": "healthy", "FailingStreak": 0, "Log": [{"ExitCode": 0, "Output": "ok"}]}
    return c


def test_the_record_is_what_asdict_stored():
    c = _container()
    assert json.dumps(c.to_row()) == json.dumps(dataclasses.asdict(c))


def test_the_record_reads_back():
    c = _container()
    back = Container.from_row(json.loads(json.dumps(c.to_row())))
    assert back == c and back.state == c.state
