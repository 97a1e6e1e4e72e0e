"""The IPAM part of `POST /networks/create` and of endpoint settings: checked,
then turned into pools.  Pure (no I/O): the caller passes what is taken.

Validation follows dockerd's `network.ValidateIPAM` and
`validateEndpointSettings` (same checks, same texts, errors joined as
"* ..." lines); subnet choice and overlap follow libnetwork's default IPAM:
a subnet given without --ip-range must overlap no other network's subnet
(403 "Pool overlaps with other one on this address space"); with an
--ip-range, only the exact same subnet and range is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from ipaddress import ip_address, ip_network
from typing import Any

from ..errors import Forbidden, InvalidParameter, NotFound
from .ipam import DEFAULT_POOLS, DEFAULT_POOLS_V6, IPNetwork, Pool, host_bounds, pick_subnet

POOL_OVERLAP = "invalid pool request: Pool overlaps with other one on this address space"
MAC_RE = re.compile(r"^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$")


@dataclass
class IpamRequest:
    """IPAM of a network create request, checked."""

    configs: list[dict[str, Any]] = field(default_factory=list)  # Subnet/IPRange/Gateway/AuxiliaryAddresses
    options: dict[str, str] = field(default_factory=dict)


def _join(head: str, errs: list[str]) -> None:
    if errs:
        raise InvalidParameter(head + "\n* " + "\n* ".join(e.replace("\n", "\n\t") for e in errs))


def _prefix(value: str):
    """Go's netip.ParsePrefix: ADDRESS/BITS, host bits allowed, nothing else."""
    if not isinstance(value, str) or "/" not in value:
        raise ValueError(value)
    addr, bits = value.split("/", 1)
    if not bits.isdigit() or (len(bits) > 1 and bits[0] == "0"):
        raise ValueError(value)
    a = ip_address(addr)
    if int(bits) > a.max_prefixlen:
        raise ValueError(value)
    return ip_network(value, strict=False), a


def _family(version: int) -> str:
    return f"IPv{version}"


def _check_address(value: str, subnet: IPNetwork) -> str | None:
    try:
        a = ip_address(value)
    except ValueError:
        return "invalid address"
    if a.version != subnet.version:
        return f"parent subnet is an {_family(subnet.version)} block"
    if a not in subnet:
        return f"parent subnet {subnet} doesn't contain this address"
    return None


