"""Serving a blob file with sendfile(2) from a worker thread.

aiohttp's own FileResponse also uses sendfile, but through the event loop:
the loop wakes once per socket buffer (about 1200 times for 512 MiB).  Here
the headers go out through aiohttp, then one worker thread sends the body
with blocking sendfile calls, with no event loop round trip per buffer.  TLS connections (no raw socket to send on) fall back to FileResponse.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from pathlib import Path

from aiohttp import web

_SEND_TIMEOUT_S = 30


def _send_all(sock: socket.socket, file_fd: int, offset: int, count: int) -> int:
    """Send `count` bytes from `offset`; return how many went out before the peer left.

    The socket is made blocking (with a send timeout) for the duration: one
    sendfile call then moves as much as the peer reads, without a wakeup per
    buffer.  Nothing else uses the socket meanwhile: aiohttp waits for us.
    """
    sock_fd = sock.fileno()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", _SEND_TIMEOUT_S, 0))
    os.set_blocking(sock_fd, True)
    sent = 0
    try:
        while sent < count:
            try:
                n = os.sendfile(sock_fd, file_fd, offset + sent, count - sent)
            except (BlockingIOError, BrokenPipeError, ConnectionResetError, TimeoutError):
                break  # the client stopped reading, or left
            if n == 0:
                break
            sent += n
    finally:
        os.set_blocking(sock_fd, False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", 0, 0))
    return sent


async def serve_file(request: web.Request, path: Path, *, status: int, start: int, length: int,
                     headers: dict[str, str]) -> web.StreamResponse:
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or transport.get_extra_info("sslcontext") is not None:
        fallback = {k: v for k, v in headers.items() if k != "Content-Range"}
        return web.FileResponse(path, headers=fallback, chunk_size=1 << 20)
    resp = web.StreamResponse(status=status, headers=headers)
    resp.content_length = length
    await resp.prepare(request)
    if request.method == "HEAD" or length == 0:
        await resp.write_eof()
        return resp
    await resp.drain()  # the header bytes must leave before the body does
    while transport.get_write_buffer_size():
        await asyncio.sleep(0.001)
    fd = os.open(path, os.O_RDONLY)
    try:
        sent = await asyncio.to_thread(_send_all, sock, fd, start, length)
    finally:
        os.close(fd)
    if sent < length:
        transport.close()  # the body is short: the connection cannot be reused
        return resp
    await resp.write_eof()
    return resp
