"""`docker pull` through the engine from a `dockyard registry` pull-through cache
(`127.0.0.1:PORT/library/x` pointing straight at the proxy), with a dockyard upstream that
needs a login and with Debian's Distribution as the upstream."""

from __future__ import annotations

import requests

from test_pull_push import BUSYBOX, _htpasswd, docker, registries, remove_images  # noqa: F401 (fixtures)


def _proxy_for(registries, upstream_url: str, **creds):  # noqa: F811
    return registries("dockyard", {"proxy": {"remoteurl": upstream_url, **creds}})


def _cached(proxy, repo: str, tag: str) -> dict:
    r = requests.get(f"{proxy.url}/v2/{repo}/manifests/{tag}",
                     headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    assert r.status_code == 200
    return r.json()


def test_docker_pull_through_a_proxy_of_an_authenticated_dockyard(engine, docker, registries,  # noqa: F811
                                                                   remove_images, private_engine, tmp_path):
    pw = _htpasswd(tmp_path / "htpasswd", "alice", "wonderland")
    upstream = registries("dockyard", {"auth": {"htpasswd": {"path": pw, "realm": "up"}}})
    proxy = _proxy_for(registries, upstream.url, username="alice", password="wonderland")
    src = f"{upstream.host}/library/pt:1"
    remove_images.append(src)
    docker.ok("login", "-u", "alice", "--password-stdin", upstream.host, input=b"wonderland")
    docker.ok("tag", BUSYBOX, src)
    docker.ok("push", src)

    fresh = private_engine()
    fresh.cli("rmi", BUSYBOX, check=True)  # an empty image store: every layer must come through the proxy
    ref = f"{proxy.host}/library/pt:1"
    r = fresh.cli("pull", ref)  # no login: the proxy holds the upstream credentials
    assert r.returncode == 0, r.stderr.decode() + fresh.log_tail()
    assert "Pull complete" in r.stdout.decode()
    r = fresh.cli("run", "--rm", ref, "sh", "-c", "echo through the cache")
    assert r.returncode == 0 and r.stdout.decode().strip() == "through the cache", r.stderr.decode()
    man = _cached(proxy, "library/pt", "1")
    for blob in [man["config"]] + man["layers"]:
        assert requests.head(f"{proxy.url}/v2/library/pt/blobs/{blob['digest']}").status_code == 200
    # a push to the cache is refused as Distribution refuses it
    r = fresh.cli("push", ref)
    assert r.returncode != 0 and "unsupported" in r.stderr.decode().lower()


def test_docker_pull_through_a_proxy_of_distribution(engine, docker, registries, remove_images,  # noqa: F811
                                                     private_engine):
    upstream = registries("distribution")
    proxy = _proxy_for(registries, upstream.url)
    src = f"{upstream.host}/library/dist:2"
    remove_images.append(src)
    docker.ok("tag", BUSYBOX, src)
    docker.ok("push", src)
    fresh = private_engine()
    fresh.cli("rmi", BUSYBOX, check=True)
    ref = f"{proxy.host}/library/dist:2"
    r = fresh.cli("pull", ref)
    assert r.returncode == 0, r.stderr.decode() + fresh.log_tail()
    r = fresh.cli("run", "--rm", ref, "true")
    assert r.returncode == 0, r.stderr.decode()
    assert _cached(proxy, "library/dist", "2")["layers"]


def test_engine_registry_mirror_pulls_docker_hub_names_through_the_proxy(engine, docker, registries,  # noqa: F811
                                                                         remove_images, private_engine, tmp_path):
    """daemon.json `registry-mirrors` naming the proxy: `docker pull mirrored:3` (a Docker Hub
    name) is served by the cache, which fetches it from its upstream."""
    upstream = registries("dockyard")
    proxy = _proxy_for(registries, upstream.url)
    src = f"{upstream.host}/library/mirrored:3"
    remove_images.append(src)
    docker.ok("tag", BUSYBOX, src)
    docker.ok("push", src)
    conf = tmp_path / "daemon.json"
    conf.write_text(f'{{"registry-mirrors": ["http://{proxy.host}"]}}')
    fresh = private_engine(["--config-file", str(conf)])
    fresh.cli("rmi", BUSYBOX, check=True)
    r = fresh.cli("pull", "mirrored:3")
    assert r.returncode == 0, r.stderr.decode() + fresh.log_tail()
    assert "Pull complete" in r.stdout.decode() and "docker.io/library/mirrored:3" in r.stdout.decode()
    r = fresh.cli("run", "--rm", "mirrored:3", "echo", "from the mirror")
    assert r.returncode == 0 and r.stdout.decode().strip() == "from the mirror", r.stderr.decode()
    assert _cached(proxy, "library/mirrored", "3")["layers"]
