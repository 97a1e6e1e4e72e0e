"""Running under a service manager: socket activation (fd://), sd_notify, socket group and mode,
TCP without TLS off loopback, the PID file, `--log-format json`, and the repository's systemd units."""

from __future__ import annotations

import configparser
import grp
import json
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine_harness import EngineProcess

ROOT = Path(__file__).resolve().parents[2]
ACTIVATE = "/usr/bin/systemd-socket-activate"


def _engine_args(eng: EngineProcess, *hosts: str) -> list[str]:
    args = [sys.executable, "-m", "dockyard.cli", "engine"]
    for h in hosts:
        args += ["-H", h]
    return args + ["--data-root", str(eng.data_root), "--exec-root", str(eng.exec_root),
                   "--bridge", eng.bridge, "--bip", eng.bip]


def _launch(eng: EngineProcess, argv: list[str], env: dict | None = None) -> None:
    """Start `argv` as the engine process of `eng` (so eng.stop() and eng.cleanup() apply)."""
    eng.logf = open(eng.log_path, "ab")
    eng.proc = subprocess.Popen(argv, stdout=eng.logf, stderr=subprocess.STDOUT, start_new_session=True,
                                cwd=ROOT, env=env)


def _wait_ping(eng: EngineProcess, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert eng.proc.poll() is None, eng.log_tail()
        try:
            if eng.client(timeout=10).ping():
                return
        except Exception:
            time.sleep(0.2)
    raise AssertionError(f"engine did not answer:\n{eng.log_tail()}")


@pytest.fixture
def engines():
    made: list[EngineProcess] = []

    def make(**kw) -> EngineProcess:
        e = EngineProcess(**kw)
        made.append(e)
        return e

    yield make
    for e in made:
        e.cleanup()


@pytest.mark.skipif(not os.path.exists(ACTIVATE), reason="systemd-socket-activate not installed")
@pytest.mark.parametrize("host", ["fd://", "fd://3"])
def test_socket_activation_with_systemd_socket_activate(engines, host):
    eng = engines()
    _launch(eng, [ACTIVATE, "-l", eng.socket, "--fdname=dockyard.socket", *_engine_args(eng, host)])
    # systemd-socket-activate holds the socket and execs the engine at the first connection
    _wait_ping(eng)
    assert eng.cli_ok("version", "--format", "{{.Server.Version}}").strip()
    assert "listening on " + host in eng.log_tail()
    assert eng.cli_ok("network", "ls", "--format", "{{.Name}}").split().count("bridge") == 1
    assert eng.stop() == 0


def test_fd_host_without_activation_is_refused(engines):
    eng = engines()
    r = subprocess.run(_engine_args(eng, "fd://"), capture_output=True, timeout=60, cwd=ROOT)
    assert r.returncode != 0
    assert b"no sockets found via socket activation" in r.stderr
    assert not eng.data_root.exists()


@pytest.mark.skipif(not os.path.exists(ACTIVATE), reason="systemd-socket-activate not installed")
def test_fd_number_beyond_the_activated_ones_is_refused(engines):
    eng = engines()
    _launch(eng, [ACTIVATE, "-l", eng.socket, *_engine_args(eng, "fd://4")])
    with socket.socket(socket.AF_UNIX) as s:  # the first connection makes it exec the engine
        deadline = time.monotonic() + 30
        while True:
            try:
                s.connect(eng.socket)
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        eng.proc.wait(60)
    assert eng.proc.returncode != 0
    assert "too few socket activated files" in eng.log_tail()
    eng.proc = None
    eng.logf.close()


def test_sd_notify_ready_and_stopping(engines, tmp_path):
    eng = engines()
    ns = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(ns))
        listener.settimeout(60)
        _launch(eng, _engine_args(eng, f"unix://{eng.socket}"), env=dict(os.environ, NOTIFY_SOCKET=str(ns)))
        msg = listener.recv(4096).decode()
        assert msg.startswith("READY=1") and f"MAINPID={eng.proc.pid}" in msg
        assert eng.client().ping()  # READY comes once the API answers
        eng.proc.send_signal(1)  # SIGHUP
        assert listener.recv(4096) == b"RELOADING=1"
        assert listener.recv(4096) == b"READY=1"
        eng.stop()
        assert listener.recv(4096) == b"STOPPING=1"


def test_unix_socket_is_0660_owned_by_the_socket_group(engines):
    default = engines()
    default.start()
    st = os.stat(default.socket)
    assert stat.S_IMODE(st.st_mode) == 0o660
    try:
        want = grp.getgrnam("docker").gr_gid
    except KeyError:
        want = 0
    assert st.st_gid == want and st.st_uid == 0

    other = engines(extra_args=["--group", "adm"])
    other.start()
    assert os.stat(other.socket).st_gid == grp.getgrnam("adm").gr_gid
    assert stat.S_IMODE(os.stat(other.socket).st_mode) == 0o660


def test_unknown_socket_group_is_refused(engines):
    eng = engines()
    r = subprocess.run(_engine_args(eng, f"unix://{eng.socket}") + ["--group", "no-such-group-dyk"],
                       capture_output=True, timeout=60, cwd=ROOT)
    assert r.returncode != 0 and b"group no-such-group-dyk not found" in r.stderr
    assert not eng.data_root.exists()


