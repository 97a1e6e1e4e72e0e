"""notifications.endpoints: Distribution's event envelope, filters, and a durable queue: a sink
that is down gets its events later, in order, also after the registry restarts."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
import yaml
from aiohttp import web

from conftest import _stop, _wait_http, free_port
from regclient import OCI_MANIFEST, image_manifest, push_blob, put_manifest, sha256

EVENTS = "application/vnd.docker.distribution.events.v1+json"


class Sink:
    """An HTTP endpoint that records the envelopes POSTed to it; start() and stop() at will."""

    def __init__(self) -> None:
        self.port = free_port()
        self.envelopes: list[dict] = []
        self.requests: list[dict] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runner: web.AppRunner | None = None

    async def _post(self, request: web.Request) -> web.Response:
        self.requests.append({"content_type": request.headers.get("Content-Type"),
                              "auth": request.headers.get("Authorization")})
        self.envelopes.append(json.loads(await request.read()))
        return web.Response(status=200)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._post)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port, reuse_address=True).start()

    def start(self) -> None:
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    def stop(self) -> None:
        if self.runner is not None:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
            self.runner = None

    def close(self) -> None:
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    @property
    def events(self) -> list[dict]:
        return [e for env in self.envelopes for e in env["events"]]

    def wait_for(self, n: int, timeout: float = 60) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.events) >= n:
                return self.events
            time.sleep(0.05)
        raise AssertionError(f"sink got {len(self.events)} events, expected {n}: {self.events}")


@pytest.fixture
def sink():
    s = Sink()
    yield s
    s.close()


class Server:
    """A registry process on a fixed root and port, so it can be restarted."""

    def __init__(self, d: Path, config: dict) -> None:
        self.d = d
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (d / "config.yml").write_text(yaml.safe_dump(config))
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        log = self.d / "log"
        self.proc = subprocess.Popen([sys.executable, "-m", "dockyard.cli", "registry", "--addr",
                                      f"127.0.0.1:{self.port}", "--root", str(self.d / "root"),
                                      "--config", str(self.d / "config.yml")],
                                     stdout=log.open("ab"), stderr=subprocess.STDOUT)
        _wait_http(self.url + "/v2/", self.proc, log)

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)


def _config(sink: Sink, **endpoint) -> dict:
    return {"storage": {"delete": {"enabled": True}}, "notifications": {"endpoints": [{
        "name": "ci", "url": f"http://127.0.0.1:{sink.port}/hook", "timeout": "1s", "threshold": 2,
        "backoff": "200ms", "headers": {"Authorization": ["Bearer sekrit"]}, **endpoint}]}}


def test_events_in_distributions_envelope(sink, tmp_path):
    sink.start()
    srv = Server(tmp_path, _config(sink))
    srv.start()
    try:
        layer = os.urandom(100)
        body = image_manifest(srv.url, "ev/app", layers=[layer])
        assert put_manifest(srv.url, "ev/app", "v1", body).status_code == 201
        requests.get(f"{srv.url}/v2/ev/app/manifests/v1", headers={"Accept": OCI_MANIFEST, "User-Agent": "t/1"})
        requests.head(f"{srv.url}/v2/ev/app/blobs/{sha256(layer)}")  # HEAD: no event
        requests.get(f"{srv.url}/v2/ev/app/blobs/{sha256(layer)}")
        r = requests.post(f"{srv.url}/v2/ev/other/blobs/uploads/?mount={sha256(layer)}&from=ev/app")
        assert r.status_code == 201
        requests.delete(f"{srv.url}/v2/ev/app/manifests/v1")
        events = sink.wait_for(7)
        assert [(e["action"], e["target"].get("mediaType")) for e in events] == [
            ("push", "application/octet-stream"), ("push", "application/octet-stream"),  # config, layer
            ("push", OCI_MANIFEST), ("pull", OCI_MANIFEST), ("pull", "application/octet-stream"),
            ("mount", "application/octet-stream"), ("delete", None)]
        push = events[2]
        assert push["target"] == {"mediaType": OCI_MANIFEST, "digest": sha256(body), "size": len(body),
                                  "length": len(body), "repository": "ev/app", "tag": "v1",
                                  "url": f"{srv.url}/v2/ev/app/manifests/{sha256(body)}"}
        assert set(push) == {"id", "timestamp", "action", "target", "request", "actor", "source"}
        assert push["timestamp"].endswith("Z") and push["source"]["addr"].endswith(f":{srv.port}")
        assert push["request"]["method"] == "PUT" and push["request"]["addr"].startswith("127.0.0.1:")
        assert events[3]["request"]["useragent"] == "t/1" and events[3]["request"]["host"] == f"127.0.0.1:{srv.port}"
        assert events[5]["target"]["fromRepository"] == "ev/app" and events[5]["target"]["repository"] == "ev/other"
        assert events[6]["target"] == {"tag": "v1", "repository": "ev/app"}
        assert {e["source"]["instanceID"] for e in events} == {events[0]["source"]["instanceID"]}
        assert all(r == {"content_type": EVENTS, "auth": "Bearer sekrit"} for r in sink.requests)
    finally:
        srv.stop()


def test_ignored_actions_media_types_and_references(sink, tmp_path):
    sink.start()
    cfg = _config(sink, ignore={"actions": ["pull"]}, ignoredmediatypes=["application/octet-stream"])
    cfg["notifications"]["events"] = {"includereferences": True}
    srv = Server(tmp_path, cfg)
    srv.start()
    try:
        body = image_manifest(srv.url, "ign/app")
        put_manifest(srv.url, "ign/app", "v1", body)
        doc = json.loads(body)
        refs = sink.wait_for(1)[0]["target"]["references"]
        assert [r["digest"] for r in refs] == [doc["config"]["digest"], doc["layers"][0]["digest"]]
        requests.get(f"{srv.url}/v2/ign/app/manifests/v1", headers={"Accept": OCI_MANIFEST})
        requests.delete(f"{srv.url}/v2/ign/app/manifests/{sha256(body)}")
        sink.wait_for(2)
        time.sleep(0.5)
        assert [(e["action"], e["target"].get("digest")) for e in sink.events] == [
            ("push", sha256(body)), ("delete", sha256(body))]
    finally:
        srv.stop()


def test_a_sink_that_was_down_gets_its_events_in_order_after_a_restart(sink, tmp_path):
    srv = Server(tmp_path, _config(sink))
    srv.start()
    pushed = []
    try:
        for i in range(5):  # the sink is not listening yet
            pushed.append(push_blob(srv.url, "down/app", f"blob {i}".encode()))
        time.sleep(1)
        srv.stop()  # the queue must outlive the registry
        srv.start()
        pushed.append(push_blob(srv.url, "down/app", b"after the restart"))
        sink.start()
        events = sink.wait_for(6)
        assert [e["target"]["digest"] for e in events] == pushed
        assert len({e["id"] for e in events}) == 6
        sink.stop()
        pushed.append(push_blob(srv.url, "down/app", b"sink down again"))
        time.sleep(1)
        sink.start()
        assert sink.wait_for(7)[-1]["target"]["digest"] == pushed[-1]
        time.sleep(0.5)
        assert len(sink.events) == 7  # nothing delivered twice
    finally:
        srv.stop()


def test_two_processes_on_one_root_deliver_each_event_once(sink, tmp_path):
    sink.start()
    a, b = Server(tmp_path, _config(sink)), Server(tmp_path, _config(sink))
    a.start()
    b.start()
    try:
        pushed = {a.url: [], b.url: []}
        for i in range(4):
            for srv in (a, b):
                pushed[srv.url].append(push_blob(srv.url, "two/app", f"{srv.port} {i}".encode()))
        events = sink.wait_for(8)
        time.sleep(2.5)  # a second deliverer would have sent duplicates by now
        assert len(sink.events) == 8
        for srv in (a, b):  # each process's events in the order it queued them
            port = srv.url.rsplit(":", 1)[1]
            assert [e["target"]["digest"] for e in events if e["source"]["addr"].endswith(":" + port)] == \
                pushed[srv.url]
        a.stop()  # the deliverer may be either: b carries on alone
        pushed_late = push_blob(b.url, "two/app", b"late")
        assert sink.wait_for(9)[-1]["target"]["digest"] == pushed_late
    finally:
        a.stop()
        b.stop()
