"""Published UDP ports on [::1]: a datagram relay with a flow per client, as docker-proxy's.

UDP has no connection to splice, so the relay keeps a flow table keyed by the
client's (address, port): the first datagram of a client opens a socket of its
own connected to the container, every datagram of that client goes out through
it, and what the container answers on it goes back to that client from the
[::1]:<port> socket.  The container therefore sees one source port per client,
and replies can never be mixed between clients.

A flow lives until it has been idle (no datagram either way) for IDLE_TIMEOUT,
docker-proxy's 90 s conntrack timeout.  An ICMP "port unreachable" from the
container (nothing listens there yet) does not end a flow: docker-proxy ignores
ECONNREFUSED too and waits for the timeout.  asyncio reads datagrams of up to
256 KiB, more than docker-proxy's 65507-byte buffer, so nothing is truncated.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

log = logging.getLogger(__name__)

IDLE_TIMEOUT = 90.0  # seconds; docker-proxy's DefaultConnTrackTimeout


class _Flow(asyncio.DatagramProtocol):
    """One client's flow: a socket connected to the container, and its idle timer."""

    def __init__(self, relay: UdpRelay, client: Any) -> None:
        self.relay = relay
        self.client = client
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: list[bytes] = []  # datagrams that arrived while the socket was being set up
        self.last = relay.loop.time()
        self.timer: asyncio.TimerHandle | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.closed:  # the relay closed while this socket was being set up
            transport.close()
            return
        for data in self.pending:  # in order, before any datagram that comes after
            self.transport.sendto(data)
        self.pending.clear()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.last = self.relay.loop.time()
        self.relay.reply(data, self.client)

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP errors from the container (ECONNREFUSED): keep the flow until it is idle

    def connection_lost(self, exc: Exception | None) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self.last = self.relay.loop.time()
        if self.transport is None:
            self.pending.append(data)
        else:
            self.transport.sendto(data)

    def check_idle(self) -> None:
        idle = self.relay.loop.time() - self.last
        if idle >= self.relay.timeout:
            self.close()
        else:
            self.timer = self.relay.loop.call_later(self.relay.timeout - idle, self.check_idle)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
        if self.transport is not None:
            self.transport.close()
        self.relay.forget(self)


class UdpRelay(asyncio.DatagramProtocol):
    """The [::1]:<port> socket of one published UDP port, relaying to target_ip:target_port."""

    def __init__(self, target_ip: str, target_port: int, timeout: float = IDLE_TIMEOUT) -> None:
        self.target = (target_ip, target_port)
        self.timeout = timeout
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.DatagramTransport | None = None
        self.flows: dict[Any, _Flow] = {}
        self._opening: set[asyncio.Task] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def error_received(self, exc: Exception) -> None:
        pass  # an ICMP error about a reply to a client that went away

    def datagram_received(self, data: bytes, addr: Any) -> None:
        key = addr[:2]  # (host, port): flow info and scope id do not make another client
        flow = self.flows.get(key)
        if flow is None:
            flow = self.flows[key] = _Flow(self, addr)
            flow.timer = self.loop.call_later(self.timeout, flow.check_idle)
            task = self.loop.create_task(self._connect(flow))
            self._opening.add(task)
            task.add_done_callback(self._opening.discard)
        flow.send(data)

    async def _connect(self, flow: _Flow) -> None:
        family = socket.AF_INET6 if ":" in self.target[0] else socket.AF_INET
        try:
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.setblocking(False)
                sock.connect(self.target)  # a UDP connect only sets the peer: it does not block
                await self.loop.create_datagram_endpoint(lambda: flow, sock=sock)
            except BaseException:
                sock.close()
                raise
        except OSError as exc:
            log.info("cannot relay a datagram to udp/[%s]:%s: %s", *self.target, exc)
            flow.close()

    def reply(self, data: bytes, client: Any) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, client)

    def forget(self, flow: _Flow) -> None:
        key = flow.client[:2]
        if self.flows.get(key) is flow:
            del self.flows[key]

    def close(self) -> None:
        for task in list(self._opening):
            task.cancel()
        for flow in list(self.flows.values()):
            flow.close()
        if self.transport is not None:
            self.transport.close()


async def open_udp_relay(host_port: int, target_ip: str, target_port: int,
                         timeout: float = IDLE_TIMEOUT) -> UdpRelay:
    """Bind [::1]:host_port (IPv6 only: 127.0.0.1 keeps the kernel's DNAT) and relay to the target."""
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(("::1", host_port))
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        _, relay = await loop.create_datagram_endpoint(
            lambda: UdpRelay(target_ip, target_port, timeout), sock=sock)
    except BaseException:
        sock.close()
        raise
    return relay
