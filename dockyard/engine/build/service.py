"""BuildService: `POST /build` (dockerd's legacy builder) and `POST /build/prune`.

`prepare` does everything that can fail because of the request before a byte is streamed
(context unpacked in a thread, Dockerfile found and parsed, tags and target checked), so such
errors are plain 4xx answers; `run` then streams the build's messages, and an error after that
point travels inside the stream, as with dockerd.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any, AsyncIterator

from ...errors import DockyardError, NotFound
from ..streams import run_streamed
from . import context as ctxmod
from .cache import BuildCache
from .executor import Builder, BuildOptions, BuildPlan, StepFailed
from .frontend import parse


class BuildService:
    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.cache = BuildCache(engine.db, self._image_exists)

    def _image_exists(self, image_id: str) -> bool:
        try:
            self.engine.images.resolve(image_id)
            return True
        except NotFound:
            return False

    def temp_dir(self, prefix: str) -> Path:
        """Scratch space on the engine's disk, swept at engine start if a build is interrupted."""
        return self.engine.images.content.temp_dir(prefix)

    async def prepare(self, context_tar: Path, options: BuildOptions) -> BuildPlan:
        ctx_dir = self.temp_dir("build-ctx-")
        try:
            await asyncio.to_thread(ctxmod.unpack_context, context_tar, ctx_dir)

            def read() -> tuple[str, Any]:
                return ctxmod.read_dockerfile(ctx_dir, options.dockerfile), ctxmod.read_ignore(ctx_dir)

            text, ignore = await asyncio.to_thread(read)
            df = parse(text)
            df.until_target(options.target)  # an unknown target is a 400 now
            return BuildPlan(options, ctx_dir, df, ignore)
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, ctx_dir, True)
            raise

    async def run(self, plan: BuildPlan) -> AsyncIterator[dict[str, Any]]:
        """The build's stream messages; the context directory is removed when it ends."""

        async def work(emit) -> None:
            try:
                await Builder(self.engine, self.cache, plan, emit).run()
            except DockyardError as exc:  # the client's error: the last message of the stream
                emit(error_message(exc))

        try:
            async for item in run_streamed(work):  # a bug (not a DockyardError) surfaces here
                yield item
        finally:
            await asyncio.to_thread(shutil.rmtree, plan.context_dir, True)

    def prune(self) -> dict[str, Any]:
        return {"CachesDeleted": self.cache.prune(), "SpaceReclaimed": 0}


def error_message(exc: DockyardError) -> dict[str, Any]:
    """An error inside the stream, as dockerd writes it (the RUN's exit code as `code`)."""
    detail: dict[str, Any] = {"message": exc.message}
    if isinstance(exc, StepFailed):
        detail = {"code": exc.code, "message": exc.message}
    return {"errorDetail": detail, "error": exc.message}
