"""Image throughput: import, load, push and pull through dockyard and a reference dockerd, side by side.

    python bench/image_bench.py                        # dockyard only (plus compressor figures)
    python bench/image_bench.py --start-reference      # also a private dockerd (engine_bench's setup)
    python bench/image_bench.py --big-mb 420 --small-layers 30

Workloads (both daemons get the same bytes, generated from fixed seeds):
  big:   one layer of BIG_MB: half random bytes, half log-like text (what real layers hold:
         partly compressible) - imported with `docker import`;
  small: SMALL_LAYERS layers of 1 MB each (half random, half text) - a `docker save`-style archive
         loaded with `docker load`.
Each daemon pushes to its own fresh CNCF Distribution registry (/usr/bin/docker-registry) on loopback,
so the first push finds none of the blobs.  Measured with the docker CLI (wall time of the command):
  import / load; push (first); push again (every layer exists); pull after rmi.
Each step runs on one daemon then the other before the next step (both meet the same load on a
shared machine); --rounds rounds, each figure the median.
Also: the compressors on the big layer's bytes in this process (MB/s, ratio).
Prints a markdown table with the ratio dockyard/dockerd and writes JSON to bench/results/.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "tests" / "integration"))

import engine_bench as eb  # noqa: E402
from pull_push_bench import start_registry  # noqa: E402


# ---------------------------------------------------------------- workloads


def log_text(n: int, seed: int) -> bytes:
    r = random.Random(seed)
    levels = ["INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"]
    paths = ["/api/v1/items", "/api/v1/users", "/healthz", "/api/v2/orders", "/static/app.js", "/login"]
    words = "request served cache miss hit upstream timeout retry user session token refreshed queue depth".split()
    out: list[str] = []
    size = 0
    t = 1_700_000_000.0
    while size < n:
        t += r.random() * 0.05
        line = (f"2026-11-30T{int(t) % 86400 // 3600:02d}:{int(t) % 3600 // 60:02d}:{t % 60:06.3f}Z "
                f"{r.choice(levels)} [worker-{r.randrange(32)}] {r.choice(words)} {r.choice(words)} "
                f"id={r.getrandbits(64):016x} path={r.choice(paths)}/{r.randrange(100000)} "
                f"status={r.choice((200, 200, 200, 201, 304, 404, 500))} duration={r.randrange(1, 900)}ms "
                f"bytes={r.randrange(10**6)}\n")
        out.append(line)
        size += len(line)
    return "".join(out).encode()[:n]


def _member(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    ti = tarfile.TarInfo(name)
    ti.size, ti.mode, ti.mtime = len(data), 0o644, 1_700_000_000
    tf.addfile(ti, io.BytesIO(data))


def big_tar(path: Path, mb: int) -> Path:
    half = mb * 500_000
    with tarfile.open(path, "w") as tf:
        _member(tf, "data/random.bin", random.Random(7).randbytes(half))
        _member(tf, "data/app.log", log_text(half, 8))
    return path


def small_layers_archive(path: Path, layers: int) -> Path:
    """A docker-save archive (manifest.json + config + layer tars) of `layers` layers of 1 MB."""
    diff_ids, names = [], []
    with tarfile.open(path, "w") as out:
        for i in range(layers):
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as tf:
                _member(tf, f"layer{i}/random.bin", random.Random(100 + i).randbytes(500_000))
                _member(tf, f"layer{i}/app.log", log_text(500_000, 200 + i))
            data = buf.getvalue()
            d = hashlib.sha256(data).hexdigest()
            diff_ids.append("sha256:" + d)
            names.append(f"{d}/layer.tar")
            _member(out, f"{d}/layer.tar", data)
        cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["true"]},
                          "rootfs": {"type": "layers", "diff_ids": diff_ids},
                          "history": [{"created_by": f"layer {i}"} for i in range(layers)]}).encode()
        cfg_name = hashlib.sha256(cfg).hexdigest() + ".json"
        _member(out, cfg_name, cfg)
        _member(out, "manifest.json", json.dumps(
            [{"Config": cfg_name, "RepoTags": ["bench/small:1"], "Layers": names}]).encode())
    return path


# ---------------------------------------------------------------- compressors


def compressor_figures(src: Path) -> list[dict]:
    """MB/s and ratio of each candidate on the big layer's bytes, in this process."""
    import gzip

    data = src.read_bytes()
    out = []

    def run(name: str, fn) -> None:
        t0 = time.perf_counter()
        n = fn()
        dt = time.perf_counter() - t0
        out.append({"compressor": name, "mb_per_s": round(len(data) / dt / 1e6, 1),
                    "ratio": round(n / len(data), 3)})

    class Count(io.RawIOBase):
        n = 0

        def writable(self) -> bool:
            return True

        def write(self, b) -> int:
            self.n += len(b)
            return len(b)

    def stdlib() -> int:
        c = Count()
        with gzip.GzipFile(fileobj=c, mode="wb", compresslevel=6, mtime=0) as g:
            g.write(data)
        return c.n

    run("zlib level 6 (stdlib gzip, before)", stdlib)
    try:
        from isal import igzip_threaded

        for level in (1, 2):
            for threads in (1, 2):
                def isal(level=level, threads=threads) -> int:
                    c = Count()
                    with igzip_threaded.open(c, "wb", compresslevel=level, threads=threads) as g:
                        for i in range(0, len(data), 1 << 20):
                            g.write(data[i:i + (1 << 20)])
                    return c.n
                run(f"isal igzip_threaded level {level}, {threads} threads", isal)
    except ImportError:
        pass
    try:
        from zlib_ng import gzip_ng_threaded

        for level in (1, 6):
            def ng(level=level) -> int:
                c = Count()
                with gzip_ng_threaded.open(c, "wb", compresslevel=level, threads=2) as g:
                    for i in range(0, len(data), 1 << 20):
                        g.write(data[i:i + (1 << 20)])
                return c.n
            run(f"zlib-ng gzip_ng_threaded level {level}, 2 threads", ng)
    except ImportError:
        pass
    try:
        import zstandard

        for threads in (0, 2):
            run(f"zstd level 3, threads={threads}",
                lambda threads=threads: len(zstandard.ZstdCompressor(level=3, threads=threads).compress(data)))
    except ImportError:
        pass
    return out


