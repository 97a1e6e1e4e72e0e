"""One pulled layer, from the registry to an unpacked snapshot, in one pass.

The download (event loop) feeds a bounded ChunkPipe; a worker thread reads it
through `LayerStore.import_stream`, which hashes the compressed bytes (the
blob digest), keeps them, decompresses, hashes the tar (the DiffID) and
unpacks it, while the rest is still arriving.  The layer becomes visible
only when both digests matched; a broken download, a corrupt or truncated
stream or a digest mismatch leaves nothing behind, and names the layer.

Progress is Docker's: "Downloading" with byte counts while bytes arrive, then
"Verifying Checksum", "Download complete", "Extracting" (what the unpacker
still has to read), "Pull complete".
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable

from ..errors import DockyardError, SystemError_
from ..store.layers import Layer, LayerStore
from ..store.pipe import ChunkPipe, PipeClosed
from .memory import release_freed

if TYPE_CHECKING:
    from ..distribution.client import RegistryClient

Emit = Callable[[dict[str, Any]], None]
ProgressMsg = Callable[[str, str, int, int], dict[str, Any]]
StatusMsg = Callable[[str, str], dict[str, Any]]

EXTRACT_POLL = 0.1  # seconds between "Extracting" progress messages


class Cancelled(SystemError_):
    """The transfer was abandoned (client gone) while this layer was in flight."""


class FedImport:
    """`LayerStore.import_stream` in a worker thread, fed chunk by chunk from the event loop."""

    def __init__(self, layers: LayerStore, parent: str | None, pinned: list[str],
                 diff_id: str | None = None, *, expected_digest: str | None = None, name: str | None = None) -> None:
        self.pipe = ChunkPipe()

        def run() -> Layer:
            try:
                return layers.import_stream(self.pipe, parent, pinned, diff_id, expected_digest=expected_digest,
                                            name=name)
            finally:
                self.pipe.close()  # a failed import releases the producer at once

        self.task: asyncio.Task[Layer] = asyncio.create_task(asyncio.to_thread(run))

    async def feed(self, chunk: bytes) -> None:
        """Raises PipeClosed when the importer has stopped (its error is the one to report)."""
        await asyncio.to_thread(self.pipe.put, chunk)

    async def finish(self) -> Layer:
        try:
            await asyncio.to_thread(self.pipe.finish)
        except PipeClosed:
            pass
        return await self.result()

    async def result(self) -> Layer:
        try:
            return await asyncio.shield(self.task)
        except asyncio.CancelledError:
            await self.abort(Cancelled("cancelled"))
            raise
        finally:
            self.pipe.drop()
            await asyncio.to_thread(release_freed)  # the transfer's buffers, back to the kernel (RSS)

    async def abort(self, exc: BaseException) -> None:
        """Stop the importer (it removes what it made) and wait for its thread."""
        self.pipe.fail(exc if isinstance(exc, DockyardError) else Cancelled(f"cancelled: {exc!r}"))
        await asyncio.gather(self.task, return_exceptions=True)


async def import_chunks(layers: LayerStore, chunks: AsyncIterator[bytes], parent: str | None,
                        pinned: list[str], **kw: Any) -> Layer:
    """Import a layer from chunks arriving on the event loop (an upload), in one pass."""
    imp = FedImport(layers, parent, pinned, **kw)
    try:
        async for chunk in chunks:
            await imp.feed(chunk)
    except PipeClosed:
        return await imp.result()  # raises the importer's error
    except BaseException as exc:
        await imp.abort(exc)
        raise
    return await imp.finish()


async def pull_layer(client: RegistryClient, repo: str, desc: dict[str, Any], layers: LayerStore,
                     parent: str | None, diff_id: str, pinned: list[str], sid: str, emit: Emit,
                     progress: ProgressMsg, status: StatusMsg,
                     throttle: Callable[[str, int], Callable[[int], None]]) -> Layer:
    digest = desc["digest"]
    total = int(desc.get("size") or 0)
    imp = FedImport(layers, parent, pinned, diff_id, expected_digest=digest, name=f"layer {digest}")
    tick = throttle("Downloading", total)
    tick(0)
    try:
        await client.stream_blob(repo, digest, imp.feed, tick, size=total or None)
        await asyncio.to_thread(imp.pipe.finish)
    except PipeClosed:
        pass  # the importer stopped early: its error is the one to report
    except BaseException as exc:
        await imp.abort(exc)
        raise
    else:
        emit(status("Verifying Checksum", sid))
        emit(status("Download complete", sid))
    try:
        await _extract_progress(imp.task, imp.pipe, total, sid, emit, progress)
    except asyncio.CancelledError:
        await imp.abort(Cancelled(f"pull of layer {digest} cancelled"))
        raise
    return await imp.result()


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
