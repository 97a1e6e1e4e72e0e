"""Benchmark the dockyard engine, and optionally a reference dockerd, with the unmodified docker CLI.

    python bench/engine_bench.py                       # dockyard only (+ bare runc baseline)
    python bench/engine_bench.py --start-reference     # also a private dockerd 20.10 it starts and stops
    python bench/engine_bench.py --reference-host unix:///tmp/refd/docker.sock --reference-pidfile /tmp/refd/pid
    python bench/engine_bench.py reference-start [--root /tmp/refd]   # leave a private dockerd running
    python bench/engine_bench.py reference-stop  [--root /tmp/refd]

Every measurement drives the daemon the way a user does: the docker CLI as a subprocess with
DOCKER_HOST pointing at the daemon's private socket, or raw HTTP over that socket where the CLI
would only add noise (/_ping throughput, bulk container creation).

Measured per daemon (the same code for both):
  1. `docker run --rm IMAGE true`, `--network none` and on the default bridge: median and p90 of N runs
  2. 20 parallel `docker run -d IMAGE sleep 300`: wall time for all of them
  3. `docker ps -a` with 200 containers present: median of 10 runs
  4. GET /_ping requests per second: aiohttp over the unix socket, keep-alive, C concurrent tasks
  5. RSS: the daemon idle after start + image import; the per-container monitor (conmon for dockyard,
     containerd-shim-runc-v2 for dockerd) averaged over 10 running containers; the total for those 10
  6. restart with 50 running containers: SIGKILL (and separately SIGTERM) the daemon, start it again,
     time until /_ping answers and until `docker ps` lists all 50 as running
plus a bare `runc run` of a busybox bundle as the floor.

dockyard is started here through tests/integration/engine_harness.EngineProcess (private socket,
data root, exec root, bridge, subnet; everything cleaned up).  The reference dockerd is started,
when asked, on /tmp/refd (socket, data root, exec root, pidfile) with its own managed containerd,
its own bridge and --live-restore: dockyard leaves containers running over a restart, and dockerd
does so only with --live-restore, so that is the like-for-like comparison.

Results: a markdown table on stdout and JSON in bench/results/engine-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "integration"))

from engine_harness import EngineProcess  # noqa: E402

from dockyard.testing.busybox import make_busybox_rootfs_tar, make_runc_bundle  # noqa: E402

IMAGE = "busybox:latest"
DOCKER = shutil.which("docker", path="/usr/local/bin") or shutil.which("docker") or "docker"
RESULTS = REPO / "bench" / "results"
REF_BRIDGE = "dyref0"
REF_BIP = "10.213.77.1/24"
REF_CGROUP = "dyref-bench"


# ---------------------------------------------------------------- small helpers
def pct(values: list[float], p: float) -> float:
    """The p-th percentile, nearest-rank (p90 of 20 values is the 18th smallest)."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))
    return s[k]


def summary(values: list[float]) -> dict:
    return {"n": len(values), "median": statistics.median(values), "p90": pct(values, 90),
            "min": min(values), "max": max(values), "samples": values}


def proc_status_kib(pid: int, key: str = "VmRSS") -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def pss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def all_pids() -> list[int]:
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (zombies of our own children are reaped)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_gone(pid: int, timeout: float = 60) -> float:
    t0 = time.perf_counter()
    while alive(pid):
        if time.perf_counter() - t0 > timeout:
            raise RuntimeError(f"process {pid} still alive after {timeout}s")
        time.sleep(0.005)
    return time.perf_counter() - t0


def socket_path(host: str) -> str:
    if not host.startswith("unix://"):
        raise SystemExit(f"only unix:// hosts are supported, not {host!r}")
    return host[len("unix://"):]


