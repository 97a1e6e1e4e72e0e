"""One pulled layer, from the registry to an unpacked snapshot, in one pass.

The download (event loop) feeds a bounded ChunkPipe; a worker thread reads it
through `LayerStore.import_stream`, which hashes the compressed bytes (the
blob digest), keeps them, decompresses, hashes the tar (the DiffID), keeps it
and unpacks it, while the rest is still arriving.  The layer becomes visible
only when both digests matched; a broken download, a corrupt or truncated
stream or a digest mismatch leaves nothing behind, and names the layer.

Progress is Docker's: "Downloading" with byte counts while bytes arrive, then
"Verifying Checksum", "Download complete", "Extracting" (what the unpacker
still has to read), "Pull complete".
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable

from ..distribution.client import RegistryClient
from ..errors import DockyardError, SystemError_
from ..store.layers import Layer, LayerStore
from ..store.pipe import ChunkPipe, PipeClosed

Emit = Callable[[dict[str, Any]], None]
ProgressMsg = Callable[[str, str, int, int], dict[str, Any]]
StatusMsg = Callable[[str, str], dict[str, Any]]

EXTRACT_POLL = 0.1  # seconds between "Extracting" progress messages


class Cancelled(SystemError_):
    """The pull was abandoned (client gone) while this layer was in flight."""


async def pull_layer(client: RegistryClient, repo: str, desc: dict[str, Any], layers: LayerStore,
                     parent: str | None, diff_id: str, pinned: list[str], sid: str, emit: Emit,
                     progress: ProgressMsg, status: StatusMsg,
                     throttle: Callable[[str, int], Callable[[int], None]]) -> Layer:
    digest = desc["digest"]
    total = int(desc.get("size") or 0)
    pipe = ChunkPipe()

    def run_import() -> Layer:
        try:
            return layers.import_stream(pipe, parent, pinned, diff_id, expected_digest=digest,
                                        name=f"layer {digest}")
        finally:
            pipe.close()  # a failed import releases the download at once

    importing = asyncio.create_task(asyncio.to_thread(run_import))

    async def feed(chunk: bytes) -> None:
        await asyncio.to_thread(pipe.put, chunk)

    tick = throttle("Downloading", total)
    tick(0)
    try:
        await client.stream_blob(repo, digest, feed, tick, size=total or None)
        await asyncio.to_thread(pipe.finish)
    except PipeClosed:
        pass  # the importer stopped early: its error is the one to report
    except BaseException as exc:
        pipe.fail(exc if isinstance(exc, DockyardError) else Cancelled(f"pull of layer {digest} cancelled"))
        await asyncio.gather(importing, return_exceptions=True)  # the thread ends at its next read
        raise
    else:
        emit(status("Verifying Checksum", sid))
        emit(status("Download complete", sid))
    try:
        await _extract_progress(importing, pipe, total, sid, emit, progress)
        return await importing
    except BaseException:
        pipe.fail(Cancelled(f"pull of layer {digest} cancelled"))
        await asyncio.gather(importing, return_exceptions=True)
        raise


async def _extract_progress(importing: asyncio.Task, pipe: ChunkPipe, total: int, sid: str, emit: Emit,
                            progress: ProgressMsg) -> None:
    """Report how far the unpacker has read until it is done (it may lag the download)."""
    last = -1.0
    while not importing.done():
        now = time.monotonic()
        if now - last >= EXTRACT_POLL:
            last = now
            emit(progress("Extracting", sid, min(pipe.consumed, total), total))
        await asyncio.wait({importing}, timeout=EXTRACT_POLL)
    if not importing.cancelled() and importing.exception() is None:
        emit(progress("Extracting", sid, total, total))


async def gather_in_order(tasks: list[Awaitable[Any]]) -> list[Any]:
    """Await all; on the first failure cancel the rest and wait for them, then raise it."""
    futs = [asyncio.ensure_future(t) for t in tasks]
    try:
        return await asyncio.gather(*futs)
    except BaseException:
        for f in futs:
            f.cancel()
        await asyncio.gather(*futs, return_exceptions=True)
        raise
