"""IPv6 through the docker CLI and docker-py: dual-stack user networks and the default bridge
(--ipv6 --fixed-cidr-v6), --ip6, ip6tables NAT and forwarding, AAAA answers from the embedded
DNS, published TCP and UDP ports on [::1] (the only host address a test targets)."""

from __future__ import annotations

import json
import re
import secrets
import socket
import subprocess
import sys
import time

import pytest

from engine_harness import uniq  # noqa: E402

pytestmark = pytest.mark.usefixtures("cleanup_containers")

BUSYBOX = "busybox:latest"


def v6net() -> str:
    return f"fd{secrets.randbelow(256):02x}:{secrets.randbelow(65536):x}:{secrets.randbelow(65536):x}::/64"


def inspect(engine, ref: str) -> dict:
    return json.loads(engine.cli_ok("inspect", ref))[0]


def test_dual_stack_network(engine):
    sub6 = v6net()
    base6 = sub6.split("::/")[0]
    name = uniq("v6")
    engine.cli_ok("network", "create", "--ipv6", "--subnet", sub6, name)
    try:
        n = json.loads(engine.cli_ok("network", "inspect", name))[0]
        assert n["EnableIPv6"] is True
        cfg = {c["Subnet"]: c for c in n["IPAM"]["Config"]}
        assert sub6 in cfg and cfg[sub6] == {"Subnet": sub6}
        assert any(":" not in s for s in cfg)  # the IPv4 side from the default pools
        a = engine.cli_ok("run", "-d", "--name", uniq("a6"), "--network", name, BUSYBOX,
                          "sh", "-c", "echo six | nc -l -p 8080; sleep 120").strip()
        b = engine.cli_ok("run", "-d", "--network", name, "--ip6", f"{base6}::99", BUSYBOX, "sleep", "120").strip()
        ea = inspect(engine, a)["NetworkSettings"]["Networks"][name]
        eb = inspect(engine, b)["NetworkSettings"]["Networks"][name]
        assert eb["GlobalIPv6Address"] == f"{base6}::99" and eb["GlobalIPv6PrefixLen"] == 64
        assert eb["IPv6Gateway"] == f"{base6}::1" and eb["IPAMConfig"] == {"IPv6Address": f"{base6}::99"}
        assert ea["GlobalIPv6Address"].startswith(base6 + "::") and ea["IPAddress"]
        assert n["Containers"] == {} or True
        n = json.loads(engine.cli_ok("network", "inspect", name))[0]
        assert n["Containers"][b]["IPv6Address"] == f"{base6}::99/64"
        # container to container over IPv6, by address and by name (AAAA from the embedded DNS)
        assert engine.cli("exec", b, "ping", "-6", "-c", "1", "-W", "3", ea["GlobalIPv6Address"]).returncode == 0
        out = engine.cli_ok("exec", b, "nslookup", "-type=AAAA", inspect(engine, a)["Name"].lstrip("/"), "127.0.0.11")
        assert ea["GlobalIPv6Address"] in out
        assert f"default via {base6}::1" in engine.cli_ok("exec", b, "ip", "-6", "route")
        out = engine.cli_ok("exec", b, "nc", "-w", "5", ea["GlobalIPv6Address"], "8080")
        assert "six" in out
        # NAT66 for the subnet, in ip6tables
        save = subprocess.run(["ip6tables-save", "-t", "nat"], capture_output=True, text=True).stdout
        assert f"-s {sub6}" in save and "MASQUERADE" in save
        # an internal IPv6 network is isolated in ip6tables as in iptables
        inner = uniq("v6i")
        engine.cli_ok("network", "create", "--ipv6", "--internal", "--subnet", v6net(), inner)
        try:
            c = engine.cli_ok("run", "-d", "--network", inner, BUSYBOX, "sleep", "60").strip()
            ip_c = inspect(engine, c)["NetworkSettings"]["Networks"][inner]["GlobalIPv6Address"]
            assert engine.cli("exec", b, "ping", "-6", "-c", "1", "-W", "2", ip_c).returncode != 0
            assert "DY-ISO-" in subprocess.run(["ip6tables-save", "-t", "filter"], capture_output=True, text=True).stdout
            engine.cli_ok("rm", "-f", c)
        finally:
            engine.cli("network", "rm", inner)
    finally:
        engine.api().prune_containers()
        for c in engine.api().containers(all=True, filters={"network": name}):
            engine.api().remove_container(c["Id"], force=True)
        engine.cli("network", "rm", name)


