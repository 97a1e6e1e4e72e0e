"""Registry fleet benchmark: one dockyard replica, three replicas behind HAProxy, and Debian's
docker-registry (CNCF Distribution 2.8), all on the same moto S3 server on loopback.

    python bench/registry_fleet_bench.py [--size-mib 512] [--small 1000] [--clients 16] [--manifest-gets 3000]

Each setup gets its own bucket and the same clients (bench/registry_bench.py's):
  * one big blob: POST + monolithic PUT (timed until the 201), then GETs (median of 3);
  * the same size again as 8 PATCH chunks + PUT; behind HAProxy each request of the upload
    lands on another replica, which resumes the data and the running sha256 from the bucket;
  * N small (1 KiB) blobs pushed POST+PUT by C concurrent clients;
  * manifest GETs by tag from C concurrent clients: requests per second.
Blob redirects are disabled everywhere (bytes stream through the registries), so the
figures compare the registries, not moto's GET path.  moto keeps objects in memory and is
slower than a real object store: absolute figures are moto's, the ratios are the point.
Finally it measures what finishing a big upload would cost a replica that has no hash state:
re-reading the upload from the bucket and hashing it, against loading the saved state.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # this checkout's dockyard
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "integration" / "registry"))

from fleet import free_port, make_fleet, stop, wait_http  # noqa: E402
from registry_bench import MIB, get_big, make_big_blob, manifest_gets, push_small, put_big  # noqa: E402


def start_moto(tmp: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = tmp / "moto.log"
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test")
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/", proc, log)
    return proc, url


def s3_client(endpoint: str):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
                        aws_secret_access_key="test")


def start_distribution(tmp: Path, endpoint: str, bucket: str) -> tuple[subprocess.Popen, int]:
    s3_client(endpoint).create_bucket(Bucket=bucket)
    port = free_port()
    cfg = tmp / "distribution.yml"
    cfg.write_text(json.dumps({  # JSON is YAML
        "version": 0.1, "log": {"level": "error", "accesslog": {"disabled": True}},
        "storage": {"s3": {"bucket": bucket, "region": "us-east-1", "regionendpoint": endpoint,
                           "accesskey": "test", "secretkey": "test", "secure": False, "v4auth": True},
                    "delete": {"enabled": True}, "redirect": {"disable": True},
                    "maintenance": {"uploadpurging": {"enabled": False}}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": "bench"},
    }))
    log = tmp / "distribution.log"
    # The AWS Go SDK of Distribution 2.8 panics on a custom CA bundle with its HTTP client; the
    # endpoint is plain HTTP on loopback anyway.
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    proc = subprocess.Popen(["/usr/bin/docker-registry", "serve", str(cfg)], stdout=subprocess.DEVNULL,
                            stderr=log.open("wb"), env=env)
    wait_http(f"http://127.0.0.1:{port}/v2/", proc, log)
    return proc, port


def chunked_upload(port: int, repo: str, blob: Path, digest: str, chunks: int = 8) -> float:
    """POST, `chunks` PATCHes, empty PUT; one connection per request (HAProxy spreads them)."""
    base = f"http://127.0.0.1:{port}"
    size = blob.stat().st_size
    step = -(-size // chunks)
    t0 = time.perf_counter()
    r = requests.post(f"{base}/v2/{repo}/blobs/uploads/")
    assert r.status_code == 202, r.text
    loc = r.headers["Location"]
    with open(blob, "rb") as f:
        for start in range(0, size, step):
            data = f.read(step)
            url = loc if loc.startswith("http") else base + loc
            r = requests.patch(url, data=data, headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{start}-{start + len(data) - 1}"})
            assert r.status_code == 202, r.text
            loc = r.headers["Location"]
    url = loc if loc.startswith("http") else base + loc
    r = requests.put(url, params={"digest": digest})
    assert r.status_code == 201, r.text
    return time.perf_counter() - t0


def run_setup(port: int, blob: Path, digest: str, size: int, args: argparse.Namespace) -> dict[str, float]:
    res: dict[str, float] = {}
    res["put_big_s"] = put_big(port, "bench/big", blob, digest)
    res["chunked_big_s"] = chunked_upload(port, "bench/chunked", blob, digest)
    gets = sorted(get_big(port, "bench/big", digest, size) for _ in range(3))
    res["get_big_s"] = gets[1]
    res["small_push_s"] = asyncio.run(push_small(port, args.small, args.clients))
    res["manifest_get_rps"] = asyncio.run(manifest_gets(port, args.manifest_gets, args.clients))
    return res


def rehash_cost(endpoint: str, blob: Path) -> dict[str, float]:
    """What a replica without the running hash pays at PUT: read the upload back and hash it,
    against one GET of the saved state (what dockyard does)."""
    from dockyard.distribution.registry.hashstate import ResumableHash
    from dockyard.distribution.registry.storage.s3 import S3Driver

    bucket = "bench-rehash"
    s3_client(endpoint).create_bucket(Bucket=bucket)
    d = S3Driver(bucket=bucket, endpoint_url=endpoint, access_key="test", secret_key="test")
    try:
        w = d.writer("/u/data", append=True)
        h = ResumableHash("sha256")
        with open(blob, "rb") as f:
            while chunk := f.read(8 * MIB):
                w.write(chunk)
                h.update(chunk)
        w.close()
        d.put_content("/u/state", h.state() or b"")
        t0 = time.perf_counter()
        h2 = ResumableHash("sha256")
        with d.reader("/u/data") as f:
            while chunk := f.read(4 * MIB):
                h2.update(chunk)
        rehash = time.perf_counter() - t0
        t0 = time.perf_counter()
        h3 = ResumableHash.from_state("sha256", d.get_content("/u/state"))
        resume = time.perf_counter() - t0
        assert h3 is not None and h3.hexdigest() == h2.hexdigest() == h.hexdigest()
        return {"rehash_s": rehash, "resume_state_s": resume}
    finally:
        d.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=512)
    ap.add_argument("--small", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--manifest-gets", type=int, default=3000)
    ap.add_argument("--only", default="distribution,dockyard-1,dockyard-3",
                    help="comma-separated setups to run")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="registry-fleet-bench-"))
    moto, endpoint = start_moto(tmp)
    results: dict[str, dict[str, float]] = {}
    try:
        blob = tmp / "big.bin"
        digest, size = make_big_blob(blob, args.size_mib)
        for name in args.only.split(","):
            print(f"running {name}...", file=sys.stderr, flush=True)
            if name == "distribution":
                proc, port = start_distribution(tmp, endpoint, "bench-distribution")
                try:
                    results[name] = run_setup(port, blob, digest, size, args)
                finally:
                    stop(proc)
            else:
                n = int(name.split("-")[1])
                fleet = make_fleet(tmp / name, endpoint, n=n, bucket=f"bench-{name}", access_log=False)
                try:
                    results[name] = run_setup(fleet.lb_port if n > 1 else fleet.replicas[0].port,
                                              blob, digest, size, args)
                finally:
                    fleet.close()
        results["rehash"] = rehash_cost(endpoint, blob)
    finally:
        stop(moto)
        shutil.rmtree(tmp, ignore_errors=True)
    setups = [s for s in ("distribution", "dockyard-1", "dockyard-3") if s in results]
    print(f"{'':34}" + "".join(f"{s:>16}" for s in setups))
    rows = [(f"PUT {args.size_mib} MiB blob, monolithic (s)", "put_big_s", "%.2f"),
            (f"PUT {args.size_mib} MiB as 8 PATCHes (s)", "chunked_big_s", "%.2f"),
            (f"GET {args.size_mib} MiB blob, median of 3 (s)", "get_big_s", "%.2f"),
            (f"{args.small} small blobs x{args.clients} (s)", "small_push_s", "%.2f"),
            ("manifest GET (req/s)", "manifest_get_rps", "%.0f")]
    for label, key, fmt in rows:
        print(f"{label:34}" + "".join(f"{fmt % results[s][key]:>16}" for s in setups))
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
