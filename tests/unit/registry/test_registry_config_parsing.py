"""The registry's configuration: Distribution's config.yml keys, env overrides, refusals."""

from __future__ import annotations

import pytest
import yaml

from dockyard.distribution.registry.config import ConfigError, RegistryConfig
from dockyard.distribution.registry.config_schema import parse_duration, parse_size


def load(tmp_path, doc, env=None, root="/r", **kw):
    p = tmp_path / "config.yml"
    p.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return RegistryConfig.load(root, str(p), env=env or {}, **kw)


DISTRIBUTION_S3 = """
version: 0.1
log:
  level: debug
  accesslog: {disabled: false}
  fields: {service: registry}
storage:
  s3:
    accesskey: AK
    secretkey: SK
    region: eu-west-1
    regionendpoint: minio.local:9000
    secure: false
    bucket: images
    rootdirectory: /registry/v2
    chunksize: 10MiB
    encrypt: true
    keyid: kms-1
    v4auth: true
  delete: {enabled: true}
  redirect: {disable: true}
  maintenance:
    uploadpurging: {enabled: true, age: 2h, interval: 30m, dryrun: true}
    readonly: {enabled: true}
  cache: {blobdescriptor: inmemory}
http:
  addr: :5000
  secret: s3cr3t
  host: https://reg.example.com/
  headers: {X-Content-Type-Options: [nosniff]}
  debug: {addr: 127.0.0.1:5001, prometheus: {enabled: true, path: /m}}
redis: {addr: localhost:6379}
health: {storagedriver: {enabled: true, interval: 5s, threshold: 3}}
notifications:
  endpoints:
    - name: ci
      url: http://ci.local/hook
      headers: {Authorization: [Bearer x]}
      timeout: 500ms
      threshold: 5
      backoff: 2s
      ignoredmediatypes: [application/octet-stream]
      ignore: {mediatypes: [a/b], actions: [pull]}
validation:
  manifests:
    urls: {allow: ["^https://"]}
    indexes: {platforms: list, platformlist: [{architecture: amd64, os: linux}]}
"""


def test_distribution_s3_config_is_read_with_its_meanings(tmp_path):
    c = load(tmp_path, DISTRIBUTION_S3)
    assert c.driver == "s3"
    o = c.driver_options
    assert o["bucket"] == "images" and o["region"] == "eu-west-1"
    assert o["endpoint_url"] == "http://minio.local:9000"  # secure: false, no scheme given
    assert (o["access_key"], o["secret_key"], o["prefix"]) == ("AK", "SK", "registry/v2")
    assert o["chunk_size"] == 10 << 20 and o["encrypt"] and o["kms_key_id"] == "kms-1"
    assert c.delete_enabled and not c.redirect
    assert c.maintenance.readonly
    p = c.maintenance.uploadpurging
    assert (p.enabled, p.age, p.interval, p.dryrun) == (True, 7200.0, 1800.0, True)
    assert c.http.secret == "s3cr3t" and c.http.host == "https://reg.example.com"
    assert c.http.headers == {"X-Content-Type-Options": ["nosniff"]}
    assert (c.http.debug.addr, c.http.debug.prometheus, c.http.debug.prometheus_path) == ("127.0.0.1:5001", True, "/m")
    assert c.addr == ":5000" and c.log_level == "debug" and c.access_log is True
    assert (c.health.storagedriver, c.health.interval, c.health.threshold) == (True, 5.0, 3)
    (e,) = c.notifications
    assert (e.name, e.url, e.timeout, e.threshold, e.backoff) == ("ci", "http://ci.local/hook", 0.5, 5, 2.0)
    assert e.headers == {"Authorization": ["Bearer x"]} and e.ignore_actions == ["pull"]
    assert e.ignored_media_types == ["application/octet-stream", "a/b"]
    assert c.validation.index_platforms == "list" and c.validation.platform_list == [("linux", "amd64")]
    assert c.validation.url_allow == ["^https://"]
    # redis, storage.cache and log.fields are accepted, each with a notice naming it
    assert {n.split(":")[0] for n in c.notices} == {"redis", "storage.cache", "log.fields"}