# ---------------------------------------------------------------- targets
@dataclass
class Target:
    """One daemon under test: how to reach it, find its processes and restart it."""

    name: str
    host: str
    config_dir: Path
    notes: list[str] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["DOCKER_HOST"] = self.host
        env["DOCKER_CONFIG"] = str(self.config_dir)
        for k in ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
            env.pop(k, None)
        return env

    @property
    def socket(self) -> str:
        return socket_path(self.host)

    def cli(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        r = subprocess.run([DOCKER, *args], env=self.env, capture_output=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)} failed: {r.stderr.decode(errors='replace')}")
        return r

    def timed_cli(self, *args: str) -> float:
        t0 = time.perf_counter()
        r = subprocess.run([DOCKER, *args], env=self.env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=120)
        dt = time.perf_counter() - t0
        if r.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)} failed: {r.stderr.decode(errors='replace')}")
        return dt

    # subclasses
    def daemon_pids(self) -> dict[str, int]:
        raise NotImplementedError

    def monitor_pids(self) -> list[int]:
        raise NotImplementedError

    def kill(self, sig: int) -> float:
        """Signal the daemon and wait until it is gone; returns how long it took to exit."""
        raise NotImplementedError

    def spawn(self) -> None:
        """Start the daemon again (after kill), without waiting for it."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class DockyardTarget(Target):
    def __init__(self) -> None:
        self.eng = EngineProcess()
        self.eng.extra_args = []  # default log level from the harness is debug; set below
        super().__init__("dockyard", f"unix://{self.eng.socket}", self.eng.docker_config)

    def start(self) -> None:
        self.spawn()
        wait_ping(self.socket, 30)

    def spawn(self) -> None:
        # As EngineProcess.start, but at --log-level info (debug logging would tax every request)
        # and without its 50 ms docker-py polling, so restart timing is ours to take.
        args = [sys.executable, "-m", "dockyard.cli", "engine", "-H", self.host,
                "--data-root", str(self.eng.data_root), "--exec-root", str(self.eng.exec_root),
                "--bridge", self.eng.bridge, "--bip", self.eng.bip, "--log-level", "info"]
        self.eng.logf = open(self.eng.log_path, "ab")
        self.eng.proc = subprocess.Popen(args, stdout=self.eng.logf, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def daemon_pids(self) -> dict[str, int]:
        # the log daemon counts whenever it runs, as containerd does for dockerd; it is started by
        # the first container that logs, so an engine that has run none has no log daemon
        assert self.eng.proc is not None
        pids = {"dockyard": self.eng.proc.pid}
        for i, pid in enumerate(self.eng.logd_pids()):
            pids[f"logd{i or ''}"] = pid
        return pids

    def monitor_pids(self) -> list[int]:
        return self.eng.monitor_pids()

    def kill(self, sig: int) -> float:
        assert self.eng.proc is not None
        t0 = time.perf_counter()
        self.eng.proc.send_signal(sig)
        self.eng.proc.wait(60)
        dt = time.perf_counter() - t0
        self.eng.proc = None
        self.eng.logf.close()
        return dt

    def close(self) -> None:
        self.eng.cleanup()


class DockerdTarget(Target):
    """A dockerd we did not necessarily start: found by its pidfile, restarted with its own argv."""

    def __init__(self, host: str, pidfile: Path, config_dir: Path) -> None:
        super().__init__("dockerd", host, config_dir)
        self.pidfile = pidfile
        self.argv = cmdline(self.pid())
        if not self.argv:
            raise SystemExit(f"no process for pidfile {pidfile}")
        self.log_path = pidfile.parent / "dockerd-restart.log"

    def pid(self) -> int:
        return int(self.pidfile.read_text().strip())

    def containerd_pid(self) -> int | None:
        me = self.pid()
        for p in all_pids():
            argv = cmdline(p)
            if argv and argv[0].endswith("containerd") and _ppid(p) == me:
                return p
        return None

    def daemon_pids(self) -> dict[str, int]:
        out = {"dockerd": self.pid()}
        c = self.containerd_pid()
        if c:
            out["containerd"] = c
        return out

    def monitor_pids(self) -> list[int]:
        # shims of *this* dockerd's containerd: their -address names its socket under our exec root
        marker = self.exec_root()
        out = []
        for p in all_pids():
            argv = cmdline(p)
            if argv and argv[0].endswith("containerd-shim-runc-v2") and any(marker in a for a in argv):
                out.append(p)
        return out

    def exec_root(self) -> str:
        a = self.argv
        for i, x in enumerate(a):
            if x == "--exec-root":
                return a[i + 1]
            if x.startswith("--exec-root="):
                return x.split("=", 1)[1]
        return "/var/run/docker"

    def kill(self, sig: int) -> float:
        pid, containerd = self.pid(), self.containerd_pid()
        t0 = time.perf_counter()
        os.kill(pid, sig)
        wait_gone(pid, 120)
        dt = time.perf_counter() - t0
        if containerd:  # dies with dockerd (Pdeathsig) or is stopped by it; not part of the timing
            wait_gone(containerd, 60)
        return dt

    def spawn(self) -> None:
        # dockerd refuses to start while its pidfile names a live process.  PID 1 here does not
        # reap orphans, so a killed dockerd stays a zombie: drop its pidfile as a reaping init would,
        for pidfile in (self.pidfile, Path(self.exec_root()) / "containerd" / "containerd.pid"):
            try:  # the same for its managed containerd, or dockerd would wait on a dead socket
                if not alive(int(pidfile.read_text().strip())):
                    pidfile.unlink()
            except (FileNotFoundError, ValueError):
                pass
        logf = open(self.log_path, "ab")
        subprocess.Popen(self.argv, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        logf.close()


def _ppid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return -1


# ---------------------------------------------------------------- raw HTTP
async def _ping_once(sock: str, timeout: float) -> bool:
    try:
        conn = aiohttp.UnixConnector(path=sock)
        async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=timeout)) as s:
            async with s.get("http://localhost/_ping") as r:
                await r.read()
                return r.status == 200
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError):
        return False


def wait_ping(sock: str, timeout: float, poll: float = 0.01) -> float:
    """Seconds until GET /_ping answers 200."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if os.path.exists(sock) and asyncio.run(_ping_once(sock, 2)):
            return time.perf_counter() - t0
        time.sleep(poll)
    raise RuntimeError(f"{sock}: no /_ping answer within {timeout}s")


async def ping_rate(sock: str, concurrency: int, seconds: float) -> dict:
    conn = aiohttp.UnixConnector(path=sock, limit=concurrency)
    count = errors = 0
    async with aiohttp.ClientSession(connector=conn) as s:
        async def worker(deadline: float) -> None:
            nonlocal count, errors
            while time.perf_counter() < deadline:
                async with s.get("http://localhost/_ping") as r:
                    await r.read()
                    if r.status == 200:
                        count += 1
                    else:
                        errors += 1

        await asyncio.gather(*(worker(time.perf_counter() + 0.5) for _ in range(concurrency)))  # warm up
        count = errors = 0
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(t0 + seconds) for _ in range(concurrency)))
        dt = time.perf_counter() - t0
    return {"requests": count, "errors": errors, "seconds": dt, "req_per_s": count / dt,
            "concurrency": concurrency}


