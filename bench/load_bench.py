"""N concurrent `docker run --rm --network none busybox echo tokN` against one engine.

    python bench/load_bench.py [--clients 250 500] [--tcp] [--host unix:///... (an engine already running)]

Every client is a docker CLI process started at once.  Reports per N: wall time, how many
clients printed their token, exit codes, and containers left behind afterwards (a client
that could not start its container leaves it in Created state).  With no --host the
script starts its own dockyard engine (tests/integration/engine_harness).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "integration"))


def run_load(env: dict[str, str], n: int, image: str = "busybox", timeout: float = 900) -> dict:
    """Start n CLIs at once; wait for all; count what each got."""
    procs = []
    t0 = time.monotonic()
    for i in range(n):
        procs.append(subprocess.Popen(
            ["docker", "run", "--rm", "--network", "none", image, "echo", f"tok{i}"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    ok = 0
    codes: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    deadline = t0 + timeout
    for i, p in enumerate(procs):
        try:
            out, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            codes[-1] += 1
            continue
        codes[p.returncode] += 1
        if p.returncode == 0 and out.decode().strip() == f"tok{i}":
            ok += 1
        elif err:
            lines = [l for l in err.decode(errors="replace").strip().splitlines() if "--help" not in l]
            errors[(lines[0] if lines else "?")[:200]] += 1
    wall = time.monotonic() - t0
    left = subprocess.run(["docker", "ps", "-aq"], env=env, capture_output=True, text=True).stdout.split()
    return {"clients": n, "served": ok, "wall_s": round(wall, 2), "exit_codes": dict(codes),
            "errors": dict(errors.most_common(5)), "left_behind": len(left)}


def reference_load(clients: list[int]) -> list[dict]:
    """The same load on a private dockerd (dockerd wedged at 250 in the issue's run: keep N small)."""
    import tempfile

    sys.path.insert(0, str(REPO / "bench"))
    import engine_bench as eb
    from dockyard.testing.busybox import make_busybox_rootfs_tar

    root = Path("/tmp/refd-load")
    out = []
    host, _ = eb.reference_start(root)
    try:
        env = dict(os.environ, DOCKER_HOST=host)
        with tempfile.TemporaryDirectory() as td:
            tar = make_busybox_rootfs_tar(Path(td) / "rootfs.tar")
            subprocess.run(["docker", "import", str(tar), "busybox"], env=env, check=True, capture_output=True)
        for n in clients:
            r = run_load(env, n, timeout=600)
            r["transport"] = "dockerd unix"
            print(json.dumps(r), flush=True)
            out.append(r)
    finally:
        eb.reference_stop(root)
    return out


def main() -> None:
    # SIGTERM (`timeout`, `kill`) exits through the cleanup, as engine_bench.exit_on_sigterm
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, nargs="+", default=[250, 500])
    ap.add_argument("--tcp", action="store_true", help="also drive the engine over TCP")
    ap.add_argument("--host", help="an engine already running (DOCKER_HOST)")
    ap.add_argument("--start-reference", action="store_true",
                    help="also a private dockerd (engine_bench's setup), driven with --reference-clients")
    ap.add_argument("--reference-clients", type=int, nargs="+", default=[100])
    ap.add_argument("--out")
    args = ap.parse_args()
    results = []
    engine = None
    try:
        if args.host:
            hosts = {"given": args.host}
        else:
            from engine_harness import EngineProcess  # noqa: E402
            from dockyard.testing.busybox import make_busybox_rootfs_tar  # noqa: E402
            import socket
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            engine = EngineProcess(extra_args=["-H", f"tcp://127.0.0.1:{port}"])
            engine.start()
            tar = make_busybox_rootfs_tar(engine.root / "rootfs.tar")
            engine.cli_ok("import", str(tar), "busybox")
            hosts = {"unix": f"unix://{engine.socket}"}
            if args.tcp:
                hosts["tcp"] = f"tcp://127.0.0.1:{port}"
        for name, host in hosts.items():
            env = dict(os.environ, DOCKER_HOST=host)
            for n in args.clients:
                r = run_load(env, n)
                r["transport"] = name
                print(json.dumps(r), flush=True)
                results.append(r)
                left = subprocess.run(["docker", "ps", "-aq"], env=env, capture_output=True, text=True).stdout.split()
                if left:
                    subprocess.run(["docker", "rm", "-f", *left], env=env, capture_output=True)
        if args.start_reference:
            results += reference_load(args.reference_clients)
    finally:
        if engine is not None:
            engine.cleanup()
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
