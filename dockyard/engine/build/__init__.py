"""`docker build` with dockerd's legacy builder: Dockerfile front end, step executor, layer cache.

Public interface: `BuildService(engine)` with `prepare(context_tar, BuildOptions) -> BuildPlan`
(4xx errors before streaming), `run(plan)` (an async iterator of dockerd's stream messages) and
`prune()`; `service_for(engine)` gives the engine's one instance.
"""

from __future__ import annotations

from typing import Any

from .executor import BuildOptions, BuildPlan, StepFailed
from .service import BuildService

__all__ = ["BuildOptions", "BuildPlan", "BuildService", "StepFailed", "service_for"]


def service_for(engine: Any) -> BuildService:
    """The engine's BuildService (the Engine may wire one as `engine.builder`; made on first use otherwise)."""
    svc = getattr(engine, "builder", None)
    if svc is None:
        svc = BuildService(engine)
        engine.builder = svc
    return svc
