"""syslog over `tcp+tls`: the client TLS setup dockerd makes, with Go's messages.

dockerd builds its config with go-connections' tlsconfig.Client (TLS 1.2 at least,
the system roots plus `syslog-tls-ca-cert`, an optional client pair from
`syslog-tls-cert`/`syslog-tls-key`; `syslog-tls-skip-verify` skips verification when
the key is present at all, whatever its value) and dials with crypto/tls, so a
failure reads as Go's.  OpenSSL verifies the chain; the host name is then checked
here, as Go's x509 VerifyHostname words it.
"""

from __future__ import annotations

import ipaddress
import json
import ssl

from ...errors import InvalidParameter

# go-connections' defaultCipherSuites (TLS 1.2; TLS 1.3's suites are not configurable in Go either)
CIPHERS = "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:" \
          "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
TLS_OPTS = ("syslog-tls-ca-cert", "syslog-tls-cert", "syslog-tls-key", "syslog-tls-skip-verify")
# Go's names of the alerts a receiver may send (crypto/tls alert.go), by OpenSSL's reason suffix
ALERTS = {"UNKNOWN_CA": "unknown certificate authority", "PROTOCOL_VERSION": "protocol version not supported",
          "CERTIFICATE_REQUIRED": "certificate required", "BAD_CERTIFICATE": "bad certificate",
          "HANDSHAKE_FAILURE": "handshake failure", "CERTIFICATE_UNKNOWN": "unknown certificate"}


def _goq(s: str) -> str:
    """Go's %q for the usual path."""
    return json.dumps(s, ensure_ascii=False)


def _read(path: str) -> bytes:
    """os.ReadFile, failing as Go words it."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except IsADirectoryError:
        raise InvalidParameter(f"read {path}: is a directory") from None
    except OSError as exc:
        raise InvalidParameter(f"open {path}: {(exc.strerror or str(exc)).lower()}") from None
    except ValueError:  # a NUL in the path: Go's open gets EINVAL
        raise InvalidParameter(f"open {path}: invalid argument") from None


def skip_verify(opts: dict[str, str]) -> bool:
    return "syslog-tls-skip-verify" in opts  # dockerd: `_, skipVerify := cfg[...]`


def client_context(opts: dict[str, str]) -> ssl.SSLContext:
    """tlsconfig.Client's config for these options; InvalidParameter with its texts."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(CIPHERS)
    if skip_verify(opts):
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.check_hostname = False  # checked after the handshake, for Go's message (check_host)
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_default_certs()  # not ExclusiveRootPools: the system's roots too
        ca = opts.get("syslog-tls-ca-cert", "")
        if ca:
            try:
                pem = _read(ca)
            except InvalidParameter as exc:
                raise InvalidParameter(f"could not read CA certificate {_goq(ca)}: {exc.message}") from None
            try:
                ctx.load_verify_locations(cadata=pem.decode("ascii", errors="replace"))
            except (ssl.SSLError, ValueError):
                raise InvalidParameter(f"failed to append certificates from PEM file: {_goq(ca)}") from None
    cert, key = opts.get("syslog-tls-cert", ""), opts.get("syslog-tls-key", "")
    if cert or key:
        _load_pair(ctx, cert, key)
    return ctx


def _load_pair(ctx: ssl.SSLContext, cert: str, key: str) -> None:
    def bad(why: str) -> InvalidParameter:
        return InvalidParameter(f"could not load X509 key pair: {why}")

    try:
        cert_pem, key_pem = _read(cert), None
        key_pem = _read(key)
    except InvalidParameter as exc:
        raise bad(exc.message) from None
    if b"-----BEGIN " not in key_pem:
        raise bad("no valid private key found")
    if b"-----BEGIN " not in cert_pem:
        raise bad("tls: failed to find any PEM data in certificate input")
    if b"ENCRYPTED" in key_pem.split(b"-----END", 1)[0]:
        raise bad("private key is encrypted; encrypted private keys are obsolete, and not supported")
    try:
        ctx.load_cert_chain(cert, key, password=lambda: b"")  # never prompts on a tty
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc):
            raise bad("tls: private key does not match public key") from None
        raise bad(f"tls: {exc.reason or exc}".lower()) from None
    except OSError as exc:  # replaced between the reads and the load
        raise bad(f"open {cert}: {(exc.strerror or str(exc)).lower()}") from None


def handshake_error(exc: BaseException) -> str:
    """crypto/tls's words for a failed handshake."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = exc.verify_code
        if code in (2, 18, 19, 20, 21):  # no issuer among the roots, self-signed: Go's UnknownAuthorityError
            why = "x509: certificate signed by unknown authority"
        elif code in (9, 10):
            why = "x509: certificate has expired or is not yet valid"
        else:
            why = f"x509: {exc.verify_message}"
        return f"tls: failed to verify certificate: {why}"
    reason = getattr(exc, "reason", None) or ""
    if "ALERT_" in reason:
        name = reason.split("ALERT_", 1)[1]
        return f"remote error: tls: {ALERTS.get(name, name.lower().replace('_', ' '))}"
    if reason == "WRONG_VERSION_NUMBER":
        return "tls: first record does not look like a TLS handshake"
    if isinstance(exc, (ssl.SSLEOFError, ConnectionResetError)) or reason == "UNEXPECTED_EOF_WHILE_READING":
        return "EOF"
    return f"tls: {(reason or str(exc)).lower()}"


def check_host(sock: ssl.SSLSocket, host: str) -> None:
    """After a verified handshake: Go's VerifyHostname (IP SANs for an address, DNS SANs else)."""
    from cryptography import x509

    if not host:  # `tcp+tls://:6514`: crypto/tls has no name to verify against
        raise InvalidParameter("tls: either ServerName or InsecureSkipVerify must be specified in the tls.Config")
    der = sock.getpeercert(binary_form=True)
    if der is None:
        return
    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns, ips = san.get_values_for_type(x509.DNSName), san.get_values_for_type(x509.IPAddress)
    except x509.ExtensionNotFound:
        san, dns, ips = None, [], []
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None:
        if ip in ips:
            return
    elif any(_match(name, host) for name in dns):
        return
    cns = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    if san is None and cns and _match(str(cns[0].value), host):
        why = "x509: certificate relies on legacy Common Name field, use SANs instead"
    elif ip is not None and not ips:
        why = f"x509: cannot validate certificate for {host} because it doesn't contain any IP SANs"
    else:
        valid = ", ".join(str(i) for i in ips) if ip is not None else ", ".join(dns)
        why = (f"x509: certificate is valid for {valid}, not {host}" if valid else
               f"x509: certificate is not valid for any names, but wanted to match {host}")
    raise InvalidParameter(f"tls: failed to verify certificate: {why}")


def _match(pattern: str, host: str) -> bool:
    """Go's matchHostnames: case-insensitive, a wildcard only as a whole leftmost label."""
    p, h = pattern.lower().rstrip(".").split("."), host.lower().rstrip(".").split(".")
    if len(p) != len(h) or not host:
        return False
    return all(a == b or (i == 0 and a == "*") for i, (a, b) in enumerate(zip(p, h)))