def test_defaults_without_a_file():
    c = RegistryConfig.load("/r", None, env={})
    assert c.driver == "filesystem" and c.root == "/r" and c.delete_enabled and c.proxy is None
    assert c.maintenance.uploadpurging.age == 168 * 3600 and not c.maintenance.readonly
    assert c.validation.index_platforms == "all" and not c.http.debug.prometheus


def test_a_file_follows_distributions_defaults(tmp_path):
    c = load(tmp_path, {"storage": {"filesystem": {"rootdirectory": "/data"}}}, root=None)
    assert not c.delete_enabled  # Distribution: deletes are off unless enabled
    assert c.root == "/data"
    assert load(tmp_path, {"storage": {"filesystem": {"rootdirectory": "/data"}}}, root="/cli").root == "/cli"
    assert load(tmp_path, {"storage": "filesystem"}).driver == "filesystem"  # the scalar spelling


@pytest.mark.parametrize("doc, key", [
    ({"storage": {"s3": {"bucket": "b", "region": "r", "bukcet": "x"}}}, "storage.s3.bukcet"),
    ({"storage": {"driver": "s3"}}, "storage.driver"),
    ({"storage": {"s3": {"bucket": "b", "region": "r", "endpoint_url": "http://x"}}}, "storage.s3.endpoint_url"),
    ({"htpp": {"addr": ":1"}}, "htpp"),
    ({"storage": {"inmemory": None}}, "storage.inmemory"),
    ({"storage": {"gcs": {"bucket": "b"}}}, "storage.gcs"),
    ({"storage": {"filesystem": {}, "s3": {"bucket": "b", "region": "r"}}}, "storage"),
    ({"storage": {"s3": {"bucket": "b"}}}, "storage.s3.region"),
    ({"storage": {"s3": {"bucket": "b", "region": "r", "v4auth": False}}}, "storage.s3.v4auth"),
    ({"storage": {"s3": {"bucket": "b", "region": "r", "chunksize": 1024}}}, "storage.s3.chunksize"),
    ({"storage": {"maintenance": {"uploadpurging": {"age": 168}}}}, "storage.maintenance.uploadpurging.age"),
    ({"storage": {"maintenance": {"uploadpurging": {"age": "a week"}}}}, "storage.maintenance.uploadpurging.age"),
    ({"storage": {"delete": {"enabled": "yes"}}}, "storage.delete.enabled"),
    ({"auth": {"token": {"realm": "r", "service": "s", "issuer": "i", "rootcertbundle": "/nonexistent"}}},
     "auth.token.rootcertbundle"),
    ({"auth": {"token": {"realm": "r", "service": "s", "issuer": "i", "jwks": "/j"}}}, "auth.token.jwks"),
    ({"auth": {"token": {"service": "s", "issuer": "i", "rootcertbundle": "/c"}}}, "auth.token.realm"),
    ({"auth": {"htpasswd": {"realm": "r"}}}, "auth.htpasswd.path"),
    ({"auth": {"silly": {"realm": "r"}}}, "auth.silly"),
    ({"middleware": {"registry": []}}, "middleware"),
    ({"http": {"prefix": "/reg"}}, "http.prefix"),
    ({"http": {"debug": {"prometheus": {"enabled": True}}}}, "http.debug.prometheus.enabled"),
    ({"proxy": {"remoteurl": "registry-1.docker.io"}}, "proxy.remoteurl"),
    ({"proxy": {"remoteurl": "https://r", "ttl": "forever"}}, "proxy.ttl"),
    ({"proxy": {"remoteurl": "https://r"}, "storage": {"maintenance": {"readonly": {"enabled": True}}}}, "proxy"),
    ({"notifications": {"endpoints": [{"name": "a", "url": "ftp://x"}]}}, "notifications.endpoints[0].url"),
    ({"notifications": {"endpoints": [{"name": "a", "url": "http://x", "treshold": 3}]}},
     "notifications.endpoints[0].treshold"),
    ({"notifications": {"endpoints": [{"name": "a", "url": "http://x", "ignore": {"actions": ["fetch"]}}]}},
     "notifications.endpoints[0].ignore.actions"),
    ({"validation": {"manifests": {"indexes": {"platforms": "some"}}}}, "validation.manifests.indexes.platforms"),
    ({"validation": {"manifests": {"indexes": {"platforms": "list"}}}},
     "validation.manifests.indexes.platformlist"),
    ({"health": {"tcp": [{"addr": "x"}]}}, "health.tcp[0].addr"),
    ({"health": {"http": [{"uri": "x"}]}}, "health.http[0].uri"),
    ({"health": {"file": [{"path": "/x"}]}}, "health.file[0].path"),
    ({"version": "0.2"}, "version"),
])
def test_refused_keys_are_named(tmp_path, doc, key):
    with pytest.raises(ConfigError) as e:
        load(tmp_path, doc)
    assert str(e.value).startswith(key + ":"), str(e.value)


