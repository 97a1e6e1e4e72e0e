"""Notification events from HTTP requests: what the API handlers call after a push, pull,
mount or delete succeeded (the queueing and delivery are notifications.py's)."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from aiohttp import web

from .mediatypes import MANIFEST_TYPES

ACCOUNT_KEY = "dockyard.account"  # request key: the account _authorize found


async def notify(request: web.Request, registry: Any, action: str, repo: str, target: dict[str, Any]) -> None:
    """Queue a notification event (Distribution's envelope) when endpoints are configured."""
    notifier = registry.notifier
    if not notifier.enabled:
        return
    peer = request.transport.get_extra_info("peername") if request.transport is not None else None
    req = {"id": str(uuid.uuid4()), "addr": f"{peer[0]}:{peer[1]}" if peer else "", "host": request.host,
           "method": request.method, "useragent": request.headers.get("User-Agent", "")}
    base = registry.cfg.http.host or f"{request.scheme}://{request.host}"
    kind = "manifests" if target.get("mediaType", "") in MANIFEST_TYPES else "blobs"
    target = {**target, "repository": repo}
    if "digest" in target:
        target["url"] = f"{base}/v2/{repo}/{kind}/{target['digest']}"
    if "size" in target:
        target["length"] = target["size"]
    event = notifier.event(action, target, req, request.get(ACCOUNT_KEY))
    await asyncio.to_thread(notifier.emit, event)


def manifest_target(media_type: str, digest: str, size: int, ref: str, body: bytes | None = None,
                     ) -> dict[str, Any]:
    target: dict[str, Any] = {"mediaType": media_type, "digest": digest, "size": size}
    if ref and ":" not in ref:
        target["tag"] = ref
    if body is not None:  # notifications.events.includereferences
        try:
            doc = json.loads(body)
            refs = ([doc["config"]] if isinstance(doc.get("config"), dict) else []) + \
                list(doc.get("layers") or []) + list(doc.get("manifests") or [])
            target["references"] = [{k: d[k] for k in ("mediaType", "digest", "size") if k in d}
                                    for d in refs if isinstance(d, dict)]
        except (ValueError, TypeError, AttributeError):
            pass
    return target


def blob_target(digest: str, size: int | None) -> dict[str, Any]:
    target: dict[str, Any] = {"mediaType": "application/octet-stream", "digest": digest}
    if size is not None:
        target["size"] = size
    return target