def parse_ipam(ipam: Any, enable_ipv6: bool) -> IpamRequest:
    """Shape and content of the IPAM object (400s with dockerd's texts)."""
    if ipam is None:
        return IpamRequest()
    if not isinstance(ipam, dict):
        raise InvalidParameter("invalid value for IPAM: expected an object")
    if ipam.get("Driver") not in (None, "", "default"):
        raise NotFound(f'plugin "{ipam["Driver"]}" not found')
    opts = ipam.get("Options") or {}
    configs = ipam.get("Config") or []
    if not isinstance(opts, dict) or not all(isinstance(v, str) for v in opts.values()):
        raise InvalidParameter("invalid value for IPAM.Options: expected an object of strings")
    if not isinstance(configs, list) or not all(isinstance(c, dict) for c in configs):
        raise InvalidParameter("invalid value for IPAM.Config: expected a list of objects")
    errs: list[str] = []
    out = []
    for cfg in configs:
        for key in ("Subnet", "IPRange", "Gateway"):
            if not isinstance(cfg.get(key) or "", str):
                raise InvalidParameter(f"invalid value for IPAM.Config.{key}: expected a string")
        aux = cfg.get("AuxiliaryAddresses") or cfg.get("AuxAddress") or {}
        if not isinstance(aux, dict) or not all(isinstance(v, str) for v in aux.values()):
            raise InvalidParameter("invalid value for IPAM.Config.AuxiliaryAddresses: expected an object of strings")
        raw = cfg.get("Subnet") or ""
        try:
            subnet, given = _prefix(raw)
        except ValueError:
            errs.append(f"invalid subnet {raw}: invalid CIDR block notation")
            continue
        if subnet.version == 6 and not enable_ipv6:
            continue  # dockerd ignores IPv6 config on a network without IPv6
        shown = f"{given}/{subnet.prefixlen}"
        if given != subnet.network_address:
            errs.append(f"invalid subnet {shown}: it should be {subnet}")
        ip_range = cfg.get("IPRange") or ""
        rng = None
        if ip_range:
            try:
                rng, rgiven = _prefix(ip_range)
            except ValueError:
                errs.append(f"invalid ip-range {ip_range}: invalid CIDR block notation")
            else:
                if rng.version != subnet.version:
                    errs.append(f"invalid ip-range {ip_range}: parent subnet is an {_family(subnet.version)} block")
                else:
                    if rng.prefixlen < subnet.prefixlen:
                        errs.append(f"invalid ip-range {ip_range}: CIDR block is bigger than its parent subnet {subnet}")
                    if rgiven != rng.network_address:
                        errs.append(f"invalid ip-range {rgiven}/{rng.prefixlen}: it should be {rng}")
                    if not subnet.overlaps(rng):
                        errs.append(f"invalid ip-range {ip_range}: parent subnet {subnet} doesn't contain ip-range")
        gw = cfg.get("Gateway") or ""
        if gw and (e := _check_address(gw, subnet)):
            errs.append(f"invalid gateway {gw}: {e}")
            gw = ""  # the errors are raised below: only the parsed values go on
        for name, a in aux.items():
            if e := _check_address(a, subnet):
                errs.append(f"invalid auxiliary address {name}: {e}")
        out.append({"Subnet": subnet, "IPRange": rng, "Gateway": ip_address(gw) if gw else None, "Aux": dict(aux)})
    _join("invalid network config:", errs)
    return IpamRequest(configs=out, options=dict(opts))


LINK_LOCAL_V6 = ip_network("fe80::/64")


def check_bridge_ipv6(req: IpamRequest) -> None:
    """The bridge driver's check of an IPv6 subnet (dockerd's validateIPv6Subnet, same texts):
    the kernel would refuse the gateway address of a multicast subnet, and one that spans
    the link-local prefix would clash with every interface's own address."""
    for cfg in req.configs:
        subnet = cfg["Subnet"]
        if subnet.version != 6:
            continue
        if subnet.network_address.is_multicast:
            raise InvalidParameter(f"multicast subnet '{subnet}' is not allowed")
        if subnet != LINK_LOCAL_V6 and subnet.overlaps(LINK_LOCAL_V6):
            raise InvalidParameter(f"'{subnet}' clashes with the Link-Local prefix 'fe80::/64'")


def plan_pools(req: IpamRequest, enable_ipv6: bool, taken: list[tuple[IPNetwork, IPNetwork | None]],
               routes: list[IPNetwork], default_pools: list[tuple[IPNetwork, int]] | None = None,
               need_v4: bool = True) -> list[Pool]:
    """The pools of a new network: the requested subnets (checked for overlap),
    and a free default-pool subnet for each family asked for but not given."""
    pools: list[Pool] = []
    seen = list(taken)
    for cfg in req.configs:
        subnet, rng = cfg["Subnet"], cfg["IPRange"]
        if rng is None:
            if any(subnet.overlaps(t) for t, _ in seen if t.version == subnet.version):
                raise Forbidden(POOL_OVERLAP)
        elif (subnet, rng) in seen:
            raise Forbidden(POOL_OVERLAP)
        seen.append((subnet, rng))
        gateway = cfg["Gateway"] or _first_host(subnet, rng)
        pools.append(Pool(subnet, gateway, rng, cfg["Aux"], static=True, user_gateway=cfg["Gateway"] is not None))
    versions = {p.version for p in pools}
    defaults = default_pools or DEFAULT_POOLS
    wanted = ([4] if need_v4 else []) + ([6] if enable_ipv6 else [])
    for version in wanted:
        if version in versions:
            continue
        base = [p for p in defaults if p[0].version == version] or (DEFAULT_POOLS if version == 4 else DEFAULT_POOLS_V6)
        subnet = pick_subnet([t for t, _ in seen] + routes, base)
        seen.append((subnet, None))
        pools.append(Pool(subnet, _first_host(subnet, None), static=False))
    return pools


