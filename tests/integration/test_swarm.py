"""Swarm endpoints answer as an inactive dockerd node: through the docker CLI, docker-py, raw HTTP."""

from __future__ import annotations

import json

import docker
import pytest

from test_system import raw

NOT_MANAGER = ('This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" '
               "to connect this node to swarm and try again.")


def test_cli_prints_dockerds_messages(engine):
    r = engine.cli("swarm", "leave", "--force")
    assert r.returncode != 0
    assert r.stderr.decode().strip() == "Error response from daemon: This node is not part of a swarm"
    for args in (("service", "ls"), ("node", "ls"), ("secret", "ls"), ("config", "ls"),
                 ("swarm", "unlock-key"), ("service", "inspect", "x"), ("swarm", "update", "--autolock")):
        r = engine.cli(*args)
        assert r.returncode != 0, args
        assert f"Error response from daemon: {NOT_MANAGER}" in r.stderr.decode(), (args, r.stderr)
    r = engine.cli("swarm", "init")
    assert r.returncode != 0 and "swarm mode is not supported" in r.stderr.decode()
    out = engine.cli_ok("info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}")
    assert out.split() == ["inactive", "false"]
    assert " Swarm: inactive\n" in engine.cli_ok("info")


def test_docker_py_teardown_and_errors(engine, client, api):
    # docker-py's own teardown: a forced leave on an inactive node is not an error
    assert api.leave_swarm(force=True) is True
    with pytest.raises(docker.errors.APIError) as ei:
        api.leave_swarm(force=False)
    assert ei.value.status_code == 503 and ei.value.explanation == "This node is not part of a swarm"
    for call in (client.services.list, client.nodes.list, client.secrets.list, client.configs.list,
                 api.inspect_swarm, lambda: api.tasks()):
        with pytest.raises(docker.errors.APIError) as ei:
            call()
        assert ei.value.status_code == 503 and ei.value.explanation == NOT_MANAGER


@pytest.mark.parametrize("method,path", [
    ("POST", "/services/create"), ("POST", "/services/abc/update?version=1"), ("DELETE", "/services/abc"),
    ("GET", "/services/abc/logs?stdout=1"), ("GET", "/tasks/abc"), ("DELETE", "/nodes/abc"),
    ("POST", "/secrets/create"), ("GET", "/configs/abc"), ("POST", "/swarm/unlock"),
    ("GET", "/v1.41/swarm"),
])
def test_every_manager_route_is_503(engine, method, path):
    status, h, body = raw(engine, method, path, b"{}", {"Content-Type": "application/json"})
    assert status == 503
    assert json.loads(body) == {"message": NOT_MANAGER}


def test_init_and_join_validate_like_dockerd(engine):
    def post(path, body):
        status, _, out = raw(engine, "POST", path, json.dumps(body).encode(), {"Content-Type": "application/json"})
        return status, json.loads(out)["message"]

    assert post("/swarm/join", {"ListenAddr": "0.0.0.0:2377", "RemoteAddrs": []}) == (
        400, "at least 1 RemoteAddr is required to join")
    assert post("/swarm/init", {"ListenAddr": ""}) == (400, 'invalid ListenAddr "": invalid empty address')
    assert post("/swarm/init", {"ListenAddr": "0.0.0.0:2377", "Spec": {"Name": "x"}}) == (
        400, 'swarm spec must be named "default"')
    status, msg = post("/swarm/join", {"ListenAddr": "0.0.0.0:2377", "RemoteAddrs": ["10.0.0.1:2377"]})
    assert status == 503 and "not supported" in msg


def test_ping_says_swarm_inactive(engine):
    status, h, _ = raw(engine, "GET", "/_ping")
    assert status == 200 and h["swarm"] == "inactive"
