"""A registry fleet for tests and benchmarks: N `dockyard registry` replicas on one S3 bucket
(moto's server), behind HAProxy on loopback (round-robin per request, no stickiness)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[:4]} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            requests.get(url, timeout=2)
            return
        except requests.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing answered at {url}:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Replica:
    index: int
    port: int
    root: Path
    log: Path
    config: Path
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self) -> str:
        return self.log.read_text()[-3000:] if self.log.exists() else ""


@dataclass
class Fleet:
    workdir: Path
    s3_endpoint: str
    bucket: str
    secret: str = "fleet-shared-secret"
    access_log: bool = True
    replicas: list[Replica] = field(default_factory=list)
    lb_port: int = 0
    lb_proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.lb_port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.lb_port}"

    def config(self, readonly: bool = False, redirect: bool = False, secret: str | None = None,
               purge: dict[str, Any] | None = None) -> dict[str, Any]:
        """Distribution's config.yml for a replica of this fleet."""
        return {
            "version": 0.1,
            "storage": {
                "s3": {"bucket": self.bucket, "region": "us-east-1", "regionendpoint": self.s3_endpoint,
                       "accesskey": "test", "secretkey": "test"},
                "delete": {"enabled": True},
                "redirect": {"disable": not redirect},
                "maintenance": {"readonly": {"enabled": readonly},
                                "uploadpurging": purge or {"enabled": False}},
            },
            "http": {"secret": self.secret if secret is None else secret},
        }

    def add_replica(self, **cfg: Any) -> Replica:
        i = len(self.replicas)
        d = self.workdir / f"replica{i}"
        d.mkdir(parents=True, exist_ok=True)
        r = Replica(i, free_port(), d / "root", d / "server.log", d / "config.yml")
        self.replicas.append(r)
        self.start(i, **cfg)
        return r

    def start(self, i: int, **cfg: Any) -> None:
        """(Re)start replica i on its port with this configuration."""
        r = self.replicas[i]
        stop(r.proc)
        r.config.write_text(yaml.safe_dump(self.config(**cfg)))
        args = [sys.executable, "-m", "dockyard.cli", "registry", "--addr", f"127.0.0.1:{r.port}",
                "--root", str(r.root), "--config", str(r.config)]
        args += ["--access-log"] if self.access_log else ["--log-level", "warn"]
        with r.log.open("ab") as out:
            r.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        wait_http(r.url + "/v2/", r.proc, r.log)

    def kill(self, i: int) -> None:
        r = self.replicas[i]
        assert r.proc is not None
        r.proc.send_signal(signal.SIGKILL)
        r.proc.wait()

    def start_lb(self) -> None:
        """HAProxy in the foreground: round-robin per request, health checks so a dead replica
        is skipped, and a refused connection retried on another replica."""
        self.lb_port = free_port()
        servers = "\n".join(f"    server r{r.index} 127.0.0.1:{r.port} check inter 300ms fall 1 rise 2"
                            for r in self.replicas)
        cfg = self.workdir / "haproxy.cfg"
        cfg.write_text(f"""global
    maxconn 2048
defaults
    mode http
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    retries 3
    option redispatch 1
frontend registry
    bind 127.0.0.1:{self.lb_port}
    default_backend replicas
backend replicas
    balance roundrobin
    option httpchk GET /v2/
{servers}
""")
        log = self.workdir / "haproxy.log"
        with log.open("wb") as out:
            self.lb_proc = subprocess.Popen(["haproxy", "-db", "-f", str(cfg)], stdout=out,
                                            stderr=subprocess.STDOUT)
        wait_http(self.url + "/v2/", self.lb_proc, log)

    def close(self) -> None:
        stop(self.lb_proc)
        for r in self.replicas:
            stop(r.proc)


def make_fleet(workdir: Path, s3_endpoint: str, n: int = 3, bucket: str | None = None,
               access_log: bool = True, **cfg: Any) -> Fleet:
    import boto3

    bucket = bucket or f"fleet-{os.urandom(4).hex()}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", aws_access_key_id="test",
                 aws_secret_access_key="test").create_bucket(Bucket=bucket)
    fleet = Fleet(workdir, s3_endpoint, bucket, access_log=access_log)
    try:
        for _ in range(n):
            fleet.add_replica(**cfg)
        fleet.start_lb()
    except BaseException:
        fleet.close()
        raise
    return fleet
