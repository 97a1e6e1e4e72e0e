"""`docker search`: ask a registry's v1 search endpoint, as dockerd does.

The term names the registry (`127.0.0.1:5000/busy`); without one, the term is
for Docker Hub, which this engine cannot reach.  Registries on loopback are
insecure by Docker's defaults, so HTTPS is tried first and plain HTTP second.
"""

from __future__ import annotations

import aiohttp

from ..engine.filters import Filters
from ..errors import InvalidParameter, NotFound, Unavailable


def split_term(term: str) -> tuple[str, str]:
    """(registry host, search text); Docker's rule: a first part with '.', ':' or 'localhost'."""
    first, sep, rest = term.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return "docker.io", term


def _insecure(host: str) -> bool:
    h = host.rsplit(":", 1)[0].strip("[]")
    return h in ("localhost", "::1") or h.startswith("127.")


async def search(term: str, limit: int, filters: Filters) -> list[dict]:
    filters.validate({"is-official", "is-automated", "stars"})
    if not term:
        raise InvalidParameter("term is required")
    if not 1 <= limit <= 100:
        raise InvalidParameter(f"limit {limit} is outside the range of [1, 100]")
    host, text = split_term(term)
    if host == "docker.io":
        raise InvalidParameter("searching Docker Hub is not supported by this engine: "
                               "name a registry in the term, e.g. `docker search 127.0.0.1:5000/term`")
    schemes = ["https", "http"] if _insecure(host) else ["https"]
    last_error = ""
    timeout = aiohttp.ClientTimeout(total=15)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for scheme in schemes:
            url = f"{scheme}://{host}/v1/search"
            try:
                async with session.get(url, params={"q": text, "n": str(limit)}, ssl=False) as r:
                    if r.status == 404:
                        raise NotFound(f"registry {host} does not support search")
                    if r.status != 200:
                        last_error = f"{url}: HTTP {r.status}"
                        continue
                    body = await r.json(content_type=None)
                    break
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                last_error = f"{url}: {exc}"
        else:
            raise Unavailable(f"error searching registry {host}: {last_error}")
    results = []
    min_stars = max((int(s) for s in filters.get("stars") if s.isdigit()), default=0)
    official, automated = filters.bool_value("is-official"), filters.bool_value("is-automated")
    for r in body.get("results") or []:
        entry = {"name": r.get("name", ""), "description": r.get("description", ""),
                 "star_count": int(r.get("star_count", 0)), "is_official": bool(r.get("is_official")),
                 "is_automated": bool(r.get("is_automated"))}
        if entry["star_count"] < min_stars:
            continue
        if official is not None and entry["is_official"] != official:
            continue
        if automated is not None and entry["is_automated"] != automated:
            continue
        results.append(entry)
    return results[:limit]
