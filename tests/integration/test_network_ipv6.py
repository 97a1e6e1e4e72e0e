"""IPv6 through the docker CLI and docker-py: dual-stack user networks and the default bridge
(--ipv6 --fixed-cidr-v6), --ip6, ip6tables NAT and forwarding, AAAA answers from the embedded
DNS, published ports on [::1] (the only host address a test targets)."""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
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


def test_default_bridge_ipv6_and_host_restored(private_engine):
    sub6 = v6net()
    before6 = subprocess.run(["ip6tables-save"], capture_output=True, text=True).stdout
    fwd_before = open("/proc/sys/net/ipv6/conf/all/forwarding").read()
    eng = private_engine(["--ipv6", "--fixed-cidr-v6", sub6])
    n = json.loads(eng.cli_ok("network", "inspect", "bridge"))[0]
    assert n["EnableIPv6"] is True and {"Subnet": sub6, "Gateway": sub6.replace("::/64", "::1")} in n["IPAM"]["Config"]
    c = eng.cli_ok("run", "-d", BUSYBOX, "sleep", "60").strip()
    s = inspect(eng, c)["NetworkSettings"]
    assert s["GlobalIPv6Address"].startswith(sub6.split("::/")[0]) and s["IPv6Gateway"]
    assert open("/proc/sys/net/ipv6/conf/all/forwarding").read().strip() == "1"
    eng.cli_ok("rm", "-f", c)
    assert eng.stop() == 0
    assert subprocess.run(["ip6tables-save"], capture_output=True, text=True).stdout == before6 or \
        "dyt" not in subprocess.run(["ip6tables-save"], capture_output=True, text=True).stdout
    if "DY-" not in subprocess.run(["ip6tables-save"], capture_output=True, text=True).stdout:
        assert open("/proc/sys/net/ipv6/conf/all/forwarding").read() == fwd_before
