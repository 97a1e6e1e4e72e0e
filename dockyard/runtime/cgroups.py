"""Cgroups: Docker's resource settings → OCI `linux.resources`, and the
reading side (stats, OOM kills, cleanup) for cgroup v1 and v2.

runc creates and writes the cgroups; dockyard only tells it what to write
(`resources()`, the `cgroupsPath` from `oci_cgroups_path()`) and reads them
back.  One interface, two layouts:

* `CgroupV1Driver`  one hierarchy per controller, /sys/fs/cgroup/<ctrl>/...;
  on "hybrid" hosts (this one) runc also creates a directory in the cgroup2
  mount at /sys/fs/cgroup/unified, so cleanup and leak checks cover it.
* `CgroupV2Driver`  the unified hierarchy (/sys/fs/cgroup on current distros).

`detect()` picks the one runc will use.  All readers take a `root` so they can
be pointed at fixture trees in tests.
"""

from __future__ import annotations

import datetime as _dt
import errno
import hashlib
import os
import time
from abc import ABC, abstractmethod

from dockyard.errors import InvalidParameter

MIN_MEMORY = 6 * 1024 * 1024
DEFAULT_CPU_PERIOD = 100_000
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
V1_UNLIMITED = 0x7FFFFFFFFFFFF000  # memory.limit_in_bytes when unset (page aligned max)


# --------------------------------------------------------------------- helpers

