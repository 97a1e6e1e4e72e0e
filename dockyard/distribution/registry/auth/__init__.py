"""Authentication and authorisation: htpasswd Basic auth or the Docker token flow.

`Authenticator.authorize(authorization_header, scope, base_url)` returns the
account (None for anonymous) or raises RegistryError UNAUTHORIZED (401, with the
WWW-Authenticate challenge) or DENIED (403).  scope=None means "any valid
credentials" (the GET /v2/ ping that `docker login` uses to check a password).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Mapping

from ..config import AuthConfig
from ..errors import RegistryError
from .access import AccessPolicy, Scope, parse_scope
from .htpasswd import Htpasswd
from .token import TokenIssuer, TokenVerifier

__all__ = ["Authenticator", "Scope", "parse_scope"]


def _basic(header: str | None) -> tuple[str, str] | None:
    if not header or not header[:6].lower() == "basic ":
        return None
    try:
        user, sep, pw = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise RegistryError("UNAUTHORIZED", "malformed Basic credentials") from None
    if not sep:
        raise RegistryError("UNAUTHORIZED", "malformed Basic credentials")
    if not user and not pw:
        return None  # what some clients send when they have no credentials: anonymous
    return user, pw


def _bearer(header: str | None) -> str | None:
    if header and header[:7].lower() == "bearer ":
        return header[7:].strip()
    return None


class Authenticator:
    def __init__(self, cfg: AuthConfig) -> None:
        self.cfg = cfg
        self.enabled = cfg.mode != "none"
        self.htpasswd = Htpasswd(cfg.htpasswd_path) if cfg.htpasswd_path else None
        self.policy = AccessPolicy(cfg.access, cfg.anonymous_pull)
        self.tokens: TokenIssuer | TokenVerifier | None = None
        if cfg.mode == "token" and cfg.root_cert_bundle:
            self.tokens = TokenVerifier(cfg.issuer, cfg.service, cfg.root_cert_bundle, cfg.signing_algorithms)
        elif cfg.mode == "token":
            self.tokens = TokenIssuer(cfg.issuer, cfg.service, cfg.expiration, cfg.key_path)

    # --- challenges ----------------------------------------------------------------

    def _challenge(self, base_url: str, scope: Scope | None, error: str | None = None) -> dict[str, str]:
        if self.cfg.mode == "htpasswd":
            return {"WWW-Authenticate": f'Basic realm="{self.cfg.realm}"'}
        realm = self.cfg.token_realm or f"{base_url}/auth/token"
        parts = [f'realm="{realm}"', f'service="{self.cfg.service}"']
        if scope is not None:
            parts.append(f'scope="{scope}"')
        if error:
            parts.append(f'error="{error}"')
        return {"WWW-Authenticate": "Bearer " + ",".join(parts)}

    def _unauthorized(self, base_url: str, scope: Scope | None, msg: str, error: str | None = None,
                      ) -> RegistryError:
        detail = [{"Type": scope.type, "Name": scope.name, "Action": a} for a in scope.actions] if scope else None
        return RegistryError("UNAUTHORIZED", msg, detail, headers=self._challenge(base_url, scope, error))

    def _check_password(self, creds: tuple[str, str]) -> str | None:
        user, pw = creds
        if self.htpasswd is not None and self.htpasswd.verify(user, pw):
            return user
        return None

    # --- registry requests ---------------------------------------------------------

    def authorize(self, authorization: str | None, scope: Scope | None, base_url: str) -> str | None:
        if not self.enabled:
            return None
        if self.cfg.mode == "htpasswd":
            return self._authorize_basic(authorization, scope, base_url)
        return self._authorize_token(authorization, scope, base_url)

    def _authorize_basic(self, authorization: str | None, scope: Scope | None, base_url: str) -> str | None:
        try:
            creds = _basic(authorization)
        except RegistryError:
            raise self._unauthorized(base_url, scope, "malformed credentials") from None
        account = None
        if creds is not None:
            account = self._check_password(creds)
            if account is None:
                raise self._unauthorized(base_url, scope, "invalid username or password")
        if scope is None:
            if account is None:
                raise self._unauthorized(base_url, scope, "authentication required")
            return account
        if self.policy.granted(account, scope) == scope.actions:
            return account
        if account is None:
            raise self._unauthorized(base_url, scope, "authentication required")
        raise RegistryError("DENIED", f"{account} may not {','.join(scope.actions)} {scope.name}")

    def _authorize_token(self, authorization: str | None, scope: Scope | None, base_url: str) -> str | None:
        assert self.tokens is not None
        token = _bearer(authorization)
        if token is None:
            # Anonymous access the policy allows needs no token (curl-friendly).
            if scope is not None and self.policy.granted(None, scope) == scope.actions:
                return None
            raise self._unauthorized(base_url, scope, "authentication required")
        claims = self.tokens.verify(token)
        if claims is None:
            raise self._unauthorized(base_url, scope, "invalid or expired token", "invalid_token")
        if scope is None or self.tokens.grants(claims, scope):
            return claims.get("sub") or None
        raise self._unauthorized(base_url, scope, "insufficient scope", "insufficient_scope")

    # --- the token endpoint ----------------------------------------------------------

    def issue_token(self, authorization: str | None, params: Mapping[str, Any], scopes: list[str],
                    base_url: str) -> dict[str, Any]:
        """GET /auth/token (Basic auth or anonymous) and POST /auth/token (OAuth2 password/refresh)."""
        if not isinstance(self.tokens, TokenIssuer):
            raise RegistryError("UNSUPPORTED", "the token flow is not configured"
                                if self.tokens is None else "tokens are issued by the configured realm", status=404)
        account: str | None = None
        grant = params.get("grant_type")
        if grant == "refresh_token":
            claims = self.tokens.verify(str(params.get("refresh_token", "")), refresh=True)
            if claims is None:
                raise self._unauthorized(base_url, None, "invalid refresh token")
            account = claims.get("sub") or None
        elif grant == "password":
            account = self._check_password((str(params.get("username", "")), str(params.get("password", ""))))
            if account is None:
                raise self._unauthorized(base_url, None, "invalid username or password")
        else:
            try:
                creds = _basic(authorization)
            except RegistryError:
                raise self._unauthorized(base_url, None, "malformed credentials") from None
            if creds is not None:
                account = self._check_password(creds)
                if account is None:
                    raise self._unauthorized(base_url, None, "invalid username or password")
        if params.get("service") not in (None, "", self.cfg.service):
            raise RegistryError("DENIED", f"unknown service {str(params.get('service'))[:100]!r}")
        granted: list[Scope] = []
        for raw in scopes:
            for one in raw.split(" "):
                s = parse_scope(one)
                if s is not None:
                    granted.append(Scope(s.type, s.name, self.policy.granted(account, s)))
        token, expires, issued = self.tokens.issue(account, granted)
        out: dict[str, Any] = {"token": token, "access_token": token, "expires_in": expires, "issued_at": issued}
        wants_refresh = str(params.get("offline_token", "")).lower() == "true" or grant == "password"
        if account is not None and wants_refresh:
            out["refresh_token"] = self.tokens.issue(account, [], refresh=True)[0]
        if grant:
            out["scope"] = " ".join(str(s) for s in granted if s.actions)
        return out
