"""Legacy links (`--link name:alias`, docker-py `links=`), as dockerd has them: /etc/hosts
and the ALIAS_* environment on the default bridge, HostConfig.Links, `docker rm --link`,
and on user-defined networks an alias only the linking container's DNS resolves."""

from __future__ import annotations

import json
import time

import docker.errors
import pytest

from engine_harness import uniq
from test_dns import networks, nslookup_ips  # noqa: F401  (the fixture)

pytestmark = pytest.mark.usefixtures("cleanup_containers")


def _expected_env(ip: str, parent: str) -> set[str]:
    """moby's links.ToEnv for ports 53/udp, 80-82/tcp and FOO=bar, alias "db"."""
    env = {f"DB_PORT=udp://{ip}:53",
           f"DB_PORT_80_TCP_START=tcp://{ip}:80", f"DB_PORT_80_TCP_ADDR={ip}", "DB_PORT_80_TCP_PROTO=tcp",
           "DB_PORT_80_TCP_PORT_START=80", f"DB_PORT_80_TCP_END=tcp://{ip}:82", "DB_PORT_80_TCP_PORT_END=82",
           f"DB_NAME=/{parent}/db", "DB_ENV_FOO=bar"}
    for port, proto in (("53", "udp"), ("80", "tcp"), ("81", "tcp"), ("82", "tcp")):
        up = proto.upper()
        env |= {f"DB_PORT_{port}_{up}={proto}://{ip}:{port}", f"DB_PORT_{port}_{up}_ADDR={ip}",
                f"DB_PORT_{port}_{up}_PORT={port}", f"DB_PORT_{port}_{up}_PROTO={proto}"}
    return env


def test_links_on_the_default_bridge(engine, client):
    web_name, parent = uniq("web"), uniq("client")
    web = client.containers.run("busybox", ["sleep", "300"], name=web_name, detach=True,
                                environment={"FOO": "bar"}, ports={"80/tcp": None, "81/tcp": None,
                                                                   "82/tcp": None, "53/udp": None},
                                publish_all_ports=False)
    web.reload()
    ip = web.attrs["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    c = client.containers.create("busybox", ["sh", "-c", "env; cat /etc/hosts; sleep 300"], name=parent,
                                 links={web_name: "db"})
    assert client.api.inspect_container(c.id)["HostConfig"]["Links"] == [f"/{web_name}:/{parent}/db"]
    c.start()
    out = ""
    for _ in range(300):
        out = c.logs().decode()
        if "127.0.0.1" in out:
            break
        time.sleep(0.1)
    env = {line for line in out.splitlines() if line.startswith("DB_")}
    assert env == _expected_env(ip, parent), sorted(env ^ _expected_env(ip, parent))
    hosts = [line.split() for line in out.splitlines() if line.startswith(ip)]
    assert hosts[0] == [ip, "db", web.attrs["Config"]["Hostname"], web_name], hosts
    assert c.exec_run(["ping", "-c1", "-W5", "db"]).exit_code == 0
    # the child restarts with another address: the running parent's /etc/hosts follows
    web.stop(timeout=1)
    blocker = client.containers.run("busybox", ["sleep", "300"], detach=True)  # takes a free address
    web.start()
    web.reload()
    new_ip = web.attrs["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    assert new_ip != ip
    hosts = c.exec_run(["cat", "/etc/hosts"]).output.decode()
    assert f"{new_ip}\tdb " in hosts and f"{ip}\tdb " not in hosts, (new_ip, hosts)
    blocker.remove(force=True)
    # `docker rm --link`: the link goes, from inspect and from the running parent's /etc/hosts
    engine.cli_ok("rm", "--link", f"{parent}/db")
    assert client.api.inspect_container(c.id)["HostConfig"]["Links"] is None
    # no hosts line names the alias any more (a container ID may contain "db" by chance)
    names = [n for line in c.exec_run(["cat", "/etc/hosts"]).output.decode().splitlines()
             for n in line.split()[1:]]
    assert "db" not in names, names
    c.restart(timeout=1)
    assert not [e for e in c.exec_run(["env"]).output.decode().splitlines() if e.startswith("DB_")]


def test_link_errors(engine, client):
    with pytest.raises(docker.errors.APIError) as e:
        client.containers.create("busybox", "true", links={"nosuchcontainer": "x"})
    assert e.value.status_code == 400
    assert "could not get container for nosuchcontainer" in str(e.value)
    web = client.containers.create("busybox", ["sleep", "300"], name=uniq("stopped"))
    parent = client.containers.create("busybox", ["sleep", "300"], name=uniq("p"), links={web.name: "w"})
    with pytest.raises(docker.errors.APIError) as e:
        parent.start()
    assert e.value.status_code == 409
    assert f"Cannot link to a non running container: /{web.name} AS /{parent.name}/w" in str(e.value)
    with pytest.raises(docker.errors.APIError) as e:
        client.containers.create("busybox", "true", links={web.name: "w"}, network_mode="host")
    assert e.value.status_code == 400 and "host type networking can't be used with links" in str(e.value)
    # removing a link by a name without a parent
    r = client.api._delete(client.api._url("/containers/{0}", web.id), params={"link": 1})
    assert r.status_code == 409
    assert "cannot remove the default link name" in r.json()["message"]


def test_links_on_a_user_network_are_dns_aliases(engine, client, networks):  # noqa: F811
    net = networks()
    target = uniq("tgt")
    tid = engine.cli_ok("run", "-d", "--name", target, "--network", net, "--env", "FOO=bar",
                        "busybox", "sleep", "300").strip()
    tip = json.loads(engine.cli_ok("inspect", tid))[0]["NetworkSettings"]["Networks"][net]["IPAddress"]
    linker = uniq("linker")
    lid = engine.cli_ok("run", "-d", "--name", linker, "--network", net, "--link", f"{target}:db2",
                        "busybox", "sleep", "300").strip()
    out = engine.cli_ok("exec", lid, "nslookup", "db2", "127.0.0.11")
    assert nslookup_ips(out, "db2") == [tip], out
    env = engine.cli_ok("exec", lid, "env")
    assert "DB2_" not in env  # no environment on user-defined networks, as dockerd
    info = json.loads(engine.cli_ok("inspect", lid))[0]
    assert info["NetworkSettings"]["Networks"][net]["Links"] == [f"{target}:db2"]
    assert info["HostConfig"]["Links"] is None
    # another container on the network does not know the alias
    r = engine.cli("run", "--rm", "--network", net, "busybox", "nslookup", "db2", "127.0.0.11")
    assert r.returncode != 0 or not nslookup_ips(r.stdout.decode(), "db2")
    # docker network connect --link
    net2 = networks()
    engine.cli_ok("network", "connect", net2, target)
    engine.cli_ok("network", "connect", "--link", f"{target}:viaconnect", net2, linker)
    out = engine.cli_ok("exec", lid, "nslookup", "viaconnect", "127.0.0.11")
    tip2 = json.loads(engine.cli_ok("inspect", tid))[0]["NetworkSettings"]["Networks"][net2]["IPAddress"]
    assert nslookup_ips(out, "viaconnect") == [tip2], out