async def api_create_many(sock: str, n: int, concurrency: int = 8) -> list[str]:
    conn = aiohttp.UnixConnector(path=sock, limit=concurrency)
    ids: list[str] = []
    sem = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=conn) as s:
        async def one(i: int) -> None:
            async with sem:
                body = {"Image": IMAGE, "Cmd": ["true"], "Labels": {"bench": "ps"},
                        "HostConfig": {"NetworkMode": "none"}}
                async with s.post(f"http://localhost/containers/create?name=bench-ps-{i}", json=body) as r:
                    data = await r.json()
                    if r.status != 201:
                        raise RuntimeError(f"create: {r.status} {data}")
                    ids.append(data["Id"])

        await asyncio.gather(*(one(i) for i in range(n)))
    return ids


async def api_remove(sock: str, ids: list[str], concurrency: int = 8) -> None:
    conn = aiohttp.UnixConnector(path=sock, limit=concurrency)
    sem = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=120)) as s:
        async def one(cid: str) -> None:
            async with sem:
                async with s.delete(f"http://localhost/containers/{cid}?force=1") as r:
                    await r.read()

        await asyncio.gather(*(one(c) for c in ids))


async def api_list_all(sock: str) -> float:
    conn = aiohttp.UnixConnector(path=sock)
    async with aiohttp.ClientSession(connector=conn) as s:
        t0 = time.perf_counter()
        async with s.get("http://localhost/containers/json?all=1") as r:
            await r.read()
        return time.perf_counter() - t0


# ---------------------------------------------------------------- measurements
def measure_run_rm(t: Target, network: str, n: int) -> dict:
    for _ in range(2):  # warm caches: the CLI binary, the image, the daemon's code paths
        t.timed_cli("run", "--rm", "--network", network, IMAGE, "true")
    return summary([t.timed_cli("run", "--rm", "--network", network, IMAGE, "true") for _ in range(n)])


def measure_run_rm_pair(targets: list[Target], n: int) -> dict:
    """`run --rm true` on every target and network, the targets taking turns run by run.

    In the full run each daemon's figures are taken in its own part, and the reference's part
    comes after dockyard's (its restart of 300 containers leaves the load higher): a comparison
    made turn by turn meets the same load on both sides."""
    out: dict = {"runs": n, "loadavg_start": os.getloadavg()}
    for net in ("none", "bridge"):
        for t in targets:
            for _ in range(2):  # warm-up, as measure_run_rm
                t.timed_cli("run", "--rm", "--network", net, IMAGE, "true")
        times: dict[str, list[float]] = {t.name: [] for t in targets}
        for i in range(n):
            # alternate who goes first, so neither always follows the other's teardown
            for t in (targets if i % 2 == 0 else targets[::-1]):
                times[t.name].append(t.timed_cli("run", "--rm", "--network", net, IMAGE, "true"))
        out[net] = {name: summary(v) for name, v in times.items()}
    out["loadavg_end"] = os.getloadavg()
    return out


def run_rm_pair_table(res: dict, names: list[str]) -> str:
    lines = [f"| `run --rm true`, {res['runs']} turns each | " + " | ".join(names) + " | ratio |",
             "|---|" + "---|" * (len(names) + 1)]
    for net in ("none", "bridge"):
        vals = [res[net][n]["median"] for n in names]
        ratio = f"{vals[0] / vals[1]:.2f}" if len(vals) == 2 and vals[1] else ""
        lines.append(f"| --network {net}: median | " + " | ".join(f"{v:.3f} s" for v in vals) + f" | {ratio} |")
    la0, la1 = res["loadavg_start"][0], res["loadavg_end"][0]
    lines.append(f"| load average (1 min) start / end | {la0:.1f} / {la1:.1f} | |")
    return "\n".join(lines)


