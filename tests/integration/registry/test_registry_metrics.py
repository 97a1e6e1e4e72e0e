"""http.debug: Prometheus metrics scraped and parsed with prometheus_client, /debug/health and
health.storagedriver (503 in Distribution's shapes while the storage check fails)."""

from __future__ import annotations

import os
import time

import requests
from prometheus_client.parser import text_string_to_metric_families

from conftest import free_port
from regclient import OCI_MANIFEST, error_codes, image_manifest, put_manifest, sha256


def _scrape(addr: str, path: str = "/metrics") -> dict:
    """{(sample name, frozen labels): value}"""
    r = requests.get(f"http://{addr}{path}")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
    return {(s.name, frozenset(s.labels.items())): s.value
            for fam in text_string_to_metric_families(r.text) for s in fam.samples}


def _sum(samples: dict, name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def test_metrics_on_the_debug_address(registry_factory):
    dbg = f"127.0.0.1:{free_port()}"
    dead = free_port()  # a notification sink nobody listens on
    srv = registry_factory({"storage": {"delete": {"enabled": True}},
                            "http": {"debug": {"addr": dbg, "prometheus": {"enabled": True, "path": "/m"}}},
                            "notifications": {"endpoints": [{"name": "dead", "url": f"http://127.0.0.1:{dead}/",
                                                             "backoff": "10s", "threshold": 1}]}}, "metrics")
    layer = os.urandom(50_000)
    body = image_manifest(srv.url, "met/app", layers=[layer])
    assert put_manifest(srv.url, "met/app", "v1", body).status_code == 201
    for _ in range(3):
        assert requests.get(f"{srv.url}/v2/met/app/blobs/{sha256(layer)}").content == layer
    requests.get(f"{srv.url}/v2/met/app/manifests/nosuch", headers={"Accept": OCI_MANIFEST})
    assert requests.get(f"{srv.url}/m").status_code == 404  # not on the API address

    deadline = time.monotonic() + 30
    while True:
        m = _scrape(dbg, "/m")
        if _sum(m, "registry_notifications_events_total", endpoint="dead", result="failure") >= 1 \
                or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert _sum(m, "registry_http_requests_total", method="PUT", route="manifest", code="201") == 1
    assert _sum(m, "registry_http_requests_total", method="GET", route="blob", code="200") == 3
    assert _sum(m, "registry_http_requests_total", method="GET", route="manifest", code="404") == 1
    assert _sum(m, "registry_http_request_duration_seconds_count", method="GET", route="blob") == 3
    assert _sum(m, "registry_http_out_bytes_total", route="blob") >= 3 * len(layer)
    assert _sum(m, "registry_http_in_bytes_total", route="blob_upload_chunk") >= len(layer)
    assert _sum(m, "registry_storage_action_seconds_count", driver="filesystem", action="put_content") >= 1
    assert _sum(m, "registry_storage_action_seconds_count", driver="filesystem", action="stat") >= 1
    # push: config, layer, manifest; pull: the layer 3 times -> 6 events waiting for the dead sink
    assert _sum(m, "registry_notifications_pending", endpoint="dead") == 6
    assert _sum(m, "registry_notifications_events_total", endpoint="dead", result="failure") >= 1


def test_storage_health_check(registry_factory):
    dbg = f"127.0.0.1:{free_port()}"
    srv = registry_factory({"health": {"storagedriver": {"enabled": True, "interval": "100ms", "threshold": 2}},
                            "http": {"debug": {"addr": dbg}}}, "health")
    assert requests.get(f"http://{dbg}/debug/health").json() == {}
    assert requests.get(f"http://{dbg}/metrics").status_code == 404  # prometheus not enabled
    # Make the storage root unusable: a symlink that points at itself (ELOOP on every stat).
    moved = srv.root.with_name("root.away")
    srv.root.rename(moved)
    srv.root.symlink_to(srv.root)
    try:
        deadline = time.monotonic() + 30
        while requests.get(f"http://{dbg}/debug/health").status_code != 503:
            assert time.monotonic() < deadline, srv.log_tail()
            time.sleep(0.1)
        r = requests.get(f"http://{dbg}/debug/health")
        assert list(r.json()) == ["storagedriver_filesystem"] and "Too many levels" in r.json()["storagedriver_filesystem"]
        r = requests.get(f"{srv.url}/v2/")
        assert r.status_code == 503 and error_codes(r) == ["UNAVAILABLE"]
        assert r.json()["errors"][0] == {"code": "UNAVAILABLE", "message": "service unavailable",
                                         "detail": "health check failed: please see /debug/health"}
    finally:
        srv.root.unlink()
        moved.rename(srv.root)
    deadline = time.monotonic() + 30
    while requests.get(f"http://{dbg}/debug/health").status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert requests.get(f"{srv.url}/v2/").status_code == 200


def test_file_http_and_tcp_health_checks(registry_factory, tmp_path):
    dbg = f"127.0.0.1:{free_port()}"
    drain = tmp_path / "drain"
    closed = free_port()  # nothing listens there
    srv = registry_factory({"http": {"debug": {"addr": dbg}}, "health": {
        "file": [{"file": str(drain), "interval": "100ms"}],
        "http": [{"uri": f"http://{dbg}/nothing-here", "statuscode": 200, "interval": "100ms", "timeout": "1s",
                  "threshold": 2, "headers": {"X-Check": ["1"]}}],
        "tcp": [{"addr": f"127.0.0.1:{closed}", "interval": "100ms", "timeout": "500ms", "threshold": 3}]}},
        "health-checks")

    def wait_status(want: dict) -> None:
        deadline = time.monotonic() + 30
        while (got := requests.get(f"http://{dbg}/debug/health").json()) != want:
            assert time.monotonic() < deadline, (got, srv.log_tail())
            time.sleep(0.1)

    failing = {f"127.0.0.1:{closed}": f"connection to 127.0.0.1:{closed} failed",
               f"http://{dbg}/nothing-here": "downstream service returned unexpected status: 404"}
    wait_status(failing)
    assert requests.get(f"{srv.url}/v2/").status_code == 503
    drain.write_text("")  # the operator drains this replica
    wait_status({**failing, str(drain): "file exists"})
    drain.unlink()
    wait_status(failing)
