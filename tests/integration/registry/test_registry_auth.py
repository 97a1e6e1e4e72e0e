"""Auth: htpasswd Basic and the Docker token flow, with raw HTTP and skopeo."""

from __future__ import annotations

import base64
import json
import re
import subprocess
from pathlib import Path

import jwt
import pytest
import requests

from conftest import skopeo
from regclient import error_codes, push_blob


def _htpasswd(path: Path, users: dict[str, str]) -> str:
    lines = []
    for u, p in users.items():
        out = subprocess.run(["htpasswd", "-Bbn", u, p], capture_output=True, text=True, check=True).stdout
        lines.append(out.strip())
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def basic_registry(registry_factory, tmp_path_factory):
    pw = _htpasswd(tmp_path_factory.mktemp("basic") / "htpasswd", {"alice": "wonderland"})
    return registry_factory({"auth": {"htpasswd": {"path": pw, "realm": "test-realm"}, "anonymous_pull": True}},
                            "basic")


@pytest.fixture(scope="module")
def token_registry(registry_factory, tmp_path_factory):
    pw = _htpasswd(tmp_path_factory.mktemp("token") / "htpasswd", {"alice": "wonderland", "bob": "builder"})
    return registry_factory({"auth": {
        "token": {"htpasswd": pw, "service": "dockyard-test", "issuer": "dockyard-test-issuer"},
        "anonymous_pull": True,
        "access": [{"account": "alice", "repository": "*", "actions": ["pull", "push", "delete"]},
                   {"account": "bob", "repository": "*", "actions": ["pull"]}],
    }}, "token")


ALICE = ("alice", "wonderland")


def _challenge(r: requests.Response) -> dict[str, str]:
    scheme, _, rest = r.headers["WWW-Authenticate"].partition(" ")
    params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    params["scheme"] = scheme
    return params


# --- Basic ---------------------------------------------------------------------------

def test_basic_ping_requires_credentials(basic_registry):
    r = requests.get(f"{basic_registry.url}/v2/")
    assert r.status_code == 401 and error_codes(r) == ["UNAUTHORIZED"]
    assert _challenge(r) == {"scheme": "Basic", "realm": "test-realm"}
    assert requests.get(f"{basic_registry.url}/v2/", auth=ALICE).status_code == 200
    assert requests.get(f"{basic_registry.url}/v2/", auth=("alice", "wrong")).status_code == 401
    assert requests.get(f"{basic_registry.url}/v2/", headers={"Authorization": "Basic !!!"}).status_code == 401


def test_basic_anonymous_pull_but_push_needs_auth(basic_registry):
    r = requests.post(f"{basic_registry.url}/v2/basic/repo/blobs/uploads/")
    assert r.status_code == 401 and error_codes(r) == ["UNAUTHORIZED"]
    s = requests.Session()
    s.auth = ALICE
    d = push_blob(basic_registry.url, "basic/repo", b"secret-free data", session=s)
    r = requests.get(f"{basic_registry.url}/v2/basic/repo/blobs/{d}")  # anonymous
    assert r.status_code == 200 and r.content == b"secret-free data"
    r = requests.delete(f"{basic_registry.url}/v2/basic/repo/blobs/{d}")
    assert r.status_code == 401


def test_basic_skopeo(basic_registry, busybox_layout, tmp_path):
    layout, info = busybox_layout
    ref = f"docker://{basic_registry.host}/basic/busybox:1"
    r = skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:latest", ref)
    assert r.returncode != 0  # no credentials
    r = skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "alice:wonderland", f"oci:{layout}:latest", ref)
    assert r.returncode == 0, r.stderr + basic_registry.log_tail()
    r = skopeo("copy", "--src-tls-verify=false", ref, f"oci:{tmp_path / 'out'}:x")  # anonymous pull
    assert r.returncode == 0, r.stderr


# --- token flow ------------------------------------------------------------------------

def _token(reg, scope: str | None, auth=None) -> str:
    params = {"service": "dockyard-test"}
    if scope:
        params["scope"] = scope
    r = requests.get(f"{reg.url}/auth/token", params=params, auth=auth)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token"] == body["access_token"] and body["expires_in"] > 0 and "issued_at" in body
    return body["token"]


