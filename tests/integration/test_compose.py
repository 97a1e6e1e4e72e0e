"""docker-compose 1.29 (Debian's, on docker-py) drives a multi-service project against the engine.

One project is brought up for the module (build with args and target, a healthy dependency,
several networks with aliases and a fixed address, an internal network, a named volume, a
published port, a scaled service) and each test checks one behaviour through compose; the last
ones take it down.  Projects, subnets and ports are the test's own; everything the project
made is removed even when a test fails.
"""

from __future__ import annotations

import ipaddress
import json
import random
import re
import secrets
import shutil
import socket
import subprocess
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest

COMPOSE = shutil.which("docker-compose") or "docker-compose"
LABEL = "com.docker.compose.project"

DOCKERFILE = """\
FROM busybox:latest AS base
ARG GREETING=hello
RUN echo "$GREETING from base" > /greeting
FROM base AS api
ARG FLAVOR=plain
RUN echo "api $FLAVOR" > /flavor && mkdir -p /www && echo "served by api" > /www/index.html
HEALTHCHECK --interval=1s --timeout=5s --retries=60 CMD test -f /tmp/ready
# healthy only two seconds after it starts: what depends on it cannot start before
CMD ["sh", "-c", "sleep 2; touch /tmp/ready; exec httpd -f -p 8080 -h /www"]
FROM api AS final
RUN echo "final stage" > /final
"""

