"""Docker's container stats JSON (GET /containers/{id}/stats), from the cgroup
driver and the container's network namespace.

Shape and timing follow dockerd: one sample per second; each sample carries
the previous one's CPU figures as `precpu_stats` (the CLI computes CPU % from
the pair); `stream=false` waits for a second sample so `precpu_stats` is
filled, `one-shot=true` answers at once with an empty `precpu_stats`.  A
container that is not running gets Go's zero value with only name and id.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any, AsyncIterator

from ..errors import InvalidParameter, NotFound

ZERO_TIME = "0001-01-01T00:00:00Z"
INTERVAL = 1.0  # dockerd's collector interval


def zero_cpu_stats() -> dict[str, Any]:
    return {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}


def empty_stats(name: str, cid: str) -> dict[str, Any]:
    """What dockerd encodes for a container that is not running."""
    return {
        "name": name, "id": cid, "read": ZERO_TIME, "preread": ZERO_TIME,
        "pids_stats": {},
        "blkio_stats": {k: None for k in (
            "io_service_bytes_recursive", "io_serviced_recursive", "io_queue_recursive",
            "io_service_time_recursive", "io_wait_time_recursive", "io_merged_recursive",
            "io_time_recursive", "sectors_recursive")},
        "num_procs": 0, "storage_stats": {},
        "cpu_stats": zero_cpu_stats(), "precpu_stats": zero_cpu_stats(),
        "memory_stats": {},
    }


def parse_net_dev(text: str) -> dict[str, dict[str, int]]:
    """/proc/<pid>/net/dev → Docker's per-interface counters, loopback left out."""
    out: dict[str, dict[str, int]] = {}
    for line in text.splitlines()[2:]:
        name, sep, rest = line.partition(":")
        name = name.strip()
        f = rest.split()
        if not sep or name == "lo" or len(f) < 16:
            continue
        try:
            v = [int(x) for x in f[:16]]
        except ValueError:
            continue
        out[name] = {"rx_bytes": v[0], "rx_packets": v[1], "rx_errors": v[2], "rx_dropped": v[3],
                     "tx_bytes": v[8], "tx_packets": v[9], "tx_errors": v[10], "tx_dropped": v[11]}
    return out


def _network_stats(pid: int) -> dict[str, dict[str, int]] | None:
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            return parse_net_dev(f.read())
    except OSError:
        return None


def _sample(engine: Any, container: Any) -> dict[str, Any]:
    """One reading of a running container (blocking: small file reads)."""
    s = engine.cgroups.stats(container.id)
    s["name"] = "/" + container.name
    s["id"] = container.id
    s["precpu_stats"] = zero_cpu_stats()
    mode = getattr(container, "network_mode", "bridge") or "bridge"
    pid = container.state.pid
    if pid and mode not in ("host", "none"):
        nets = _network_stats(pid)
        if nets:
            s["networks"] = nets
    return s


def _running(container: Any) -> bool:
    return container.state.status in ("running", "paused") and bool(container.state.pid)


def _with_previous(cur: dict[str, Any], prev: dict[str, Any] | None) -> dict[str, Any]:
    if prev is not None and ZERO_TIME not in (prev["read"], cur["read"]):
        cur["precpu_stats"] = copy.deepcopy(prev["cpu_stats"])
        cur["preread"] = prev["read"]
    return cur


async def container_stats(engine: Any, ref: str, *, stream: bool = True,
                          one_shot: bool = False,
                          interval: float = INTERVAL) -> AsyncIterator[dict[str, Any]]:
    """Yield stats documents for `ref` (NotFound before the first when unknown).

    A stream ends when the container is removed; a client that goes away just
    stops iterating.
    """
    if stream and one_shot:
        raise InvalidParameter("cannot have stream=true and one-shot=true")
    c = engine.containers.get(ref)  # NotFound → 404 before anything is sent
    cid = c.id

    async def read() -> dict[str, Any]:
        if not _running(c):
            return empty_stats("/" + c.name, cid)
        return await asyncio.to_thread(_sample, engine, c)

    if not stream:
        first = await read()
        if one_shot or first["read"] == ZERO_TIME:
            yield first
            return
        await asyncio.sleep(interval)  # prime precpu_stats, as dockerd does
        yield _with_previous(await read(), first)
        return

    prev: dict[str, Any] | None = None
    while True:
        try:
            c = engine.containers.get(cid)
        except NotFound:
            return
        cur = _with_previous(await read(), prev)
        yield cur
        prev = cur
        await asyncio.sleep(interval)
