"""Health checks: starting → healthy/unhealthy, the Log, ps status, filters, events, image HEALTHCHECK."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.usefixtures("cleanup_containers")

MS = 1_000_000


def wait_health(client, cid: str, status: str, timeout: float = 20) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        h = client.api.inspect_container(cid)["State"].get("Health") or {}
        if h.get("Status") == status:
            return h
        time.sleep(0.1)
    raise AssertionError(f"health never became {status}: {h}")


def test_healthy_then_unhealthy(engine, client):
    c = client.containers.run("busybox", ["sh", "-c", "touch /tmp/ok; sleep 300"], detach=True,
                              healthcheck={"Test": ["CMD-SHELL", "test -f /tmp/ok && echo fine"],
                                           "Interval": 200 * MS, "Timeout": 2000 * MS, "Retries": 2})
    h = client.api.inspect_container(c.id)["State"]["Health"]
    assert h["Status"] in ("starting", "healthy")
    h = wait_health(client, c.id, "healthy")
    assert h["FailingStreak"] == 0 and h["Log"][-1]["ExitCode"] == 0 and h["Log"][-1]["Output"] == "fine\n"
    r = engine.cli("ps", "--filter", f"id={c.id}", "--format", "{{.Status}}")
    assert r.stdout.decode().strip().endswith("(healthy)")
    assert [x.id for x in client.containers.list(filters={"health": "healthy"})] == [c.id]
    c.exec_run(["rm", "/tmp/ok"])
    h = wait_health(client, c.id, "unhealthy")
    assert h["FailingStreak"] >= 2 and h["Log"][-1]["ExitCode"] == 1
    assert len(h["Log"]) <= 5
    # probes are the engine's own: only the user's exec is listed
    assert len(client.api.inspect_container(c.id)["ExecIDs"]) == 1


def test_timeout_and_events(client):
    since = time.time()
    c = client.containers.run("busybox", "sleep 300", detach=True,
                              healthcheck={"Test": ["CMD", "sleep", "5"], "Interval": 200 * MS,
                                           "Timeout": 300 * MS, "Retries": 1})
    h = wait_health(client, c.id, "unhealthy")
    assert h["Log"][-1]["ExitCode"] == -1 and "timeout" in h["Log"][-1]["Output"]
    evs = client.events(since=since, until=time.time() + 0.5, decode=True, filters={"container": c.id})
    assert "health_status: unhealthy" in [e["Action"] for e in evs]


def test_healthcheck_none_disables(client):
    off = client.containers.run("busybox", "sleep 300", detach=True, healthcheck={"Test": ["NONE"]})
    assert "Health" not in client.api.inspect_container(off.id)["State"]
    assert [x.id for x in client.containers.list(filters={"health": "none", "id": off.id})] == [off.id]


def test_cli_health_flags(engine, client):
    r = engine.cli("run", "-d", "--health-cmd", "true", "--health-interval", "300ms", "busybox", "sleep", "300")
    assert r.returncode == 0, r.stderr
    wait_health(client, r.stdout.decode().strip(), "healthy")
