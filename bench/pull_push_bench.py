"""Time `docker push` and `docker pull` through a dockyard engine against loopback registries.

    python bench/pull_push_bench.py [--big-mb 100] [--runs 3]

Starts its own engine (tests/integration/engine_harness), a `dockyard registry` and, if
installed, CNCF Distribution 2.8 (/usr/bin/docker-registry), each on a free loopback port with
temp roots; everything is stopped and removed at the end.  Images: the test busybox (one ~2 MB
layer) and a "big" one: busybox plus a layer of BIG_MB half-compressible bytes.

Measured with the docker CLI (wall time of the command), median of --runs:
  push (first: compress + upload), push again (HEAD: "Layer already exists"),
  pull after rmi (download + unpack), pull again ("Image is up to date").
Prints a markdown table and writes JSON to bench/results/pull-push-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import io
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "integration"))

from engine_harness import EngineProcess  # noqa: E402

from dockyard.testing.busybox import make_busybox_rootfs_tar  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("registry exited early")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("registry did not start")


def start_registry(kind: str, root: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    root.mkdir(parents=True)
    if kind == "dockyard":
        args = [sys.executable, "-m", "dockyard.cli", "registry", "--addr", f"127.0.0.1:{port}", "--root",
                str(root / "data")]
    else:
        cfg = root / "config.yml"
        cfg.write_text(json.dumps({"version": 0.1, "log": {"level": "error"},
                                   "storage": {"filesystem": {"rootdirectory": str(root / "data")}},
                                   "http": {"addr": f"127.0.0.1:{port}", "secret": "bench"}}))
        args = ["/usr/bin/docker-registry", "serve", str(cfg)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    wait_port(port, proc)
    return proc, f"127.0.0.1:{port}"


def big_layer_tar(path: Path, mb: int) -> Path:
    """A layer of `mb` MB: half random bytes, half text, so gzip has real work to do."""
    with tarfile.open(path, "w") as tf:
        for i in range(mb):
            data = os.urandom(512 * 1024) + (b"dockyard bench line\n" * 26215)[:512 * 1024]
            ti = tarfile.TarInfo(f"data/blob{i:04d}")
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return path


def two_layer_archive(tmp: Path, mb: int) -> Path:
    """A `docker save` archive of bench/big:1: the busybox rootfs layer plus a big one."""
    import hashlib

    # Its own layers (none shared with busybox), so each pull really downloads and unpacks.
    (tmp / "small").mkdir()
    with tarfile.open(tmp / "l0.tar", "w") as tf:
        data = b"bench/big base layer\n"
        ti = tarfile.TarInfo("etc/bench")
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    layers = [tmp / "l0.tar", big_layer_tar(tmp / "l1.tar", mb)]
    diff_ids = []
    for p in layers:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        diff_ids.append("sha256:" + h.hexdigest())
    config = json.dumps({"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
                         "config": {"Cmd": ["sh"]},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    (tmp / "config.json").write_bytes(config)
    (tmp / "manifest.json").write_text(json.dumps([{"Config": "config.json", "RepoTags": ["bench/big:1"],
                                                     "Layers": ["l0.tar", "l1.tar"]}]))
    out = tmp / "big-image.tar"
    with tarfile.open(out, "w") as tf:
        for name in ("manifest.json", "config.json", "l0.tar", "l1.tar"):
            tf.add(tmp / name, arcname=name)
    return out


def timed(eng: EngineProcess, *args: str, expect: str = "") -> float:
    t = time.perf_counter()
    r = eng.cli(*args, timeout=600)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)}: {r.stderr.decode()}")
    if expect and expect not in r.stdout.decode():
        raise RuntimeError(f"docker {' '.join(args)}: no {expect!r} in\n{r.stdout.decode()}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--big-mb", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    opts = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dyk-pp-bench-"))
    eng = EngineProcess()
    procs: list[subprocess.Popen] = []
    results: list[dict] = []
    try:
        eng.start()
        eng.cli("import", str(make_busybox_rootfs_tar(tmp / "bb.tar")), "bench/busybox:1", check=True)
        eng.cli("load", "-i", str(two_layer_archive(tmp, opts.big_mb)), timeout=600, check=True)
        kinds = ["dockyard"] + (["distribution"] if os.path.exists("/usr/bin/docker-registry") else [])
        for kind in kinds:
            for image in ("bench/busybox:1", "bench/big:1"):
                rows: dict[str, list[float]] = {"push": [], "push again": [], "pull": [], "pull again": []}
                for run in range(opts.runs):
                    proc, host = start_registry(kind, tmp / f"{kind}-{image.replace('/', '_')}-{run}")
                    procs.append(proc)
                    ref = f"{host}/{image}"
                    eng.cli("tag", image, ref, check=True)
                    rows["push"].append(timed(eng, "push", ref, expect="Pushed"))
                    rows["push again"].append(timed(eng, "push", ref, expect="Layer already exists"))
                    tagged = [ref]
                    # rmi the pushed tag and the source, so the pull really downloads and unpacks
                    eng.cli("rmi", ref, image, check=True)
                    rows["pull"].append(timed(eng, "pull", ref, expect="Pull complete"))
                    rows["pull again"].append(timed(eng, "pull", ref, expect="Image is up to date"))
                    eng.cli("tag", ref, image, check=True)
                    eng.cli("rmi", *tagged, check=True)
                    proc.terminate()
                    proc.wait(10)
                for op, vals in rows.items():
                    results.append({"registry": kind, "image": image, "op": op,
                                    "median_s": round(statistics.median(vals), 3), "runs": vals})
    finally:
        eng.cleanup()
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    print("| registry | image | op | median (s) |\n|---|---|---|---|")
    for r in results:
        print(f"| {r['registry']} | {r['image']} | {r['op']} | {r['median_s']} |")
    out = REPO / "bench" / "results" / f"pull-push-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"host": platform.node(), "big_mb": opts.big_mb, "results": results}, indent=2))
    print(f"\nJSON: {out}")


if __name__ == "__main__":
    main()
