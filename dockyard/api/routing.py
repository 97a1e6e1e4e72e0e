"""Route registration: each resource module lists its routes once."""

from __future__ import annotations

from typing import Awaitable, Callable

from aiohttp import web

from .versions import PREFIX

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Routes:
    """Collects (method, path, handler) and adds each bare and versioned."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, Handler]] = []

    def add(self, method: str, path: str):
        def deco(fn: Handler) -> Handler:
            self.items.append((method, path, fn))
            return fn

        return deco

    def get(self, path: str):
        return self.add("GET", path)

    def post(self, path: str):
        return self.add("POST", path)

    def put(self, path: str):
        return self.add("PUT", path)

    def delete(self, path: str):
        return self.add("DELETE", path)

    def head(self, path: str):
        return self.add("HEAD", path)

    def install(self, app: web.Application) -> None:
        for method, path, fn in self.items:
            for p in (path, PREFIX + path):
                app.router.add_route(method, p, fn)
