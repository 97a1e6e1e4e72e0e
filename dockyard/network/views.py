"""Docker's JSON for networks (`docker network inspect` / `ls`) and their filters.

Pure functions of the network, its pools and endpoints: the service gathers
them, these shape them as dockerd's `buildNetworkResource` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from ..engine.filters import Filters
from ..errors import InvalidParameter
from .ipam import Pool

if TYPE_CHECKING:
    from .model import Endpoint, Network


def render_network(net: "Network", pools: list[Pool], endpoints: list["Endpoint"] | None,
                   name_of: Callable[["Endpoint"], str]) -> dict[str, Any]:
    conts: dict[str, Any] = {}
    for ep in endpoints or []:
        conts[ep.container_id] = {
            "Name": name_of(ep),
            "EndpointID": ep.endpoint_id,
            "MacAddress": ep.mac_address,
            "IPv4Address": f"{ep.ip_address}/{ep.prefix_len}" if ep.ip_address else "",
            "IPv6Address": f"{ep.ip6_address}/{ep.prefix_len6}" if ep.ip6_address else "",
        }
    # what the user gave, as dockerd (compose compares it with its file to decide on recreation)
    opts = dict(net.options)
    return {
        "Name": net.name,
        "Id": net.id,
        "Created": net.created,
        "Scope": "local",
        "Driver": net.driver,
        "EnableIPv4": True,
        "EnableIPv6": net.enable_ipv6,
        "IPAM": {
            "Driver": "default",
            "Options": None if net.builtin else dict(net.ipam_options),
            "Config": [p.to_docker() for p in pools],
        },
        "Internal": net.internal,
        "Attachable": net.attachable,
        "Ingress": False,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Containers": conts,
        "Options": opts,
        "Labels": dict(net.labels),
    }


def match_network(net: "Network", f: Filters, in_use: Callable[[], bool]) -> bool:
    if f.get("driver") and net.driver not in f.get("driver"):
        return False
    if f.get("id") and not any(net.id.startswith(v) for v in f.get("id")):
        return False
    if f.get("name") and not any(v in net.name for v in f.get("name")):
        return False
    if f.get("scope") and "local" not in f.get("scope"):
        return False
    for t in f.get("type"):
        if t not in ("custom", "builtin"):
            raise InvalidParameter(f"invalid filter: 'type'='{t}'")
    if f.get("type") and ("builtin" if net.builtin else "custom") not in f.get("type"):
        return False
    dangling = f.bool_value("dangling")
    if dangling is not None:
        unused = not net.builtin and not in_use()
        if dangling != unused:
            return False
    return f.match_labels(net.labels)
