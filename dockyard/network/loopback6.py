"""Published ports on [::1]: the one place dockyard proxies in userland.

IPv4 connections to 127.0.0.1:<port> are DNATed in the kernel (route_localnet
on the bridge, see firewall.py).  IPv6 has no route_localnet: a packet with
source ::1 never leaves the loopback device, so a DNAT rule in OUTPUT cannot
carry it to a container (the kernel drops it as a martian).  dockerd 28 serves
these connections with docker-proxy on [::]:<port>; dockyard does the same,
only for ::1 (every other address keeps the kernel path), on the engine's
event loop: per published TCP port a listener that copies bytes to the
container's IPv6 address, or its IPv4 one on an IPv4-only network, as
docker-proxy does; per published UDP port a datagram relay with a flow per
client (loopback6_udp.py).  Listeners live as long as the port is published
and are re-opened when the engine restarts with running containers
(`repair`); UDP flows of before the restart start afresh with the client's
next datagram.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Protocol

from .loopback6_udp import open_udp_relay

log = logging.getLogger(__name__)
CHUNK = 65536


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


class _Closable(Protocol):
    def close(self) -> None: ...


class Loopback6:
    def __init__(self) -> None:
        self._servers: dict[str, list[_Closable]] = {}

    async def open(self, key: str, proto: str, host_port: int, target_ip: str, target_port: int) -> None:
        """Serve [::1]:host_port/proto for the endpoint `key`; a failure is logged, not raised
        (a host without IPv6 still publishes on IPv4)."""
        server: _Closable
        try:
            if proto == "udp":
                server = await open_udp_relay(host_port, target_ip, target_port)
            else:
                server = await self._open_tcp(host_port, target_ip, target_port)
        except OSError as exc:
            log.warning("cannot serve [::1]:%s/%s for a published port: %s", host_port, proto, exc)
            return
        self._servers.setdefault(key, []).append(server)

    @staticmethod
    async def _open_tcp(host_port: int, target_ip: str, target_port: int) -> asyncio.AbstractServer:
        """Listen on [::1]:host_port; each connection is spliced to a connection of its own."""

        async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                up_r, up_w = await asyncio.open_connection(target_ip, target_port)
            except OSError:
                writer.close()
                return
            try:
                await asyncio.gather(_pipe(reader, up_w), _pipe(up_r, writer))
            finally:
                for w in (up_w, writer):
                    w.close()

        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(("::1", host_port))
            return await asyncio.start_server(client, sock=sock)
        except BaseException:
            sock.close()
            raise

    def close(self, key: str) -> None:
        for server in self._servers.pop(key, []):
            server.close()

    def close_all(self) -> None:
        for key in list(self._servers):
            self.close(key)

    def has(self, key: str) -> bool:
        return key in self._servers
