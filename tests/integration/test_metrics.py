"""`metrics-addr`: Prometheus metrics scraped and parsed with prometheus_client's own text parser."""

from __future__ import annotations

import json
import socket
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

BUSYBOX = "busybox:latest"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _scrape(addr: str) -> dict[tuple[str, tuple], float]:
    r = requests.get(f"http://{addr}/metrics", timeout=30)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
    out = {}
    for fam in text_string_to_metric_families(r.text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _get(m, name: str, **labels) -> float:
    return m.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_move_with_container_actions_events_and_requests(private_engine, tmp_path):
    addr = f"127.0.0.1:{_free_port()}"
    cfg = tmp_path / "daemon.json"
    cfg.write_text(json.dumps({"metrics-addr": addr}))
    eng = private_engine(["--config-file", str(cfg)])

    before = _scrape(addr)
    # dockerd lists these container actions from the start
    assert ("engine_daemon_container_actions_seconds_count", (("action", "commit"),)) in before
    assert _get(before, "engine_daemon_engine_info", architecture="x86_64", commit="",
                daemon_id=str(eng.data_root), graphdriver="overlay2",
                kernel=__import__("platform").release(), os="linux", os_type="linux", os_version="",
                version=__import__("dockyard").__version__) == 1
    assert _get(before, "engine_daemon_engine_cpus_cpus") >= 1
    running0 = _get(before, "engine_daemon_container_states_containers", state="running")

    eng.cli_ok("run", "-d", "--name", "metered", BUSYBOX, "sleep", "600")
    eng.cli_ok("network", "create", "meterednet")
    eng.cli_ok("network", "rm", "meterednet")
    r = eng.cli("inspect", "no-such-container")
    assert r.returncode != 0

    after = _scrape(addr)
    for action in ("create", "start"):
        assert (_get(after, "engine_daemon_container_actions_seconds_count", action=action)
                == _get(before, "engine_daemon_container_actions_seconds_count", action=action) + 1)
    assert _get(after, "engine_daemon_container_actions_seconds_sum", action="start") > 0
    assert _get(after, "engine_daemon_network_actions_seconds_count", action="create") == 1
    assert _get(after, "engine_daemon_network_actions_seconds_count", action="delete") == 1
    assert _get(after, "engine_daemon_container_states_containers", state="running") == running0 + 1
    assert _get(after, "engine_daemon_events_total") >= _get(before, "engine_daemon_events_total") + 4
    assert _get(after, "dockyard_http_requests_total", method="POST", route="/containers/create",
                status="201") == 1
    assert _get(after, "dockyard_http_requests_total", method="GET", route="/containers/{id}/json",
                status="404") == 1
    assert _get(after, "dockyard_http_request_duration_seconds_count", method="POST",
                route="/containers/{id}/start") == 1

    # an events subscriber is counted while it listens
    import docker
    client = docker.DockerClient(base_url=f"unix://{eng.socket}")
    stream = client.events(decode=True)
    try:
        eng.cli_ok("pause", "metered")
        next(stream)  # the subscription is live
        m = _scrape(addr)
        assert _get(m, "engine_daemon_events_subscribers_total") >= 1
        assert _get(m, "engine_daemon_container_states_containers", state="paused") == 1
        assert _get(m, "engine_daemon_container_actions_seconds_count", action="pause") == 1
    finally:
        stream.close()
        client.close()
    eng.cli_ok("rm", "-f", "metered")
    m = _scrape(addr)
    assert _get(m, "engine_daemon_container_actions_seconds_count", action="delete") == 1

    # health checks: every probe counted, failing ones apart
    eng.cli_ok("run", "-d", "--name", "probed", "--health-cmd", "test -e /tmp/ok", "--health-interval", "1s",
               BUSYBOX, "sleep", "600")
    deadline = time.monotonic() + 60
    while _get(_scrape(addr), "engine_daemon_health_checks_failed_total") < 1:
        assert time.monotonic() < deadline, eng.log_tail()
        time.sleep(0.5)
    eng.cli_ok("exec", "probed", "touch", "/tmp/ok")
    deadline = time.monotonic() + 60
    while True:  # a passing probe counts in the total only
        m = _scrape(addr)
        if _get(m, "engine_daemon_health_checks_total") > _get(m, "engine_daemon_health_checks_failed_total"):
            break
        assert time.monotonic() < deadline, eng.log_tail()
        time.sleep(0.5)
    eng.cli_ok("rm", "-f", "probed")


def test_metrics_addr_must_be_an_address(tmp_path):
    import subprocess
    import sys

    cfg = tmp_path / "daemon.json"
    cfg.write_text(json.dumps({"metrics-addr": "127.0.0.1"}))
    r = subprocess.run([sys.executable, "-m", "dockyard.cli", "engine", "--config-file", str(cfg),
                        "--data-root", str(tmp_path / "d")], capture_output=True, timeout=60)
    assert r.returncode != 0 and b"metrics-addr" in r.stderr
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("bad", [["--metrics-addr", "x:notaport"]])
def test_metrics_addr_flag_checked_too(tmp_path, bad):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "dockyard.cli", "engine", *bad,
                        "--data-root", str(tmp_path / "d")], capture_output=True, timeout=60)
    assert r.returncode != 0 and b"metrics-addr" in r.stderr
