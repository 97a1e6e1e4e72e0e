"""Benchmark dockyard registry against Debian's docker-registry (CNCF Distribution) on loopback.

    python bench/registry_bench.py [--size-mib 512] [--small 1000] [--clients 16] [--manifest-gets 5000]

Both servers run with filesystem storage in temp dirs, no auth, on free loopback
ports, started and stopped by this script.  The same clients hit both:
  * one big blob: POST, then a monolithic PUT whose body goes out with sendfile(2)
    (timed until the 201 arrives, i.e. received, hashed and stored), then a GET read
    into a reused buffer (timed until the last byte);
  * N small (1 KiB) blobs pushed POST+PUT by C concurrent aiohttp clients;
  * manifest GETs by tag from C concurrent clients: requests per second.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

MIB = 1 << 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(port: int, proc: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


def start_dockyard(tmp: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "dockyard.cli", "registry", "--addr", f"127.0.0.1:{port}",
                             "--root", str(tmp / "dockyard"), "--log-level", "warning"],
                            stdout=subprocess.DEVNULL, stderr=open(tmp / "dockyard.log", "wb"))
    wait_up(port, proc)
    return proc, port


def start_distribution(tmp: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    cfg = tmp / "distribution.yml"
    cfg.write_text(json.dumps({  # JSON is YAML
        "version": 0.1, "log": {"level": "error", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(tmp / "distribution")}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }))
    proc = subprocess.Popen(["/usr/bin/docker-registry", "serve", str(cfg)],
                            stdout=subprocess.DEVNULL, stderr=open(tmp / "distribution.log", "wb"))
    wait_up(port, proc)
    return proc, port


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- raw HTTP/1.1 for the big blob ------------------------------------------------------

def _read_head(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
    return status, headers, rest


def _request(port: int, method: str, path: str, body_file: Path | None = None) -> tuple[int, dict[str, str]]:
    with socket.create_connection(("127.0.0.1", port)) as s:
        size = body_file.stat().st_size if body_file else 0
        s.sendall(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {size}\r\n"
                  f"Content-Type: application/octet-stream\r\nConnection: close\r\n\r\n".encode())
        if body_file:
            with open(body_file, "rb") as f:
                s.sendfile(f)
        status, headers, _ = _read_head(s)
        return status, headers


def put_big(port: int, repo: str, blob: Path, digest: str) -> float:
    status, h = _request(port, "POST", f"/v2/{repo}/blobs/uploads/")
    assert status == 202, status
    loc = h["location"]
    if loc.startswith("http"):
        loc = "/" + loc.split("/", 3)[3]
    sep = "&" if "?" in loc else "?"
    t0 = time.perf_counter()
    status, _ = _request(port, "PUT", f"{loc}{sep}digest={digest}", blob)
    dt = time.perf_counter() - t0
    assert status == 201, status
    return dt


def get_big(port: int, repo: str, digest: str, size: int) -> float:
    buf = bytearray(4 * MIB)
    view = memoryview(buf)
    t0 = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(f"GET /v2/{repo}/blobs/{digest} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        status, headers, rest = _read_head(s)
        assert status == 200, status
        got = len(rest)
        while got < size:
            n = s.recv_into(view)
            if not n:
                break
            got += n
    dt = time.perf_counter() - t0
    assert got == size, (got, size)
    return dt


# --- concurrent small work ---------------------------------------------------------------

async def push_small(port: int, n: int, clients: int) -> float:
    base = f"http://127.0.0.1:{port}"
    blobs = [os.urandom(1024) for _ in range(n)]
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for b in blobs:
        queue.put_nowait(b)

    async def worker(session: aiohttp.ClientSession) -> None:
        while True:
            try:
                b = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            async with session.post(f"{base}/v2/bench/small/blobs/uploads/") as r:
                assert r.status == 202, r.status
                loc = r.headers["Location"]
            url = loc if loc.startswith("http") else base + loc
            sep = "&" if "?" in url else "?"
            d = "sha256:" + hashlib.sha256(b).hexdigest()
            async with session.put(f"{url}{sep}digest={d}", data=b) as r:
                assert r.status == 201, r.status

    conn = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=conn) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(clients)))
        return time.perf_counter() - t0


async def manifest_gets(port: int, total: int, clients: int) -> float:
    base = f"http://127.0.0.1:{port}"
    conn = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=conn) as session:
        # One image: config + layer + manifest.
        digests = []
        for content in (b'{"architecture":"amd64","os":"linux"}', os.urandom(2048)):
            d = "sha256:" + hashlib.sha256(content).hexdigest()
            async with session.post(f"{base}/v2/bench/manifest/blobs/uploads/") as r:
                loc = r.headers["Location"]
            url = loc if loc.startswith("http") else base + loc
            sep = "&" if "?" in url else "?"
            async with session.put(f"{url}{sep}digest={d}", data=content) as r:
                assert r.status == 201
            digests.append((d, len(content)))
        mt = "application/vnd.oci.image.manifest.v1+json"
        manifest = json.dumps({"schemaVersion": 2, "mediaType": mt,
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                          "digest": digests[0][0], "size": digests[0][1]},
                               "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                           "digest": digests[1][0], "size": digests[1][1]}]}).encode()
        async with session.put(f"{base}/v2/bench/manifest/manifests/latest", data=manifest,
                               headers={"Content-Type": mt}) as r:
            assert r.status == 201, await r.text()
        left = [total]

        async def worker() -> None:
            while left[0] > 0:
                left[0] -= 1
                async with session.get(f"{base}/v2/bench/manifest/manifests/latest",
                                       headers={"Accept": mt}) as r:
                    assert r.status == 200
                    await r.read()

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return total / (time.perf_counter() - t0)


def run_one(name: str, port: int, blob: Path, digest: str, size: int, args: argparse.Namespace) -> dict:
    res: dict[str, float] = {}
    os.sync()  # start both servers with no dirty pages pending writeback
    time.sleep(1)
    res["put_big_s"] = put_big(port, "bench/big", blob, digest)
    get_big(port, "bench/big", digest, size)  # warm the page cache equally for both
    gets = sorted(get_big(port, "bench/big", digest, size) for _ in range(7))
    res["get_big_s"] = gets[len(gets) // 2]  # median: page-cache writeback makes single runs noisy
    res["get_big_min_s"] = gets[0]
    res["small_push_s"] = asyncio.run(push_small(port, args.small, args.clients))
    res["manifest_get_rps"] = asyncio.run(manifest_gets(port, args.manifest_gets, args.clients))
    return res


def make_big_blob(path: Path, size_mib: int) -> tuple[str, int]:
    """A blob of size_mib (a multiple of 16) random bytes: (digest, size)."""
    h = hashlib.sha256()
    with open(path, "wb") as f:
        chunk = os.urandom(16 * MIB)
        for i in range(size_mib // 16):
            # Vary each 16 MiB so nothing is trivially compressible or repeated.
            c = hashlib.sha256(str(i).encode()).digest() * 2 + chunk[64:]
            f.write(c)
            h.update(c)
    return "sha256:" + h.hexdigest(), path.stat().st_size


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=512)
    ap.add_argument("--small", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--manifest-gets", type=int, default=5000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="registry-bench-"))
    procs: list[subprocess.Popen] = []
    try:
        blob = tmp / "big.bin"
        digest, size = make_big_blob(blob, args.size_mib)
        results = {}
        for name, starter in (("distribution", start_distribution), ("dockyard", start_dockyard)):
            proc, port = starter(tmp)
            procs.append(proc)
            try:
                results[name] = run_one(name, port, blob, digest, size, args)
            finally:
                stop(proc)
        print(f"{'':28}{'distribution 2.8':>18}{'dockyard':>12}")
        rows = [("PUT %d MiB blob (s)" % args.size_mib, "put_big_s", "%.2f"),
                ("GET %d MiB blob, median (s)" % args.size_mib, "get_big_s", "%.2f"),
                ("GET %d MiB blob, best (s)" % args.size_mib, "get_big_min_s", "%.2f"),
                (f"{args.small} small blobs x{args.clients} (s)", "small_push_s", "%.2f"),
                ("manifest GET (req/s)", "manifest_get_rps", "%.0f")]
        for label, key, fmt in rows:
            print(f"{label:28}{fmt % results['distribution'][key]:>18}{fmt % results['dockyard'][key]:>12}")
        print(json.dumps(results))
    finally:
        for p in procs:
            stop(p)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
