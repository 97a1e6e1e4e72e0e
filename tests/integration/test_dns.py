"""Name resolution on user-defined networks: the embedded DNS server at 127.0.0.11.

Containers on the same user-defined network find each other by name, network
alias and short id; names on other networks and on the default bridge do not
resolve.  Only names the engine answers itself (or a DNS server the test runs
on the host's loopback) are queried: nothing leaves the machine.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading

import dns.message
import dns.rrset
import pytest

from engine_harness import uniq  # noqa: E402

pytestmark = pytest.mark.usefixtures("cleanup_containers")

BUSYBOX = "busybox:latest"


@pytest.fixture
def networks(engine):
    """Create user-defined networks for a test; removed afterwards (after its containers)."""
    made: list[str] = []

    def make(*extra: str) -> str:
        name = uniq("dyn")
        engine.cli_ok("network", "create", *extra, name)
        made.append(name)
        return name

    yield make
    api = engine.api()
    for c in api.containers(all=True):  # containers first: a network in use cannot go
        nets = (c.get("NetworkSettings") or {}).get("Networks") or {}
        if set(nets) & set(made):
            api.remove_container(c["Id"], force=True)
    for name in made:
        engine.cli("network", "rm", name)


def nslookup_ips(out: str, name: str) -> list[str]:
    """The addresses busybox nslookup printed for `name` (skipping the server's own)."""
    ips, seen = [], False
    for line in out.splitlines():
        if line.startswith("Name:") and line.split()[-1] == name:
            seen = True
        elif seen and line.startswith("Address"):
            ips.append(line.split()[-1])
    return ips


def test_names_aliases_and_short_ids_resolve_on_a_user_network(engine, networks):
    n1 = networks()
    other = uniq("other")
    oid = engine.cli_ok("run", "-d", "--name", other, "--network", n1, "--network-alias", "db",
                 "--network-alias", "cache", BUSYBOX, "sleep", "60").strip()
    oip = json.loads(engine.cli_ok("inspect", oid))[0]["NetworkSettings"]["Networks"][n1]["IPAddress"]
    assert oip
    out = engine.cli_ok("run", "--rm", "--network", n1, BUSYBOX, "cat", "/etc/resolv.conf")
    assert "nameserver 127.0.0.11" in out.splitlines()
    out = engine.cli_ok("run", "--rm", "--network", n1, BUSYBOX, "ping", "-c1", "-W3", other)
    assert f"({oip})" in out and "1 packets received" in out
    out = engine.cli_ok("run", "--rm", "--network", n1, BUSYBOX, "nslookup", other, "127.0.0.11")
    assert nslookup_ips(out, other) == [oip]
    for name in ("db", "cache", oid[:12], other.upper()):
        out = engine.cli_ok("run", "--rm", "--network", n1, BUSYBOX, "nslookup", name, "127.0.0.11")
        assert nslookup_ips(out, name) == [oip], (name, out)
    # reverse lookup: <name>.<network>
    out = engine.cli_ok("run", "--rm", "--network", n1, BUSYBOX, "nslookup", oip, "127.0.0.11")
    assert f"{other}.{n1}" in out
    # over TCP too (asked from inside the peer's network namespace)
    sandbox = json.loads(engine.cli_ok("inspect", oid))[0]["NetworkSettings"]["SandboxKey"]
    r = subprocess.run(
        ["nsenter", f"--net={sandbox}", sys.executable, "-c",
         "import dns.message, dns.query; q = dns.message.make_query('db', 'A');"
         "print(dns.query.tcp(q, '127.0.0.11', timeout=5).answer[0][0].address)"],
        capture_output=True, text=True, timeout=30)
    assert r.stdout.strip() == oip, r.stderr
    # the endpoint shows its DNS names
    ep = json.loads(engine.cli_ok("inspect", oid))[0]["NetworkSettings"]["Networks"][n1]
    assert {other, oid[:12], "db", "cache"} <= set(ep["DNSNames"])


def test_names_on_other_networks_and_the_default_bridge_do_not_resolve(engine, networks):
    n1, n2 = networks(), networks()
    a, b = uniq("a"), uniq("b")
    engine.cli_ok("run", "-d", "--name", a, "--network", n1, BUSYBOX, "sleep", "60")
    engine.cli_ok("run", "-d", "--name", b, "--network", n2, "--network-alias", "bee", BUSYBOX, "sleep", "60")
    r = engine.cli("run", "--rm", "--network", n1, BUSYBOX, "nslookup", b, "127.0.0.11")
    assert r.returncode != 0 and "NXDOMAIN" in r.stdout.decode() + r.stderr.decode()
    r = engine.cli("run", "--rm", "--network", n1, BUSYBOX, "nslookup", "bee", "127.0.0.11")
    assert r.returncode != 0
    # while n2's own members see it
    out = engine.cli_ok("run", "--rm", "--network", n2, BUSYBOX, "nslookup", "bee", "127.0.0.11")
    assert len(nslookup_ips(out, "bee")) == 1
    # the default bridge: no embedded server, the usual resolv.conf
    out = engine.cli_ok("run", "--rm", BUSYBOX, "cat", "/etc/resolv.conf")
    assert "127.0.0.11" not in out
    r = engine.cli("run", "--rm", BUSYBOX, "nslookup", a, "127.0.0.11")
    assert r.returncode != 0


def test_other_names_are_forwarded_to_the_upstream(engine, networks):
    """--dns 127.0.0.1 names the upstream; a DNS server of the test's own answers there."""
    try:
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 53))
    except OSError:
        pytest.skip("127.0.0.1:53 is taken on this host")
    udp.settimeout(0.2)
    stop = threading.Event()
    asked: list[str] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                data, addr = udp.recvfrom(2048)
            except socket.timeout:
                continue
            q = dns.message.from_wire(data)
            asked.append(q.question[0].name.to_text())
            resp = dns.message.make_response(q)
            if q.question[0].rdtype == 1:
                resp.answer.append(dns.rrset.from_text(q.question[0].name, 60, "IN", "A", "192.0.2.99"))
            udp.sendto(resp.to_wire(), addr)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        n1 = networks()
        out = engine.cli_ok("run", "--rm", "--network", n1, "--dns", "127.0.0.1", BUSYBOX,
                     "sh", "-c", "cat /etc/resolv.conf; nslookup www.example.test")
        assert "nameserver 127.0.0.11" in out
        assert nslookup_ips(out, "www.example.test") == ["192.0.2.99"]
        assert "www.example.test." in asked
    finally:
        stop.set()
        t.join()
        udp.close()


