"""Repositories: the catalog and a Docker Hub-style v1 search over it."""

from __future__ import annotations

import math
from typing import Any

from . import paths
from .storage import PathNotFound, StorageDriver
from .tags import paginate


class RepositoryService:
    def __init__(self, driver: StorageDriver) -> None:
        self.driver = driver

    def all(self) -> list[str]:
        """Every repository name: a directory holding _manifests or _layers."""
        out: list[str] = []

        def visit(path: str, name: str) -> None:
            try:
                children = self.driver.list(path)
            except PathNotFound:
                return
            leaves = {c.rsplit("/", 1)[1] for c in children}
            if name and ("_manifests" in leaves or "_layers" in leaves):
                out.append(name)
            for leaf in sorted(leaves):
                if not leaf.startswith("_") and not leaf.startswith("."):
                    visit(f"{path}/{leaf}", f"{name}/{leaf}" if name else leaf)

        visit(paths.REPOS, "")
        return sorted(out)

    def catalog(self, n: int | None, last: str | None) -> tuple[list[str], bool]:
        return paginate(self.all(), n, last)

    def search(self, query: str, n: int, page: int) -> dict[str, Any]:
        """Answer like Docker Hub's /v1/search: substring match on the repository name."""
        q = query.strip().lower()
        hits = [r for r in self.all() if q in r.lower()]
        n = max(1, min(n, 100))
        page = max(1, page)
        chunk = hits[(page - 1) * n: page * n]
        return {
            "query": query,
            "num_results": len(hits),
            "num_pages": max(1, math.ceil(len(hits) / n)),
            "page": page,
            "page_size": n,
            "results": [{"name": r, "description": "", "star_count": 0,
                         "is_official": False, "is_automated": False} for r in chunk],
        }