def start_detached(t: Target, n: int, parallel: int, prefix: str, network: str | None = None) -> tuple[float, list[str]]:
    """Start n `sleep 300` containers, `parallel` CLI processes at a time; wall time and ids."""
    ids: list[str] = []
    errors: list[str] = []
    extra = ["--network", network] if network else []
    t0 = time.perf_counter()
    for base in range(0, n, parallel):
        procs = [subprocess.Popen([DOCKER, "run", "-d", "--name", f"{prefix}-{i}", *extra, IMAGE, "sleep", "300"],
                                  env=t.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for i in range(base, min(n, base + parallel))]
        for p in procs:
            out, err = p.communicate(timeout=300)
            if p.returncode == 0:
                ids.append(out.decode().strip())
            else:
                errors.append(err.decode(errors="replace").strip())
    dt = time.perf_counter() - t0
    if errors:
        remove(t, ids)
        raise RuntimeError(f"{len(errors)} of {n} `docker run -d` failed: {errors[:3]}")
    return dt, ids


def remove(t: Target, ids: list[str]) -> float:
    t0 = time.perf_counter()
    for base in range(0, len(ids), 50):
        t.cli("rm", "-f", *ids[base:base + 50], timeout=600, check=False)
    return time.perf_counter() - t0


def running_count(t: Target) -> int:
    r = t.cli("ps", "-q", check=False, timeout=30)
    return len(r.stdout.split()) if r.returncode == 0 else -1


def rss_of(pids: dict[str, int]) -> dict:
    return {name: {"pid": pid, "vmrss_kib": proc_status_kib(pid), "pss_kib": pss_kib(pid)}
            for name, pid in pids.items()}


def measure_rss_running(t: Target, n: int) -> dict:
    _, ids = start_detached(t, n, 5, "bench-rss")
    try:
        time.sleep(1.0)  # let monitors settle (conmon/shim finish start-up allocations)
        mons = t.monitor_pids()
        mon_rss = [proc_status_kib(p) or 0 for p in mons]
        mon_pss = [pss_kib(p) or 0 for p in mons]
        daemons = rss_of(t.daemon_pids())
        daemon_total = sum(v["vmrss_kib"] or 0 for v in daemons.values())
        return {"containers": n, "monitors_found": len(mons),
                "monitor_vmrss_kib_avg": statistics.mean(mon_rss) if mon_rss else None,
                "monitor_pss_kib_avg": statistics.mean(mon_pss) if mon_pss else None,
                "daemons": daemons, "daemon_vmrss_kib": daemon_total,
                "total_vmrss_kib": daemon_total + sum(mon_rss)}
    finally:
        remove(t, ids)


def measure_ps(t: Target, n: int, runs: int) -> dict:
    t0 = time.perf_counter()
    ids = asyncio.run(api_create_many(t.socket, n))
    create_s = time.perf_counter() - t0
    try:
        lines = len(t.cli("ps", "-a", "-q").stdout.split())
        t.timed_cli("ps", "-a")
        samples = [t.timed_cli("ps", "-a") for _ in range(runs)]
        raw = [asyncio.run(api_list_all(t.socket)) for _ in range(runs)]
        return {"containers": n, "listed": lines, "api_create_s": create_s, "ps_a": summary(samples),
                "raw_get_containers_json_all": summary(raw)}
    finally:
        t0 = time.perf_counter()
        asyncio.run(api_remove(t.socket, ids))
        print(f"  [{t.name}] removed {len(ids)} created containers in {time.perf_counter() - t0:.1f}s",
              file=sys.stderr)


def measure_ps_pair(targets: list[Target], n: int, runs: int) -> dict:
    """`ps -a` and the raw listing with n created containers on every target, the targets taking
    turns run by run: on a shared machine the load moves within seconds, and both meet the same."""
    ids = {t.name: asyncio.run(api_create_many(t.socket, n)) for t in targets}
    try:
        for t in targets:
            t.timed_cli("ps", "-a")  # warm-up
        cli: dict[str, list[float]] = {t.name: [] for t in targets}
        raw: dict[str, list[float]] = {t.name: [] for t in targets}
        floor: dict[str, list[float]] = {t.name: [] for t in targets}  # `docker version`: the CLI's own cost
        for _ in range(runs):
            for t in targets:
                cli[t.name].append(t.timed_cli("ps", "-a"))
                raw[t.name].append(asyncio.run(api_list_all(t.socket)))
                floor[t.name].append(t.timed_cli("version"))
        return {"containers": n, "loadavg": os.getloadavg(),
                **{t.name: {"ps_a": summary(cli[t.name]), "raw_get_containers_json_all": summary(raw[t.name]),
                            "cli_version": summary(floor[t.name])} for t in targets}}
    finally:
        for t in targets:
            asyncio.run(api_remove(t.socket, ids[t.name]))


def pair_table(pairs: list[dict], names: list[str]) -> str:
    lines = ["| containers | measurement | " + " | ".join(names) + " | ratio |", "|---|---|" + "---|" * (len(names) + 1)]
    for p in pairs:
        for key, label in (("ps_a", "`docker ps -a`"), ("raw_get_containers_json_all", "GET /containers/json?all=1"),
                           ("cli_version", "`docker version` (CLI floor)")):
            vals = [p[n][key]["median"] for n in names]
            ratio = f"{vals[0] / vals[1]:.2f}" if len(vals) == 2 and vals[1] else ""
            lines.append(f"| {p['containers']} | {label} | " + " | ".join(secs(v) for v in vals) + f" | {ratio} |")
    return "\n".join(lines)


def measure_restart(t: Target, n: int) -> dict:
    # More than a /24 bridge holds (the bench engine's subnet): no network, for both daemons alike.
    start_s, ids = start_detached(t, n, 5, "bench-restart", network="none" if n > 200 else None)
    out: dict = {"containers": n, "start_all_s": start_s}
    time.sleep(1.0)
    # the daemon's own memory with n containers running (monitors not counted)
    out["daemon_vmrss_kib"] = sum(proc_status_kib(p) or 0 for p in t.daemon_pids().values())
    try:
        for sig in (signal.SIGKILL, signal.SIGTERM):
            exit_s = t.kill(sig)
            t0 = time.perf_counter()
            t.spawn()
            ping_s = wait_ping(t.socket, 120)
            while True:
                c = running_count(t)
                if c >= n:
                    break
                if time.perf_counter() - t0 > 120:
                    raise RuntimeError(f"only {c} of {n} containers running 120s after restart")
                time.sleep(0.01)
            all_s = time.perf_counter() - t0
            out[signal.Signals(sig).name] = {
                "exit_s": exit_s, "ping_s": ping_s, "all_running_s": all_s,
                "daemon_vmrss_kib_after": sum(proc_status_kib(p) or 0 for p in t.daemon_pids().values())}
            print(f"  [{t.name}] {signal.Signals(sig).name}: exit {exit_s:.3f}s, ping {ping_s:.3f}s, "
                  f"{n} running {all_s:.3f}s", file=sys.stderr)
    finally:
        out["remove_s"] = remove(t, ids)
    return out


def bench_target(t: Target, args: argparse.Namespace) -> dict:
    res: dict = {"name": t.name, "loadavg_start": os.getloadavg()}
    log = lambda msg: print(f"[{t.name}] {msg}", file=sys.stderr, flush=True)  # noqa: E731
    res["version"] = json.loads(t.cli("version", "--format", "{{json .Server}}").stdout or b"null")
    res["cli_version_s"] = summary([t.timed_cli("version") for _ in range(10)])
    time.sleep(1.0)
    res["rss_idle"] = rss_of(t.daemon_pids())
    res["rss_idle_total_kib"] = sum(v["vmrss_kib"] or 0 for v in res["rss_idle"].values())
    log(f"idle RSS {res['rss_idle_total_kib'] / 1024:.1f} MiB")
    for net in ("none", "bridge"):
        res[f"run_rm_{net}"] = s = measure_run_rm(t, net, args.runs)
        log(f"run --rm --network {net}: median {s['median']:.3f}s p90 {s['p90']:.3f}s")
    dt, ids = start_detached(t, args.parallel, args.parallel, "bench-par")
    res["parallel_run_d"] = {"n": args.parallel, "wall_s": dt, "remove_s": remove(t, ids)}
    log(f"{args.parallel} parallel run -d: {dt:.3f}s")
    res["rss_running"] = r = measure_rss_running(t, args.rss_containers)
    log(f"monitor RSS avg {(r['monitor_vmrss_kib_avg'] or 0) / 1024:.2f} MiB, total with "
        f"{args.rss_containers}: {r['total_vmrss_kib'] / 1024:.1f} MiB")
    res["ps"] = p = measure_ps(t, args.ps_containers, args.ps_runs)
    log(f"ps -a with {args.ps_containers}: median {p['ps_a']['median']:.3f}s")
    for n in args.ps_more or []:
        res[f"ps_{n}"] = p = measure_ps(t, n, args.ps_runs)
        log(f"ps -a with {n}: median {p['ps_a']['median']:.3f}s")
    res["ping"] = g = asyncio.run(ping_rate(t.socket, args.ping_concurrency, args.ping_seconds))
    log(f"/_ping: {g['req_per_s']:.0f} req/s")
    if args.restart_containers:
        res["restart"] = measure_restart(t, args.restart_containers)
    res["rss_end"] = rss_of(t.daemon_pids())
    res["loadavg_end"] = os.getloadavg()
    res["notes"] = t.notes
    return res


def bench_runc(n: int) -> dict:
    """`runc run` of a busybox bundle running `true`: the floor under any engine."""
    root = Path(tempfile.mkdtemp(prefix="dyk-runc-", dir="/tmp"))
    try:
        bundle = make_runc_bundle(root)
        spec = json.loads((bundle / "config.json").read_text())
        spec["process"]["terminal"] = False
        spec["process"]["args"] = ["true"]
        (bundle / "config.json").write_text(json.dumps(spec))
        state = root / "state"

        def once(i: int) -> float:
            t0 = time.perf_counter()
            subprocess.run(["runc", "--root", str(state), "run", "-b", str(bundle), f"bench-{os.getpid()}-{i}"],
                           check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
            return time.perf_counter() - t0

        for i in range(2):
            once(-1 - i)
        return summary([once(i) for i in range(n)])
    finally:
        shutil.rmtree(root, ignore_errors=True)


# ---------------------------------------------------------------- reference dockerd
def reference_paths(root: Path) -> dict[str, Path]:
    return {"socket": root / "docker.sock", "data": root / "data", "exec": root / "exec",
            "pidfile": root / "pid", "config": root / "daemon.json", "log": root / "dockerd.log"}


def reference_start(root: Path, dockerd: str = "dockerd") -> tuple[str, Path]:
    """Start dockerd on private paths (its managed containerd under the exec root), own bridge."""
    if shutil.which(dockerd) is None:
        raise SystemExit("dockerd not found: apt-get install -y docker.io (then keep its services disabled)")
    p = reference_paths(root)
    for d in (p["data"], p["exec"]):
        d.mkdir(parents=True, exist_ok=True)
    if os.path.exists("/run/containerd/containerd.sock"):
        # dockerd would pick up a system containerd and share it: refuse rather than touch it.
        raise SystemExit("/run/containerd/containerd.sock exists: a system containerd runs; not sharing it")
    p["config"].write_text("{}\n")
    if subprocess.run(["ip", "link", "show", REF_BRIDGE], capture_output=True).returncode != 0:
        subprocess.run(["ip", "link", "add", REF_BRIDGE, "type", "bridge"], check=True)
        subprocess.run(["ip", "addr", "add", REF_BIP, "dev", REF_BRIDGE], check=True)
        subprocess.run(["ip", "link", "set", REF_BRIDGE, "up"], check=True)
    argv = [shutil.which(dockerd), "-H", f"unix://{p['socket']}", "--data-root", str(p["data"]),
            "--exec-root", str(p["exec"]), "--pidfile", str(p["pidfile"]),
            "--config-file", str(p["config"]), "--bridge", REF_BRIDGE, "--live-restore",
            "--storage-driver", "overlay2", "--cgroup-parent", "/" + REF_CGROUP, "--log-level", "warn"]
    logf = open(p["log"], "ab")
    proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_ping(str(p["socket"]), 60, 0.05)
    except RuntimeError:
        proc.poll()
        raise RuntimeError("dockerd did not start:\n" + p["log"].read_text()[-3000:])
    return f"unix://{p['socket']}", p["pidfile"]


def reference_stop(root: Path) -> None:
    """Stop the private dockerd (and what it left: containers, containerd, shims, mounts, bridge, rules)."""
    p = reference_paths(root)
    host = f"unix://{p['socket']}"
    env = dict(os.environ, DOCKER_HOST=host)
    if p["pidfile"].exists() and os.path.exists(p["socket"]):
        ids = subprocess.run([DOCKER, "ps", "-aq"], env=env, capture_output=True, timeout=60).stdout.split()
        if ids:
            subprocess.run([DOCKER, "rm", "-f", *[i.decode() for i in ids]], env=env, capture_output=True,
                           timeout=600)
    if p["pidfile"].exists():
        pid = int(p["pidfile"].read_text().strip())
        if alive(pid) and "dockerd" in " ".join(cmdline(pid)):
            os.kill(pid, signal.SIGTERM)
            try:
                wait_gone(pid, 60)
            except RuntimeError:
                os.kill(pid, signal.SIGKILL)
                wait_gone(pid, 10)
    exec_root = str(p["exec"])
    for pid in all_pids():  # containerd and shims serving our exec root only
        argv = cmdline(pid)
        if argv and "containerd" in argv[0] and any(exec_root in a for a in argv):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    _kill_cgroup_processes()  # containers whose shims are gone (after a SIGKILL) still run
    prefix = str(root) + "/"
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4] for line in f if line.split()[4].startswith(prefix)]
    for mp in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], capture_output=True)
    subprocess.run(["ip", "link", "del", REF_BRIDGE], capture_output=True)
    _remove_dockerd_rules()
    _remove_dockerd_debris()
    shutil.rmtree(root, ignore_errors=True)


