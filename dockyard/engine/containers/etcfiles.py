"""The /etc/hosts, /etc/hostname and /etc/resolv.conf each container gets."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from ...errors import InvalidParameter

HOSTS_HEADER = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)

# Docker's fallback when the host only has loopback resolvers.
DEFAULT_DNS = ["8.8.8.8", "8.8.4.4"]


def parse_extra_hosts(extra: list[str] | None, gateway: str | None) -> list[tuple[str, str]]:
    out = []
    for entry in extra or []:
        sep = "=" if "=" in entry and ":" not in entry.split("=", 1)[0] else ":"
        host, _, ip = entry.partition(sep)
        if not host or not ip:
            raise InvalidParameter(f"invalid IP address in add-host: \"{ip}\"" if host else
                                   f"bad format for add-host: \"{entry}\"")
        if ip == "host-gateway":
            if not gateway:
                raise InvalidParameter("unable to resolve host-gateway: no gateway on this network")
            ip = gateway
        try:
            ipaddress.ip_address(ip.strip("[]"))
        except ValueError:
            raise InvalidParameter(f"invalid IP address in add-host: \"{ip}\"") from None
        out.append((host, ip.strip("[]")))
    return out


def hosts_file(hostname: str, domainname: str, ip: str | None,
               extra: list[tuple[str, str]], aliases: list[str] = ()) -> str:
    lines = [HOSTS_HEADER]
    for host, addr in extra:
        lines.append(f"{addr}\t{host}\n")
    if ip:
        names = [f"{hostname}.{domainname}" if domainname else None, hostname, *aliases]
        lines.append(ip + "\t" + " ".join(n for n in names if n) + "\n")
    return "".join(lines)


def resolv_conf(host_resolv: str, dns: list[str] | None, search: list[str] | None,
                options: list[str] | None, *, host_network: bool) -> str:
    """Docker's rule: the host's file minus loopback resolvers, unless overridden."""
    nameservers: list[str] = []
    other: list[str] = []
    host_search: list[str] = []
    host_options: list[str] = []
    for line in host_resolv.splitlines():
        parts = line.split()
        if not parts or parts[0].startswith(("#", ";")):
            continue
        if parts[0] == "nameserver" and len(parts) > 1:
            nameservers.append(parts[1])
        elif parts[0] in ("search", "domain"):
            host_search = parts[1:]
        elif parts[0] == "options":
            host_options += parts[1:]
        else:
            other.append(line)
    if dns:
        for d in dns:
            try:
                ipaddress.ip_address(d)
            except ValueError:
                raise InvalidParameter(f"{d} is not an ip address") from None
        nameservers = list(dns)
    elif not host_network:
        nameservers = [n for n in nameservers if not _is_loopback(n)] or list(DEFAULT_DNS)
    out = [f"nameserver {n}" for n in nameservers]
    srch = search if search else host_search
    if srch and srch != ["."]:
        out.append("search " + " ".join(srch))
    opts = options if options else host_options
    if opts:
        out.append("options " + " ".join(opts))
    return "\n".join(out) + "\n"


def _is_loopback(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr.split("%")[0]).is_loopback
    except ValueError:
        return False


def write_in_place(path: Path, content: str, mode: int = 0o644) -> None:
    """Rewrite a file a running container has bind-mounted: same inode, or it would not see it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "w") as f:
        f.truncate(0)
        f.write(content)


def write_atomic(path: Path, content: str, mode: int = 0o644) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(content)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
