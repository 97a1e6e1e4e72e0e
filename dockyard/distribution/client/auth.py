"""Credentials and WWW-Authenticate challenges, as the docker CLI and registries exchange them.

The docker CLI sends credentials to the engine in the `X-Registry-Auth`
header: base64url of a JSON AuthConfig ({"username", "password",
"serveraddress", "identitytoken", "registrytoken"}), often without padding.
Registries answer an unauthenticated request with a challenge:

    WWW-Authenticate: Basic realm="..."
    WWW-Authenticate: Bearer realm="https://auth/token",service="reg",scope="repository:x:pull"

Basic means "send the password on every request"; Bearer means "fetch a token
from realm for this service and scope, then send the token".
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from ...errors import InvalidParameter

DOCKER_HUB_HOSTS = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = ""
    identity_token: str = ""  # an OAuth refresh token, from a previous login
    registry_token: str = ""  # a bearer token to use as is

    @property
    def anonymous(self) -> bool:
        return not (self.username or self.password or self.identity_token or self.registry_token)


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "basic" or "bearer", lower case
    params: dict[str, str]


def _b64decode(s: str) -> bytes:
    s = s.strip()
    pad = "=" * (-len(s) % 4)
    try:
        return base64.urlsafe_b64decode(s + pad)
    except (binascii.Error, ValueError):
        return base64.b64decode(s + pad)


def decode_registry_auth(header: str | None) -> Credentials:
    """X-Registry-Auth -> Credentials; absent or "{}" means anonymous."""
    if not header:
        return Credentials()
    try:
        data = json.loads(_b64decode(header))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidParameter("invalid X-Registry-Auth header: not base64-encoded JSON") from None
    if not isinstance(data, dict):
        raise InvalidParameter("invalid X-Registry-Auth header: expected a JSON object")
    return credentials_from_json(data)


def credentials_from_json(data: dict) -> Credentials:
    """An AuthConfig object (X-Registry-Auth, POST /auth body); `auth` is base64 "user:password"."""
    def s(key: str) -> str:
        v = data.get(key)
        return v if isinstance(v, str) else ""

    user, password = s("username"), s("password")
    if not user and s("auth"):
        try:
            user, _, password = base64.b64decode(s("auth")).decode().partition(":")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise InvalidParameter("invalid auth field: not base64 user:password") from None
    return Credentials(user, password, s("identitytoken"), s("registrytoken"))


def registry_host(server_address: str) -> str:
    """`docker login` server addresses ("https://h:5000/v2/", "h:5000") -> "h:5000"."""
    addr = server_address.strip()
    if not addr:
        return "docker.io"
    if "://" not in addr:
        addr = "//" + addr
    host = urlsplit(addr).netloc
    if not host:
        raise InvalidParameter(f"invalid registry address {server_address!r}")
    return "docker.io" if host in DOCKER_HUB_HOSTS else host


def is_insecure(host: str) -> bool:
    """Docker's default insecure registries: loopback (127.0.0.0/8, ::1) and localhost."""
    h = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:].split("]", 1)[0]
    return h == "localhost" or h == "::1" or h.startswith("127.")


_PARAM_RE = re.compile(r'([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


def parse_challenges(headers: list[str]) -> list[Challenge]:
    """WWW-Authenticate header values -> challenges (one scheme per header, as registries send)."""
    out = []
    for h in headers:
        scheme, _, rest = h.strip().partition(" ")
        params = {m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3)).replace('\\"', '"')
                  for m in _PARAM_RE.finditer(rest)}
        if scheme:
            out.append(Challenge(scheme.lower(), params))
    return out