def test_published_port_on_ipv6_loopback(engine):
    sub6 = v6net()
    name = uniq("v6p")
    engine.cli_ok("network", "create", "--ipv6", "--subnet", sub6, name)
    try:
        c = engine.cli_ok("run", "-d", "--network", name, "-p", "0:80", BUSYBOX,
                          "sh", "-c", "while true; do echo hello6 | nc -l -p 80; done").strip()
        port = int(inspect(engine, c)["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"])
        got = b""
        for _ in range(50):  # the server inside may need a moment to listen
            try:
                with socket.create_connection(("::1", port), timeout=5) as s:
                    got = s.recv(100)
                if got:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        assert b"hello6" in got
        engine.cli_ok("rm", "-f", c)
        with pytest.raises(OSError):
            socket.create_connection(("::1", port), timeout=2).close()
    finally:
        engine.cli("network", "rm", name)


# A UDP server in the container's network namespace (busybox has none): it answers every
# datagram with "<source address>|<source port>|<datagram>", so a client sees which flow reached it.
UDP_ECHO = ("import socket; s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM);"
            "s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0); s.bind(('::', 5353)); print('ready', flush=True)\n"
            "while True:\n d, a = s.recvfrom(70000); s.sendto(('%s|%d|' % a[:2]).encode() + d, a)")


def udp_echo_in(engine, cid: str) -> subprocess.Popen:
    sandbox = inspect(engine, cid)["NetworkSettings"]["SandboxKey"]
    echo = subprocess.Popen(["nsenter", f"--net={sandbox}", sys.executable, "-c", UDP_ECHO],
                            stdout=subprocess.PIPE, text=True)
    assert echo.stdout.readline().strip() == "ready"
    return echo