def test_token_challenge_and_claims(token_registry):
    r = requests.get(f"{token_registry.url}/v2/")
    assert r.status_code == 401
    ch = _challenge(r)
    assert ch["scheme"] == "Bearer" and ch["realm"] == f"{token_registry.url}/auth/token"
    assert ch["service"] == "dockyard-test"
    tok = _token(token_registry, "repository:tok/repo:pull,push", ALICE)
    claims = jwt.decode(tok, options={"verify_signature": False})
    assert claims["sub"] == "alice" and claims["aud"] == "dockyard-test" and claims["iss"] == "dockyard-test-issuer"
    assert claims["access"] == [{"type": "repository", "name": "tok/repo", "actions": ["pull", "push"]}]
    assert jwt.get_unverified_header(tok)["alg"] == "ES256"
    r = requests.get(f"{token_registry.url}/v2/", headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code == 200


def test_token_scopes_are_enforced(token_registry):
    url = token_registry.url
    r = requests.post(f"{url}/v2/tok/scoped/blobs/uploads/")
    ch = _challenge(r)
    assert r.status_code == 401 and ch["scope"] == "repository:tok/scoped:pull,push"
    tok = _token(token_registry, ch["scope"], ALICE)
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {tok}"
    d = push_blob(url, "tok/scoped", b"with a token", session=s)
    # The token is for tok/scoped only.
    r = s.post(f"{url}/v2/tok/other/blobs/uploads/")
    assert r.status_code == 401 and _challenge(r)["error"] == "insufficient_scope"
    # bob may pull but the token server does not grant him push.
    bob = _token(token_registry, "repository:tok/scoped:pull,push", ("bob", "builder"))
    claims = jwt.decode(bob, options={"verify_signature": False})
    assert claims["access"] == [{"type": "repository", "name": "tok/scoped", "actions": ["pull"]}]
    hb = {"Authorization": f"Bearer {bob}"}
    assert requests.get(f"{url}/v2/tok/scoped/blobs/{d}", headers=hb).status_code == 200
    assert requests.post(f"{url}/v2/tok/scoped/blobs/uploads/", headers=hb).status_code == 401
    # Anonymous tokens pull only; forged or garbage tokens are refused.
    anon = _token(token_registry, "repository:tok/scoped:pull,push")
    claims = jwt.decode(anon, options={"verify_signature": False})
    assert claims["sub"] == "" and claims["access"][0]["actions"] == ["pull"]
    forged = jwt.encode({**claims, "access": [{"type": "repository", "name": "tok/scoped",
                                               "actions": ["pull", "push"]}]}, "k" * 32, algorithm="HS256")
    r = requests.post(f"{url}/v2/tok/scoped/blobs/uploads/", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401 and _challenge(r)["error"] == "invalid_token"
    assert requests.get(f"{url}/v2/", headers={"Authorization": "Bearer garbage"}).status_code == 401
    # Wrong password at the token endpoint.
    r = requests.get(f"{url}/auth/token", params={"scope": "repository:x:pull"}, auth=("alice", "nope"))
    assert r.status_code == 401


def test_token_oauth_post_and_refresh(token_registry):
    url = token_registry.url
    r = requests.post(f"{url}/auth/token", data={"grant_type": "password", "username": "alice",
                                                 "password": "wonderland", "service": "dockyard-test",
                                                 "scope": "repository:tok/oauth:pull", "client_id": "test"})
    assert r.status_code == 200, r.text
    refresh = r.json()["refresh_token"]
    r = requests.post(f"{url}/auth/token", data={"grant_type": "refresh_token", "refresh_token": refresh,
                                                 "service": "dockyard-test",
                                                 "scope": "repository:tok/oauth:pull,push", "client_id": "test"})
    assert r.status_code == 200
    claims = jwt.decode(r.json()["access_token"], options={"verify_signature": False})
    assert claims["sub"] == "alice" and claims["access"][0]["actions"] == ["pull", "push"]
    # A refresh token is not an access token, and vice versa.
    assert requests.get(f"{url}/v2/", headers={"Authorization": f"Bearer {refresh}"}).status_code == 401


def test_token_flow_with_skopeo(token_registry, busybox_layout, tmp_path):
    layout, info = busybox_layout
    ref = f"docker://{token_registry.host}/tok/busybox:1"
    r = skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:latest", ref)
    assert r.returncode != 0
    r = skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "alice:wonderland", f"oci:{layout}:latest", ref)
    assert r.returncode == 0, r.stderr + token_registry.log_tail()
    r = skopeo("copy", "--src-tls-verify=false", ref, f"oci:{tmp_path / 'out'}:x")  # anonymous token
    assert r.returncode == 0, r.stderr
    r = skopeo("login", "--tls-verify=false", "--authfile", str(tmp_path / "auth.json"), "-u", "alice",
               "-p", "wonderland", token_registry.host)
    assert r.returncode == 0, r.stderr
    r = skopeo("login", "--tls-verify=false", "--authfile", str(tmp_path / "auth2.json"), "-u", "alice",
               "-p", "bad", token_registry.host)
    assert r.returncode != 0


# --- the docker CLI ----------------------------------------------------------------------

def _docker_login(reg, tmp_path, user: str, password: str) -> subprocess.CompletedProcess:
    env = {"DOCKER_CONFIG": str(tmp_path / "docker-config"), "PATH": "/usr/local/bin:/usr/bin:/bin",
           # No daemon: the CLI then logs in client-side, talking to the registry itself.
           "DOCKER_HOST": f"unix://{tmp_path / 'no-daemon.sock'}", "HOME": str(tmp_path)}
    return subprocess.run(["/usr/local/bin/docker", "login", reg.host, "-u", user, "--password-stdin"],
                          input=password, capture_output=True, text=True, timeout=60, env=env)


@pytest.mark.parametrize("which", ["token", "basic"])
def test_docker_login(which, token_registry, basic_registry, tmp_path):
    reg = token_registry if which == "token" else basic_registry
    r = _docker_login(reg, tmp_path, "alice", "wonderland")
    assert r.returncode == 0 and "Login Succeeded" in r.stdout, r.stderr
    saved = json.loads((tmp_path / "docker-config" / "config.json").read_text())["auths"][reg.host]
    if which == "token":
        # The CLI used the OAuth2 password grant and kept our refresh token.
        claims = jwt.decode(saved["identitytoken"], options={"verify_signature": False})
        assert claims["sub"] == "alice"
    else:
        assert base64.b64decode(saved["auth"]).decode() == "alice:wonderland"
    bad = _docker_login(reg, tmp_path / "bad", "alice", "not-the-password")
    assert bad.returncode != 0 and "unauthorized" in bad.stderr.lower()


# --- Distribution's auth.token with an external token server (rootcertbundle) ------------

def _cert(key, subject: str, issuer_key=None, issuer_name: str | None = None, ca: bool = False):
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
         .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name or subject)]))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    return b.sign(issuer_key or key, hashes.SHA256())


