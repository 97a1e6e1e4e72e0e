"""Docker's hijacked connections: after the HTTP reply the socket is a raw stream.

Attach and exec start answer `101 UPGRADED` (`Upgrade: tcp`) when the client
asks for it, `200 OK` otherwise; from then on the client writes stdin and we
write output, framed by `frame()` when the container has no TTY.

aiohttp has no hijack API, so we take the transport over from its protocol:
bytes the client sent after the request (aiohttp buffered them as the
"message tail" of an upgrade) are handed on first.
"""

from __future__ import annotations

import asyncio
import struct

from aiohttp import web

RAW_STREAM = "application/vnd.docker.raw-stream"
MULTIPLEXED_STREAM = "application/vnd.docker.multiplexed-stream"


def frame(stream: int, data: bytes) -> bytes:
    """Docker's 8-byte header: stream type, three zero bytes, big-endian length."""
    return struct.pack(">BxxxI", stream, len(data)) + data


class _RawProtocol(asyncio.Protocol):
    def __init__(self, tail: bytes, tls: bool = False) -> None:
        self.tls = tls
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        if tail:
            self.queue.put_nowait(tail)
        self.closed = asyncio.Event()
        self._can_write = asyncio.Event()
        self._can_write.set()

    def data_received(self, data: bytes) -> None:
        self.queue.put_nowait(data)

    def eof_received(self) -> bool:
        self.queue.put_nowait(b"")
        # keep our write side open: output may still flow (TLS: see _keep_tls_half_open)
        return not self.tls

    def connection_lost(self, exc: Exception | None) -> None:
        self.queue.put_nowait(b"")
        self.closed.set()
        self._can_write.set()

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()


class Hijacked:
    def __init__(self, request: web.Request, transport: asyncio.Transport, proto: _RawProtocol) -> None:
        self.request = request
        self.transport = transport
        self.proto = proto
        self._eof = False
        self._ssl_protocol = _keep_tls_half_open(transport)

    async def read(self) -> bytes:
        """Next bytes from the client; b"" once it closed its side."""
        if self._eof:
            return b""
        data = await self.proto.queue.get()
        if not data:
            self._eof = True
        return data

    async def write(self, data: bytes) -> bool:
        if self.transport.is_closing():
            return False
        self.transport.write(data)
        await self.proto._can_write.wait()
        return not self.transport.is_closing()

    @property
    def closed(self) -> bool:
        return self.proto.closed.is_set() or self.transport.is_closing()

    async def close(self) -> None:
        if self._ssl_protocol is not None:
            self._ssl_protocol.__dict__.pop("_start_shutdown", None)
        if not self.transport.is_closing():
            try:
                if self.transport.can_write_eof():
                    self.transport.write_eof()
            except OSError:
                pass
            self.transport.close()


def _keep_tls_half_open(transport: asyncio.Transport):
    """Let output flow after the client's TLS close_notify, as Go's TLS stack does.

    The docker CLI half-closes an attach with no stdin at once (CloseWrite,
    which on TLS sends close_notify).  asyncio's SSL protocol answers that by
    shutting the whole connection down; until our session ends we defer its
    shutdown (OpenSSL still writes after receiving close_notify).
    """
    ssl_protocol = getattr(transport, "_ssl_protocol", None)
    if ssl_protocol is None:
        return None
    ssl_protocol._start_shutdown = lambda: None  # instance attribute, removed in close()
    return ssl_protocol


async def hijack(request: web.Request, content_type: str = RAW_STREAM) -> Hijacked:
    transport = request.transport
    protocol = request.protocol
    assert transport is not None
    upgrade = request.headers.get("Upgrade", "").lower() == "tcp" and \
        "upgrade" in request.headers.get("Connection", "").lower()
    if upgrade:
        head = ("HTTP/1.1 101 UPGRADED\r\n"
                f"Content-Type: {content_type}\r\n"
                "Connection: Upgrade\r\n"
                "Upgrade: tcp\r\n"
                "Api-Version: 1.50\r\n\r\n")
    else:
        head = ("HTTP/1.1 200 OK\r\n"
                f"Content-Type: {content_type}\r\n"
                "Api-Version: 1.50\r\n\r\n")
    tail = getattr(protocol, "_message_tail", b"") or b""
    if tail:
        protocol._message_tail = b""  # type: ignore[attr-defined]
    raw = _RawProtocol(tail, tls=getattr(transport, "_ssl_protocol", None) is not None)
    transport.set_protocol(raw)
    try:
        transport.resume_reading()
    except Exception:
        pass
    transport.write(head.encode())
    # aiohttp must not reuse this connection once the handler returns
    protocol.keep_alive(False)
    protocol.close()
    return Hijacked(request, transport, raw)