# ---------------------------------------------------------------- one daemon


def timed(t: eb.Target, *args: str, timeout: float = 900) -> float:
    t0 = time.perf_counter()
    t.cli(*args, timeout=timeout)
    return round(time.perf_counter() - t0, 3)


STEPS = ["import_big_s", "push_big_s", "push_big_again_s", "pull_big_s", "load_small_s", "push_small_s",
         "pull_small_s"]


def step(t: eb.Target, name: str, big: Path, small: Path, registry: str) -> float:
    """One measured step (with the untimed preparation it needs)."""
    big_ref, small_ref = f"{registry}/bench/big:1", f"{registry}/bench/small:1"
    if name == "import_big_s":
        return timed(t, "import", str(big), big_ref)
    if name in ("push_big_s", "push_big_again_s"):
        return timed(t, "push", big_ref)
    if name == "pull_big_s":
        t.cli("rmi", big_ref)
        dt = timed(t, "pull", big_ref)
        t.cli("rmi", big_ref)
        return dt
    if name == "load_small_s":
        dt = timed(t, "load", "-i", str(small))
        t.cli("tag", "bench/small:1", small_ref)
        return dt
    if name == "push_small_s":
        dt = timed(t, "push", small_ref)
        t.cli("rmi", small_ref, "bench/small:1")
        return dt
    if name == "pull_small_s":
        dt = timed(t, "pull", small_ref)
        t.cli("rmi", small_ref)
        return dt
    raise ValueError(name)


def bench_round(targets: list[eb.Target], big: Path, small: Path, registries: dict[str, str]) -> dict:
    """Every step on each daemon in turn, so both see the same load on this shared machine."""
    out: dict = {t.name: {"loadavg_start": os.getloadavg()} for t in targets}
    for name in STEPS:
        for t in targets:
            print(f"[{t.name}] {name} ...", file=sys.stderr, flush=True)
            out[t.name][name] = step(t, name, big, small, registries[t.name])
    for t in targets:
        out[t.name]["loadavg_end"] = os.getloadavg()
    return out


