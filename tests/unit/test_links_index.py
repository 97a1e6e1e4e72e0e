"""`links._index` (one ioctl) answers as pyroute2's link_lookup (a dump of every link) did."""

from __future__ import annotations

import socket

from dockyard.network import links
from dockyard.network.netlink import IPRoute


def test_index_matches_link_lookup():
    with IPRoute() as ipr:
        for _, name in socket.if_nameindex():
            assert [links._index(ipr, name)] == ipr.link_lookup(ifname=name)
        assert ipr.link_lookup(ifname="dyknolink0") == [] and links._index(ipr, "dyknolink0") is None
        assert links._index(ipr, "x" * 40) is None  # longer than any interface name can be
