"""The embedded DNS server: 127.0.0.11:53 (udp + tcp) inside each sandbox on a user-defined network.

Like Docker's, it answers the names of the containers sharing a user-defined
network with the asker (container name, network aliases, short id) and
forwards everything else to upstream resolvers.

How it is served without a process per container: the engine creates the two
sockets *inside* the sandbox (a short-lived thread setns()es into it, binds
127.0.0.11:53 and returns the sockets; a socket stays in the namespace it was
created in) and serves them on its own asyncio loop.  Each listener knows
which container it belongs to, so the answer depends on the asker's networks.
Forwarding happens from the engine, i.e. from the host's namespace, so
upstreams on the host's loopback (systemd-resolved's 127.0.0.53) work too.
The listeners die with the engine; `NetworkService.repair` re-opens them for
running containers at engine start, so resolution survives engine restarts
(queries during the engine's downtime time out and the resolver retries).

Single-label names that match no container get NXDOMAIN without being
forwarded: public DNS cannot know them, and it keeps container lookups of
absent peers from leaking out of the host.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from ipaddress import IPv4Address
from typing import Callable

from .netns import NetnsDir

log = logging.getLogger(__name__)

DNS_IP = "127.0.0.11"
TTL = 600  # Docker's
FORWARD_TIMEOUT = 3.0



def _dnspython() -> None:
    """Import dnspython (into this module's `dns`) on the first query: it costs ~10 MiB, which
    an engine whose containers never ask a name of 127.0.0.11 does not need to hold."""
    global dns
    import dns.asyncquery
    import dns.exception
    import dns.flags
    import dns.message
    import dns.name
    import dns.rcode
    import dns.rdataclass
    import dns.rdatatype
    import dns.rrset  # noqa: F401


# (container_id, lower-case name) -> IPv4 addresses
Lookup = Callable[[str, str], list[str]]
# (container_id, IPv4 address) -> names (for PTR)
ReverseLookup = Callable[[str, str], list[str]]
# container_id -> upstream resolvers
Upstreams = Callable[[str], list[str]]


def _open_sockets() -> tuple[socket.socket, socket.socket]:
    """Runs inside the sandbox: bind udp and tcp 127.0.0.11:53."""
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        udp.bind((DNS_IP, 53))
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind((DNS_IP, 53))
        tcp.listen(64)
    except BaseException:
        udp.close()
        tcp.close()
        raise
    udp.setblocking(False)
    tcp.setblocking(False)
    return udp, tcp


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: "EmbeddedDns", cid: str) -> None:
        self.server, self.cid = server, cid
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        self.server._spawn(self._reply(data, addr))

    async def _reply(self, data: bytes, addr) -> None:
        out = await self.server.handle(self.cid, data, tcp=False)
        if out is not None and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(out, addr)


class _Listener:
    def __init__(self, udp: asyncio.DatagramTransport, tcp: asyncio.AbstractServer,
                 socks: tuple[socket.socket, socket.socket]) -> None:
        self.udp, self.tcp, self.socks = udp, tcp, socks

    def close(self) -> None:
        # An open socket would keep the sandbox's namespace alive: close for sure.
        for t, raw in zip((self.udp, self.tcp), self.socks):
            try:
                t.close()
            except RuntimeError:  # its event loop is gone (callers using asyncio.run per step)
                raw.close()


class EmbeddedDns:
    def __init__(self, netns: NetnsDir, lookup: Lookup, reverse: ReverseLookup, upstreams: Upstreams) -> None:
        self.netns = netns
        self.lookup = lookup
        self.reverse = reverse
        self.upstreams = upstreams
        self._listeners: dict[str, _Listener] = {}
        self._opening: dict[str, asyncio.Future] = {}
        self._tasks: set[asyncio.Task] = set()

    # ------------------------------------------------------------ listeners

    def is_open(self, cid: str) -> bool:
        return cid in self._listeners

    async def open(self, cid: str, sandbox: str) -> None:
        """Serve 127.0.0.11:53 in the container's sandbox (idempotent)."""
        if cid in self._listeners:
            return
        if cid in self._opening:  # a concurrent open: wait for it
            await asyncio.shield(self._opening[cid])
            return
        fut = asyncio.get_running_loop().create_future()
        self._opening[cid] = fut
        try:
            udp_sock, tcp_sock = await asyncio.to_thread(self.netns.run_in, sandbox, _open_sockets)
            loop = asyncio.get_running_loop()
            try:
                udp, _ = await loop.create_datagram_endpoint(lambda: _Udp(self, cid), sock=udp_sock)
            except BaseException:
                udp_sock.close()
                tcp_sock.close()
                raise
            try:
                tcp = await asyncio.start_server(lambda r, w: self._tcp_client(cid, r, w), sock=tcp_sock)
            except BaseException:
                udp.close()
                tcp_sock.close()
                raise
            self._listeners[cid] = _Listener(udp, tcp, (udp_sock, tcp_sock))
            fut.set_result(None)
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        finally:
            self._opening.pop(cid, None)

    def close(self, cid: str) -> None:
        lst = self._listeners.pop(cid, None)
        if lst is not None:
            lst.close()

    def close_all(self) -> None:
        for cid in list(self._listeners):
            self.close(cid)
        for t in list(self._tasks):
            t.cancel()

    def _spawn(self, coro) -> None:
        t = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def _tcp_client(self, cid: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await asyncio.wait_for(reader.readexactly(2), 30)
                    data = await reader.readexactly(struct.unpack("!H", head)[0])
                except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
                    return
                out = await self.handle(cid, data, tcp=True)
                if out is None:
                    return
                writer.write(struct.pack("!H", len(out)) + out)
                await writer.drain()
        finally:
            writer.close()

    # ------------------------------------------------------------ answering

    async def handle(self, cid: str, wire: bytes, tcp: bool) -> bytes | None:
        _dnspython()
        try:
            q = dns.message.from_wire(wire)
        except Exception:
            return None  # not DNS: no answer (as a resolver would do)
        try:
            resp = self.answer_local(cid, q)
            if resp is None:
                resp = await self._forward(cid, q, tcp)
            return resp.to_wire(max_size=65535 if tcp else _udp_limit(q))
        except Exception as exc:  # a bad upstream answer must not kill the listener
            log.debug("dns query failed: %s", exc)
            fail = dns.message.make_response(q)
            fail.set_rcode(dns.rcode.SERVFAIL)
            return fail.to_wire()

    def answer_local(self, cid: str, q: dns.message.Message) -> dns.message.Message | None:
        """The answer from the endpoint table, or None to forward."""
        _dnspython()
        if len(q.question) != 1:
            resp = dns.message.make_response(q)
            resp.set_rcode(dns.rcode.FORMERR)
            return resp
        rr = q.question[0]
        if rr.rdclass != dns.rdataclass.IN:
            return None
        name = rr.name.to_text(omit_final_dot=True).lower()
        if rr.rdtype == dns.rdatatype.PTR and name.endswith(".in-addr.arpa"):
            ip = _ptr_ip(name)
            names = self.reverse(cid, ip) if ip else []
            if not names:
                return None
            resp = _response(q)
            resp.answer.append(dns.rrset.from_text_list(rr.name, TTL, "IN", "PTR", [n + "." for n in names]))
            return resp
        ips = self.lookup(cid, name)
        if ips:
            resp = _response(q)
            v4, v6 = [i for i in ips if ":" not in i], [i for i in ips if ":" in i]
            if rr.rdtype in (dns.rdatatype.A, dns.rdatatype.ANY) and v4:
                resp.answer.append(dns.rrset.from_text_list(rr.name, TTL, "IN", "A", v4))
            if rr.rdtype in (dns.rdatatype.AAAA, dns.rdatatype.ANY) and v6:
                resp.answer.append(dns.rrset.from_text_list(rr.name, TTL, "IN", "AAAA", v6))
            # the rest: the name exists, with no such record (NOERROR, empty)
            return resp
        if "." not in name:
            resp = _response(q)
            resp.set_rcode(dns.rcode.NXDOMAIN)
            return resp
        return None

    async def _forward(self, cid: str, q: dns.message.Message, tcp: bool) -> dns.message.Message:
        servers = self.upstreams(cid)
        for server in servers:
            try:
                if tcp:
                    return await dns.asyncquery.tcp(q, server, timeout=FORWARD_TIMEOUT)
                r = await dns.asyncquery.udp(q, server, timeout=FORWARD_TIMEOUT, ignore_unexpected=True)
                return r
            except (dns.exception.DNSException, OSError) as exc:
                log.debug("upstream %s: %s", server, exc)
        fail = dns.message.make_response(q)
        fail.set_rcode(dns.rcode.SERVFAIL)
        return fail


def _response(q: dns.message.Message) -> dns.message.Message:
    resp = dns.message.make_response(q)
    resp.flags |= dns.flags.RA
    return resp


def _udp_limit(q: dns.message.Message) -> int:
    return max(512, q.payload) if q.edns >= 0 else 512


def _ptr_ip(name: str) -> str | None:
    parts = name[: -len(".in-addr.arpa")].split(".")
    if len(parts) != 4:
        return None
    try:
        return str(IPv4Address(".".join(reversed(parts))))
    except ValueError:
        return None