def _kill_cgroup_processes() -> None:
    """SIGKILL every process in the reference's cgroup tree (only its containers live there)."""
    top = Path("/sys/fs/cgroup/pids") / REF_CGROUP
    if not top.is_dir():
        return
    pids = set()
    for procs in top.rglob("cgroup.procs"):
        pids.update(int(x) for x in procs.read_text().split())
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.time() + 10
    while time.time() < deadline and any(p.read_text().strip() for p in top.rglob("cgroup.procs")):
        time.sleep(0.05)


def _remove_dockerd_debris() -> None:
    """Our cgroups, stale shim sockets (no listener) and the empty /run dirs dockerd made."""
    for top in Path("/sys/fs/cgroup").glob(f"*/{REF_CGROUP}"):
        for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            try:
                d.rmdir()
            except OSError:
                pass
        try:
            top.rmdir()
        except OSError:
            pass
    shim_dir = Path("/run/containerd/s")
    if shim_dir.is_dir():
        for sockf in shim_dir.iterdir():
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect(str(sockf))
            except OSError:
                sockf.unlink(missing_ok=True)  # nobody listens: a shim we killed
            finally:
                s.close()
    for d in ("/run/containerd/s", "/run/containerd", "/run/docker/plugins", "/run/docker"):
        try:
            os.rmdir(d)
        except OSError:
            pass


