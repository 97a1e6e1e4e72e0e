"""`docker build` with dockerd's legacy builder: Dockerfile front end, step executor, layer cache.

Public interface: `BuildService(engine)` with `prepare(context_tar, BuildOptions) -> BuildPlan`
(4xx errors before streaming), `run(plan)` (an async iterator of dockerd's stream messages) and
`prune()`; the Engine holds one instance as `engine.builder`.
"""

from __future__ import annotations


from .executor import BuildOptions, BuildPlan, StepFailed
from .service import BuildService

__all__ = ["BuildOptions", "BuildPlan", "BuildService", "StepFailed"]

