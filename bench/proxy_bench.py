"""Pull-through cache benchmark: a 30-layer image pulled through a proxy, cold and warm,
against pulling it straight from the upstream.

    python bench/proxy_bench.py [--layers 30] [--layer-kib 2048] [--concurrency 3] [--rounds 3] [--clients 1]

The upstream is a `dockyard registry` (filesystem storage) holding one image of N random
layers.  In front of it, one after the other: a `dockyard registry` with `proxy:` and
Debian's docker-registry (CNCF Distribution 2.8) with `proxy:`, each on a fresh root.  A
pull is what `docker pull` does on the wire: the manifest by tag, the config, then the
layers `concurrency` at a time (dockerd's default is 3), every body read to the end.
"Cold" is the first pull through an empty cache (each blob fetched from the upstream while
it streams to the client), by `clients` pullers at once (its time is the slowest's, and "first
byte" the longest any of them waited for a blob's first byte); "warm" is the median of the
next `rounds` pulls.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from registry_bench import free_port, stop, wait_up  # noqa: E402

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _start(args: list[str], port: int, log: Path):
    import subprocess

    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(log, "wb"))
    wait_up(port, proc)
    return proc


def start_dockyard(root: Path, config: dict | None = None):
    port = free_port()
    args = [sys.executable, "-m", "dockyard.cli", "registry", "--addr", f"127.0.0.1:{port}",
            "--root", str(root), "--log-level", "warning"]
    if config is not None:
        (root.parent / f"{root.name}.yml").write_text(json.dumps(config))
        args += ["--config", str(root.parent / f"{root.name}.yml")]
    return _start(args, port, root.parent / f"{root.name}.log"), port


def start_distribution(root: Path, config: dict):
    port = free_port()
    cfg = {"version": 0.1, "log": {"level": "error", "accesslog": {"disabled": True}},
           "storage": {"filesystem": {"rootdirectory": str(root)}}, "http": {"addr": f"127.0.0.1:{port}"},
           **config}
    (root.parent / f"{root.name}.yml").write_text(json.dumps(cfg))
    return _start(["/usr/bin/docker-registry", "serve", str(root.parent / f"{root.name}.yml")], port,
                  root.parent / f"{root.name}.log"), port


async def push_image(port: int, repo: str, layers: int, layer_size: int) -> None:
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as s:
        async def blob(data: bytes) -> dict:
            d = "sha256:" + hashlib.sha256(data).hexdigest()
            async with s.post(f"{base}/v2/{repo}/blobs/uploads/") as r:
                loc = r.headers["Location"]
            url = loc if loc.startswith("http") else base + loc
            async with s.put(f"{url}{'&' if '?' in url else '?'}digest={d}", data=data) as r:
                assert r.status == 201, await r.text()
            return {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": len(data)}

        descs = [await blob(os.urandom(layer_size)) for _ in range(layers)]
        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in descs]}}).encode()
        cdesc = await blob(config)
        cdesc["mediaType"] = "application/vnd.oci.image.config.v1+json"
        body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": cdesc, "layers": descs})
        async with s.put(f"{base}/v2/{repo}/manifests/latest", data=body.encode(),
                         headers={"Content-Type": OCI_MANIFEST}) as r:
            assert r.status == 201, await r.text()


async def pull(port: int, repo: str, concurrency: int) -> tuple[float, int, float]:
    """One docker-like pull; (seconds, bytes, longest wait for a blob's first byte)."""
    base = f"http://127.0.0.1:{port}/v2/{repo}"
    t0 = time.perf_counter()
    total = 0
    first_byte = 0.0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as s:
        async with s.get(f"{base}/manifests/latest", headers={"Accept": OCI_MANIFEST}) as r:
            assert r.status == 200, await r.text()
            man = json.loads(await r.read())
        sem = asyncio.Semaphore(concurrency)

        async def get(desc: dict) -> int:
            async with sem:
                asked = time.perf_counter()
                async with s.get(f"{base}/blobs/{desc['digest']}") as r:
                    assert r.status == 200, (r.status, await r.text())
                    return await read(desc, r, asked)

        async def read(desc: dict, r: aiohttp.ClientResponse, asked: float) -> int:
            nonlocal first_byte
            h, n = hashlib.sha256(), 0
            async for chunk in r.content.iter_chunked(1 << 20):
                if n == 0:
                    first_byte = max(first_byte, time.perf_counter() - asked)
                h.update(chunk)
                n += len(chunk)
            assert "sha256:" + h.hexdigest() == desc["digest"]
            return n

        total += await get(man["config"])
        total += sum(await asyncio.gather(*(get(d) for d in man["layers"])))
    return time.perf_counter() - t0, total, first_byte


async def pulls(port: int, repo: str, a: argparse.Namespace) -> tuple[float, float]:
    """`clients` pulls at once: (the slowest's seconds, the longest first-byte wait)."""
    done = await asyncio.gather(*(pull(port, repo, a.concurrency) for _ in range(a.clients)))
    return max(d[0] for d in done), max(d[2] for d in done)


def measure(port: int, repo: str, a: argparse.Namespace) -> tuple[float, float, float]:
    cold, first = asyncio.run(pulls(port, repo, a))
    warm = statistics.median(asyncio.run(pull(port, repo, a.concurrency))[0] for _ in range(a.rounds))
    return cold, first, warm


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--layers", type=int, default=30)
    p.add_argument("--layer-kib", type=int, default=2048)
    p.add_argument("--concurrency", type=int, default=3)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--clients", type=int, default=1, help="pullers at once on the cold pull")
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="proxy-bench-"))
    rows = []
    up, up_port = start_dockyard(tmp / "upstream")
    try:
        asyncio.run(push_image(up_port, "library/app", a.layers, a.layer_kib * 1024))
        direct = [asyncio.run(pull(up_port, "library/app", a.concurrency))[0] for _ in range(a.rounds)]
        size = asyncio.run(pull(up_port, "library/app", a.concurrency))[1]
        rows.append(("direct from the upstream (dockyard)", None, None, statistics.median(direct)))
        remote = {"proxy": {"remoteurl": f"http://127.0.0.1:{up_port}"}}
        for name, starter in (("dockyard proxy", lambda: start_dockyard(tmp / "dy-proxy", remote)),
                              ("Distribution 2.8 proxy", lambda: start_distribution(tmp / "dist-proxy", remote))):
            proc, port = starter()
            try:
                cold, first, warm = measure(port, "library/app", a)
                rows.append((name, cold, first, warm))
            finally:
                stop(proc)
    finally:
        stop(up)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{a.layers} layers x {a.layer_kib} KiB ({size / (1 << 20):.0f} MiB), {a.concurrency} at a time; "
          f"cold: {a.clients} client(s) at once; warm = median of {a.rounds}")
    print(f"| {'':38} | cold pull (s) | cold first byte (s) | warm pull (s) |")
    print(f"|{'-' * 40}|--------------:|--------------------:|--------------:|")
    for name, cold, first, warm in rows:
        c = "" if cold is None else f"{cold:.2f}"
        f = "" if first is None else f"{first:.2f}"
        print(f"| {name:38} | {c:>13} | {f:>19} | {warm:13.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