DOCKERD_CHAINS = ("DOCKER", "DOCKER-USER", "DOCKER-ISOLATION-STAGE-1", "DOCKER-ISOLATION-STAGE-2")


def _other_dockerd_running() -> bool:
    """Another dockerd (another reference, on its own root) shares the DOCKER* chains."""
    return any(Path(argv[0]).name == "dockerd" for argv in map(cmdline, all_pids()) if argv)


def _remove_dockerd_rules() -> None:
    """Delete the iptables rules dockerd made for our bridge; its DOCKER* chains and the jumps to
    them too, unless another dockerd still runs (dockerd's chains are host-wide, shared)."""
    net = REF_BIP.rsplit(".", 1)[0]
    shared = not _other_dockerd_running()
    for table in ("filter", "nat"):
        rules = subprocess.run(["iptables", "-t", table, "-S"], capture_output=True, text=True).stdout.splitlines()
        for line in rules:
            if not line.startswith("-A "):
                continue
            words = line.split()
            ours = REF_BRIDGE in words or any(w.startswith(net + ".") for w in words)
            if ours or (shared and (words[1] in DOCKERD_CHAINS or any(w in DOCKERD_CHAINS for w in words[2:]))):
                subprocess.run(["iptables", "-t", table, "-D", *words[1:]], capture_output=True)
        if not shared:
            continue
        for ch in DOCKERD_CHAINS:
            subprocess.run(["iptables", "-t", table, "-F", ch], capture_output=True)
            subprocess.run(["iptables", "-t", table, "-X", ch], capture_output=True)


# ---------------------------------------------------------------- report
def mib(kib: float | None) -> str:
    return "–" if kib is None else f"{kib / 1024:.1f} MiB"


def secs(v: float | None) -> str:
    return "–" if v is None else f"{v:.3f} s"