def _first_host(subnet: IPNetwork, rng: IPNetwork | None):
    lo, _ = host_bounds(subnet)
    if rng is not None:
        lo = max(lo, int(rng.network_address))
    return type(subnet.network_address)(lo)


def parse_default_pools(entries: list[dict[str, Any]] | None) -> list[tuple[IPNetwork, int]] | None:
    """daemon.json's default-address-pools: [{"base": "10.10.0.0/16", "size": 24}]."""
    if not entries:
        return None
    out = []
    for e in entries:
        try:
            base = ip_network(str(e["base"]), strict=True)
            size = int(e["size"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidParameter(f"invalid default address pool {e!r}: {exc}") from None
        if size < base.prefixlen or size > base.max_prefixlen:
            raise InvalidParameter(f"invalid default address pool {e!r}: size must be between "
                                   f"{base.prefixlen} and {base.max_prefixlen}")
        out.append((base, size))
    return out


# ------------------------------------------------------------- endpoints


def check_endpoint(cfg: dict[str, Any], pools: list[Pool] | None, user_defined: bool) -> None:
    """EndpointSettings of `run --network` / `network connect`: dockerd's
    "invalid endpoint settings" checks.  `pools` None skips the subnet checks."""
    ipam = cfg.get("IPAMConfig") or {}
    v4, v6 = ipam.get("IPv4Address") or "", ipam.get("IPv6Address") or ""
    errs: list[str] = []
    if not user_defined:
        if v4 or v6:
            errs.append("user specified IP address is supported on user defined networks only")
        if cfg.get("Aliases"):
            errs.append("network-scoped alias is supported only for containers in user defined networks")
    if v4:
        try:
            a = ip_address(v4)
            if a.version != 4 or a.is_unspecified:
                raise ValueError
        except ValueError:
            errs.append(f"invalid IPv4 address: {v4}")
    if v6:
        try:
            a = ip_address(v6)
            if a.version != 6 or a.is_unspecified:
                raise ValueError
        except ValueError:
            errs.append(f"invalid IPv6 address: {v6}")
    for a in ipam.get("LinkLocalIPs") or []:
        try:
            if ip_address(a).is_unspecified:
                raise ValueError
        except ValueError:
            errs.append(f"invalid link-local IP address: {a}")
    if pools is not None and user_defined:
        for value, version in ((v4, 4), (v6, 6)):
            if not value:
                continue
            try:
                addr = ip_address(value)
            except ValueError:
                continue
            static = [p for p in pools if p.version == version and p.static]
            if not static:
                errs.append("user specified IP address is supported only when connecting to networks"
                            " with user configured subnets")
            elif not any(addr in p.subnet for p in static):
                errs.append(f"no configured subnet or ip-range contain the IP address {value}")
    mac = cfg.get("MacAddress") or ""
    if mac:
        check_mac(mac)
    _join("invalid endpoint settings:", errs)


def check_mac(mac: str) -> None:
    """dockerd's net.ParseMAC check, and a unicast address: the kernel refuses a multicast or
    all-zero one for an interface (EADDRNOTAVAIL at start), so it is a 400 at create."""
    if not MAC_RE.match(mac):
        raise InvalidParameter(f"invalid MAC address {mac}")
    if int(mac[:2], 16) & 1 or not int(re.sub("[:-]", "", mac), 16):
        raise InvalidParameter(f"invalid MAC address {mac}: not a unicast address")
