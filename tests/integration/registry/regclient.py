"""Small raw-HTTP helpers for the protocol tests (requests, no registry client library)."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import requests

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


def sha256(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


def sha512(b: bytes) -> str:
    return "sha512:" + hashlib.sha512(b).hexdigest()


def push_blob(base: str, repo: str, data: bytes, digest: str | None = None,
              session: requests.Session | None = None, headers: dict[str, str] | None = None) -> str:
    s = session or requests
    digest = digest or sha256(data)
    r = s.post(f"{base}/v2/{repo}/blobs/uploads/", headers=headers)
    assert r.status_code == 202, r.text
    loc = r.headers["Location"]
    url = loc if loc.startswith("http") else base + loc
    sep = "&" if "?" in url else "?"
    r = s.put(f"{url}{sep}digest={digest}", data=data,
              headers={"Content-Type": "application/octet-stream", **(headers or {})})
    assert r.status_code == 201, r.text
    return digest


def image_manifest(base: str, repo: str, layers: list[bytes] | None = None, config: bytes | None = None,
                   media_type: str = OCI_MANIFEST, **extra: Any) -> bytes:
    """Push config and layers, return the manifest bytes (not pushed)."""
    config = config if config is not None else json.dumps({"rand": os.urandom(8).hex()}).encode()
    layers = layers if layers is not None else [os.urandom(1000)]
    cfg_type = extra.pop("config_media_type", "application/vnd.oci.image.config.v1+json")
    doc: dict[str, Any] = {
        "schemaVersion": 2, "mediaType": media_type,
        "config": {"mediaType": cfg_type, "digest": push_blob(base, repo, config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": push_blob(base, repo, lb),
                    "size": len(lb)} for lb in layers],
    }
    doc.update(extra)
    return json.dumps(doc).encode()


def put_manifest(base: str, repo: str, ref: str, body: bytes, media_type: str = OCI_MANIFEST,
                 session: requests.Session | None = None) -> requests.Response:
    return (session or requests).put(f"{base}/v2/{repo}/manifests/{ref}", data=body,
                                     headers={"Content-Type": media_type})


def error_codes(r: requests.Response) -> list[str]:
    return [e["code"] for e in r.json()["errors"]]
