"""pyroute2's rtnetlink socket (IPRoute) without pyroute2's whole package.

`import pyroute2` — and so any `from pyroute2.x import y` — runs pyroute2/__init__.py, which
imports every protocol pyroute2 speaks (IPDB, NDB, nftables, conntrack, wireguard, nl80211,
ipvs, plan9, ...): 9 MiB of an idle engine's 55 MiB and ~90 ms of its start, where the
engine needs the rtnetlink socket only (bridge, veth, addresses, routes).  So the package
is registered bare (its spec, not its __init__) before the first pyroute2 import: its
submodules then import as usual, each with just what it needs.  A name of the package
itself (`from pyroute2 import NDB`) still works: the first such lookup that is not a
submodule runs the real __init__ into the registered package.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType


def register_bare(name: str) -> None:
    """Put package `name` in sys.modules without running its __init__ (no-op once imported)."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return  # not installed, or not a package: the plain import says so
    pkg = importlib.util.module_from_spec(spec)

    def __getattr__(attr: str) -> object:  # PEP 562: only names not set on the package
        if attr.startswith("__"):
            raise AttributeError(attr)
        if importlib.util.find_spec(f"{name}.{attr}") is not None:
            return importlib.import_module(f"{name}.{attr}")  # `from pyroute2 import config`
        _run_init(pkg)
        try:
            return pkg.__dict__[attr]
        except KeyError:
            raise AttributeError(f"module {name!r} has no attribute {attr!r}") from None

    pkg.__getattr__ = __getattr__  # type: ignore[attr-defined]
    sys.modules[name] = pkg


def _run_init(pkg: ModuleType) -> None:
    pkg.__dict__.pop("__getattr__", None)
    assert pkg.__spec__ is not None and pkg.__spec__.loader is not None
    pkg.__spec__.loader.exec_module(pkg)


register_bare("pyroute2")

from pyroute2.iproute.linux import IPRoute  # noqa: E402
from pyroute2.netlink.exceptions import NetlinkError  # noqa: E402

__all__ = ["IPRoute", "NetlinkError", "register_bare"]