def _true_once_seen(method):
    """Cache a host capability check once it answered True (a kernel feature found stays;
    one missing is looked for again). Asked at every create and start, and the blkio check
    lists every cgroup of the host."""
    attr = f"_seen_{method.__name__}"

    def check(self) -> bool:
        if getattr(self, attr, False):
            return True
        found = method(self)
        if found:
            setattr(self, attr, True)
        return found

    check.__name__, check.__doc__ = method.__name__, method.__doc__
    return check


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _read_int(path: str) -> int | None:
    text = _read(path)
    if text is None:
        return None
    text = text.strip()
    if text == "max":
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _read_kv(path: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in (_read(path) or "").splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                pass
    return out


def host_memory(meminfo: str = "/proc/meminfo") -> int:
    for line in (_read(meminfo) or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def system_cpu_usage(stat_path: str = "/proc/stat") -> int:
    """Host CPU time in ns, as Docker computes system_cpu_usage: the sum of
    the first seven fields of the aggregate "cpu" line."""
    for line in (_read(stat_path) or "").splitlines():
        parts = line.split()
        if parts and parts[0] == "cpu":
            ticks = sum(int(x) for x in parts[1:8])
            return ticks * 1_000_000_000 // CLK_TCK
    return 0


def parse_cpu_list(text: str) -> set[int]:
    """"0-2,4" → {0, 1, 2, 4}; ValueError on anything else."""
    cpus: set[int] = set()
    text = text.strip()
    if not text:
        return cpus
    for chunk in text.split(","):
        lo, sep, hi = chunk.partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise ValueError(text)
        a, b = int(lo), int(hi) if sep else int(lo)
        if b < a:
            raise ValueError(text)
        cpus.update(range(a, b + 1))
    return cpus


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat().replace("+00:00", "Z")


# ------------------------------------------------------- Docker → OCI resources

def _int_field(hc: dict, key: str) -> int:
    value = hc.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            value = int(value)
        except (TypeError, ValueError):
            raise InvalidParameter(f"invalid value for {key}: {hc.get(key)!r}") from None
    return value


def normalize_resources(host_config: dict, *, swap_accounting: bool = True,
                        online_cpus: int | None = None,
                        available_cpus: set[int] | None = None,
                        available_mems: set[int] | None = None) -> dict:
    """Validate HostConfig's resource fields with Docker's messages and apply
    Docker's defaults (MemorySwap = 2 x Memory when unset).  Returns a new dict
    with the normalized fields; store it so inspect shows what Docker shows."""
    hc = dict(host_config or {})
    memory = _int_field(hc, "Memory")
    swap = _int_field(hc, "MemorySwap")
    reservation = _int_field(hc, "MemoryReservation")
    if memory < 0:
        raise InvalidParameter("invalid memory limit: must not be negative")
    if 0 < memory < MIN_MEMORY:
        raise InvalidParameter("Minimum memory limit allowed is 6MB")
    if 0 < reservation < MIN_MEMORY:
        raise InvalidParameter("Minimum memory reservation allowed is 6MB")
    if memory > 0 and reservation > 0 and memory < reservation:
        raise InvalidParameter(
            "Minimum memory limit can not be less than memory reservation limit, see usage")
    if swap > 0 and memory == 0:
        raise InvalidParameter(
            "You should always set the Memory limit when using Memoryswap limit, see usage")
    if swap > 0 and swap < memory:
        raise InvalidParameter(
            "Minimum memoryswap limit should be larger than memory limit, see usage")
    if swap < -1:
        raise InvalidParameter("invalid memory swap limit: must be -1, 0 or a size")
    if memory > 0 and swap == 0 and swap_accounting:
        hc["MemorySwap"] = memory * 2
    swappiness = hc.get("MemorySwappiness")
    if swappiness is not None and swappiness != -1 and not 0 <= _int_field(hc, "MemorySwappiness") <= 100:
        raise InvalidParameter(
            f"Invalid value: {swappiness}, valid memory swappiness range is 0-100")

    nano = _int_field(hc, "NanoCpus")
    quota = _int_field(hc, "CpuQuota")
    period = _int_field(hc, "CpuPeriod")
    ncpu = online_cpus or os.cpu_count() or 1
    if nano and period:
        raise InvalidParameter("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if nano and quota:
        raise InvalidParameter("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    if nano < 0 or (nano and not 10_000_000 <= nano <= ncpu * 1_000_000_000):
        raise InvalidParameter(
            f"Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available")
    if period and not 1000 <= period <= 1_000_000:
        raise InvalidParameter(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
    if quota > 0 and quota < 1000:
        raise InvalidParameter("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    if _int_field(hc, "CpuShares") < 0:
        raise InvalidParameter("invalid CPU shares: must not be negative")
    rt_period, rt_runtime = _int_field(hc, "CpuRealtimePeriod"), _int_field(hc, "CpuRealtimeRuntime")
    if rt_period < 0 or rt_runtime < -1:
        raise InvalidParameter("invalid CPU real-time period or runtime: must not be negative")
    if rt_period and rt_runtime > rt_period:
        raise InvalidParameter("cpu real-time runtime cannot be higher than cpu real-time period")

    for key, label, noun, available in (
            ("CpusetCpus", "cpuset cpus", "CPUs", available_cpus),
            ("CpusetMems", "cpuset mems", "memory nodes", available_mems)):
        value = hc.get(key) or ""
        if not value:
            continue
        try:
            wanted = parse_cpu_list(value)
        except ValueError:
            raise InvalidParameter(f"Invalid value {value} for {label}") from None
        if available is not None and not wanted <= available:
            have = ",".join(str(c) for c in sorted(available))
            raise InvalidParameter(
                f"Requested {noun} are not available - requested {value}, available: {have}")

    weight = _int_field(hc, "BlkioWeight")
    if weight and not 10 <= weight <= 1000:
        raise InvalidParameter("Range of blkio weight is from 10 to 1000")
    oom = hc.get("OomKillDisable")
    if oom is not None and not isinstance(oom, bool):
        raise InvalidParameter("invalid OomKillDisable: must be a boolean")
    pids = hc.get("PidsLimit")
    if pids is not None:
        _int_field(hc, "PidsLimit")
    return hc


def translate_resources(hc: dict, *, version: int, blkio_weight: bool,
                        swap_accounting: bool = True) -> dict:
    """Normalized HostConfig → OCI linux.resources (without devices)."""
    res: dict = {}
    memory: dict = {}
    mem = _int_field(hc, "Memory")
    swap = _int_field(hc, "MemorySwap")
    reservation = _int_field(hc, "MemoryReservation")
    if mem > 0:
        memory["limit"] = mem
    if reservation > 0:
        memory["reservation"] = reservation
    if swap_accounting and (swap > 0 or (swap == -1 and mem > 0)):
        memory["swap"] = swap
    swappiness = hc.get("MemorySwappiness")
    if version == 1 and swappiness is not None and swappiness != -1:
        memory["swappiness"] = int(swappiness)
    if version == 1 and hc.get("OomKillDisable"):
        memory["disableOOMKiller"] = True  # cgroup v2 has no such switch
    if memory:
        res["memory"] = memory

    cpu: dict = {}
    shares = _int_field(hc, "CpuShares")
    if shares > 0:
        cpu["shares"] = shares
    nano = _int_field(hc, "NanoCpus")
    if nano > 0:
        cpu["period"] = DEFAULT_CPU_PERIOD
        cpu["quota"] = nano * DEFAULT_CPU_PERIOD // 1_000_000_000
    else:
        if _int_field(hc, "CpuPeriod") > 0:
            cpu["period"] = _int_field(hc, "CpuPeriod")
        if _int_field(hc, "CpuQuota") != 0:
            cpu["quota"] = _int_field(hc, "CpuQuota")
    if hc.get("CpusetCpus"):
        cpu["cpus"] = hc["CpusetCpus"]
    if hc.get("CpusetMems"):
        cpu["mems"] = hc["CpusetMems"]
    if cpu:
        res["cpu"] = cpu

    pids = hc.get("PidsLimit")
    if pids is not None and int(pids) > 0:
        res["pids"] = {"limit": int(pids)}

    weight = _int_field(hc, "BlkioWeight")
    if weight > 0 and blkio_weight:
        res["blockIO"] = {"weight": weight}
    return res


# ------------------------------------------------------------------- drivers

DEFAULT_PARENT = "/dockyard"
DEFAULT_EXEC_ROOT = "/run/dockyard"


def engine_parent(exec_root: str | os.PathLike) -> str:
    """The cgroup parent of the engine with this exec root: its own, beside the others'.

    Engines with different exec roots must never share a parent: at start an engine
    removes the container cgroups under its parent that it does not know, and a
    sibling's cgroup that runc has just made (still empty) would go with them.  The
    default exec root keeps `/dockyard`; any other gets `/dockyard-<hash of the path>`
    (flat, not nested, so that no engine ever removes a directory another one needs).
    """
    root = os.path.normpath(os.path.abspath(exec_root))
    if root == DEFAULT_EXEC_ROOT:
        return DEFAULT_PARENT
    return f"{DEFAULT_PARENT}-{hashlib.sha256(root.encode()).hexdigest()[:12]}"


class CgroupDriver(ABC):
    """What the container service needs from cgroups.

    Every container lives in `<parent>/<container id>`; `parent` is the engine's own
    (`engine_parent`), so engines with different exec roots never touch each other's.
    """

    version: int

    def __init__(self, parent: str = DEFAULT_PARENT) -> None:
        self.parent = "/" + parent.strip("/")

    def oci_cgroups_path(self, container_id: str) -> str:
        return f"{self.parent}/{container_id}"

    # -- writing side (runc does the writes)
    def resources(self, host_config: dict) -> dict:
        """HostConfig → OCI linux.resources; raises InvalidParameter."""
        hc = normalize_resources(host_config, swap_accounting=self.swap_accounting(),
                                 available_cpus=self.available_cpus(),
                                 available_mems=self.available_mems())
        return translate_resources(hc, version=self.version,
                                   blkio_weight=self.blkio_weight_supported(),
                                   swap_accounting=self.swap_accounting())

    # -- capabilities of this host
    @abstractmethod
    def swap_accounting(self) -> bool: ...

    @abstractmethod
    def blkio_weight_supported(self) -> bool: ...

    @abstractmethod
    def available_cpus(self) -> set[int] | None: ...

    @abstractmethod
    def available_mems(self) -> set[int] | None: ...

    # -- reading side
    @abstractmethod
    def directories(self, container_id: str) -> list[str]:
        """Every cgroup directory of the container (existing or not)."""

    @abstractmethod
    def stats(self, container_id: str) -> dict: ...

    @abstractmethod
    def oom_killed(self, container_id: str) -> bool: ...

    @abstractmethod
    def pids(self, container_id: str) -> list[int]: ...

    @abstractmethod
    def parent_directories(self) -> list[str]: ...

    def remove(self, container_id: str) -> bool:
        """rmdir the container's cgroups (deepest first) when no process is
        left in them; True when nothing remains.  runc delete usually does
        this; it is here for crash recovery."""
        ok = True
        for top in self.directories(container_id):
            if not os.path.isdir(top):
                continue
            for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda t: -len(t[0])):
                try:
                    os.rmdir(dirpath)
                except OSError as e:
                    if e.errno != errno.ENOENT:
                        ok = False
        return ok

    def remove_parent(self) -> None:
        """rmdir the engine's parent directories; the kernel refuses any that still has a child."""
        for parent in self.parent_directories():
            try:
                os.rmdir(parent)
            except OSError:
                pass

    def leftovers(self, known_ids) -> list[str]:
        """Container cgroups under `parent` that belong to no known container."""
        known = set(known_ids)
        found: set[str] = set()
        for parent in self.parent_directories():
            try:
                entries = os.listdir(parent)
            except OSError:
                continue
            for name in entries:
                if name not in known and os.path.isdir(os.path.join(parent, name)):
                    found.add(name)
        return sorted(found)

    def _base_stats(self) -> dict:
        return {
            "read": _now(), "preread": "0001-01-01T00:00:00Z",
            "pids_stats": {}, "blkio_stats": {
                "io_service_bytes_recursive": None, "io_serviced_recursive": None,
                "io_queue_recursive": None, "io_service_time_recursive": None,
                "io_wait_time_recursive": None, "io_merged_recursive": None,
                "io_time_recursive": None, "sectors_recursive": None},
            "num_procs": 0, "storage_stats": {},
            "cpu_stats": {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0,
                                        "usage_in_usermode": 0},
                          "system_cpu_usage": system_cpu_usage(),
                          "online_cpus": len(self.available_cpus() or ()) or os.cpu_count() or 1,
                          "throttling_data": {"periods": 0, "throttled_periods": 0,
                                              "throttled_time": 0}},
            "memory_stats": {},
        }


def _mountinfo(path: str = "/proc/self/mountinfo") -> list[tuple[str, str, str, list[str]]]:
    """(root, mountpoint, fstype, super options) of each mount."""
    out = []
    for line in (_read(path) or "").splitlines():
        left, _, right = line.partition(" - ")
        lf, rf = left.split(), right.split()
        if len(lf) < 5 or len(rf) < 3:
            continue
        out.append((lf[3], lf[4], rf[0], rf[2].split(",")))
    return out


class CgroupV1Driver(CgroupDriver):
    """Legacy/hybrid layout: one mount per controller."""

    version = 1

    def __init__(self, parent: str = DEFAULT_PARENT, *,
                 hierarchies: dict[str, tuple[str, str]] | None = None) -> None:
        super().__init__(parent)
        # name → (mountpoint, mount root); "unified" is the hybrid cgroup2 mount.
        self.hierarchies = hierarchies if hierarchies is not None else self._discover()

    @staticmethod
    def _discover() -> dict[str, tuple[str, str]]:
        found: dict[str, tuple[str, str]] = {}
        for root, mountpoint, fstype, opts in _mountinfo():
            if fstype == "cgroup":
                names = [o for o in opts if o not in ("rw", "ro") and not o.startswith(
                    ("relatime", "release_agent", "clone_children", "xattr", "noprefix"))]
                for name in names:
                    found.setdefault(name, (mountpoint, root))
            elif fstype == "cgroup2":
                found.setdefault("unified", (mountpoint, root))
        return found

    def _path(self, controller: str, rel: str) -> str | None:
        entry = self.hierarchies.get(controller)
        if entry is None:
            return None
        mountpoint, root = entry
        if root != "/" and rel.startswith(root):
            rel = rel[len(root):]
        return mountpoint + rel

    def _cg(self, controller: str, container_id: str) -> str | None:
        return self._path(controller, self.oci_cgroups_path(container_id))

    def directories(self, container_id: str) -> list[str]:
        seen = []
        for name in self.hierarchies:
            p = self._cg(name, container_id)
            if p and p not in seen:
                seen.append(p)
        return seen

    def parent_directories(self) -> list[str]:
        out = []
        for name in self.hierarchies:
            p = self._path(name, self.parent)
            if p and p not in out:
                out.append(p)
        return out

    @_true_once_seen
    def swap_accounting(self) -> bool:
        mem = self._path("memory", "/")
        return bool(mem) and os.path.exists(os.path.join(mem, "memory.memsw.limit_in_bytes"))

    @_true_once_seen
    def blkio_weight_supported(self) -> bool:
        # The root cgroup never has the weight files; look at a child: our
        # parent directory (created here if needed; runc would create it for
        # the first container anyway) or any other existing child.
        base = self._path("blkio", "/")
        if not base:
            return False
        own = self._path("blkio", self.parent) or ""
        try:
            os.makedirs(own, exist_ok=True)
        except OSError:
            pass
        candidates = [own]
        try:
            candidates += [os.path.join(base, d) for d in os.listdir(base)
                           if os.path.isdir(os.path.join(base, d))]
        except OSError:
            pass
        for c in candidates:
            if c and (os.path.exists(os.path.join(c, "blkio.weight"))
                      or os.path.exists(os.path.join(c, "blkio.bfq.weight"))):
                return True
        return False

    def _cpuset(self, name: str) -> set[int] | None:
        base = self._path("cpuset", "/")
        if not base:
            return None
        text = _read(os.path.join(base, f"cpuset.effective_{name}")) or \
            _read(os.path.join(base, f"cpuset.{name}"))
        try:
            return parse_cpu_list(text) if text is not None else None
        except ValueError:
            return None

    def available_cpus(self) -> set[int] | None:
        return self._cpuset("cpus")

    def available_mems(self) -> set[int] | None:
        return self._cpuset("mems")

    def pids(self, container_id: str) -> list[int]:
        for ctrl in ("pids", "memory", "cpu", "freezer", "systemd"):
            p = self._cg(ctrl, container_id)
            text = _read(os.path.join(p, "cgroup.procs")) if p else None
            if text is not None:
                return [int(x) for x in text.split()]
        return []

    def oom_killed(self, container_id: str) -> bool:
        p = self._cg("memory", container_id)
        if not p:
            return False
        return _read_kv(os.path.join(p, "memory.oom_control")).get("oom_kill", 0) > 0

    def stats(self, container_id: str) -> dict:
        s = self._base_stats()
        mem = self._cg("memory", container_id)
        if mem and os.path.isdir(mem):
            limit = _read_int(os.path.join(mem, "memory.limit_in_bytes")) or 0
            hostmem = host_memory()
            if not limit or limit >= V1_UNLIMITED or (hostmem and limit > hostmem):
                limit = hostmem
            s["memory_stats"] = {
                "usage": _read_int(os.path.join(mem, "memory.usage_in_bytes")) or 0,
                "max_usage": _read_int(os.path.join(mem, "memory.max_usage_in_bytes")) or 0,
                "stats": _read_kv(os.path.join(mem, "memory.stat")),
                "failcnt": _read_int(os.path.join(mem, "memory.failcnt")) or 0,
                "limit": limit,
            }
        acct = self._cg("cpuacct", container_id)
        if acct and os.path.isdir(acct):
            usage = s["cpu_stats"]["cpu_usage"]
            usage["total_usage"] = _read_int(os.path.join(acct, "cpuacct.usage")) or 0
            percpu = (_read(os.path.join(acct, "cpuacct.usage_percpu")) or "").split()
            usage["percpu_usage"] = [int(x) for x in percpu]
            st = _read_kv(os.path.join(acct, "cpuacct.stat"))
            usage["usage_in_usermode"] = st.get("user", 0) * 1_000_000_000 // CLK_TCK
            usage["usage_in_kernelmode"] = st.get("system", 0) * 1_000_000_000 // CLK_TCK
        cpu = self._cg("cpu", container_id)
        if cpu and os.path.isdir(cpu):
            st = _read_kv(os.path.join(cpu, "cpu.stat"))
            s["cpu_stats"]["throttling_data"] = {
                "periods": st.get("nr_periods", 0), "throttled_periods": st.get("nr_throttled", 0),
                "throttled_time": st.get("throttled_time", 0)}
        pids = self._cg("pids", container_id)
        if pids and os.path.isdir(pids):
            s["pids_stats"] = {"current": _read_int(os.path.join(pids, "pids.current")) or 0}
            lim = _read_int(os.path.join(pids, "pids.max"))
            if lim:
                s["pids_stats"]["limit"] = lim
        blkio = self._cg("blkio", container_id)
        if blkio and os.path.isdir(blkio):
            b = s["blkio_stats"]
            b["io_service_bytes_recursive"] = _blkio_v1(
                os.path.join(blkio, "blkio.throttle.io_service_bytes_recursive"))
            b["io_serviced_recursive"] = _blkio_v1(
                os.path.join(blkio, "blkio.throttle.io_serviced_recursive"))
        return s


def _blkio_v1(path: str) -> list[dict]:
    out = []
    for line in (_read(path) or "").splitlines():
        parts = line.split()
        if len(parts) == 3 and ":" in parts[0]:
            major, minor = parts[0].split(":")
            out.append({"major": int(major), "minor": int(minor), "op": parts[1],
                        "value": int(parts[2])})
    return out


class CgroupV2Driver(CgroupDriver):
    """Unified hierarchy (cgroup2 mounted at `root`)."""

    version = 2

    def __init__(self, parent: str = DEFAULT_PARENT, *, root: str = "/sys/fs/cgroup") -> None:
        super().__init__(parent)
        self.root = root.rstrip("/")

    def _cg(self, container_id: str) -> str:
        return self.root + self.oci_cgroups_path(container_id)

    def directories(self, container_id: str) -> list[str]:
        return [self._cg(container_id)]

    def parent_directories(self) -> list[str]:
        return [self.root + self.parent]

    def controllers(self) -> set[str]:
        return set((_read(os.path.join(self.root, "cgroup.controllers")) or "").split())

    def _any_child_has(self, filename: str) -> bool:
        for base in (self.root + self.parent, self.root):
            try:
                children = [os.path.join(base, d) for d in os.listdir(base)]
            except OSError:
                continue
            for c in [base, *children]:
                if c != self.root and os.path.exists(os.path.join(c, filename)):
                    return True
        return False

    @_true_once_seen
    def swap_accounting(self) -> bool:
        if "memory" not in self.controllers():
            return False
        return self._any_child_has("memory.swap.max")

    @_true_once_seen
    def blkio_weight_supported(self) -> bool:
        if "io" not in self.controllers():
            return False
        return self._any_child_has("io.weight") or self._any_child_has("io.bfq.weight")

    def _cpuset(self, name: str) -> set[int] | None:
        text = _read(os.path.join(self.root, f"cpuset.{name}.effective"))
        if text is None:
            try:
                return set(os.sched_getaffinity(0)) if name == "cpus" else None
            except OSError:
                return None
        try:
            return parse_cpu_list(text)
        except ValueError:
            return None

    def available_cpus(self) -> set[int] | None:
        return self._cpuset("cpus")

    def available_mems(self) -> set[int] | None:
        return self._cpuset("mems")

    def pids(self, container_id: str) -> list[int]:
        text = _read(os.path.join(self._cg(container_id), "cgroup.procs")) or ""
        return [int(x) for x in text.split()]

    def oom_killed(self, container_id: str) -> bool:
        ev = _read_kv(os.path.join(self._cg(container_id), "memory.events"))
        return ev.get("oom_kill", 0) > 0 or ev.get("oom_group_kill", 0) > 0

    def stats(self, container_id: str) -> dict:
        s = self._base_stats()
        cg = self._cg(container_id)
        if os.path.exists(os.path.join(cg, "memory.current")):
            limit = _read_int(os.path.join(cg, "memory.max")) or host_memory()
            s["memory_stats"] = {
                "usage": _read_int(os.path.join(cg, "memory.current")) or 0,
                "stats": _read_kv(os.path.join(cg, "memory.stat")),
                "limit": limit,
            }
            peak = _read_int(os.path.join(cg, "memory.peak"))
            if peak is not None:
                s["memory_stats"]["max_usage"] = peak
        st = _read_kv(os.path.join(cg, "cpu.stat"))
        if st:
            usage = s["cpu_stats"]["cpu_usage"]
            usage["total_usage"] = st.get("usage_usec", 0) * 1000
            usage["usage_in_usermode"] = st.get("user_usec", 0) * 1000
            usage["usage_in_kernelmode"] = st.get("system_usec", 0) * 1000
            s["cpu_stats"]["throttling_data"] = {
                "periods": st.get("nr_periods", 0), "throttled_periods": st.get("nr_throttled", 0),
                "throttled_time": st.get("throttled_usec", 0) * 1000}
        if os.path.exists(os.path.join(cg, "pids.current")):
            s["pids_stats"] = {"current": _read_int(os.path.join(cg, "pids.current")) or 0}
            lim = _read_int(os.path.join(cg, "pids.max"))
            if lim:
                s["pids_stats"]["limit"] = lim
        io = _read(os.path.join(cg, "io.stat"))
        if io is not None:
            service_bytes, serviced = [], []
            for line in io.splitlines():
                parts = line.split()
                if not parts or ":" not in parts[0]:
                    continue
                major, minor = (int(x) for x in parts[0].split(":"))
                kv = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
                for key, op, target in (("rbytes", "read", service_bytes),
                                        ("wbytes", "write", service_bytes),
                                        ("rios", "read", serviced), ("wios", "write", serviced)):
                    if key in kv:
                        target.append({"major": major, "minor": minor, "op": op,
                                       "value": int(kv[key])})
            s["blkio_stats"]["io_service_bytes_recursive"] = service_bytes
            s["blkio_stats"]["io_serviced_recursive"] = serviced
        return s


def is_unified(root: str = "/sys/fs/cgroup") -> bool:
    """True when `root` is itself a cgroup2 mount (pure v2 host), as runc decides."""
    return os.path.exists(os.path.join(root, "cgroup.controllers"))


def detect(parent: str = DEFAULT_PARENT, root: str = "/sys/fs/cgroup") -> CgroupDriver:
    """The driver matching the layout runc will use on this host."""
    if is_unified(root):
        return CgroupV2Driver(parent, root=root)
    return CgroupV1Driver(parent)


def wait_for_empty(driver: CgroupDriver, container_id: str, timeout: float = 5.0) -> bool:
    """Poll until no process is left in the container's cgroup (before remove)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not driver.pids(container_id):
            return True
        time.sleep(0.05)
    return not driver.pids(container_id)