def udp_client(port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.connect(("::1", port))
    s.settimeout(3)
    return s


def udp_asks(socks: list[socket.socket], payloads: list[bytes], tries: int = 10) -> list[list[bytes]]:
    """Send each socket its payload (all first, so the flows overlap), then read each one's answer:
    [source address, source port, payload] as the server saw them.  A lost datagram is sent again."""
    for s, p in zip(socks, payloads):
        s.send(p)
    out = []
    for s, p in zip(socks, payloads):
        for attempt in range(tries):
            try:
                out.append(s.recv(70000).split(b"|", 2))
                break
            except (TimeoutError, socket.timeout):
                s.send(p)
        else:
            raise AssertionError(f"no answer for {p!r}")
    return out


def assert_udp_closed(port: int) -> None:
    """Nothing serves [::1]:port/udp: the kernel answers ICMP port unreachable (ICMPv6 on the
    loopback device is not rate limited), which a connected socket reads as ECONNREFUSED."""
    s = udp_client(port)
    try:
        s.send(b"anyone?")
        with pytest.raises(ConnectionRefusedError):
            got = s.recv(100)
            raise AssertionError(f"[::1]:{port}/udp answered: {got!r}")
    finally:
        s.close()


def test_published_udp_port_on_ipv6_loopback(engine):
    sub6 = v6net()
    name = uniq("v6u")
    engine.cli_ok("network", "create", "--ipv6", "--subnet", sub6, name)
    echo = None
    try:
        c = engine.client().containers.run(BUSYBOX, "sleep 300", detach=True, network=name,
                                           ports={"5353/udp": None})
        binding = inspect(engine, c.id)["NetworkSettings"]["Ports"]["5353/udp"]
        port = int(next(b["HostPort"] for b in binding if b["HostIp"] in ("0.0.0.0", "::")))
        echo = udp_echo_in(engine, c.id)
        # several clients at once: each gets its own answer, from a relay socket of its own
        socks = [udp_client(port) for _ in range(4)]
        payloads = [b"client-%d-%s" % (i, secrets.token_hex(4).encode()) for i in range(4)]
        answers = udp_asks(socks, payloads)
        assert [a[2] for a in answers] == payloads
        assert len({a[1] for a in answers}) == 4
        # the container sees the gateway of its IPv6 subnet (not ::1, which cannot leave the host)
        assert all(a[0].decode().startswith(sub6.split("::/")[0]) for a in answers)
        # a client's next datagram takes its flow again
        again = udp_asks(socks[:1], [b"again"])[0]
        assert again[1] == answers[0][1] and again[2] == b"again"
        # a datagram as big as UDP over IPv4 allows passes whole
        big = b"z" * 65000
        assert udp_asks(socks[1:2], [big])[0][2] == big
        engine.cli_ok("rm", "-f", c.id)
        # the relay went with the container: port unreachable, for old flows and new clients
        assert_udp_closed(port)
        for s in socks:
            s.send(b"still there?")
            with pytest.raises((ConnectionRefusedError, TimeoutError, socket.timeout)):
                s.recv(100)
            s.close()
    finally:
        if echo is not None:
            echo.kill()
            echo.wait()
        engine.cli("network", "rm", name)


def test_ipv6_loopback_ports_served_again_after_engine_restart(private_engine):
    """Live restore: the engine re-opens [::1] for the TCP and UDP ports of running containers."""
    eng = private_engine()
    name = uniq("v6r")
    eng.cli_ok("network", "create", "--ipv6", "--subnet", v6net(), name)
    c = eng.cli_ok("run", "-d", "--network", name, "-p", "80", "-p", "5353/udp", BUSYBOX,
                   "sh", "-c", "while true; do echo back6 | nc -l -p 80; done").strip()
    ports = inspect(eng, c)["NetworkSettings"]["Ports"]
    tport, uport = (int(next(b["HostPort"] for b in ports[k] if b["HostIp"] in ("0.0.0.0", "::")))
                    for k in ("80/tcp", "5353/udp"))
    echo = udp_echo_in(eng, c)
    try:
        def tcp_answer() -> bytes:
            for _ in range(50):  # the server inside may need a moment to listen again
                try:
                    with socket.create_connection(("::1", tport), timeout=5) as s:
                        got = s.recv(100)
                    if got:
                        return got
                except OSError:
                    pass
                time.sleep(0.2)
            return b""

        assert b"back6" in tcp_answer()
        s = udp_client(uport)
        assert udp_asks([s], [b"before"])[0][2] == b"before"
        eng.kill9()
        assert_udp_closed(uport)  # nobody serves ::1 while the engine is down
        eng.start()
        assert eng.cli_ok("inspect", "-f", "{{.State.Running}}", c).strip() == "true"
        assert b"back6" in tcp_answer()
        # the old client's next datagram opens a new flow through the re-opened relay
        assert udp_asks([s], [b"after"])[0][2] == b"after"
        s.close()
        eng.cli_ok("rm", "-f", c)
        assert_udp_closed(uport)
        with pytest.raises(OSError):
            socket.create_connection(("::1", tport), timeout=2).close()
    finally:
        echo.kill()
        echo.wait()
        eng.cli("rm", "-f", c)
        eng.cli("network", "rm", name)


def test_default_bridge_ipv6_and_host_restored(private_engine):
    """In a network namespace of its own, so its ip6tables rules and forwarding switch are
    compared whole, whatever other engines on the host do meanwhile."""
    sub6 = v6net()

    def state(eng) -> tuple[list[str], str]:
        def sh(*cmd: str) -> str:
            return subprocess.run(eng.in_netns(*cmd), capture_output=True, text=True, check=True).stdout
        rules = [re.sub(r" \[\d+:\d+\]$", "", l) for l in sh("ip6tables-save").splitlines() if not l.startswith("#")]
        return rules, sh("cat", "/proc/sys/net/ipv6/conf/all/forwarding")

    seen: list = []

    def before_start(e) -> None:  # forwarding off, so the engine turning it on, and back off, shows
        subprocess.run(e.in_netns("sysctl", "-qw", "net.ipv6.conf.all.forwarding=0"), check=True)
        seen.append(state(e))

    eng = private_engine(["--ipv6", "--fixed-cidr-v6", sub6], own_netns=True, before_start=before_start)
    before = seen[0]
    n = json.loads(eng.cli_ok("network", "inspect", "bridge"))[0]
    assert n["EnableIPv6"] is True and {"Subnet": sub6, "Gateway": sub6.replace("::/64", "::1")} in n["IPAM"]["Config"]
    c = eng.cli_ok("run", "-d", BUSYBOX, "sleep", "60").strip()
    s = inspect(eng, c)["NetworkSettings"]
    assert s["GlobalIPv6Address"].startswith(sub6.split("::/")[0]) and s["IPv6Gateway"]
    during = state(eng)
    assert during[1].strip() == "1" and any(l.startswith(f"-A DY-POST-{eng.bridge}") for l in during[0])
    eng.cli_ok("rm", "-f", c)
    assert eng.stop() == 0
    assert state(eng) == before