COMPOSE_FILE = """\
version: "2.4"
services:
  api:
    build:
      context: ./app
      target: api
      args:
        GREETING: bonjour
        FLAVOR: spicy
    ports:
      - "127.0.0.1:{port}:8080"
    networks:
      front:
        aliases: [api-front]
        ipv4_address: {fixed_ip}
      back:
        aliases: [api-back]
    volumes:
      - data:/data
  worker:
    image: busybox:latest
    command: sh -c "echo worker up; exec sleep 600"
    stop_signal: SIGKILL
    depends_on:
      api:
        condition: service_healthy
    networks: [back, private]
    volumes:
      - data:/shared:ro
    healthcheck:
      test: ["CMD", "true"]
      interval: 1s
  replica:
    image: busybox:latest
    command: {replica_cmd}
    stop_signal: SIGKILL
    networks: [back]
networks:
  front:
    ipam:
      config:
        - subnet: {subnet}
  back: {{}}
  private:
    internal: true
volumes:
  data: {{}}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _free_subnet() -> ipaddress.IPv4Network:
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    used = [ipaddress.ip_network(w, strict=False) for w in re.findall(r"^(\d+\.\d+\.\d+\.\d+/\d+)", routes, re.M)]
    while True:
        cand = ipaddress.ip_network(f"10.{random.randint(100, 250)}.{random.randint(0, 255)}.0/24")
        if not any(cand.overlaps(u) for u in used):
            return cand


class Project:
    """A compose project in a temp dir, run against the test engine."""

    def __init__(self, engine, root: Path) -> None:
        self.engine = engine
        self.dir = root
        self.name = f"dyc{secrets.token_hex(3)}"
        self.port = _free_port()
        self.subnet = _free_subnet()
        self.fixed_ip = str(self.subnet.network_address + 50)
        (root / "app").mkdir()
        (root / "app" / "Dockerfile").write_text(DOCKERFILE)
        self.write(replica_cmd="sleep 600")

    def write(self, replica_cmd: str, without: str | None = None, path: str = "docker-compose.yml") -> None:
        text = COMPOSE_FILE.format(port=self.port, fixed_ip=self.fixed_ip, subnet=self.subnet,
                                   replica_cmd=replica_cmd)
        if without:  # drop one service (its containers become orphans)
            text = re.sub(rf"  {without}:\n(    .*\n)+", "", text)
        (self.dir / path).write_text(text)

    def run(self, *args: str, timeout: float = 300, input: bytes | None = None,
            file: str = "docker-compose.yml") -> subprocess.CompletedProcess:
        env = self.engine.docker_env
        env["COMPOSE_HTTP_TIMEOUT"] = "300"
        return subprocess.run([COMPOSE, "--ansi", "never", "-p", self.name, "-f", str(self.dir / file), *args],
                              cwd=self.dir, env=env, capture_output=True, timeout=timeout, input=input)

    def ok(self, *args: str, **kw) -> str:
        r = self.run(*args, **kw)
        assert r.returncode == 0, (f"docker-compose {' '.join(args)} -> {r.returncode}\n{r.stderr.decode()}"
                                   f"{r.stdout.decode()}\n--- engine ---\n{self.engine.log_tail(3000)}")
        return r.stdout.decode()

    def containers(self, service: str | None = None, all: bool = True) -> list[dict]:
        labels = [f"{LABEL}={self.name}"] + ([f"com.docker.compose.service={service}"] if service else [])
        return self.engine.api().containers(all=all, filters={"label": labels})

    def inspect(self, service: str, number: int = 1) -> dict:
        return self.engine.api().inspect_container(f"{self.name}_{service}_{number}")

    def purge(self) -> None:
        """Whatever `down` left (a failed test): containers, networks, volumes of the project."""
        api = self.engine.api()
        for c in self.containers():
            api.remove_container(c["Id"], force=True, v=True)
        for n in api.networks(filters={"label": f"{LABEL}={self.name}"}):
            api.remove_network(n["Id"])
        for v in (api.volumes(filters={"label": f"{LABEL}={self.name}"}) or {}).get("Volumes") or []:
            api.remove_volume(v["Name"], force=True)
        try:
            api.remove_image(f"{self.name}_api", force=True)
        except Exception:
            pass


def _wait(cond, what: str, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _ts(s: str) -> datetime:
    # RFC 3339 with nanoseconds: keep microseconds for fromisoformat
    m = re.match(r"(.*\.\d{1,6})\d*(Z|[+-].*)$", s)
    s = (m.group(1) + m.group(2)) if m else s
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def project(engine, tmp_path_factory):
    p = Project(engine, tmp_path_factory.mktemp("compose"))
    try:
        p.started = int(time.time()) - 1
        p.ok("up", "-d", "--scale", "replica=3", timeout=600)
        yield p
    finally:
        p.run("down", "-v", "--remove-orphans", "-t", "1")
        p.purge()


def test_build_with_args_and_target(project):
    out = project.ok("exec", "-T", "api", "cat", "/greeting", "/flavor")
    assert out.split("\n")[:2] == ["bonjour from base", "api spicy"]
    # the target stage, not the last one
    r = project.run("exec", "-T", "api", "test", "-e", "/final")
    assert r.returncode == 1
    img = project.engine.api().inspect_image(f"{project.name}_api")
    assert img["Config"]["Healthcheck"]["Test"] == ["CMD-SHELL", "test -f /tmp/ready"]


def test_depends_on_waits_for_a_healthy_dependency(project):
    api, worker = project.inspect("api"), project.inspect("worker")
    assert api["State"]["Health"]["Status"] == "healthy"
    # the engine's own record: the api's first "healthy" comes before the worker's start
    events = project.engine.api().events(since=project.started, until=time.time() + 1, decode=True)
    order = [(e["Action"], e["id"]) for e in events if e.get("Type") == "container"]
    healthy = order.index(("health_status: healthy", api["Id"]))
    assert order.index(("start", worker["Id"])) > healthy
    assert order.index(("start", api["Id"])) < healthy
    assert (_ts(worker["State"]["StartedAt"]) - _ts(api["State"]["StartedAt"])).total_seconds() >= 2


def test_healthchecks_show_in_ps(project):
    _wait(lambda: project.inspect("worker")["State"]["Health"]["Status"] == "healthy", "worker healthy")
    out = project.ok("ps")
    lines = {l.split()[0]: l for l in out.splitlines() if l.startswith(project.name)}
    assert "Up (healthy)" in lines[f"{project.name}_api_1"]
    assert "Up (healthy)" in lines[f"{project.name}_worker_1"]
    assert "(healthy)" not in lines[f"{project.name}_replica_1"]


def test_networks_aliases_and_fixed_address(project):
    api = project.inspect("api")
    nets = api["NetworkSettings"]["Networks"]
    front, back = f"{project.name}_front", f"{project.name}_back"
    assert set(nets) == {front, back}
    assert nets[front]["IPAddress"] == project.fixed_ip
    assert nets[front]["IPAMConfig"]["IPv4Address"] == project.fixed_ip
    assert {"api", "api-front"} <= set(nets[front]["Aliases"])
    assert {"api", "api-back"} <= set(nets[back]["Aliases"])
    out = project.ok("exec", "-T", "api", "ip", "-o", "-4", "addr")
    assert f"{project.fixed_ip}/24" in out
    # the worker shares `back` with the api: its alias there resolves, the `front` one does not
    out = project.ok("exec", "-T", "worker", "nslookup", "api-back", "127.0.0.11")
    assert nets[back]["IPAddress"] in out
    r = project.run("exec", "-T", "worker", "nslookup", "api-front", "127.0.0.11")
    assert project.fixed_ip not in r.stdout.decode()
    out = project.ok("exec", "-T", "api", "nslookup", "api-front", "127.0.0.11")
    assert project.fixed_ip in out
    net = project.engine.api().inspect_network(front)
    assert net["IPAM"]["Config"][0]["Subnet"] == str(project.subnet)
    assert net["Labels"][LABEL] == project.name


def test_internal_network_is_brought_up(project):
    api = project.engine.api()
    net = api.inspect_network(f"{project.name}_private")
    assert net["Internal"] is True
    worker = project.inspect("worker")
    assert set(worker["NetworkSettings"]["Networks"]) == {f"{project.name}_back", f"{project.name}_private"}
    assert worker["Id"] in net["Containers"]


def test_published_port(project):
    ports = project.inspect("api")["NetworkSettings"]["Ports"]
    assert ports["8080/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(project.port)}]
    body = _wait(lambda: _http(f"http://127.0.0.1:{project.port}/"), "the published port")
    assert body == "served by api\n"
    assert project.ok("port", "api", "8080").strip() == f"127.0.0.1:{project.port}"


def _http(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.read().decode()
    except OSError:
        return None


def test_scale_every_replica_resolves_by_service_name(project):
    replicas = project.containers("replica")
    assert len(replicas) == 3
    back = f"{project.name}_back"
    ips = {project.engine.api().inspect_container(c["Id"])["NetworkSettings"]["Networks"][back]["IPAddress"]
           for c in replicas}
    assert len(ips) == 3
    out = project.ok("exec", "-T", "worker", "nslookup", "replica", "127.0.0.11")
    answers = set(re.findall(r"Address: (\d+\.\d+\.\d+\.\d+)", out))
    assert answers == ips


def test_named_volume_and_run_rm(project):
    project.ok("exec", "-T", "api", "sh", "-c", "echo kept > /data/note")
    vol = project.engine.api().inspect_volume(f"{project.name}_data")
    assert vol["Labels"][LABEL] == project.name
    before = {c["Id"] for c in project.containers()}
    # a one-off container of another service that mounts the volume sees the file
    out = project.ok("run", "--rm", "-e", "X=42", "worker", "sh", "-c", "cat /shared/note; echo x=$X")
    assert out.splitlines()[-2:] == ["kept", "x=42"]
    assert {c["Id"] for c in project.containers()} == before


def test_exec_exit_code_and_stdin(project):
    assert project.run("exec", "-T", "worker", "sh", "-c", "exit 7").returncode == 7
    out = project.ok("exec", "-T", "worker", "sh", "-c", "tr a-z A-Z", input=b"shout\n")
    assert out == "SHOUT\n"


def test_logs(project):
    out = project.ok("logs", "--no-color", "worker")
    assert re.search(r"worker_1\s+\| worker up", out)


def test_stop_start_restart_kill(project):
    project.ok("stop", "-t", "1", "worker")
    assert project.inspect("worker")["State"]["Status"] == "exited"
    project.ok("start", "worker")
    assert project.inspect("worker")["State"]["Running"]
    started = project.inspect("replica", 2)["State"]["StartedAt"]
    project.ok("restart", "-t", "1", "replica")
    st = project.inspect("replica", 2)["State"]
    assert st["Running"] and st["StartedAt"] != started
    project.ok("kill", "-s", "SIGKILL", "replica")
    for c in project.containers("replica"):
        st = project.engine.api().inspect_container(c["Id"])["State"]
        assert st["Status"] == "exited" and st["ExitCode"] == 137
    project.ok("start", "replica")
    assert all(c["State"] == "running" for c in project.containers("replica"))


def test_recreation_only_when_configuration_changes(project):
    ids = {c["Names"][0]: c["Id"] for c in project.containers()}
    r = project.run("up", "-d", "--scale", "replica=3")
    assert r.returncode == 0, r.stderr.decode()
    assert "Recreating" not in r.stderr.decode()
    assert {c["Names"][0]: c["Id"] for c in project.containers()} == ids
    project.write(replica_cmd="sleep 601")
    err = project.run("up", "-d", "--scale", "replica=3")
    assert err.returncode == 0, err.stderr.decode()
    now = {c["Names"][0]: c["Id"] for c in project.containers()}
    assert set(now) == set(ids)
    for name, cid in now.items():
        assert (cid != ids[name]) == ("_replica_" in name), name
    assert all(project.engine.api().inspect_container(c["Id"])["Config"]["Cmd"] == ["sleep", "601"]
               for c in project.containers("replica"))
    # the recreated replicas still answer for the service name
    out = project.ok("exec", "-T", "worker", "nslookup", "replica", "127.0.0.11")
    assert len(set(re.findall(r"Address: (\d+\.\d+\.\d+\.\d+)", out)) - {"127.0.0.11"}) == 3


def test_down_removes_orphans_networks_and_volumes(project):
    project.write(replica_cmd="sleep 601", without="replica", path="without-replica.yml")
    out = project.run("down", "-v", "--remove-orphans", "-t", "1", file="without-replica.yml")
    assert out.returncode == 0, out.stderr.decode()
    assert "Removing orphan container" in out.stderr.decode()
    api = project.engine.api()
    assert project.containers() == []
    assert api.networks(filters={"label": f"{LABEL}={project.name}"}) == []
    assert [n for n in api.networks() if n["Name"].startswith(project.name)] == []
    vols = (api.volumes() or {}).get("Volumes") or []
    assert [v for v in vols if v["Name"].startswith(project.name)] == []
