"""`docker update`: merge an update body into a container's HostConfig with
Docker's rules, and produce the JSON `runc update --resources -` reads.

Pure: no I/O.  In an update body a zero means "leave as is" (except
PidsLimit, where null means "leave" and 0/-1 mean "no limit"), exactly as
dockerd treats it.
"""

from __future__ import annotations

from dockyard.errors import Conflict, InvalidParameter
from dockyard.runtime.cgroups import DEFAULT_CPU_PERIOD, normalize_resources

UPDATABLE = ("BlkioWeight", "CpuShares", "CpuPeriod", "CpuQuota", "CpuRealtimePeriod",
             "CpuRealtimeRuntime", "CpusetCpus", "CpusetMems", "Memory", "MemorySwap",
             "MemoryReservation", "KernelMemory", "KernelMemoryTCP", "NanoCpus", "PidsLimit")


def merge_update(current: dict, body: dict, *, swap_accounting: bool = True,
                 online_cpus: int | None = None, available_cpus: set[int] | None = None,
                 available_mems: set[int] | None = None) -> dict:
    """New HostConfig after applying `body`; raises InvalidParameter/Conflict
    with dockerd's messages.  RestartPolicy is copied through for the caller."""
    cur = dict(current or {})
    new = dict(cur)

    def n(d: dict, key: str) -> int:
        v = d.get(key)
        if v is None:
            return 0
        try:
            return int(v)
        except (TypeError, ValueError):
            raise InvalidParameter(f"invalid value for {key}: {v!r}") from None

    if n(body, "NanoCpus") > 0 and n(cur, "CpuQuota") > 0:
        raise Conflict("Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set")
    if n(body, "NanoCpus") > 0 and n(cur, "CpuPeriod") > 0:
        raise Conflict("Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set")
    if n(body, "CpuQuota") > 0 and n(cur, "NanoCpus") > 0:
        raise Conflict("Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set")
    if n(body, "CpuPeriod") > 0 and n(cur, "NanoCpus") > 0:
        raise Conflict("Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set")

    for key in ("BlkioWeight", "CpuShares", "CpuPeriod", "CpuQuota", "CpuRealtimePeriod",
                "CpuRealtimeRuntime", "NanoCpus", "MemoryReservation", "KernelMemory"):
        if n(body, key) != 0:
            new[key] = n(body, key)
    for key in ("CpusetCpus", "CpusetMems"):
        if body.get(key):
            new[key] = body[key]
    if n(body, "Memory") != 0:
        # Docker refuses to raise Memory above an existing swap limit unless
        # MemorySwap is updated too.
        if n(body, "MemorySwap") == 0 and n(cur, "MemorySwap") > 0 and n(body, "Memory") > n(cur, "MemorySwap"):
            raise Conflict("Memory limit should be smaller than already set memoryswap limit, "
                           "update the memoryswap at the same time")
        new["Memory"] = n(body, "Memory")
    if n(body, "MemorySwap") != 0:
        new["MemorySwap"] = n(body, "MemorySwap")
    if body.get("PidsLimit") is not None:
        limit = n(body, "PidsLimit")
        new["PidsLimit"] = limit if limit > 0 else 0
    if "RestartPolicy" in body and body["RestartPolicy"]:
        new["RestartPolicy"] = body["RestartPolicy"]
    return normalize_resources(new, swap_accounting=swap_accounting, online_cpus=online_cpus,
                               available_cpus=available_cpus, available_mems=available_mems)


def runc_update_resources(merged: dict, body: dict, *, version: int = 1,
                          blkio_weight: bool = True, swap_accounting: bool = True) -> dict:
    """The LinuxResources JSON for `runc update --resources -`.

    Only what the body touched is sent (runc keeps the rest).  A PidsLimit of
    0/-1 becomes -1, which runc writes as "max"; memory always travels with
    its swap limit so runc can order the writes on cgroup v1.
    """
    res: dict = {}

    def touched(*keys: str) -> bool:
        return any(body.get(k) not in (None, 0, "") for k in keys)

    memory: dict = {}
    if touched("Memory", "MemorySwap"):
        if merged.get("Memory"):
            memory["limit"] = int(merged["Memory"])
        if swap_accounting and merged.get("MemorySwap"):
            memory["swap"] = int(merged["MemorySwap"])
    if touched("MemoryReservation"):
        memory["reservation"] = int(merged["MemoryReservation"])
    if memory:
        res["memory"] = memory

    cpu: dict = {}
    if touched("CpuShares"):
        cpu["shares"] = int(merged["CpuShares"])
    if touched("NanoCpus"):
        cpu["period"] = DEFAULT_CPU_PERIOD
        cpu["quota"] = int(merged["NanoCpus"]) * DEFAULT_CPU_PERIOD // 1_000_000_000
    if touched("CpuPeriod"):
        cpu["period"] = int(merged["CpuPeriod"])
    if touched("CpuQuota"):
        cpu["quota"] = int(merged["CpuQuota"])
    if touched("CpuRealtimePeriod"):
        cpu["realtimePeriod"] = int(merged["CpuRealtimePeriod"])
    if touched("CpuRealtimeRuntime"):
        cpu["realtimeRuntime"] = int(merged["CpuRealtimeRuntime"])
    if touched("CpusetCpus"):
        cpu["cpus"] = merged["CpusetCpus"]
    if touched("CpusetMems"):
        cpu["mems"] = merged["CpusetMems"]
    if cpu:
        res["cpu"] = cpu

    if body.get("PidsLimit") is not None:
        limit = int(merged.get("PidsLimit") or 0)
        res["pids"] = {"limit": limit if limit > 0 else -1}
    if touched("BlkioWeight") and blkio_weight:
        res["blockIO"] = {"weight": int(merged["BlkioWeight"])}
    return res
