"""Driver options (`docker network create -o KEY=VALUE`), parsed and checked
the way dockerd's bridge, macvlan and ipvlan drivers do, with their texts.
Pure: the service and the drivers get typed values."""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import ip_address

from ..errors import InvalidParameter

BRIDGE_NAME = "com.docker.network.bridge.name"
MTU = "com.docker.network.driver.mtu"
ICC = "com.docker.network.bridge.enable_icc"
MASQUERADE = "com.docker.network.bridge.enable_ip_masquerade"
HOST_BINDING = "com.docker.network.bridge.host_binding_ipv4"
ENABLE_IPV6 = "com.docker.network.enable_ipv6"
DEFAULT_BRIDGE = "com.docker.network.bridge.default_bridge"

MAX_MTU = 65535  # Linux's ETH_MAX_MTU, a bridge's max_mtu

MACVLAN_MODES = ("bridge", "private", "vepa", "passthru")
IPVLAN_MODES = ("l2", "l3", "l3s")
IPVLAN_FLAGS = ("bridge", "private", "vepa")


def go_bool(label: str, value: str) -> bool:
    """strconv.ParseBool, with the bridge driver's error text."""
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise InvalidParameter(f'failed to parse {label} value: {value} (strconv.ParseBool: parsing "{value}": invalid syntax)')


def go_int(label: str, value: str) -> int:
    """strconv.Atoi, with the bridge driver's error text."""
    if not re.fullmatch(r"[+-]?[0-9]+", value):
        raise InvalidParameter(f'failed to parse {label} value: {value} (strconv.Atoi: parsing "{value}": invalid syntax)')
    return int(value)


@dataclass
class BridgeOptions:
    name: str | None = None
    mtu: int = 0  # 0: the engine's default
    icc: bool = True
    masquerade: bool = True
    host_binding_ipv4: str = "0.0.0.0"


def bridge_options(opts: dict[str, str]) -> BridgeOptions:
    b = BridgeOptions()
    for key, value in opts.items():
        if key == BRIDGE_NAME:
            b.name = value or None
        elif key == MTU:
            b.mtu = go_int(key, value)
            if b.mtu < 0:
                raise InvalidParameter(f"invalid MTU number: {b.mtu}")
            if 0 < b.mtu < 68:
                raise InvalidParameter(f"invalid MTU number: {b.mtu}: the minimum is 68")
            if b.mtu > MAX_MTU:  # the kernel refuses it (EINVAL, ERANGE): a 400 before anything exists
                raise InvalidParameter(f"invalid MTU number: {b.mtu}: the maximum is {MAX_MTU}")
        elif key == ICC:
            b.icc = go_bool(key, value)
        elif key == MASQUERADE:
            b.masquerade = go_bool(key, value)
        elif key in (ENABLE_IPV6, DEFAULT_BRIDGE):
            go_bool(key, value)
        elif key == HOST_BINDING:
            try:
                b.host_binding_ipv4 = str(ip_address(value))
            except ValueError:
                raise InvalidParameter(f"failed to parse {key} value: {value} (nil ip)") from None
    return b


@dataclass
class ParentOptions:
    """macvlan and ipvlan: the host interface the containers' links hang off."""

    parent: str
    mode: str
    flag: str = "bridge"


def macvlan_options(opts: dict[str, str]) -> ParentOptions:
    mode = opts.get("macvlan_mode") or "bridge"
    if mode not in MACVLAN_MODES:
        raise InvalidParameter(
            f"requested macvlan mode '{mode}' is not valid, 'bridge' mode is the macvlan driver default")
    return ParentOptions(_parent("macvlan", opts), mode)


def ipvlan_options(opts: dict[str, str]) -> ParentOptions:
    mode = opts.get("ipvlan_mode") or "l2"
    if mode not in IPVLAN_MODES:
        raise InvalidParameter(f"requested ipvlan mode '{mode}' is not valid, 'l2' mode is the ipvlan driver default")
    flag = opts.get("ipvlan_flag") or "bridge"
    if flag not in IPVLAN_FLAGS:
        raise InvalidParameter(f"requested ipvlan flag '{flag}' is not valid, 'bridge' is the ipvlan driver default")
    return ParentOptions(_parent("ipvlan", opts), mode, flag)


def _parent(kind: str, opts: dict[str, str]) -> str:
    parent = opts.get("parent") or opts.get("host_iface") or ""
    if parent == "lo":
        raise InvalidParameter(f"loopback interface is not a valid {kind} parent link")
    if not parent:
        # dockerd then makes a dummy link and an internal network; this kernel has
        # no dummy driver, so a parent is required
        raise InvalidParameter(f"{kind} networks need a parent interface: -o parent=IFNAME")
    if len(parent) > 15 or not re.fullmatch(r"[A-Za-z0-9_.@-]+", parent):
        raise InvalidParameter(f"-o parent interface was not found on the host: {parent}")
    return parent
