"""Published ports through the docker CLI: -p, -P, ephemeral ports, udp, conflicts, cleanup.

A busybox httpd serves in the container; the host reaches it with Python
sockets at 127.0.0.1:<port> and at its primary address, other containers
through the host port (hairpin).  Host ports are picked free per test.
"""

from __future__ import annotations

import errno
import json
import socket
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.usefixtures("cleanup_containers")

BUSYBOX = "busybox:latest"
HTTPD = "mkdir -p /www && echo hello-$(hostname) > /www/index.html && exec httpd -f -p 80 -h /www"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("0.0.0.0", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def primary_ip() -> str:
    """The host's address on its default route (a UDP connect sends nothing)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("203.0.113.1", 9))
        return s.getsockname()[0]
    except OSError:
        pytest.skip("no default route on this host")
    finally:
        s.close()


def http_get(host: str, port: int, deadline: float = 15.0) -> str:
    """GET / from host:port, retrying while the server in the container starts."""
    end = time.monotonic() + deadline
    last: Exception | None = None
    while time.monotonic() < end:
        try:
            with socket.create_connection((host, port), timeout=3) as s:
                s.sendall(b"GET / HTTP/1.0\r\n\r\n")
                data = b""
                while chunk := s.recv(4096):
                    data += chunk
            if data:
                return data.decode(errors="replace")
        except OSError as exc:
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"no answer from {host}:{port}: {last}")


def inspect(engine, ref: str) -> dict:
    return json.loads(engine.cli_ok("inspect", ref))[0]


def nat_rules() -> str:
    return subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True).stdout


def test_publish_reached_from_host_and_other_containers(engine):
    port = free_port()
    cid = engine.cli_ok("run", "-d", "-p", f"{port}:80", BUSYBOX, "sh", "-c", HTTPD).strip()
    hostname = cid[:12]
    # the host itself, through loopback and through its primary address
    assert f"hello-{hostname}" in http_get("127.0.0.1", port)
    assert f"hello-{hostname}" in http_get(primary_ip(), port)
    # another container, through the host's address (hairpin on the same bridge)
    out = engine.cli_ok("run", "--rm", BUSYBOX, "sh", "-c",
                 f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 10 nc {primary_ip()} {port}")
    assert f"hello-{hostname}" in out
    # what docker shows
    ports = inspect(engine, cid)["NetworkSettings"]["Ports"]
    assert ports == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(port)}]}
    assert engine.cli_ok("port", cid).strip() == f"80/tcp -> 0.0.0.0:{port}"
    assert engine.cli_ok("port", cid, "80").strip() == f"0.0.0.0:{port}"
    ps = engine.cli_ok("ps", "--filter", f"id={cid}", "--format", "{{.Ports}}").strip()
    assert ps == f"0.0.0.0:{port}->80/tcp"


def test_host_ip_ephemeral_and_udp(engine):
    tport, uport = free_port(), free_port(socket.SOCK_DGRAM)
    cid = engine.cli_ok("run", "-d", "-p", f"127.0.0.1:{tport}:80/tcp", "-p", "80",
                 "-p", f"127.0.0.1:{uport}:5353/udp", BUSYBOX, "sh", "-c", HTTPD).strip()
    ports = inspect(engine, cid)["NetworkSettings"]["Ports"]
    assert {"HostIp": "127.0.0.1", "HostPort": str(tport)} in ports["80/tcp"]
    ephemeral = [int(b["HostPort"]) for b in ports["80/tcp"] if b["HostIp"] == "0.0.0.0"]
    assert len(ephemeral) == 1 and ephemeral[0] > 0
    assert ports["5353/udp"] == [{"HostIp": "127.0.0.1", "HostPort": str(uport)}]
    assert "hello" in http_get("127.0.0.1", tport)
    assert "hello" in http_get("127.0.0.1", ephemeral[0])
    # bound to 127.0.0.1 only: the primary address is not forwarded
    with pytest.raises(OSError):
        socket.create_connection((primary_ip(), tport), timeout=3).close()
    # udp: an echo server inside the container's network namespace (busybox has none)
    sandbox = inspect(engine, cid)["NetworkSettings"]["SandboxKey"]
    echo = subprocess.Popen(
        ["nsenter", f"--net={sandbox}", sys.executable, "-c",
         "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', 5353));"
         "print('ready', flush=True); d, a = s.recvfrom(100); s.sendto(b'echo:' + d, a)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert echo.stdout.readline().strip() == "ready"
        c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        c.settimeout(5)
        c.sendto(b"ping", ("127.0.0.1", uport))
        assert c.recvfrom(100)[0] == b"echo:ping"
        c.close()
    finally:
        echo.kill()
        echo.wait()
    ps = engine.cli_ok("ps", "--filter", f"id={cid}", "--format", "{{.Ports}}")
    assert f"127.0.0.1:{tport}->80/tcp" in ps and f"127.0.0.1:{uport}->5353/udp" in ps
    assert f"0.0.0.0:{ephemeral[0]}->80/tcp" in ps
    # the udp flow's conntrack entry (DNATed to the container) goes with the container
    cip = inspect(engine, cid)["NetworkSettings"]["IPAddress"]
    assert udp_flows(cip, 5353) >= 1
    engine.cli_ok("rm", "-f", cid)
    assert udp_flows(cip, 5353) == 0


def udp_flows(ip: str, port: int) -> int:
    from pyroute2 import Conntrack
    from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple

    with Conntrack() as ct:
        return len(list(ct.dump_entries(tuple_reply=NFCTAttrTuple(saddr=ip, proto=17, sport=port))))


def test_publish_all_from_exposed_ports(engine):
    cid = engine.cli_ok("run", "-d", "-P", "--expose", "80", "--expose", "7000/udp",
                 BUSYBOX, "sh", "-c", HTTPD).strip()
    ports = inspect(engine, cid)["NetworkSettings"]["Ports"]
    assert set(ports) == {"80/tcp", "7000/udp"}
    hp = int(ports["80/tcp"][0]["HostPort"])
    assert ports["80/tcp"][0]["HostIp"] == "0.0.0.0" and hp > 0
    assert "hello" in http_get("127.0.0.1", hp)
    # exposed but not published without -P: listed as null
    other = engine.cli_ok("run", "-d", "--expose", "81", BUSYBOX, "sleep", "30").strip()
    assert inspect(engine, other)["NetworkSettings"]["Ports"] == {"81/tcp": None}
    assert engine.cli_ok("ps", "--filter", f"id={other}", "--format", "{{.Ports}}").strip() == "81/tcp"


def test_port_conflicts_are_clear_errors(engine):
    port = free_port()
    first = engine.cli_ok("run", "-d", "-p", f"{port}:80", BUSYBOX, "sh", "-c", HTTPD).strip()
    r = engine.cli("run", "-d", "-p", f"{port}:80", BUSYBOX, "sleep", "30")
    assert r.returncode != 0
    assert f"Bind for 0.0.0.0:{port} failed: port is already allocated" in r.stderr.decode()
    # the failed container left no rule behind; the first still serves
    assert nat_rules().count(f"--dport {port} ") == 1
    assert "hello" in http_get("127.0.0.1", port)
    # a port held by another program on the host
    holder = socket.socket()
    holder.bind(("0.0.0.0", 0))
    held = holder.getsockname()[1]
    try:
        r = engine.cli("run", "-d", "-p", f"{held}:80", BUSYBOX, "sleep", "30")
        assert r.returncode != 0 and "port is already allocated" in r.stderr.decode()
        assert f"--dport {held} " not in nat_rules()
    finally:
        holder.close()
    # the engine holds the reservation: nobody else can bind the published port
    s = socket.socket()
    with pytest.raises(OSError) as err:
        s.bind(("0.0.0.0", port))
    assert err.value.errno == errno.EADDRINUSE
    s.close()
    engine.cli_ok("rm", "-f", first)


def test_rules_and_reservation_removed_when_container_stops(engine):
    port = free_port()
    cid = engine.cli_ok("run", "-d", "-p", f"{port}:80", BUSYBOX, "sh", "-c", HTTPD).strip()
    ip = inspect(engine, cid)["NetworkSettings"]["IPAddress"]
    assert f"--dport {port} -j DNAT --to-destination {ip}:80" in nat_rules()
    engine.cli_ok("stop", "-t", "1", cid)
    assert f"--dport {port} " not in nat_rules()
    assert inspect(engine, cid)["NetworkSettings"]["Ports"] == {}
    assert engine.cli_ok("port", cid).strip() == ""
    s = socket.socket()
    s.bind(("0.0.0.0", port))  # free again
    s.close()
    # and back on start, with the same host port
    engine.cli_ok("start", cid)
    assert "hello" in http_get("127.0.0.1", port)


def test_invalid_port_bindings_are_400_at_create(engine, api):
    """As with Docker, bad bindings never make a container."""
    import docker.errors

    before = len(api.containers(all=True))
    for bad in ({"80/tcp": [{"HostPort": "99999"}]}, {"80/tcp": [{"HostIp": "nope", "HostPort": "80"}]},
                {"80/sctp": [{"HostPort": "80"}]}):
        with pytest.raises(docker.errors.APIError) as err:
            api.create_container(BUSYBOX, "true", host_config={"PortBindings": bad})
        assert err.value.status_code == 400, bad
    assert len(api.containers(all=True)) == before
