"""daemon.json (`--config-file`): every key applied, shown by `docker info`, refused when wrong, reloaded on SIGHUP.

Each test writes its configuration in a temp folder and starts an engine of its
own (the harness's flags: -H, --data-root, --exec-root, --bridge, --bip,
--log-level, which the files here therefore never repeat).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from engine_harness import EngineProcess

BUSYBOX = "busybox:latest"


def _write(path: Path, cfg: dict) -> Path:
    path.write_text(json.dumps(cfg, indent=2))
    return path


def _info(eng: EngineProcess) -> dict:
    return json.loads(eng.cli_ok("info", "--format", "{{json .}}"))


def _wait_for(cond, what: str, eng: EngineProcess, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}\n{eng.log_tail(3000)}")


@pytest.fixture
def conf_dir():
    d = Path(tempfile.mkdtemp(prefix="dyk-conf-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------- keys applied


def test_config_file_reaches_containers_and_info(private_engine, conf_dir):
    rt_log = conf_dir / "runtime.log"
    wrapper = conf_dir / "logged-runc"
    # a second runtime by name: runc behind a wrapper that records its calls
    wrapper.write_text(f"#!/bin/sh\necho \"$@\" >> {rt_log}\nexec {shutil.which('runc')} \"$@\"\n")
    wrapper.chmod(0o755)
    pidfile = conf_dir / "engine.pid"
    cfg = _write(conf_dir / "daemon.json", {
        "labels": ["env=test", "team=yard"],
        "dns": ["10.9.8.7"], "dns-search": ["example.test"], "dns-opts": ["ndots:3"],
        "default-ulimits": {"nofile": {"Name": "nofile", "Soft": 1234, "Hard": 2345}},
        "default-shm-size": "32M",
        "init": True, "init-path": shutil.which("tini-static"),
        "runtimes": {"logged": {"path": str(wrapper)}}, "default-runtime": "logged",
        "pidfile": str(pidfile),
        "registry-mirrors": ["https://127.0.0.1:5999"],
        "insecure-registries": ["myregistry.test:5000", "10.77.0.0/16"],
        "default-address-pools": [{"base": "10.123.0.0/16", "size": 24}],
        "live-restore": False, "shutdown-timeout": 7,
        "max-concurrent-downloads": 2, "max-concurrent-uploads": 4,
        "log-driver": "json-file",
    })
    eng = private_engine(["--config-file", str(cfg)])

    info = _info(eng)
    assert info["Labels"] == ["env=test", "team=yard"]
    assert info["RegistryConfig"]["Mirrors"] == ["https://127.0.0.1:5999/"]
    assert "10.77.0.0/16" in info["RegistryConfig"]["InsecureRegistryCIDRs"]
    assert info["RegistryConfig"]["IndexConfigs"]["myregistry.test:5000"]["Secure"] is False
    assert info["LiveRestoreEnabled"] is False
    assert info["DefaultRuntime"] == "logged"
    assert info["Runtimes"]["logged"]["path"] == str(wrapper) and "runc" in info["Runtimes"]
    assert info["InitBinary"] == shutil.which("tini-static")
    assert info["LoggingDriver"] == "json-file"
    assert info["DefaultAddressPools"] == [{"Base": "10.123.0.0/16", "Size": 24}]
    text = eng.cli_ok("info")  # the CLI's own rendering of the same fields
    for line in ("Labels:", "env=test", "Registry Mirrors:", "https://127.0.0.1:5999/",
                 "Insecure Registries:", "myregistry.test:5000", "Live Restore Enabled: false",
                 "Default Runtime: logged", "Logging Driver: json-file"):
        assert line in text, f"{line!r} not in docker info:\n{text}"

    assert pidfile.read_text().strip() == str(eng.proc.pid)

    out = eng.cli_ok("run", "--name", "cfgapplied", BUSYBOX, "sh", "-c",
                     "cat /etc/resolv.conf; echo ulimit=$(ulimit -n); df -k /dev/shm | tail -1; "
                     "echo pid1=$(tr '\\0' ' ' < /proc/1/cmdline)")
    assert "nameserver 10.9.8.7" in out
    assert "search example.test" in out
    assert "options ndots:3" in out
    assert "ulimit=1234" in out
    assert " 32768 " in out  # /dev/shm of 32 MiB
    assert "pid1=/sbin/docker-init" in out or "tini" in out.split("pid1=")[1]
    hc = json.loads(eng.cli_ok("inspect", "cfgapplied"))[0]["HostConfig"]
    assert hc["Runtime"] == "logged"
    assert hc["ShmSize"] == 32 * 1024 * 1024
    assert "create" in rt_log.read_text()  # conmon ran the named runtime

    # a container's own settings win over the daemon's
    out = eng.cli_ok("run", "--rm", "--dns", "10.1.1.1", "--ulimit", "nofile=99:99", "--init=false",
                     "--runtime", "runc", BUSYBOX, "sh", "-c",
                     "cat /etc/resolv.conf; echo ulimit=$(ulimit -n); cat /proc/1/cmdline")
    assert "nameserver 10.1.1.1" in out and "10.9.8.7" not in out
    assert "ulimit=99" in out
    assert "tini" not in out
    r = eng.cli("run", "--rm", "--runtime", "nosuch", BUSYBOX, "true")
    assert r.returncode != 0 and b"unknown or invalid runtime name: nosuch" in r.stderr

    # live-restore false: the engine stops its containers when it stops (dockerd without live restore)
    eng.cli_ok("run", "-d", "--name", "stopsonshutdown", BUSYBOX, "sleep", "600")
    pid = json.loads(eng.cli_ok("inspect", "stopsonshutdown"))[0]["State"]["Pid"]
    assert eng.stop() == 0
    assert not Path(f"/proc/{pid}").exists(), "the container outlived the engine with live-restore false"
    assert not pidfile.exists()
    eng.start()
    st = json.loads(eng.cli_ok("inspect", "stopsonshutdown"))[0]["State"]
    assert st["Running"] is False


def test_live_restore_flag_false_stops_containers(private_engine):
    eng = private_engine(["--live-restore=false"])
    assert _info(eng)["LiveRestoreEnabled"] is False
    eng.cli_ok("run", "-d", "--name", "lr", BUSYBOX, "sleep", "600")
    pid = json.loads(eng.cli_ok("inspect", "lr"))[0]["State"]["Pid"]
    eng.stop()
    assert not Path(f"/proc/{pid}").exists()


def test_live_restore_is_the_default(private_engine):
    eng = private_engine()
    assert _info(eng)["LiveRestoreEnabled"] is True


# ---------------------------------------------------------------- bad input


def _start_fails(args: list[str], root: Path) -> str:
    """Run the engine to its refusal; return what it said.  Nothing may be created."""
    bridge = "dytbad" + os.urandom(2).hex()
    r = subprocess.run([sys.executable, "-m", "dockyard.cli", "engine", "-H", f"unix://{root}/s.sock",
                        "--data-root", str(root / "data"), "--exec-root", str(root / "run"),
                        "--bridge", bridge, *args], capture_output=True, timeout=60)
    assert r.returncode != 0, r.stdout + r.stderr
    assert not (root / "data").exists() and not (root / "run").exists(), "a refused start touched the host"
    assert not (root / "s.sock").exists()
    assert subprocess.run(["ip", "link", "show", bridge], capture_output=True).returncode != 0
    return r.stderr.decode()


@pytest.mark.parametrize("content, words", [
    ("{\"debug\": tru", ["invalid JSON"]),
    ("[1, 2]", ["JSON object"]),
    (json.dumps({"no-such-key": 1}), ["don't match any configuration option: no-such-key"]),
    (json.dumps({"max-concurrent-downloads": -1}), ["max-concurrent-downloads", "invalid max concurrent downloads: -1"]),
    (json.dumps({"max-concurrent-uploads": "3"}), ["max-concurrent-uploads", "integer"]),
    (json.dumps({"bip": "garbage"}), ["bip", "garbage"]),
    (json.dumps({"dns": ["not-an-ip"]}), ["dns", "IP address is not correctly formatted: not-an-ip"]),
    (json.dumps({"labels": ["novalue"]}), ["labels", "bad attribute format: novalue"]),
    (json.dumps({"registry-mirrors": ["ftp://x"]}), ["registry-mirrors", "unsupported scheme"]),
    (json.dumps({"insecure-registries": ["http://x:5000"]}), ["insecure-registries", "should not contain '://'"]),
    (json.dumps({"default-runtime": "nosuch"}), ["default-runtime", "'nosuch' does not exist"]),
    (json.dumps({"runtimes": {"runc": {"path": "/bin/true"}}}), ["runtimes", "runtime name 'runc' is reserved"]),
    (json.dumps({"default-address-pools": [{"base": "10.0.0.0/8", "size": 4}]}), ["default-address-pools", "size"]),
    (json.dumps({"default-ulimits": {"nofile": {"Name": "nofile", "Soft": 10, "Hard": 5}}}), ["default-ulimits"]),
    (json.dumps({"default-shm-size": "lots"}), ["default-shm-size", "invalid size"]),
    (json.dumps({"log-level": "chatty"}), ["log-level", "invalid logging level: chatty"]),
    (json.dumps({"log-driver": "nosuchdriver"}), ["log-driver"]),
    (json.dumps({"metrics-addr": "nowhere"}), ["metrics-addr"]),
    (json.dumps({"hosts": ["ftp://x"]}), ["hosts"]),
    (json.dumps({"live-restore": "yes"}), ["live-restore", "true or false"]),
])
def test_bad_configuration_is_refused_naming_the_key(conf_dir, content, words):
    (conf_dir / "daemon.json").write_text(content)
    err = _start_fails(["--config-file", str(conf_dir / "daemon.json")], conf_dir)
    for w in words:
        assert w in err, err
    assert str(conf_dir / "daemon.json") in err


def test_key_given_as_flag_and_in_file_is_refused_as_dockerd_does(conf_dir):
    cfg = _write(conf_dir / "daemon.json", {"debug": False, "labels": ["a=1"], "iptables": False})
    err = _start_fails(["--config-file", str(cfg), "-D", "--label", "b=2", "--log-level", "info"], conf_dir)
    assert ("the following directives are specified both as a flag and in the configuration file: "
            "debug: (from flag: true, from file: false), labels: (from flag: [b=2], from file: [a=1])") in err


def test_missing_config_file_given_is_an_error(conf_dir):
    err = _start_fails(["--config-file", str(conf_dir / "absent.json")], conf_dir)
    assert "absent.json" in err and "No such file" in err


# ---------------------------------------------------------------- SIGHUP


def test_sighup_reloads_what_dockerd_reloads_and_keeps_config_on_a_broken_file(private_engine, conf_dir):
    cfg = _write(conf_dir / "daemon.json", {"labels": ["stage=one"], "max-concurrent-downloads": 3})
    eng = private_engine(["--config-file", str(cfg)])
    eng.cli_ok("run", "-d", "--name", "survivor", BUSYBOX, "sleep", "600")
    before = json.loads(eng.cli_ok("inspect", "survivor"))[0]["State"]
    bip = _info(eng)
    assert bip["Labels"] == ["stage=one"] and bip["LiveRestoreEnabled"] is True

    _write(cfg, {"labels": ["stage=two", "x=y"], "max-concurrent-downloads": 6,
                 "registry-mirrors": ["http://127.0.0.1:5998"], "insecure-registries": ["reg.test:5000"],
                 "live-restore": False, "shutdown-timeout": 3, "default-runtime": "runc",
                 "dns": ["10.2.2.2"]})  # dns is not reloadable: logged, kept
    eng.proc.send_signal(signal.SIGHUP)
    _wait_for(lambda: _info(eng)["Labels"] == ["stage=two", "x=y"], "the labels to reload", eng)
    info = _info(eng)
    assert info["RegistryConfig"]["Mirrors"] == ["http://127.0.0.1:5998/"]
    assert "reg.test:5000" in info["RegistryConfig"]["IndexConfigs"]
    assert info["LiveRestoreEnabled"] is False
    log = eng.log_tail(20000)
    assert "labels changed from" in log and "max-concurrent-downloads changed from 3 to 6" in log
    assert "dns changed" in log and "needs a restart" in log
    out = eng.cli_ok("run", "--rm", BUSYBOX, "cat", "/etc/resolv.conf")
    assert "10.2.2.2" not in out  # the non-reloadable key kept its start value

    # a broken file: logged, the running configuration stays whole
    cfg.write_text('{"labels": ["stage=three"], "max-concurrent-downloads": -1}')
    eng.proc.send_signal(signal.SIGHUP)
    _wait_for(lambda: "configuration reload failed" in eng.log_tail(20000), "the failed reload", eng)
    assert "invalid max concurrent downloads: -1" in eng.log_tail(20000)
    assert _info(eng)["Labels"] == ["stage=two", "x=y"]
    cfg.write_text("{not json")
    eng.proc.send_signal(signal.SIGHUP)
    _wait_for(lambda: eng.log_tail(20000).count("configuration reload failed") >= 2, "the second failed reload", eng)
    assert _info(eng)["Labels"] == ["stage=two", "x=y"]
    after = json.loads(eng.cli_ok("inspect", "survivor"))[0]["State"]
    assert after["Running"] and after["Pid"] == before["Pid"] and after["StartedAt"] == before["StartedAt"]



def test_shutdown_timeout_bounds_the_stop_of_containers(private_engine, conf_dir):
    """live-restore false: a container that ignores SIGTERM with a long stop timeout is killed
    once shutdown-timeout has passed, and the engine still stops."""
    cfg = _write(conf_dir / "daemon.json", {"live-restore": False, "shutdown-timeout": 2})
    eng = private_engine(["--config-file", str(cfg)])
    eng.cli_ok("run", "-d", "--name", "stubborn", "--stop-timeout", "600", BUSYBOX,
               "sh", "-c", "trap '' TERM; while true; do sleep 1; done")
    pid = json.loads(eng.cli_ok("inspect", "stubborn"))[0]["State"]["Pid"]
    assert eng.stop(timeout=300) == 0
    assert not Path(f"/proc/{pid}").exists()
    assert "did not stop within shutdown-timeout (2s): killing them" in eng.log_tail(20000)
