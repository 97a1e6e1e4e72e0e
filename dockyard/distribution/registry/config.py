"""Registry settings: command-line flags plus an optional YAML file.

    storage:
      driver: filesystem            # or s3
      filesystem: {fsync: false}    # fsync blobs before they are renamed into place
      s3: {bucket: b, region: us-east-1, endpoint_url: http://127.0.0.1:9000,
           access_key: k, secret_key: s, prefix: registry, create_bucket: false}
      delete: {enabled: true}       # DELETE of manifests, tags and blobs
    limits: {manifest_size: 4194304}
    gc: {grace_period: 3600}        # seconds: newer blobs/links are never collected
    auth:
      htpasswd: {path: /etc/registry/htpasswd, realm: dockyard}   # Basic auth
      token:                        # Docker token flow with the built-in endpoint /auth/token
        service: dockyard
        issuer: dockyard
        expiration: 300
        key: /path/to/ec-or-rsa-key.pem   # optional: generated at startup when absent
        realm: https://host/auth/token     # optional: derived from the request otherwise
      anonymous_pull: true          # pull without credentials, push needs them
      access:                       # optional ACL, first match wins; default: users may do anything
        - {account: alice, repository: "alice/*", actions: [pull, push, delete]}
        - {account: "*", repository: "*", actions: [pull]}
    http: {addr: 127.0.0.1:5000, tls: {certificate: cert.pem, key: key.pem},
           secret: s3cr3t}          # signs upload URLs: the same on every replica of a fleet
    storage:                        # fleet settings, with Distribution's spellings
      redirect: {disable: false}    # blob GET/HEAD answer 307 to a presigned bucket URL (s3)
      maintenance:
        readonly: {enabled: true}   # writes answer 405 UNSUPPORTED (while gc runs)
        uploadpurging: {enabled: true, age: 168h, interval: 24h, dryrun: false}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml


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
    anonymous_pull: bool = False
    access: list[AccessRule] = field(default_factory=list)


@dataclass
class UploadPurging:
    enabled: bool = True
    age: float = 168 * 3600.0
    interval: float = 24 * 3600.0
    dry_run: bool = False


def parse_duration(v: Any) -> float:
    """Go-style durations as Distribution writes them ("168h", "1h30m", "90s", "500ms"), or seconds."""
    import re

    if isinstance(v, (int, float)):
        return float(v)
    s = str(v).strip()
    parts = re.findall(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)", s)
    if not parts or "".join(n + u for n, u in parts) != s:
        raise ValueError(f"invalid duration {s!r}")
    scale = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * scale[u] for n, u in parts)


@dataclass
class RegistryConfig:
    root: str
    addr: str = "127.0.0.1:5000"
    driver: str = "filesystem"
    driver_options: dict[str, Any] = field(default_factory=dict)
    delete_enabled: bool = True
    manifest_size: int = 4 << 20
    gc_grace_period: float = 3600.0
    tls_cert: str | None = None
    tls_key: str | None = None
    auth: AuthConfig = field(default_factory=AuthConfig)
    # Fleet settings (Distribution's keys): shared upload-state secret, blob redirects,
    # read-only maintenance mode, stale upload purging.
    http_secret: str | None = None
    redirect: bool = False
    readonly: bool = False
    upload_purging: "UploadPurging" = field(default_factory=lambda: UploadPurging())

    @classmethod
    def load(cls, root: str, path: str | None = None, **overrides: Any) -> "RegistryConfig":
        raw: dict[str, Any] = {}
        if path:
            with open(path) as f:
                raw = yaml.safe_load(f) or {}
            if not isinstance(raw, dict):
                raise ValueError(f"{path}: top level must be a mapping")
        cfg = cls(root=root)
        storage = raw.get("storage") or {}
        cfg.driver = storage.get("driver", "filesystem")
        cfg.driver_options = dict(storage.get(cfg.driver) or {})
        cfg.delete_enabled = bool((storage.get("delete") or {}).get("enabled", True))
        cfg.manifest_size = int((raw.get("limits") or {}).get("manifest_size", cfg.manifest_size))
        cfg.gc_grace_period = float((raw.get("gc") or {}).get("grace_period", cfg.gc_grace_period))
        http = raw.get("http") or {}
        cfg.addr = http.get("addr", cfg.addr)
        tls = http.get("tls") or {}
        cfg.tls_cert, cfg.tls_key = tls.get("certificate"), tls.get("key")
        cfg.auth = _auth(raw.get("auth") or {})
        cfg.http_secret = http.get("secret") or None
        cfg.redirect = not bool((storage.get("redirect") or {}).get("disable", True))
        maint = storage.get("maintenance") or {}
        cfg.readonly = bool((maint.get("readonly") or {}).get("enabled", False))
        up = maint.get("uploadpurging") or {}
        cfg.upload_purging = UploadPurging(
            enabled=bool(up.get("enabled", True)), age=parse_duration(up.get("age", "168h")),
            interval=parse_duration(up.get("interval", "24h")), dry_run=bool(up.get("dryrun", False)))
        for k, v in overrides.items():
            if v is not None:
                setattr(cfg, k, v)
        return cfg


def _auth(raw: dict[str, Any]) -> AuthConfig:
    a = AuthConfig(anonymous_pull=bool(raw.get("anonymous_pull", False)))
    a.access = [AccessRule(str(r.get("account", "*")), str(r.get("repository", "*")),
                           [str(x) for x in r.get("actions", [])]) for r in raw.get("access") or []]
    if "token" in raw:
        t = raw["token"] or {}
        a.mode = "token"
        a.htpasswd_path = t.get("htpasswd") or (raw.get("htpasswd") or {}).get("path")
        a.service = t.get("service", a.service)
        a.issuer = t.get("issuer", a.issuer)
        a.expiration = int(t.get("expiration", a.expiration))
        a.key_path = t.get("key")
        a.token_realm = t.get("realm")
    elif "htpasswd" in raw:
        h = raw["htpasswd"] or {}
        a.mode = "htpasswd"
        a.htpasswd_path = h.get("path")
        a.realm = h.get("realm", a.realm)
    if a.mode != "none" and not a.htpasswd_path:
        raise ValueError("auth needs an htpasswd file (auth.htpasswd.path or auth.token.htpasswd)")
    return a
