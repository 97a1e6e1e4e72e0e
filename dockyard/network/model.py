"""The network service's records: networks and endpoints as rows and as Docker's JSON.

  network   a row in net_networks; its driver decides what it is on the host
            (drivers.py); its subnets are IPAM's pools (ipam.py).
  endpoint  a container's attachment to one network: an interface in its
            sandbox, addresses from IPAM, a MAC, aliases.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from ipaddress import IPv4Address, IPv4Network
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS net_networks (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    driver      TEXT NOT NULL,           -- bridge | host | null
    bridge      TEXT,                    -- Linux bridge name (driver bridge)
    subnet      TEXT,
    gateway     TEXT,
    created     TEXT NOT NULL,
    internal    INTEGER NOT NULL DEFAULT 0,
    attachable  INTEGER NOT NULL DEFAULT 0,
    enable_ipv6 INTEGER NOT NULL DEFAULT 0,
    icc         INTEGER NOT NULL DEFAULT 1,
    masquerade  INTEGER NOT NULL DEFAULT 1,
    builtin     INTEGER NOT NULL DEFAULT 0,  -- bridge/host/none: cannot be removed
    options     TEXT NOT NULL DEFAULT '{}',
    labels      TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS net_endpoints (
    container_id TEXT NOT NULL,
    network_id   TEXT NOT NULL REFERENCES net_networks(id),
    endpoint_id  TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL DEFAULT '',
    sandbox      TEXT,
    ifname       TEXT,
    host_veth    TEXT,
    ip           TEXT,
    prefix_len   INTEGER NOT NULL DEFAULT 0,
    gateway      TEXT,
    mac          TEXT,
    aliases      TEXT NOT NULL DEFAULT '[]',
    requested_ip TEXT,
    created      REAL NOT NULL,
    PRIMARY KEY (container_id, network_id)
);
CREATE TABLE IF NOT EXISTS net_ports (
    endpoint_id    TEXT NOT NULL,
    container_id   TEXT NOT NULL,
    network_id     TEXT NOT NULL,
    proto          TEXT NOT NULL,
    container_port INTEGER NOT NULL,
    host_ip        TEXT NOT NULL,
    host_port      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS net_ports_endpoint ON net_ports(endpoint_id);
CREATE TABLE IF NOT EXISTS net_dns (
    container_id TEXT PRIMARY KEY,
    upstreams    TEXT NOT NULL DEFAULT '[]'  -- HostConfig.Dns: where the embedded DNS forwards
);
CREATE TABLE IF NOT EXISTS net_state (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

DEFAULT_BRIDGE = "bridge"
PREDEFINED = ("bridge", "host", "none", "default", "ingress")
# Columns later engines added (older databases get them with these defaults).
NETWORK_COLUMNS = {"ipam_options": "TEXT NOT NULL DEFAULT '{}'"}
ENDPOINT_COLUMNS = {"ip6": "TEXT", "prefix_len6": "INTEGER NOT NULL DEFAULT 0", "gateway6": "TEXT",
                    "requested_ip6": "TEXT", "link_local": "TEXT NOT NULL DEFAULT '[]'",
                    "hostname": "TEXT NOT NULL DEFAULT ''"}


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def new_id() -> str:
    return secrets.token_hex(32)


@dataclass
class Network:
    id: str
    name: str
    driver: str
    bridge: str | None
    subnet: IPv4Network | None
    gateway: IPv4Address | None
    created: str
    internal: bool = False
    attachable: bool = False
    enable_ipv6: bool = False
    icc: bool = True
    masquerade: bool = True
    builtin: bool = False
    options: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    ipam_options: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_row(cls, r) -> "Network":
        return cls(
            id=r["id"], name=r["name"], driver=r["driver"], bridge=r["bridge"],
            subnet=IPv4Network(r["subnet"]) if r["subnet"] else None,
            gateway=IPv4Address(r["gateway"]) if r["gateway"] else None,
            created=r["created"], internal=bool(r["internal"]), attachable=bool(r["attachable"]),
            enable_ipv6=bool(r["enable_ipv6"]), icc=bool(r["icc"]), masquerade=bool(r["masquerade"]),
            builtin=bool(r["builtin"]), options=json.loads(r["options"]), labels=json.loads(r["labels"]),
            ipam_options=json.loads(r["ipam_options"] or "{}"),
        )

    @property
    def is_default_bridge(self) -> bool:
        return self.builtin and self.driver == "bridge"


@dataclass
class Endpoint:
    container_id: str
    network_id: str
    endpoint_id: str
    ip_address: str = ""
    prefix_len: int = 0
    gateway: str = ""
    mac_address: str = ""
    host_veth: str | None = None
    ifname: str | None = None
    sandbox: str | None = None
    aliases: list[str] = field(default_factory=list)
    name: str = ""
    requested_ip: str | None = None
    dns_names: list[str] | None = None
    ip6_address: str = ""
    prefix_len6: int = 0
    gateway6: str = ""
    requested_ip6: str | None = None
    link_local: list[str] = field(default_factory=list)
    hostname: str = ""  # the container's, a DNS name as dockerd's DNSNames has it

    @classmethod
    def from_row(cls, r) -> "Endpoint":
        return cls(
            container_id=r["container_id"], network_id=r["network_id"], endpoint_id=r["endpoint_id"],
            ip_address=r["ip"] or "", prefix_len=r["prefix_len"] or 0, gateway=r["gateway"] or "",
            mac_address=r["mac"] or "", host_veth=r["host_veth"], ifname=r["ifname"],
            sandbox=r["sandbox"], aliases=json.loads(r["aliases"]), name=r["name"],
            requested_ip=r["requested_ip"], ip6_address=r["ip6"] or "", prefix_len6=r["prefix_len6"] or 0,
            gateway6=r["gateway6"] or "", requested_ip6=r["requested_ip6"],
            link_local=json.loads(r["link_local"] or "[]"), hostname=r["hostname"] or "",
        )

    def to_docker(self, network_name: str) -> dict[str, Any]:
        """Docker's NetworkSettings.Networks[network_name] entry."""
        ipam = {k: v for k, v in (("IPv4Address", self.requested_ip), ("IPv6Address", self.requested_ip6),
                                  ("LinkLocalIPs", list(self.link_local))) if v}
        return {
            "IPAMConfig": ipam or None,
            "Links": None,
            "Aliases": list(self.aliases) or None,
            "MacAddress": self.mac_address,
            "DriverOpts": None,
            "GwPriority": 0,
            "NetworkID": self.network_id,
            "EndpointID": self.endpoint_id,
            "Gateway": self.gateway,
            "IPAddress": self.ip_address,
            "IPPrefixLen": self.prefix_len,
            "IPv6Gateway": self.gateway6,
            "GlobalIPv6Address": self.ip6_address,
            "GlobalIPv6PrefixLen": self.prefix_len6,
            "DNSNames": self.dns_names,
        }