def _ext_token(key, claims_extra: dict | None = None, **headers) -> str:
    import time as _t

    now = int(_t.time())
    claims = {"iss": "ext-issuer", "sub": "carol", "aud": "ext-service", "iat": now, "nbf": now - 5,
              "exp": now + 300, "access": [{"type": "repository", "name": "ext/repo", "actions": ["pull", "push"]}]}
    claims.update(claims_extra or {})
    return jwt.encode(claims, key, algorithm="ES256", headers=headers or None)


@pytest.fixture(scope="module")
def external_token(registry_factory, tmp_path_factory):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from dockyard.distribution.registry.auth.token import _libtrust_kid

    d = tmp_path_factory.mktemp("ext-token")
    signer = ec.generate_private_key(ec.SECP256R1())  # the token server's own key, in the bundle
    ca = ec.generate_private_key(ec.SECP256R1())  # a CA in the bundle, for x5c-chained tokens
    bundle = d / "bundle.pem"
    bundle.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (
        _cert(signer, "token-signer"), _cert(ca, "token-ca", ca=True))))
    srv = registry_factory({"auth": {"token": {
        "realm": "https://auth.example.com/token", "service": "ext-service", "issuer": "ext-issuer",
        "rootcertbundle": str(bundle)}}, "storage": {"delete": {"enabled": True}}}, "ext-token")
    der = signer.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return srv, signer, _libtrust_kid(der), ca


def test_external_token_server_challenge_and_tokens(external_token):
    import base64 as b64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    srv, signer, kid, ca = external_token
    r = requests.get(f"{srv.url}/v2/ext/repo/tags/list")
    assert r.status_code == 401
    assert _challenge(r) == {"scheme": "Bearer", "realm": "https://auth.example.com/token",
                             "service": "ext-service", "scope": "repository:ext/repo:pull"}
    good = {"Authorization": f"Bearer {_ext_token(signer, kid=kid)}"}
    d = push_blob(srv.url, "ext/repo", b"pushed with an external token", headers=good)
    assert requests.get(f"{srv.url}/v2/ext/repo/blobs/{d}", headers=good).content == b"pushed with an external token"
    # x5c: a leaf certificate the bundle's CA issued
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = _cert(leaf_key, "leaf", issuer_key=ca, issuer_name="token-ca")
    x5c = [b64.b64encode(leaf.public_bytes(serialization.Encoding.DER)).decode()]
    assert requests.get(f"{srv.url}/v2/ext/repo/blobs/{d}",
                        headers={"Authorization": f"Bearer {_ext_token(leaf_key, x5c=x5c)}"}).status_code == 200
    # refused: an unknown signer (also with a self-made x5c), another audience, another repository, expired
    rogue = ec.generate_private_key(ec.SECP256R1())
    rogue_x5c = [b64.b64encode(_cert(rogue, "rogue").public_bytes(serialization.Encoding.DER)).decode()]
    for bad in (_ext_token(rogue), _ext_token(rogue, x5c=rogue_x5c), _ext_token(signer, {"aud": "other"}, kid=kid),
                _ext_token(signer, {"access": [{"type": "repository", "name": "other", "actions": ["pull"]}]}, kid=kid),
                _ext_token(signer, {"exp": 1000}, kid=kid)):
        r = requests.get(f"{srv.url}/v2/ext/repo/blobs/{d}", headers={"Authorization": f"Bearer {bad}"})
        assert r.status_code == 401 and error_codes(r) == ["UNAUTHORIZED"]
    r = requests.get(f"{srv.url}/auth/token", params={"service": "ext-service"})
    assert r.status_code == 404  # tokens come from the realm, not from dockyard