def test_tcp_without_tls_off_loopback_is_refused_and_says_why(engines):
    eng = engines()
    r = subprocess.run(_engine_args(eng, "tcp://0.0.0.0:2375"), capture_output=True, timeout=60, cwd=ROOT)
    assert r.returncode != 0
    err = r.stderr.decode()
    assert "refusing to listen on tcp://0.0.0.0:2375" in err and "root access" in err and "--tls=false" in err
    assert not eng.data_root.exists()


def test_tcp_without_tls_on_loopback_is_allowed(engines):
    eng = engines()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    eng.extra_args = ["-H", f"tcp://127.0.0.1:{port}"]
    eng.start()
    import docker

    assert docker.DockerClient(base_url=f"tcp://127.0.0.1:{port}").ping()


def test_tls_false_is_the_explicit_opt_out():
    """The decision alone (binding 0.0.0.0 in a test would expose a root API on the network)."""
    from dockyard.daemonconfig import load
    from dockyard.engine import listeners

    cfg = load(["-H", "tcp://0.0.0.0:2375", "--tls=false", "--config-file", os.devnull]).config
    assert [p.kind for p in listeners.plan(cfg, None)] == ["tcp"]
    cfg = load(["-H", "tcp://0.0.0.0:2375", "--tlsverify=false", "--config-file", os.devnull]).config
    assert [p.kind for p in listeners.plan(cfg, None)] == ["tcp"]
    cfg = load(["-H", "tcp://0.0.0.0:2375", "--config-file", os.devnull]).config
    with pytest.raises(listeners.ListenError):
        listeners.plan(cfg, None)


def test_pidfile_is_written_and_a_second_engine_is_refused(engines, tmp_path):
    pidfile = tmp_path / "dy.pid"
    first = engines(extra_args=["--pidfile", str(pidfile)])
    first.start()
    assert pidfile.read_text().strip() == str(first.proc.pid)
    second = engines()
    r = subprocess.run(_engine_args(second, f"unix://{second.socket}") + ["--pidfile", str(pidfile)],
                       capture_output=True, timeout=60, cwd=ROOT)
    assert r.returncode != 0 and b"pid file found" in r.stderr
    assert pidfile.read_text().strip() == str(first.proc.pid)
    first.stop()
    assert not pidfile.exists()


def test_log_format_json(engines):
    eng = engines(extra_args=["--log-format", "json"])
    eng.start()
    eng.cli_ok("info")
    eng.stop()
    lines = [l for l in eng.log_path.read_text().splitlines() if l.strip()]
    assert lines
    for l in lines:
        entry = json.loads(l)
        assert {"time", "level", "msg"} <= set(entry)
    assert any("listening on" in json.loads(l)["msg"] for l in lines)


def test_log_format_must_be_text_or_json(engines):
    eng = engines()
    r = subprocess.run(_engine_args(eng, f"unix://{eng.socket}") + ["--log-format", "xml"],
                       capture_output=True, timeout=60, cwd=ROOT)
    assert r.returncode != 0 and b"log-format" in r.stderr


def test_systemd_units_in_the_repository():
    """The units parse, the service runs the engine on fd:// and the socket is 0660 for the docker group."""
    unit_dir = ROOT / "contrib" / "systemd"
    svc = configparser.ConfigParser(strict=False, interpolation=None)
    svc.read(unit_dir / "dockyard.service")
    sock = configparser.ConfigParser(strict=False, interpolation=None)
    sock.read(unit_dir / "dockyard.socket")
    assert "-H fd://" in svc["Service"]["ExecStart"]
    assert svc["Service"]["Type"] == "notify" and svc["Service"]["KillMode"] == "process"
    assert "HUP" in svc["Service"]["ExecReload"]
    assert sock["Socket"]["SocketMode"] == "0660" and sock["Socket"]["SocketGroup"] == "docker"
    if os.path.exists("/usr/bin/systemd-analyze"):
        r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit_dir / "dockyard.socket"),
                            str(unit_dir / "dockyard.service")], capture_output=True, text=True, timeout=60)
        # the ExecStart binary may not be installed at /usr/local/bin here: only syntax errors count
        bad = [l for l in r.stderr.splitlines() if "Unknown" in l or "Invalid" in l or "Failed to parse" in l]
        assert not bad, r.stderr


def test_an_engine_configured_by_its_file_alone(engines, tmp_path):
    """hosts, data-root, exec-root, bridge, bip and group from daemon.json, no flag but --config-file."""
    eng = engines()
    cfg = tmp_path / "daemon.json"
    cfg.write_text(json.dumps({"hosts": [f"unix://{eng.socket}"], "data-root": str(eng.data_root),
                               "exec-root": str(eng.exec_root), "bridge": eng.bridge, "bip": eng.bip,
                               "group": "adm", "log-level": "debug"}))
    _launch(eng, [sys.executable, "-m", "dockyard.cli", "engine", "--config-file", str(cfg)])
    _wait_ping(eng)
    info = json.loads(eng.cli_ok("info", "--format", "{{json .}}"))
    assert info["DockerRootDir"] == str(eng.data_root) and info["Debug"] is True
    assert os.stat(eng.socket).st_gid == grp.getgrnam("adm").gr_gid
    assert (eng.exec_root / "dockyard.pid").read_text().strip() == str(eng.proc.pid)  # the default pidfile
    assert subprocess.run(["ip", "link", "show", eng.bridge], capture_output=True).returncode == 0
