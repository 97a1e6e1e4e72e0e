"""Reading a pipe or fifo on the event loop, as its bytes come (no thread hop on the start path).

Both ends of a container's start wait on one: conmon's sync pipe (its first line reports the
container's pid) and runc's exec fifo (its writer closes it as the process execs).
"""

from __future__ import annotations

import asyncio
import os
from typing import Callable


async def read_on_loop(fd: int, *, enough: Callable[[bytes], bool] | None = None, until_readable: int = -1) -> bytes:
    """Read the non-blocking `fd` until EOF, until `enough(data so far)`, or until the
    descriptor `until_readable` (a pidfd: the writer died) turns readable; in that last case
    what the writer left is read too."""
    loop = asyncio.get_running_loop()
    ended = loop.create_future()
    data = bytearray()

    def end() -> None:
        if not ended.done():
            ended.set_result(None)

    def readable() -> None:
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            return
        data.extend(chunk)
        if not chunk or (enough is not None and enough(bytes(data))):
            end()

    loop.add_reader(fd, readable)
    if until_readable >= 0:
        loop.add_reader(until_readable, end)
    try:
        await ended
    finally:
        loop.remove_reader(fd)
        if until_readable >= 0:
            loop.remove_reader(until_readable)
    if until_readable >= 0:
        readable()  # what a writer that died wrote before it died
    return bytes(data)