def table(results: dict) -> str:
    targets = results["targets"]
    prm = results["params"]
    par, ps, psr, rss, rst = (prm["parallel"], prm["ps_containers"], prm["ps_runs"], prm["rss_containers"],
                              prm["restart_containers"])
    names = list(targets)
    runc = results.get("runc")

    def cell(name: str, f) -> str:
        try:
            return f(targets[name])
        except (KeyError, TypeError):
            return "–"

    rows = [
        ("`docker version` (CLI round trip)", lambda r: secs(r["cli_version_s"]["median"]), ""),
        ("`run --rm true`, --network none: median", lambda r: secs(r["run_rm_none"]["median"]), "< 0.15 s (dockerd 0.39 s)"),
        ("`run --rm true`, --network none: p90", lambda r: secs(r["run_rm_none"]["p90"]), ""),
        ("`run --rm true`, bridge: median", lambda r: secs(r["run_rm_bridge"]["median"]), "< 0.2 s (dockerd 0.47 s)"),
        ("`run --rm true`, bridge: p90", lambda r: secs(r["run_rm_bridge"]["p90"]), ""),
        (f"{par} parallel `run -d sleep 300`: wall", lambda r: secs(r["parallel_run_d"]["wall_s"]), ""),
        (f"`ps -a`, {ps} containers: median of {psr}", lambda r: secs(r["ps"]["ps_a"]["median"]), ""),
        (f"GET /containers/json?all=1, {ps}: median", lambda r: secs(r["ps"]["raw_get_containers_json_all"]["median"]), ""),
        *[(f"`ps -a`, {n} containers: median of {psr}", lambda r, n=n: secs(r[f"ps_{n}"]["ps_a"]["median"]), "")
          for n in prm.get("ps_more") or []],
        *[(f"GET /containers/json?all=1, {n}: median", lambda r, n=n: secs(r[f"ps_{n}"]["raw_get_containers_json_all"]["median"]), "")
          for n in prm.get("ps_more") or []],
        (f"create {ps} containers (API, 8 at a time)", lambda r: secs(r["ps"]["api_create_s"]), ""),
        ("/_ping req/s (keep-alive)", lambda r: f"{r['ping']['req_per_s']:.0f}", ""),
        ("RSS idle (daemon[s], VmRSS)", lambda r: mib(r["rss_idle_total_kib"]), "< 64 MiB (dockerd+containerd 128 MiB)"),
        (f"RSS per container monitor (avg of {rss})", lambda r: mib(r["rss_running"]["monitor_vmrss_kib_avg"]), ""),
        (f"PSS per container monitor (avg of {rss})", lambda r: mib(r["rss_running"]["monitor_pss_kib_avg"]), ""),
        (f"RSS total, {rss} running (daemons + monitors)", lambda r: mib(r["rss_running"]["total_vmrss_kib"]), ""),
        ("load average (1 min) at start / end", lambda r: f"{r['loadavg_start'][0]:.1f} / {r['loadavg_end'][0]:.1f}", ""),
        (f"restart, {rst} running, SIGKILL: /_ping", lambda r: secs(r["restart"]["SIGKILL"]["ping_s"]), ""),
        (f"restart, {rst} running, SIGKILL: all {rst} listed running", lambda r: secs(r["restart"]["SIGKILL"]["all_running_s"]), ""),
        (f"restart, {rst} running, SIGTERM: exit", lambda r: secs(r["restart"]["SIGTERM"]["exit_s"]), ""),
        (f"restart, {rst} running, SIGTERM: /_ping", lambda r: secs(r["restart"]["SIGTERM"]["ping_s"]), ""),
        (f"restart, {rst} running, SIGTERM: all {rst} listed running", lambda r: secs(r["restart"]["SIGTERM"]["all_running_s"]), ""),
        ("RSS at the end (daemon[s])", lambda r: mib(sum(v["vmrss_kib"] or 0 for v in r["rss_end"].values())), ""),
        (f"daemon RSS with {rst} running / after SIGKILL restart", lambda r: f"{mib(r['restart']['daemon_vmrss_kib'])}"
         f" / {mib(r['restart']['SIGKILL']['daemon_vmrss_kib_after'])}", ""),
        ("daemon memory per running container", lambda r: f"{(r['restart']['daemon_vmrss_kib'] - r['rss_idle_total_kib']) / rst:.0f} KiB", ""),
    ]
    head = "| measurement | " + " | ".join(names) + " | target |"
    lines = [head, "|" + "---|" * (len(names) + 2)]
    for label, f, target in rows:
        lines.append(f"| {label} | " + " | ".join(cell(n, f) for n in names) + f" | {target} |")
    if runc:
        lines.append(f"| bare `runc run` busybox `true`: median / p90 | {secs(runc['median'])} / {secs(runc['p90'])}"
                     + " |" * (len(names) - 1) + " | floor (issue: 0.04 s) |")
    return "\n".join(lines)


def machine() -> dict:
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem_kib = proc_meminfo_total()
    return {"hostname": platform.node(), "kernel": platform.release(), "cpu": cpu, "cores": os.cpu_count(),
            "mem_gib": round(mem_kib / 1024 / 1024, 1) if mem_kib else None, "python": platform.python_version(),
            "docker_cli": subprocess.run([DOCKER, "--version"], capture_output=True, text=True).stdout.strip(),
            "runc": subprocess.run(["runc", "--version"], capture_output=True, text=True).stdout.split("\n")[0]}


def proc_meminfo_total() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            return int(f.readline().split()[1])
    except OSError:
        return None


