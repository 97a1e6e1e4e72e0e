"""`docker search REGISTRY/term`: the docker CLI, through the engine, against our registry."""

from __future__ import annotations

import json

from regclient import image_manifest, put_manifest


def test_docker_search_through_engine(engine, registry):
    for repo in ("team/searchable-app", "other/unrelated"):
        body = image_manifest(registry.url, repo)
        assert put_manifest(registry.url, repo, "latest", body).status_code == 201
    r = engine.cli("search", "--format", "{{.Name}}", f"{registry.host}/searchable")
    assert r.returncode == 0, r.stderr
    names = r.stdout.decode().split()
    assert any(n.endswith("team/searchable-app") for n in names), names
    assert not any("unrelated" in n for n in names)
    api = engine.api()
    res = api.search(f"{registry.host}/searchable", limit=5)
    assert res and set(res[0]) >= {"name", "description", "star_count", "is_official", "is_automated"}


def test_search_errors_are_4xx(engine):
    api = engine.api()
    resp = api._get(api._url("/images/search"), params={"term": ""})
    assert resp.status_code == 400 and json.loads(resp.content)["message"]
    resp = api._get(api._url("/images/search"), params={"term": "127.0.0.1:1/x", "limit": 1000})
    assert resp.status_code == 400