def test_environment_overrides_as_distribution(tmp_path):
    env = {"REGISTRY_STORAGE_S3_BUCKET": "from-env", "REGISTRY_STORAGE_S3_REGION": "us-east-1",
           "REGISTRY_STORAGE_S3_SECURE": "false", "REGISTRY_STORAGE_S3_REGIONENDPOINT": "127.0.0.1:9",
           "REGISTRY_HTTP_SECRET": "x", "REGISTRY_PROXY_REMOTEURL": "http://up:5000",
           "REGISTRY_STORAGE_DELETE_ENABLED": "true", "REGISTRY_AUTH_ANONYMOUS_PULL": "true",
           "REGISTRY_PORT_5000_TCP_ADDR": "10.0.0.1"}  # not a section: ignored with a warning
    c = load(tmp_path, {"storage": {"filesystem": {"rootdirectory": "/x"}}}, env=env)
    assert c.driver == "s3"  # the driver set from the environment replaces the file's
    assert c.driver_options["bucket"] == "from-env" and c.driver_options["endpoint_url"] == "http://127.0.0.1:9"
    assert c.http.secret == "x" and c.proxy is not None and c.proxy.remote_url == "http://up:5000"
    assert c.delete_enabled and c.auth.anonymous_pull
    c = load(tmp_path, {"storage": {"s3": {"bucket": "b", "region": "r"}}}, env={"REGISTRY_STORAGE": "filesystem"})
    assert c.driver == "filesystem"
    with pytest.raises(ConfigError, match="REGISTRY_STORAGE_S3_BUKET"):
        load(tmp_path, {}, env={"REGISTRY_STORAGE_S3_BUKET": "b"})


def test_dockyard_extensions(tmp_path):
    htp = tmp_path / "htpasswd"
    htp.write_text("")
    c = load(tmp_path, {
        "storage": {"s3": {"bucket": "b", "region": "us-east-1", "regionendpoint": "http://127.0.0.1:1"},
                    "delete": {"enabled": False}},
        "auth": {"token": {"htpasswd": str(htp), "service": "svc"}, "anonymous_pull": True,
                 "access": [{"account": "alice", "repository": "a/*", "actions": ["pull"]}]},
        "http": {"addr": "127.0.0.1:6000"}, "limits": {"manifest_size": 1024}, "gc": {"grace_period": 60}})
    assert c.driver == "s3" and c.driver_options["bucket"] == "b" and not c.delete_enabled
    assert c.auth.mode == "token" and c.auth.service == "svc" and c.auth.anonymous_pull
    assert c.auth.access[0].repository == "a/*" and c.addr == "127.0.0.1:6000"
    assert c.manifest_size == 1024 and c.gc_grace_period == 60
    assert load(tmp_path, {"http": {"addr": "127.0.0.1:6000"}}, addr="127.0.0.1:7").addr == "127.0.0.1:7"


def test_durations_and_sizes():
    assert parse_duration("1h30m", "k") == 5400 and parse_duration("500ms", "k") == 0.5
    assert parse_duration(0, "k") == 0
    with pytest.raises(ConfigError):
        parse_duration("10", "k")
    assert parse_size("5MiB", "k") == 5 << 20 and parse_size(123, "k") == 123 and parse_size("2g", "k") == 2 << 30