def import_image(t: Target, tar: Path) -> float:
    t0 = time.perf_counter()
    t.cli("import", str(tar), IMAGE, timeout=300)
    return time.perf_counter() - t0


def exit_on_sigterm() -> None:
    """`timeout` and `kill` send SIGTERM, which ends Python at once: the daemons this run started
    (each in a session of its own) were left running.  Exit through the cleanup instead."""
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))


def main(argv: list[str] | None = None) -> int:
    exit_on_sigterm()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", nargs="?", default="run", choices=["run", "reference-start", "reference-stop"])
    ap.add_argument("--root", default="/tmp/refd", help="reference dockerd's private directory")
    ap.add_argument("--reference-host", help="unix:///path of a running reference dockerd")
    ap.add_argument("--reference-pidfile", help="its pidfile (default: 'pid' beside the socket)")
    ap.add_argument("--start-reference", action="store_true", help="start (and afterwards stop) a private dockerd")
    ap.add_argument("--no-dockyard", action="store_true", help="benchmark only the reference")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--parallel", type=int, default=20)
    ap.add_argument("--ps-containers", type=int, default=200)
    ap.add_argument("--ps-runs", type=int, default=10)
    ap.add_argument("--ps-more", type=int, nargs="*", help="further container counts for `ps -a` (e.g. 1000)")
    ap.add_argument("--ps-pair-only", action="store_true",
                    help="only `ps -a` and the raw listing, the daemons taking turns run by run")
    ap.add_argument("--run-rm-pair-only", action="store_true",
                    help="only `run --rm true` (none, bridge), the daemons taking turns run by run (--runs each)")
    ap.add_argument("--ping-seconds", type=float, default=3.0)
    ap.add_argument("--ping-concurrency", type=int, default=16)
    ap.add_argument("--rss-containers", type=int, default=10)
    ap.add_argument("--restart-containers", type=int, default=50, help="0 skips the restart measurement")
    ap.add_argument("--no-compile", action="store_true", help="do not byte-compile dockyard/ first")
    ap.add_argument("--out", help="JSON output path (default bench/results/engine-<time>.json)")
    args = ap.parse_args(argv)

    root = Path(args.root)
    if args.command == "reference-start":
        host, pidfile = reference_start(root)
        print(f"reference dockerd: --reference-host {host} --reference-pidfile {pidfile}")
        return 0
    if args.command == "reference-stop":
        reference_stop(root)
        return 0

    if not args.no_compile:
        # An installed engine starts from bytecode; with PYTHONDONTWRITEBYTECODE=1 (as here) every
        # start would compile dockyard from source (~80 ms), which is not what restart time means.
        import compileall

        compileall.compile_dir(str(REPO / "dockyard"), quiet=1)
    results: dict = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine(), "targets": {},
                     "params": {k: v for k, v in vars(args).items() if k != "command"}}
    tmp = Path(tempfile.mkdtemp(prefix="dyk-bench-", dir="/tmp"))
    tar = make_busybox_rootfs_tar(tmp / "rootfs.tar")
    targets: list[Target] = []
    started_reference = False
    try:
        print("[runc] bare runc run ...", file=sys.stderr, flush=True)
        results["runc"] = bench_runc(args.runs)
        if not args.no_dockyard:
            d = DockyardTarget()
            targets.append(d)
            t0 = time.perf_counter()
            d.start()
            results.setdefault("startup", {})["dockyard_first_start_s"] = time.perf_counter() - t0
        if args.start_reference:
            host, pidfile = reference_start(root)
            started_reference = True
        elif args.reference_host:
            host = args.reference_host
            pidfile = Path(args.reference_pidfile or Path(socket_path(host)).parent / "pid")
        if args.start_reference or args.reference_host:
            cfg = tmp / "ref-docker-config"
            cfg.mkdir()
            targets.append(DockerdTarget(host, pidfile, cfg))
        for t in targets:
            results.setdefault("import_s", {})[t.name] = import_image(t, tar)
            if not (args.ps_pair_only or args.run_rm_pair_only):
                results["targets"][t.name] = bench_target(t, args)
        if args.run_rm_pair_only:
            results["run_rm_pair"] = measure_run_rm_pair(targets, args.runs)
        if args.ps_pair_only:
            results["ps_pair"] = [measure_ps_pair(targets, n, args.ps_runs)
                                  for n in [args.ps_containers, *(args.ps_more or [])]]
    finally:
        for t in targets:
            try:
                t.close()
            except Exception as e:  # cleanup must go on for the other target
                print(f"cleanup of {t.name}: {e}", file=sys.stderr)
        if started_reference:
            reference_stop(root)
        shutil.rmtree(tmp, ignore_errors=True)

    RESULTS.mkdir(parents=True, exist_ok=True)
    out = Path(args.out) if args.out else RESULTS / f"engine-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2))
    m = results["machine"]
    print(f"\nEngine benchmark, {results['date']}, {m['cpu']} x{m['cores']}, {m['mem_gib']} GiB, "
          f"kernel {m['kernel']}, {m['docker_cli']}\n")
    if results.get("run_rm_pair"):
        print(run_rm_pair_table(results["run_rm_pair"], [t.name for t in targets]))
    if results.get("ps_pair"):
        print(pair_table(results["ps_pair"], [t.name for t in targets]))
    elif not results.get("run_rm_pair"):
        print(table(results))
    print(f"\nJSON: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
