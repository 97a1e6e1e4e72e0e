"""The `_state` token of an upload's Location, signed with `http.secret` as Distribution does.

The token is url-safe base64 of HMAC-SHA256(secret, json) followed by the json
({"Name", "UUID", "Offset", "StartedAt"}), so replicas sharing the secret accept
each other's upload URLs and a replica with another secret refuses them with
BLOB_UPLOAD_INVALID.  Without a configured secret each process draws a random
one, as Distribution does (fine for one replica, not for a fleet).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
from datetime import datetime, timezone

from .errors import RegistryError

log = logging.getLogger("dockyard.registry")


class UploadStateSigner:
    def __init__(self, secret: str | None) -> None:
        if not secret:
            log.warning("No HTTP secret provided - generated random secret. This may cause problems with "
                        "uploads if multiple registries are behind a load-balancer. To provide a shared "
                        "secret, fill in http.secret in the configuration file.")
            secret = secrets.token_urlsafe(32)
        self._key = secret.encode()

    def pack(self, name: str, upload_id: str, offset: int, started: float | None) -> str:
        started_at = datetime.fromtimestamp(started or 0, timezone.utc).isoformat().replace("+00:00", "Z")
        body = json.dumps({"Name": name, "UUID": upload_id, "Offset": offset, "StartedAt": started_at},
                          separators=(",", ":")).encode()
        mac = hmac.new(self._key, body, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac + body).decode()

    def verify(self, token: str, name: str, upload_id: str) -> None:
        """BLOB_UPLOAD_INVALID unless `token` was signed with our secret for this upload."""
        try:
            raw = base64.urlsafe_b64decode(token.encode())
        except (binascii.Error, ValueError):
            raise RegistryError("BLOB_UPLOAD_INVALID", detail="illegal base64 data in _state") from None
        mac, body = raw[:32], raw[32:]
        if len(raw) < 32 or not hmac.compare_digest(mac, hmac.new(self._key, body, hashlib.sha256).digest()):
            raise RegistryError("BLOB_UPLOAD_INVALID", detail="invalid secret")
        try:
            state = json.loads(body)
        except ValueError:
            raise RegistryError("BLOB_UPLOAD_INVALID", detail="malformed upload state") from None
        if not isinstance(state, dict) or state.get("Name") != name or state.get("UUID") != upload_id:
            raise RegistryError("BLOB_UPLOAD_INVALID", detail="upload state is for another upload")