ROWS = [
    ("`docker import` of the big layer", "import_big_s"),
    ("`docker push` (registry has none of it)", "push_big_s"),
    ("`docker push` again (every layer exists)", "push_big_again_s"),
    ("`docker pull` after `rmi`", "pull_big_s"),
    ("`docker load` of the small-layers image", "load_small_s"),
    ("`docker push` of the small-layers image", "push_small_s"),
    ("`docker pull` of the small-layers image", "pull_small_s"),
]


def table(results: dict) -> str:
    t = results["targets"]
    d, ref = t.get("dockyard", {}), t.get("dockerd", {})
    lines = ["| measurement | dockyard | dockerd | ratio |", "|---|---|---|---|"]
    for label, key in ROWS:
        a, b = d.get(key), ref.get(key)
        ratio = f"{a / b:.2f}" if a is not None and b else "–"
        fa = f"{a:.3f} s" if a is not None else "–"
        fb = f"{b:.3f} s" if b is not None else "–"
        lines.append(f"| {label} | {fa} | {fb} | {ratio} |")
    for name, r in t.items():
        lines.append(f"| load average (1 min) start / end, {name} | {r['loadavg_start'][0]:.1f} / "
                     f"{r['loadavg_end'][0]:.1f} | | |")
    return "\n".join(lines)


def main() -> int:
    eb.exit_on_sigterm()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--big-mb", type=int, default=420)
    ap.add_argument("--small-layers", type=int, default=30)
    ap.add_argument("--start-reference", action="store_true")
    ap.add_argument("--root", default="/tmp/refd-img")
    ap.add_argument("--no-compressors", action="store_true")
    ap.add_argument("--rounds", type=int, default=2, help="each step is the median of this many rounds")
    ap.add_argument("--out")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dyk-imgbench-", dir="/var/tmp"))
    results: dict = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": eb.machine(),
                     "params": vars(args), "targets": {}}
    regs: list[subprocess.Popen] = []
    targets: list[eb.Target] = []
    started_ref = False
    try:
        print("generating workloads ...", file=sys.stderr, flush=True)
        big = big_tar(tmp / "big.tar", args.big_mb)
        small = small_layers_archive(tmp / "small.tar", args.small_layers)
        if not args.no_compressors:
            results["compressors"] = compressor_figures(big)
        d = eb.DockyardTarget()
        targets.append(d)
        d.start()
        if args.start_reference:
            host, pidfile = eb.reference_start(Path(args.root))
            started_ref = True
            cfg = tmp / "ref-config"
            cfg.mkdir()
            targets.append(eb.DockerdTarget(host, pidfile, cfg))
        rounds = []
        for i in range(args.rounds):
            registries = {}
            for t in targets:  # a fresh registry per round and daemon: the first push finds nothing
                proc, addr = start_registry("distribution", tmp / f"registry-{t.name}-{i}")
                regs.append(proc)
                registries[t.name] = addr
            rounds.append(bench_round(targets, big, small, registries))
        results["rounds"] = rounds
        for t in targets:  # the median of the rounds
            r = {k: statistics.median(x[t.name][k] for x in rounds) for k in STEPS}
            r["loadavg_start"] = rounds[0][t.name]["loadavg_start"]
            r["loadavg_end"] = rounds[-1][t.name]["loadavg_end"]
            results["targets"][t.name] = r
    finally:
        for t in targets:
            try:
                t.close()
            except Exception as e:
                print(f"cleanup of {t.name}: {e}", file=sys.stderr)
        if started_ref:
            eb.reference_stop(Path(args.root))
        for p in regs:
            p.send_signal(signal.SIGTERM)
            p.wait(20)
        shutil.rmtree(tmp, ignore_errors=True)
    eb.RESULTS.mkdir(parents=True, exist_ok=True)
    out = Path(args.out) if args.out else eb.RESULTS / f"image-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2))
    print(table(results))
    for c in results.get("compressors", []):
        print(f"  {c['compressor']}: {c['mb_per_s']} MB/s, ratio {c['ratio']}")
    print(f"JSON: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
