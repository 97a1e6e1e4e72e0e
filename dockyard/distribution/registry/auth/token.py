"""The Docker token flow: a built-in token server issuing signed JWTs, and their verification.

Tokens follow the registry token spec: iss, sub, aud (the service), exp/nbf/iat,
jti and an `access` claim listing {type, name, actions}.  ES256 with a key from
the config, or one generated at startup (tokens then die with the process).
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from typing import Any

import jwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .access import Scope


def _libtrust_kid(public_der: bytes) -> str:
    """The key id format Docker's libtrust uses: 12 groups of 4 base32 chars of the key's SHA-256."""
    b = base64.b32encode(hashlib.sha256(public_der).digest()[:30]).decode().rstrip("=")
    return ":".join(b[i:i + 4] for i in range(0, 48, 4))


class TokenIssuer:
    def __init__(self, issuer: str, service: str, expiration: int = 300, key_path: str | None = None) -> None:
        self.issuer = issuer
        self.service = service
        self.expiration = expiration
        if key_path:
            with open(key_path, "rb") as f:
                self._key = serialization.load_pem_private_key(f.read(), password=None)
        else:
            self._key = ec.generate_private_key(ec.SECP256R1())
        self._alg = "ES256" if isinstance(self._key, ec.EllipticCurvePrivateKey) else "RS256"
        self._public = self._key.public_key()
        der = self._public.public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
        self.kid = _libtrust_kid(der)

    def issue(self, account: str | None, access: list[Scope], refresh: bool = False) -> tuple[str, int, str]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer, "sub": account or "", "aud": self.service,
            "iat": now, "nbf": now - 10, "exp": now + self.expiration, "jti": uuid.uuid4().hex,
            "access": [{"type": s.type, "name": s.name, "actions": list(s.actions)} for s in access if s.actions],
        }
        if refresh:
            claims["exp"] = now + 30 * 86400
            claims["dockyard_refresh"] = True
            claims["access"] = []
        token = jwt.encode(claims, self._key, algorithm=self._alg, headers={"kid": self.kid})
        issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        return token, self.expiration, issued

    def verify(self, token: str, refresh: bool = False) -> dict[str, Any] | None:
        try:
            claims = jwt.decode(token, self._public, algorithms=[self._alg], audience=self.service,
                                issuer=self.issuer, options={"require": ["exp", "iss", "aud"]})
        except jwt.PyJWTError:
            return None
        if bool(claims.get("dockyard_refresh")) != refresh:
            return None
        return claims

    @staticmethod
    def grants(claims: dict[str, Any], scope: Scope) -> bool:
        for a in claims.get("access") or []:
            if not isinstance(a, dict):
                continue
            if a.get("type") == scope.type and a.get("name") == scope.name:
                acts = a.get("actions") or []
                if all(x in acts or "*" in acts for x in scope.actions):
                    return True
        return False


_ALGORITHMS = ["ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"]


class TokenVerifier:
    """Tokens signed by an external token server (Distribution's `auth.token.rootcertbundle`):
    a token is accepted when its signature verifies with the key of a bundle certificate, found
    by the JWT's `kid` (libtrust key id) or carried in its `x5c` chain and issued by a bundle
    certificate; issuer and audience (service) must match and it must not have expired."""

    def __init__(self, issuer: str, service: str, bundle_path: str, algorithms: list[str] | None = None) -> None:
        from cryptography import x509

        self.issuer = issuer
        self.service = service
        with open(bundle_path, "rb") as f:
            self._roots = x509.load_pem_x509_certificates(f.read())
        self._by_kid = {_libtrust_kid(c.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)): c.public_key()
            for c in self._roots}
        self._algorithms = algorithms or _ALGORITHMS

    def _keys(self, header: dict[str, Any]) -> list[Any]:
        from cryptography import x509

        chain = header.get("x5c")
        if isinstance(chain, list) and chain and isinstance(chain[0], str):
            try:
                leaf = x509.load_der_x509_certificate(base64.b64decode(chain[0]))
            except ValueError:
                return []
            for root in self._roots:
                if leaf == root:
                    return [leaf.public_key()]
                try:
                    leaf.verify_directly_issued_by(root)
                    return [leaf.public_key()]
                except (ValueError, TypeError, InvalidSignature):  # not this root's: try the next
                    continue
            return []
        kid = header.get("kid")
        if isinstance(kid, str) and kid in self._by_kid:
            return [self._by_kid[kid]]
        return list(self._by_kid.values())

    def verify(self, token: str, refresh: bool = False) -> dict[str, Any] | None:
        if refresh:
            return None  # refresh tokens are the external server's business
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return None
        for key in self._keys(header):
            try:
                return jwt.decode(token, key, algorithms=self._algorithms, audience=self.service,
                                  issuer=self.issuer, options={"require": ["exp", "iss", "aud"]})
            except jwt.PyJWTError:
                continue
        return None

    grants = staticmethod(TokenIssuer.grants)
