"""Long work that streams progress: run it as a task, hand its messages to the HTTP layer."""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Awaitable, Callable

Emit = Callable[[dict[str, Any]], None]


async def run_streamed(worker: Callable[[Emit], Awaitable[None]]) -> AsyncIterator[dict[str, Any]]:
    """Run `worker(emit)` as a task and yield what it emits; its exception ends the stream.

    When the consumer stops early (the client hung up) the task is cancelled.
    """
    q: asyncio.Queue = asyncio.Queue()
    done = object()

    async def run() -> None:
        try:
            await worker(q.put_nowait)
        except BaseException as exc:
            q.put_nowait(exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            q.put_nowait(done)

    task = asyncio.create_task(run())
    try:
        while True:
            item = await q.get()
            if item is done:
                break
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        if not task.done():
            task.cancel()
            try:
                await task
            except BaseException:
                pass
