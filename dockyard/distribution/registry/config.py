"""Registry settings: Distribution's config.yml (same keys, same meanings), a few dockyard
extensions, REGISTRY_* environment overrides, and the command-line flags on top.

    version: 0.1
    log: {level: info, accesslog: {disabled: true}}
    storage:
      filesystem: {rootdirectory: /var/lib/registry}     # or:
      s3: {bucket: b, region: us-east-1, regionendpoint: http://127.0.0.1:9000,
           accesskey: k, secretkey: s, secure: true, v4auth: true, rootdirectory: /registry,
           chunksize: 10485760, encrypt: false, keyid: ..., skipverify: false,
           storageclass: STANDARD, objectacl: private, forcepathstyle: true}
      delete: {enabled: true}
      redirect: {disable: false}                # blob GETs may answer 307 to the bucket
      maintenance:
        uploadpurging: {enabled: true, age: 168h, interval: 24h, dryrun: false}
        readonly: {enabled: false}
      cache: {blobdescriptor: inmemory}         # accepted; dockyard caches in process
    http:
      addr: 127.0.0.1:5000
      secret: a-shared-secret                   # replicas sharing it trust each other's upload state
      host: https://registry.example.com        # the URL in notification events
      headers: {X-Content-Type-Options: [nosniff]}
      tls: {certificate: cert.pem, key: key.pem, clientcas: [ca.pem], minimumtls: tls1.2}
      debug: {addr: 127.0.0.1:5001, prometheus: {enabled: true, path: /metrics}}
    auth:
      htpasswd: {realm: dockyard, path: /etc/registry/htpasswd}   # Basic auth
      # or the Docker token flow, with tokens issued by dockyard itself at /auth/token:
      token: {realm: https://host/auth/token, service: dockyard, issuer: dockyard,
              htpasswd: /etc/registry/htpasswd, expiration: 300, key: ec-or-rsa-key.pem}
      # or, as in Distribution, tokens from an external token server, checked with its certificates:
      # token: {realm: https://auth.example.com/token, service: registry, issuer: auth.example.com,
      #         rootcertbundle: /etc/registry/token-ca.pem, signingalgorithms: [ES256, RS256]}
      anonymous_pull: true                      # dockyard: pull without credentials
      access:                                   # dockyard: ACL, first match wins
        - {account: alice, repository: "alice/*", actions: [pull, push, delete]}
    notifications:
      events: {includereferences: false}
      endpoints:
        - {name: ci, url: http://ci/hook, headers: {Authorization: [Bearer x]}, timeout: 1s,
           threshold: 10, backoff: 1s, ignoredmediatypes: [...], ignore: {mediatypes: [...],
           actions: [pull]}, disabled: false}
    proxy: {remoteurl: https://registry-1.docker.io, username: u, password: p, ttl: 24h}
    validation:
      disabled: false
      manifests:
        urls: {allow: ["^https?://"], deny: []}
        indexes: {platforms: all, platformlist: [{architecture: amd64, os: linux}]}
    health: {storagedriver: {enabled: true, interval: 10s, threshold: 3}}
    catalog: {maxentries: 1000}
    redis: {...}                                # accepted with a notice: not needed
    limits: {manifest_size: 4194304}            # dockyard
    gc: {grace_period: 3600}                    # dockyard: seconds; newer blobs are never collected

Keys Distribution has and dockyard does not honour either log a notice (when ignoring
them changes nothing a client sees) or stop the start naming the key.  Unknown keys
stop the start.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import urlsplit

import yaml

from .config_schema import (ConfigError, Leaf, ListOf, Notice, Notices, Refused, Section, apply_env,
                            check)

log = logging.getLogger("dockyard.registry.config")

__all__ = ["AccessRule", "AuthConfig", "ConfigError", "DebugConfig", "EndpointConfig", "HealthConfig",
           "HttpConfig", "Maintenance", "ProxyConfig", "RegistryConfig", "UploadPurging", "ValidationConfig"]

# --- the schema (Distribution's keys, plus dockyard's marked so) ---------------------------

DEFAULT_ROOT = "/var/lib/dockyard-registry"

S, L = Section, Leaf
_STR, _BOOL, _INT, _DUR, _SIZE, _LIST = L("str"), L("bool"), L("int"), L("duration"), L("size"), L("strlist")
_ENABLED = S({"enabled": _BOOL})
_OTHER_DRIVERS = ("azure", "gcs", "swift", "oss")
DRIVERS = frozenset({"filesystem", "s3", "inmemory", *_OTHER_DRIVERS})

_S3 = S({
    "accesskey": _STR, "secretkey": _STR, "sessiontoken": _STR, "region": _STR, "regionendpoint": _STR,
    "bucket": _STR, "rootdirectory": _STR, "secure": _BOOL, "skipverify": _BOOL, "v4auth": _BOOL,
    "chunksize": _SIZE, "encrypt": _BOOL, "keyid": _STR, "storageclass": _STR, "objectacl": _STR,
    "forcepathstyle": _BOOL, "usedualstack": _BOOL, "accelerate": _BOOL,
    "multipartcopychunksize": Notice("dockyard lets boto3's transfer manager size server-side copies"),
    "multipartcopymaxconcurrency": Notice("dockyard lets boto3's transfer manager size server-side copies"),
    "multipartcopythresholdsize": Notice("dockyard lets boto3's transfer manager size server-side copies"),
    "useragent": Notice("boto3 sends its own User-Agent"),
    "loglevel": Notice("use log.level"),
    "checksumdisabled": Notice("boto3 chooses the checksums"),
})

SCHEMA = S({
    "version": _STR,
    "log": S({"level": L("str", ("error", "warn", "info", "debug")),
              "formatter": L("str", ("text", "json", "logstash")),
              "fields": Notice("log lines carry no static fields"),
              "hooks": Notice("log hooks (mail) are not implemented"),
              "reportcaller": Notice("log lines name the module, not the caller"),
              "accesslog": S({"disabled": _BOOL})}),
    "loglevel": L("str", ("error", "warn", "info", "debug")),
    "storage": S({
        "filesystem": S({"rootdirectory": _STR, "maxthreads": Notice("blocking work runs in a 32-thread pool"),
                         "fsync": _BOOL}),  # fsync: dockyard
        "s3": _S3,
        "inmemory": Refused("use storage.filesystem (a tmpfs directory gives the same effect)"),
        **{d: Refused("dockyard's storage drivers are filesystem and s3") for d in _OTHER_DRIVERS},
        "delete": _ENABLED,
        "redirect": S({"disable": _BOOL}),
        "maintenance": S({
            "uploadpurging": S({"enabled": _BOOL, "age": _DUR, "interval": _DUR, "dryrun": _BOOL}),
            "readonly": _ENABLED,
        }),
        "cache": Notice("dockyard keeps its own in-process caches (no blob descriptor cache needed)"),
        "tag": Notice("tag lookups need no concurrency limit in dockyard"),
    }, scalar=lambda s: {s: {}}),
    "auth": S({
        "htpasswd": S({"realm": _STR, "path": _STR}),
        "token": S({"realm": _STR, "service": _STR, "issuer": _STR,
                    "htpasswd": _STR, "expiration": _INT, "key": _STR,  # dockyard's built-in issuer
                    "rootcertbundle": _STR,  # Distribution: tokens from an external token server
                    "jwks": Refused("an external token server's JWKS is not supported (use rootcertbundle)"),
                    "signingalgorithms": _LIST,
                    "autoredirect": _BOOL, "autoredirectpath": _STR}),
        "silly": Refused("silly auth accepts any credentials; use auth.htpasswd"),
        "anonymous_pull": _BOOL,  # dockyard
        "access": ListOf(S({"account": _STR, "repository": _STR, "actions": _LIST})),  # dockyard
    }),
    "middleware": Refused("middlewares (cloudfront, redirect, repository filters) change what clients "
                          "get and are not implemented"),
    "reporting": Notice("bugsnag and newrelic reporting are not implemented"),
    "http": S({
        "addr": _STR,
        "net": L("str", ("tcp",)),
        "host": _STR,
        "prefix": Refused("dockyard serves the API at /v2/ only"),
        "secret": _STR,
        "relativeurls": _BOOL,
        "draintimeout": _DUR,
        "tls": S({"certificate": _STR, "key": _STR, "clientcas": _LIST,
                  "minimumtls": L("str", ("tls1.0", "tls1.1", "tls1.2", "tls1.3")),
                  "ciphersuites": Refused("cipher suites are chosen by OpenSSL's defaults"),
                  "letsencrypt": Refused("Let's Encrypt certificates are not fetched by dockyard")}),
        "headers": L("headers"),
        "debug": S({"addr": _STR, "prometheus": S({"enabled": _BOOL, "path": _STR})}),
        "http2": S({"disabled": _BOOL}),
        "h2c": S({"enabled": _BOOL}),
    }),
    "notifications": S({
        "events": S({"includereferences": _BOOL}),
        "endpoints": ListOf(S({
            "name": _STR, "disabled": _BOOL, "url": _STR, "headers": L("headers"), "timeout": _DUR,
            "threshold": _INT, "backoff": _DUR, "ignoredmediatypes": _LIST,
            "ignore": S({"mediatypes": _LIST, "actions": _LIST}),
        })),
    }),
    "redis": Notice("dockyard needs no redis: upload state lives in the storage backend"),
    "health": S({
        "storagedriver": S({"enabled": _BOOL, "interval": _DUR, "threshold": _INT}),
        "file": ListOf(S({"file": _STR, "interval": _DUR, "threshold": _INT})),
        "http": ListOf(S({"uri": _STR, "headers": L("headers"), "statuscode": _INT, "timeout": _DUR,
                          "interval": _DUR, "threshold": _INT})),
        "tcp": ListOf(S({"addr": _STR, "timeout": _DUR, "interval": _DUR, "threshold": _INT})),
    }),
    "catalog": S({"maxentries": _INT}),
    "proxy": S({"remoteurl": _STR, "username": _STR, "password": _STR, "ttl": _DUR}),
    "compatibility": S({"schema1": S({"enabled": _BOOL, "signingkeyfile": Notice("schema1 is not served")})}),
    "validation": S({
        "enabled": _BOOL, "disabled": _BOOL,
        "manifests": S({
            "urls": S({"allow": _LIST, "deny": _LIST}),
            "indexes": S({"platforms": L("str", ("all", "none", "list")),
                          "platformlist": ListOf(S({"architecture": _STR, "os": _STR}))}),
        }),
    }),
    "policy": Refused("repository classes are not enforced by dockyard"),
    "limits": S({"manifest_size": _SIZE}),  # dockyard
    "gc": S({"grace_period": L("int")}),  # dockyard (seconds)
})


# --- typed settings ---------------------------------------------------------------------------

@dataclass
class AccessRule:
    account: str
    repository: str
    actions: list[str]


@dataclass
class AuthConfig:
    mode: str = "none"  # none | htpasswd | token
    htpasswd_path: str | None = None
    realm: str = "dockyard"
    token_realm: str | None = None
    service: str = "dockyard"
    issuer: str = "dockyard"
    expiration: int = 300
    key_path: str | None = None
    root_cert_bundle: str | None = None  # set: tokens come from an external token server
    signing_algorithms: list[str] = field(default_factory=list)
    anonymous_pull: bool = False
    access: list[AccessRule] = field(default_factory=list)


@dataclass
class UploadPurging:
    """storage.maintenance.uploadpurging: uploads older than `age` are removed every `interval`."""
    enabled: bool = True
    age: float = 168 * 3600.0
    interval: float = 24 * 3600.0
    dryrun: bool = False


@dataclass
class Maintenance:
    uploadpurging: UploadPurging = field(default_factory=UploadPurging)
    readonly: bool = False  # storage.maintenance.readonly.enabled: writes answer 405 UNSUPPORTED


@dataclass
class DebugConfig:
    addr: str | None = None  # http.debug.addr: a second listener for health and metrics
    prometheus: bool = False
    prometheus_path: str = "/metrics"


@dataclass
class HttpConfig:
    secret: str | None = None  # http.secret: shared by replicas that trust each other's upload state
    host: str | None = None  # externally reachable URL (used in notification events)
    relative_urls: bool = False
    headers: dict[str, list[str]] = field(default_factory=dict)
    drain_timeout: float = 0.0
    client_cas: list[str] = field(default_factory=list)
    minimum_tls: str | None = None
    debug: DebugConfig = field(default_factory=DebugConfig)


@dataclass
class EndpointConfig:
    """One notifications.endpoints entry (Distribution's names and defaults)."""
    name: str
    url: str
    headers: dict[str, list[str]] = field(default_factory=dict)
    timeout: float = 1.0
    threshold: int = 10
    backoff: float = 1.0
    ignored_media_types: list[str] = field(default_factory=list)
    ignore_actions: list[str] = field(default_factory=list)
    disabled: bool = False


@dataclass
class ProxyConfig:
    remote_url: str
    username: str | None = None
    password: str | None = None
    ttl: float = 24 * 3600.0  # tags are re-checked with the upstream after this long; 0: never


@dataclass
class ValidationConfig:
    url_allow: list[str] = field(default_factory=list)
    url_deny: list[str] = field(default_factory=list)
    index_platforms: str = "all"  # all | none | list: which children of an index must exist
    platform_list: list[tuple[str, str]] = field(default_factory=list)  # (os, architecture)


@dataclass
class CheckConfig:
    """One of Distribution's health.file / health.http / health.tcp checks."""
    kind: str  # file | http | tcp
    target: str  # the file that must not exist, the URI, or host:port
    interval: float = 10.0
    threshold: int = 1
    timeout: float = 1.0
    status: int = 200
    headers: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class HealthConfig:
    storagedriver: bool = False
    interval: float = 10.0
    threshold: int = 1
    checks: list[CheckConfig] = field(default_factory=list)


@dataclass
class RegistryConfig:
    root: str  # the local state directory (filesystem blobs unless rootdirectory says otherwise, locks)
    addr: str = "127.0.0.1:5000"
    driver: str = "filesystem"
    driver_options: dict[str, Any] = field(default_factory=dict)
    delete_enabled: bool = True
    redirect: bool = True  # storage.redirect.disable negated (drivers without URLs never redirect)
    maintenance: Maintenance = field(default_factory=Maintenance)
    manifest_size: int = 4 << 20
    gc_grace_period: float = 3600.0
    tls_cert: str | None = None
    tls_key: str | None = None
    auth: AuthConfig = field(default_factory=AuthConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    notifications: list[EndpointConfig] = field(default_factory=list)
    include_references: bool = False
    proxy: ProxyConfig | None = None
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    catalog_max_entries: int | None = None
    log_level: str | None = None
    access_log: bool | None = None  # log.accesslog.disabled negated; None: the command line decides
    notices: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, root: str | None, path: str | None = None, env: Mapping[str, str] | None = None,
             **overrides: Any) -> "RegistryConfig":
        """Read `path` (optional), apply REGISTRY_* from `env` (default: os.environ), then the
        non-None `overrides` (command-line flags).  Raises ConfigError naming the bad key.
        `root` (--root) wins over storage.filesystem.rootdirectory; without either,
        DEFAULT_ROOT."""
        raw: Any = {}
        if path:
            with open(path) as f:
                try:
                    raw = yaml.safe_load(f) or {}
                except yaml.YAMLError as e:
                    raise ConfigError(f"{path}: not valid YAML: {e}") from None
            if not isinstance(raw, dict):
                raise ConfigError(f"{path}: top level must be a mapping")
        raw = apply_env(raw, SCHEMA, os.environ if env is None else env, driver_keys=DRIVERS)
        notices = Notices()
        doc = check(raw, SCHEMA, "", notices)
        cfg = cls(root=root or DEFAULT_ROOT, notices=notices.lines)
        _version(doc)
        # Distribution refuses deletes unless configured; dockyard without a file allows them.
        _storage(cfg, doc.get("storage") or {}, default_delete=not path, explicit_root=root)
        _http(cfg, doc.get("http") or {})
        cfg.auth = _auth(doc.get("auth") or {})
        _notifications(cfg, doc.get("notifications") or {})
        cfg.proxy = _proxy(doc.get("proxy"))
        cfg.validation = _validation(doc.get("validation") or {})
        cfg.health = _health(doc.get("health") or {})
        cfg.catalog_max_entries = (doc.get("catalog") or {}).get("maxentries")
        logs = doc.get("log") or {}
        cfg.log_level = logs.get("level") or doc.get("loglevel")
        if logs.get("formatter") not in (None, "text"):
            cfg.notices.append(f"log.formatter: {logs['formatter']!r} accepted; dockyard logs text lines")
        if (((doc.get("compatibility") or {}).get("schema1")) or {}).get("enabled"):
            raise ConfigError("compatibility.schema1.enabled: schema1 manifests are not served by dockyard")
        if "accesslog" in logs:
            cfg.access_log = not (logs["accesslog"] or {}).get("disabled", False)
        cfg.manifest_size = int((doc.get("limits") or {}).get("manifest_size") or cfg.manifest_size)
        grace = (doc.get("gc") or {}).get("grace_period")
        cfg.gc_grace_period = float(cfg.gc_grace_period if grace is None else grace)
        for k, v in overrides.items():
            if v is not None:
                setattr(cfg, k, v)
        if cfg.proxy is not None and cfg.maintenance.readonly:
            raise ConfigError("proxy: a pull-through cache cannot be read-only "
                              "(storage.maintenance.readonly.enabled)")
        return cfg

    def log_notices(self) -> None:
        for line in self.notices:
            log.warning("%s", line)


def _positive(d: dict[str, Any], key: str, default: float) -> float:
    v = d.get(key)
    return default if v is None or v <= 0 else float(v)


def _version(doc: dict[str, Any]) -> None:
    v = doc.get("version")
    if v is not None and not re.fullmatch(r"0\.1", str(v)):
        raise ConfigError(f"version: {v!r} is not supported (dockyard reads version 0.1)")


def _storage(cfg: RegistryConfig, st: dict[str, Any], default_delete: bool, explicit_root: str | None) -> None:
    drivers = [k for k in st if k in DRIVERS]
    if len(drivers) > 1:
        raise ConfigError(f"storage: must provide exactly one storage type. Provided: {sorted(drivers)}")
    cfg.driver = drivers[0] if drivers else "filesystem"
    params = (st.get(cfg.driver) or {}) if drivers else {}
    if cfg.driver == "filesystem":
        if params.get("rootdirectory") and explicit_root is None:
            cfg.root = params["rootdirectory"]
        cfg.driver_options = {"fsync": bool(params.get("fsync", False))}
    else:
        cfg.driver_options = _s3_options(params)
    cfg.delete_enabled = bool((st.get("delete") or {}).get("enabled", default_delete))
    cfg.redirect = not (st.get("redirect") or {}).get("disable", False)
    mt = st.get("maintenance") or {}
    up = mt.get("uploadpurging") or {}
    purge = UploadPurging()
    purge.enabled = bool(up.get("enabled", purge.enabled))
    purge.age = _positive(up, "age", purge.age)
    purge.interval = _positive(up, "interval", purge.interval)
    purge.dryrun = bool(up.get("dryrun", False))
    cfg.maintenance = Maintenance(purge, bool((mt.get("readonly") or {}).get("enabled", False)))


def _s3_options(p: dict[str, Any]) -> dict[str, Any]:
    """Distribution's s3 parameters -> S3Driver keyword arguments."""
    for required in ("bucket", "region"):
        if not p.get(required):
            raise ConfigError(f"storage.s3.{required}: required")
    if p.get("v4auth") is False:
        raise ConfigError("storage.s3.v4auth: false (signature version 2) is not supported")
    endpoint = p.get("regionendpoint") or None
    secure = p.get("secure", True)
    if endpoint and "://" not in endpoint:
        endpoint = ("https://" if secure else "http://") + endpoint
    elif endpoint and urlsplit(endpoint).scheme not in ("http", "https"):
        raise ConfigError(f"storage.s3.regionendpoint: {endpoint!r} is not an http(s) URL")
    chunk = p.get("chunksize")
    if chunk is not None and chunk < 5 << 20:
        raise ConfigError(f"storage.s3.chunksize: {chunk} is below S3's minimum part size (5242880)")
    if p.get("keyid") and not p.get("encrypt"):
        raise ConfigError("storage.s3.keyid: needs storage.s3.encrypt: true")
    storage_class = p.get("storageclass") or "STANDARD"
    return {
        "bucket": p["bucket"], "region": p["region"], "endpoint_url": endpoint,
        "access_key": p.get("accesskey") or None, "secret_key": p.get("secretkey") or None,
        "session_token": p.get("sessiontoken") or None,
        "prefix": (p.get("rootdirectory") or "").strip("/"),
        "chunk_size": chunk,
        "encrypt": bool(p.get("encrypt", False)), "kms_key_id": p.get("keyid") or None,
        "verify": not p.get("skipverify", False),
        "storage_class": None if storage_class.upper() == "NONE" else storage_class,
        "acl": p.get("objectacl") or None,
        "path_style": p.get("forcepathstyle", True),
        "dualstack": bool(p.get("usedualstack", False)), "accelerate": bool(p.get("accelerate", False)),
    }


def _http(cfg: RegistryConfig, h: dict[str, Any]) -> None:
    if h.get("addr"):
        cfg.addr = h["addr"]
    tls = h.get("tls") or {}
    cfg.tls_cert, cfg.tls_key = tls.get("certificate"), tls.get("key")
    if bool(cfg.tls_cert) != bool(cfg.tls_key):
        raise ConfigError("http.tls: certificate and key go together")
    dbg = h.get("debug") or {}
    prom = dbg.get("prometheus") or {}
    if dbg.get("addr") and dbg["addr"] == (h.get("addr") or cfg.addr):
        raise ConfigError(f"http.debug.addr: {dbg['addr']} is also the API address")
    if prom.get("enabled") and not dbg.get("addr"):
        raise ConfigError("http.debug.prometheus.enabled: needs http.debug.addr")
    path = prom.get("path") or "/metrics"
    if not path.startswith("/"):
        raise ConfigError(f"http.debug.prometheus.path: {path!r} must start with /")
    host = h.get("host")
    if host and urlsplit(host).scheme not in ("http", "https"):
        raise ConfigError(f"http.host: {host!r} must be a URL such as https://registry.example.com")
    cfg.http = HttpConfig(
        secret=h.get("secret") or None, host=host.rstrip("/") if host else None,
        relative_urls=bool(h.get("relativeurls", False)), headers=h.get("headers") or {},
        drain_timeout=float(h.get("draintimeout") or 0.0), client_cas=tls.get("clientcas") or [],
        minimum_tls=tls.get("minimumtls"),
        debug=DebugConfig(dbg.get("addr") or None, bool(prom.get("enabled", False)), path))


def _auth(raw: dict[str, Any]) -> AuthConfig:
    a = AuthConfig(anonymous_pull=bool(raw.get("anonymous_pull", False)))
    a.access = [AccessRule(r.get("account") or "*", r.get("repository") or "*", list(r.get("actions") or []))
                for r in raw.get("access") or []]
    kinds = [k for k in ("htpasswd", "token") if k in raw]
    if len(kinds) > 1:
        raise ConfigError(f"auth: must provide exactly one type. Provided: {kinds}")
    if "token" in raw:
        t = raw["token"] or {}
        if t.get("autoredirect"):
            raise ConfigError("auth.token.autoredirect: not supported (the realm is derived from the "
                              "request unless auth.token.realm is set)")
        a.mode = "token"
        a.htpasswd_path = t.get("htpasswd")
        a.service = t.get("service") or a.service
        a.issuer = t.get("issuer") or a.issuer
        a.expiration = int(t.get("expiration") or a.expiration)
        a.key_path = t.get("key")
        a.token_realm = t.get("realm")
        a.root_cert_bundle = t.get("rootcertbundle")
        a.signing_algorithms = list(t.get("signingalgorithms") or [])
        if a.root_cert_bundle:
            # Distribution's meaning: verify tokens an external server (realm) signs.
            for key in ("realm", "service", "issuer"):
                if not t.get(key):
                    raise ConfigError(f"auth.token.{key}: required with auth.token.rootcertbundle")
            try:
                with open(a.root_cert_bundle, "rb") as f:
                    if b"-----BEGIN CERTIFICATE-----" not in f.read():
                        raise ConfigError(f"auth.token.rootcertbundle: {a.root_cert_bundle} holds no PEM certificate")
            except OSError as e:
                raise ConfigError(f"auth.token.rootcertbundle: {e}") from None
            for key in ("htpasswd", "key", "expiration"):
                if t.get(key) is not None:
                    raise ConfigError(f"auth.token.{key}: dockyard's own token endpoint, not used with "
                                      "an external token server (auth.token.rootcertbundle)")
        elif not a.htpasswd_path:
            raise ConfigError("auth.token.htpasswd: required (the accounts dockyard's token endpoint "
                              "authenticates)")
    elif "htpasswd" in raw:
        h = raw["htpasswd"] or {}
        a.mode = "htpasswd"
        a.htpasswd_path = h.get("path")
        a.realm = h.get("realm") or a.realm
        if not a.htpasswd_path:
            raise ConfigError("auth.htpasswd.path: required")
    return a


def _notifications(cfg: RegistryConfig, n: dict[str, Any]) -> None:
    cfg.include_references = bool((n.get("events") or {}).get("includereferences", False))
    names: set[str] = set()
    for i, e in enumerate(n.get("endpoints") or []):
        where = f"notifications.endpoints[{i}]"
        name, url = e.get("name"), e.get("url")
        if not name:
            raise ConfigError(f"{where}.name: required")
        if name in names:
            raise ConfigError(f"{where}.name: {name!r} is used twice")
        names.add(name)
        if not url or urlsplit(url).scheme not in ("http", "https"):
            raise ConfigError(f"{where}.url: an http(s) URL is required")
        ignore = e.get("ignore") or {}
        actions = ignore.get("actions") or []
        for act in actions:
            if act not in ("push", "pull", "mount", "delete"):
                raise ConfigError(f"{where}.ignore.actions: unknown action {act!r} (push, pull, mount, delete)")
        cfg.notifications.append(EndpointConfig(
            name=name, url=url, headers=e.get("headers") or {},
            timeout=_positive(e, "timeout", 1.0), threshold=max(1, int(e.get("threshold") or 10)),
            backoff=_positive(e, "backoff", 1.0),
            ignored_media_types=list(e.get("ignoredmediatypes") or []) + list(ignore.get("mediatypes") or []),
            ignore_actions=list(actions), disabled=bool(e.get("disabled", False))))


def _proxy(p: dict[str, Any] | None) -> ProxyConfig | None:
    if not p:
        return None
    url = p.get("remoteurl")
    if not url:
        raise ConfigError("proxy.remoteurl: required")
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
        raise ConfigError(f"proxy.remoteurl: {url!r} is not an http(s) URL")
    if bool(p.get("username")) != bool(p.get("password")):
        raise ConfigError("proxy: username and password go together")
    ttl = p.get("ttl")
    return ProxyConfig(url.rstrip("/"), p.get("username") or None, p.get("password") or None,
                       24 * 3600.0 if ttl is None else float(ttl))


def _health(h: dict[str, Any]) -> HealthConfig:
    sd = h.get("storagedriver") or {}
    out = HealthConfig(bool(sd.get("enabled", False)), _positive(sd, "interval", 10.0),
                       max(1, int(sd.get("threshold") or 1)))
    for kind, key in (("file", "file"), ("http", "uri"), ("tcp", "addr")):
        for i, c in enumerate(h.get(kind) or []):
            target = c.get(key)
            if not target:
                raise ConfigError(f"health.{kind}[{i}].{key}: required")
            if kind == "http" and urlsplit(target).scheme not in ("http", "https"):
                raise ConfigError(f"health.http[{i}].uri: {target!r} is not an http(s) URL")
            if kind == "tcp" and not target.rpartition(":")[2].isdigit():
                raise ConfigError(f"health.tcp[{i}].addr: {target!r} is not host:port")
            out.checks.append(CheckConfig(kind, target, _positive(c, "interval", 10.0),
                                          max(1, int(c.get("threshold") or 1)), _positive(c, "timeout", 1.0),
                                          int(c.get("statuscode") or 200), c.get("headers") or {}))
    return out


def _validation(v: dict[str, Any]) -> ValidationConfig:
    out = ValidationConfig()
    if v.get("disabled") or v.get("enabled") is False:
        return out
    m = v.get("manifests") or {}
    urls = m.get("urls") or {}
    for kind in ("allow", "deny"):
        for i, rx in enumerate(urls.get(kind) or []):
            try:
                re.compile(rx)
            except re.error as e:
                raise ConfigError(f"validation.manifests.urls.{kind}[{i}]: invalid regular expression: {e}") from None
    out.url_allow, out.url_deny = list(urls.get("allow") or []), list(urls.get("deny") or [])
    idx = m.get("indexes") or {}
    out.index_platforms = idx.get("platforms") or "all"
    plist = idx.get("platformlist") or []
    if out.index_platforms == "list" and not plist:
        raise ConfigError("validation.manifests.indexes.platformlist: required with platforms: list")
    if plist and out.index_platforms != "list":
        raise ConfigError("validation.manifests.indexes.platformlist: only used with platforms: list")
    for i, pl in enumerate(plist):
        if not pl.get("os") or not pl.get("architecture"):
            raise ConfigError(f"validation.manifests.indexes.platformlist[{i}]: os and architecture are required")
    out.platform_list = [(pl["os"], pl["architecture"]) for pl in plist]
    return out