def test_resolution_survives_engine_restart(private_engine):
    eng = private_engine()
    net = uniq("dyn")
    eng.cli_ok("network", "create", net)
    a, b = uniq("a"), uniq("b")
    port = _free_port()
    eng.cli_ok("run", "-d", "--name", a, "--network", net, BUSYBOX, "sleep", "300")
    eng.cli_ok("run", "-d", "--name", b, "--network", net, "-p", f"{port}:80", BUSYBOX, "sh", "-c",
           "mkdir -p /www && echo hi > /www/index.html && exec httpd -f -p 80 -h /www")
    assert nslookup_ips(eng.cli_ok("exec", a, "nslookup", b, "127.0.0.11"), b)
    assert eng.stop() == 0  # containers keep running
    eng.start()
    out = eng.cli_ok("exec", a, "nslookup", b, "127.0.0.11")
    assert len(nslookup_ips(out, b)) == 1
    # the published port works and is still reserved
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert b"hi" in s.recv(4096) + s.recv(4096)
    s = socket.socket()
    with pytest.raises(OSError):
        s.bind(("0.0.0.0", port))
    s.close()
    eng.cli_ok("rm", "-f", a, b)
    eng.cli_ok("network", "rm", net)


def _free_port() -> int:
    s = socket.socket()
    s.bind(("0.0.0.0", 0))
    port = s.getsockname()[1]
    s.close()
    return port
