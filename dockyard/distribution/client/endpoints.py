"""Which registry to contact for a reference, and with which TLS settings (dockerd's registry service).

- `insecure-registries`: a host[:port] named there, or a host whose addresses fall
  in one of its CIDRs (127.0.0.0/8 and ::1 always), is reached over HTTPS without
  certificate checks and then plain HTTP.
- `<config-dir>/certs.d/<host:port>/`: `*.crt` are extra CAs for that registry,
  `*.cert` + `*.key` (same stem) its client certificate, as dockerd reads
  /etc/docker/certs.d.  Read at each operation, so new certificates need no restart.
- `registry-mirrors`: Docker Hub references are pulled from each mirror in order
  (with the mirror's own scheme), then from Docker Hub itself, which this
  network-less engine never contacts: that last step is a clear error.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from ...config import EngineConfig
from ...errors import InvalidParameter
from .auth import Credentials
from .registry import RegistryClient

DEFAULT_INSECURE_CIDRS = ("127.0.0.0/8", "::1/128")
HUB_DOMAIN = "docker.io"


@dataclass(frozen=True)
class Endpoint:
    host: str  # host[:port] to connect to
    mirror: bool
    schemes: tuple[str, ...] | None = None  # fixed by a mirror URL


class RegistryEndpoints:
    def __init__(self, config: EngineConfig) -> None:
        self.config = config  # read at each call: SIGHUP changes mirrors and insecure registries

    # ------------------------------------------------------------ insecure registries

    def insecure_cidrs(self) -> list[str]:
        extra = [r for r in self.config.insecure_registries if "/" in r]
        return [*DEFAULT_INSECURE_CIDRS, *[str(ipaddress.ip_network(c, strict=False)) for c in extra]]

    def insecure_names(self) -> list[str]:
        return [r for r in self.config.insecure_registries if "/" not in r]

    def is_insecure(self, host: str) -> bool:
        name = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:].split("]", 1)[0]
        names = self.insecure_names()
        if host in names or name in names or name == "localhost":
            return True
        nets = [ipaddress.ip_network(c, strict=False) for c in self.insecure_cidrs()]
        try:
            addrs = [ipaddress.ip_address(name)]
        except ValueError:
            try:  # dockerd resolves the name too; only /etc/hosts-style answers exist here
                addrs = [ipaddress.ip_address(i[4][0]) for i in socket.getaddrinfo(name, None)]
            except (OSError, ValueError):
                addrs = []
        return any(a in n for a in addrs for n in nets if a.version == n.version)

    # ------------------------------------------------------------ certs.d

    def tls_context(self, host: str, insecure: bool = False) -> ssl.SSLContext | None:
        """The certs.d/<host>/ settings; an insecure registry still presents its client certificate."""
        d = self.config.certs_dir / host
        if not d.is_dir():
            return None
        cas = sorted(d.glob("*.crt"))
        certs = sorted(d.glob("*.cert"))
        if not cas and not certs:
            return None
        ctx = ssl.create_default_context()
        if insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        try:
            for ca in cas:
                ctx.load_verify_locations(str(ca))
            for cert in certs:
                key = cert.with_suffix(".key")
                if not key.exists():
                    raise InvalidParameter(f"missing key {key.name} for client certificate {cert}. "
                                           "CA certificates must use the extension .crt")
                ctx.load_cert_chain(str(cert), str(key))
        except (OSError, ssl.SSLError) as exc:
            raise InvalidParameter(f"could not load the certificates of {d}: {exc}") from None
        return ctx

    # ------------------------------------------------------------ clients

    def client(self, host: str, creds: Credentials | None, schemes: tuple[str, ...] | None = None) -> RegistryClient:
        insecure = self.is_insecure(host)
        return RegistryClient(host, creds, insecure=insecure, ssl_context=self.tls_context(host, insecure),
                              schemes=list(schemes) if schemes else None)

    def for_pull(self, domain: str) -> list[Endpoint]:
        """Mirrors first for Docker Hub, then the registry named by the reference."""
        if domain != HUB_DOMAIN:
            return [Endpoint(domain, mirror=False)]
        out = []
        for m in self.config.registry_mirrors:
            u = urlsplit(m)
            out.append(Endpoint(u.netloc, mirror=True, schemes=(u.scheme,)))
        return out
