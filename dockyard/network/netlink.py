"""pyroute2's rtnetlink socket (IPRoute) without pyroute2's whole package.

`import pyroute2` — and so any `from pyroute2.x import y` — runs pyroute2/__init__.py, which
imports every protocol pyroute2 speaks; the engine needs the rtnetlink socket only (bridge,
veth, addresses, routes).  So pyroute2 is registered bare (dockyard/lazypkg.py) before its
first import, and so is unittest, whose __init__ (test runner, difflib, pprint) pyroute2's
`from unittest import mock` would otherwise run.
"""

from __future__ import annotations

from ..lazypkg import register_bare

register_bare("unittest")
register_bare("pyroute2")

from pyroute2.iproute.linux import IPRoute  # noqa: E402
from pyroute2.netlink.exceptions import NetlinkError  # noqa: E402

__all__ = ["IPRoute", "NetlinkError"]
