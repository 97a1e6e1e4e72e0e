"""Log drivers through the docker CLI and docker-py against a real engine.

json-file read as a log shipper reads it, rotation (also while the engine is
SIGKILLed), local, none, syslog to listeners started here (tcp+tls ones with a CA
made here), dockerd's errors.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import docker
import pytest

from engine_harness import uniq

from dockyard.engine.logdrivers.base import ContainerInfo, parse_time
from dockyard.engine.logdrivers.logd import write_config
from dockyard.engine.logdrivers.spool import OFFSET_NAME, SPOOL_NAME

pytestmark = pytest.mark.usefixtures("cleanup_containers")


def wait_for(cond, timeout: float = 60, interval: float = 0.1, seen=None):
    """`seen()`: what the failure message reports when the limit is hit (a wait must leave a diagnosis)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError(f"condition not met in {timeout} s" + (f"; seen: {seen()}" if seen else ""))


def ctr_dir(engine, cid: str) -> Path:
    return engine.data_root / "containers" / cid


def log_files(d: Path, stem: str) -> list[Path]:
    return sorted(p for p in d.iterdir() if p.name.startswith(stem))


def logs_on_disk(d: Path, stem: str) -> int:
    """Bytes of the driver's files and conmon's spool under their names."""
    size = 0
    for p in d.iterdir():
        if p.name.startswith((stem, SPOOL_NAME)):
            try:
                size += p.stat().st_size
            except FileNotFoundError:  # rotated away between the listing and the stat
                pass
    return size


def held_spool_bytes(pids: list[int]) -> int:
    """Bytes of replaced spools the log daemon holds open: on disk, though no name shows them."""
    total = 0
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}").endswith(f"/{SPOOL_NAME} (deleted)"):
                    total += os.stat(f"/proc/{pid}/fd/{fd}").st_size
            except OSError:
                pass
    return total


def log_state(eng, d: Path) -> str:
    """The log side of a container, for a failure message: files, the daemon's place, whether it runs."""
    files = []
    for p in sorted(d.iterdir()):
        if p.name.startswith((d.name, "spool", "logconfig")):
            try:
                files.append(f"{p.name.replace(d.name, '<id>')}={p.stat().st_size}")
            except FileNotFoundError:
                pass
    try:
        offset = (d / OFFSET_NAME).read_text().strip()
    except FileNotFoundError:
        offset = "none"
    pids = eng.logd_pids()
    try:
        daemon_log = (eng.exec_root / "logd.log").read_text()[-3000:]
    except FileNotFoundError:
        daemon_log = "(none)"
    return (f"files {files}; spool.offset {offset}; log daemon pids {pids} "
            f"(holding {held_spool_bytes(pids)} bytes of replaced spools); conmon pids {eng.monitor_pids()}; "
            f"engine running: {eng.proc is not None}\n--- logd.log ---\n{daemon_log}")


def json_done(d: Path, stem: str) -> bool:
    try:
        return b"done" in (d / stem).read_bytes()[-200:]
    except FileNotFoundError:  # not written yet, or between a rotation's rename and reopen
        return False


# ------------------------------------------------------------------ json-file
def test_json_file_is_dockers_file_and_format(engine, api):
    cid = engine.cli_ok("run", "-d", "--label", "team=blue", "-e", "REGION=eu",
                        "--log-opt", "labels=team", "--log-opt", "env=REGION",
                        "--log-opt", "tag={{.Name}}", "--name", (name := uniq("jf")),
                        "busybox", "sh", "-c", "echo out; echo err >&2; echo '<b>&'").strip()
    api.wait(cid)
    info = api.inspect_container(cid)
    path = Path(info["LogPath"])
    assert path == ctr_dir(engine, cid) / f"{cid}-json.log"
    assert info["HostConfig"]["LogConfig"] == {"Type": "json-file", "Config": {
        "labels": "team", "env": "REGION", "tag": "{{.Name}}"}}
    # a shipper's reader: one JSON object a line, Docker's keys, RFC3339Nano UTC times
    wait_for(lambda: len(path.read_bytes().splitlines()) == 3)
    entries = [json.loads(line) for line in path.read_bytes().splitlines()]
    assert sorted((e["stream"], e["log"]) for e in entries) == [
        ("stderr", "err\n"), ("stdout", "<b>&\n"), ("stdout", "out\n")]
    for e in entries:
        assert list(e) == ["log", "stream", "attrs", "time"]
        assert e["attrs"] == {"team": "blue", "REGION": "eu", "tag": name}
        assert e["time"].endswith("Z") and "T" in e["time"]
    assert b"\\u003cb\\u003e\\u0026" in path.read_bytes()  # Go's escaping, byte for byte
    assert engine.cli_ok("logs", cid).splitlines() == ["out", "<b>&"]
    details = engine.cli_ok("logs", "--details", cid).splitlines()
    assert details == [f"REGION=eu,tag={name},team=blue out", f"REGION=eu,tag={name},team=blue <b>&"]


def test_rotation_with_max_size_max_file_and_compress(engine, api):
    cid = engine.cli_ok("run", "-d", "--log-opt", "max-size=100k", "--log-opt", "max-file=3",
                        "--log-opt", "compress=true", "busybox", "sh", "-c",
                        "i=0; while [ $i -lt 6000 ]; do echo \"line $i $(printf '%060d' 0)\"; "
                        "i=$((i+1)); done").strip()
    api.wait(cid, timeout=120)
    d = ctr_dir(engine, cid)
    stem = f"{cid}-json.log"
    names = [p.name for p in log_files(d, stem)]
    assert names == [stem, stem + ".1.gz", stem + ".2.gz"]
    total = sum(p.stat().st_size for p in log_files(d, stem))
    assert total < 3 * 110_000
    with gzip.open(d / (stem + ".1.gz")) as f:
        first = json.loads(f.readline())
    assert first["log"].startswith("line ")
    # docker logs reads the rotated (compressed) files: the newest lines, in order, the last one last
    lines = engine.cli_ok("logs", cid).splitlines()
    nums = [int(x.split()[1]) for x in lines]
    assert nums[-1] == 5999 and nums == list(range(nums[0], 6000)) and nums[0] > 0
    # --tail reaches back into the rotated files
    tail = engine.cli_ok("logs", "--tail", str(len(lines) - 10), cid).splitlines()
    assert tail == lines[10:]
    # --since with a time inside the oldest kept file
    stamped = engine.cli_ok("logs", "-t", cid).splitlines()
    t_mid = stamped[len(stamped) // 2].split()[0]
    since = engine.cli_ok("logs", "--since", t_mid, cid).splitlines()
    want = [x.split(" ", 1)[1] for x in stamped if parse_time(x.split()[0]) >= parse_time(t_mid)]
    assert since == want and 0 < len(since) < len(lines)
    until = engine.cli_ok("logs", "--until", t_mid, cid).splitlines()
    assert until == [x.split(" ", 1)[1] for x in stamped if parse_time(x.split()[0]) <= parse_time(t_mid)]


def test_follow_across_rotations(engine, api):
    cid = engine.cli_ok("run", "-d", "--log-opt", "max-size=20k", "--log-opt", "max-file=2", "busybox",
                        "sh", "-c", "sleep 1; i=0; while [ $i -lt 3000 ]; do echo \"f$i\"; i=$((i+1)); "
                        "[ $((i % 100)) -eq 0 ] && sleep 0.2; done").strip()
    got = []
    for chunk in api.logs(cid, stream=True, follow=True):
        got.append(chunk)
    lines = b"".join(got).decode().split()
    # every line, none twice, though the file rotated many times under the reader
    assert lines == [f"f{i}" for i in range(3000)]


def test_rotation_goes_on_while_the_engine_is_sigkilled(private_engine):
    eng = private_engine()
    # ~120 MB written after the engine died: 1 MB x 3 files may be kept, plus conmon's spool
    cid = eng.cli_ok("run", "-d", "--log-opt", "max-size=1m", "--log-opt", "max-file=3", "busybox", "sh", "-c",
                     "sleep 2; yes 'a line of about one hundred bytes, written over and over while the "
                     "engine is away........' | head -c 120000000; echo; echo done").strip()
    # killed right after the start: maybe before it told the log daemon of the container
    eng.kill9()
    d = ctr_dir(eng, cid)
    stem = f"{cid}-json.log"
    peak = held = 0

    def done() -> bool:
        nonlocal peak, held
        peak = max(peak, logs_on_disk(d, stem))
        held = max(held, held_spool_bytes(eng.logd_pids()))
        return json_done(d, stem)

    # below pytest's 300 s, so that a stall fails with what it saw
    wait_for(done, 240, 0.2, lambda: f"peak {peak} bytes named, {held} held; {log_state(eng, d)}")
    # json-file's 3 MB and at most one spool of a quarter of that (+ a file the daemon finishes)
    print("peak bytes of logs on disk while the engine was down:", peak, "+ held open:", held)
    assert peak < 6_000_000, log_state(eng, d)
    assert held <= 2 * (1 << 20) + (64 << 10), log_state(eng, d)  # the file it finishes and the newest
    eng.start()
    api = eng.api()
    api.wait(cid, timeout=120)
    logs = api.logs(cid, tail=2).decode().splitlines()
    assert logs[-1] == "done"


# ------------------------------------------------------------------ local, none
def test_local_driver_round_trip(engine, api):
    cid = engine.cli_ok("run", "-d", "--log-driver", "local", "busybox", "sh", "-c",
                        "echo one; echo two >&2; printf three").strip()
    api.wait(cid)
    info = api.inspect_container(cid)
    assert info["HostConfig"]["LogConfig"]["Type"] == "local"
    assert info["LogPath"] == ""
    d = ctr_dir(engine, cid)
    assert (d / "local-logs" / "container.log").stat().st_size > 0
    assert not (d / f"{cid}-json.log").exists()
    r = engine.cli("logs", cid)
    assert r.stdout == b"one\nthree" and r.stderr == b"two\n"
    assert engine.cli_ok("logs", "--tail", "1", cid) == "three"


def test_none_driver_runs_and_refuses_logs_as_dockerd(engine, api):
    name = uniq("none")
    out = engine.cli_ok("run", "--name", name, "--log-driver", "none", "busybox", "echo", "attached")
    assert out == "attached\n"  # attach works without any log
    r = engine.cli("logs", name)
    assert r.returncode != 0
    assert r.stderr.decode().strip() == "Error response from daemon: configured logging driver does not support reading"
    with pytest.raises(docker.errors.APIError) as e:
        api.logs(name)
    assert e.value.response.status_code == 501  # dockerd's ErrReadLogsNotSupported is NotImplemented
    with pytest.raises(docker.errors.APIError) as e:
        api.attach(name, logs=True, stream=False)
    assert e.value.response.status_code == 501
    assert not any(p.name.endswith("-json.log") or p.name == "spool.log"
                   for p in ctr_dir(engine, api.inspect_container(name)["Id"]).iterdir())


# ------------------------------------------------------------------ bad configs
@pytest.mark.parametrize("args,message", [
    (["--log-driver", "asdf"], "logger: no log driver named 'asdf' is registered"),
    (["--log-opt", "max-size=abc"], "invalid size: 'abc'"),
    (["--log-opt", "max-file=0"], "max-file cannot be less than 1"),
    (["--log-opt", "bogus=1"], "unknown log opt 'bogus' for json-file log driver"),
    (["--log-driver", "local", "--log-opt", "labels-x=1"], "unknown log opt 'labels-x' for log driver local"),
    (["--log-driver", "syslog", "--log-opt", "syslog-format=x"], "Invalid syslog format"),
    (["--log-driver", "syslog", "--log-opt", "syslog-address=ftp://h"], "unsupported scheme: 'ftp'"),
])
def test_bad_log_configs_are_400s_and_create_nothing(engine, api, args, message):
    before = len(api.containers(all=True))
    name = uniq("bad")
    r = engine.cli("create", "--name", name, *args, "busybox", "true")
    assert r.returncode != 0
    assert f"Error response from daemon: {message}" in r.stderr.decode()
    assert len(api.containers(all=True)) == before
    # the same through the API (docker-py): 400 with the same text
    driver, opts = "json-file", {}
    pairs = iter(args)
    for flag, val in zip(pairs, pairs):
        if flag == "--log-driver":
            driver = val
        else:
            opts.update([val.split("=", 1)])
    with pytest.raises(docker.errors.APIError) as e:
        api.create_container("busybox", ["true"], host_config={"LogConfig": {"Type": driver, "Config": opts}})
    assert e.value.response.status_code == 400 and message in e.value.explanation
    assert len(api.containers(all=True)) == before


def test_journald_is_refused_clearly(engine):
    if os.path.exists("/run/systemd/journal/socket"):
        pytest.skip("journald runs here")
    r = engine.cli("create", "--log-driver", "journald", "busybox", "true")
    assert "journald is not enabled on this host" in r.stderr.decode()


# ------------------------------------------------------------------ syslog
class Listener:
    """A syslog receiver: unix stream/datagram, udp or tcp, collecting messages."""

    def __init__(self, kind: str, tmp: Path) -> None:
        self.messages: list[str] = []
        self.kind = kind
        if kind in ("unix", "unixgram"):
            path = str(tmp / f"syslog-{kind}.sock")
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM if kind == "unix" else socket.SOCK_DGRAM)
            self.sock.bind(path)
            self.address = f"{kind}://{path}"
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM)
            self.sock.bind(("127.0.0.1", 0))
            self.address = f"{kind}://127.0.0.1:{self.sock.getsockname()[1]}"
        self.stop = False
        if kind in ("unix", "tcp"):
            self.sock.listen(4)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.sock.settimeout(0.2)
        conns: list[socket.socket] = []
        buf: dict[socket.socket, bytes] = {}
        while not self.stop:
            if self.kind in ("unix", "tcp"):
                try:
                    c, _ = self.sock.accept()
                    c.settimeout(0.05)
                    conns.append(c)
                    buf[c] = b""
                except socket.timeout:
                    pass
                for c in conns:
                    try:
                        data = c.recv(65536)
                    except socket.timeout:
                        continue
                    buf[c] += data
                    *lines, buf[c] = buf[c].split(b"\n")
                    self.messages += [x.decode() for x in lines if x]
            else:
                try:
                    self.messages.append(self.sock.recv(65536).decode().rstrip("\n"))
                except socket.timeout:
                    pass
        for c in conns:
            c.close()

    def close(self) -> None:
        self.stop = True
        self.thread.join(5)
        self.sock.close()


@pytest.mark.parametrize("kind", ["unix", "unixgram", "udp", "tcp"])
def test_syslog_delivers_to_a_local_listener(engine, api, tmp_path, kind):
    os.chmod(tmp_path, 0o755)
    lst = Listener(kind, tmp_path)
    try:
        name = uniq("sl")
        cid = engine.cli_ok("run", "-d", "--name", name, "--log-driver", "syslog",
                            "--log-opt", f"syslog-address={lst.address}", "--log-opt", "syslog-format=rfc5424",
                            "--log-opt", "syslog-facility=local3", "--log-opt", "tag=app-{{.Name}}",
                            "busybox", "sh", "-c", "echo hello syslog; echo bad >&2").strip()
        api.wait(cid)
        msgs = wait_for(lambda: len(lst.messages) >= 2 and lst.messages, 30)
        by_text = {m.rsplit(" - ", 1)[1]: m for m in msgs}
        out, err = by_text["hello syslog"], by_text["bad"]
        # RFC 5424: <PRI>1 TIMESTAMP HOST APP-NAME PROCID MSGID - MSG, facility local3 (19)
        head, ts, host, app, procid, msgid, dash = out.split(" ")[:7]
        assert head == f"<{19 * 8 + 6}>1" and err.startswith(f"<{19 * 8 + 3}>1 ")  # local3.info, local3.err
        assert app == f"app-{name}" and msgid == f"app-{name}" and procid.isdigit() and dash == "-"
        assert ts[:4].isdigit() and "T" in ts and host
        # dual logging, as dockerd 20.10+: `docker logs` reads the local cache kept beside syslog
        r = engine.cli("logs", cid)
        assert r.stdout == b"hello syslog\n" and r.stderr == b"bad\n"
        assert (ctr_dir(engine, cid) / "container-cached.log").exists()
        assert api.inspect_container(cid)["LogPath"] == ""
    finally:
        lst.close()


def test_syslog_with_the_cache_disabled_cannot_be_read(engine, api, tmp_path):
    os.chmod(tmp_path, 0o755)
    lst = Listener("udp", tmp_path)
    try:
        cid = engine.cli_ok("run", "-d", "--log-driver", "syslog", "--log-opt", f"syslog-address={lst.address}",
                            "--log-opt", "cache-disabled=true", "busybox", "echo", "only-in-syslog").strip()
        api.wait(cid)
        wait_for(lambda: any(m.endswith("only-in-syslog") for m in lst.messages), 30)
        r = engine.cli("logs", cid)
        assert r.stderr.decode().strip() == \
            "Error response from daemon: configured logging driver does not support reading"
        assert not (ctr_dir(engine, cid) / "container-cached.log").exists()
    finally:
        lst.close()


def test_syslog_address_refusing_connections_fails_the_start(engine, api):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    name = uniq("slr")
    r = engine.cli("run", "--name", name, "--log-driver", "syslog", "--log-opt",
                   f"syslog-address=tcp://127.0.0.1:{port}", "busybox", "true")
    assert r.returncode != 0
    assert (f"failed to initialize logging driver: dial tcp 127.0.0.1:{port}: connect: connection refused"
            in r.stderr.decode())
    st = api.inspect_container(name)["State"]
    assert not st["Running"] and "connection refused" in st["Error"]


def test_slow_syslog_receiver_never_blocks_the_container(engine, api, tmp_path):
    os.chmod(tmp_path, 0o755)
    path = str(tmp_path / "stuck.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)  # accepts, never reads
    try:
        cid = engine.cli_ok("run", "-d", "--log-driver", "syslog", "--log-opt", f"syslog-address=unix://{path}",
                            "busybox", "sh", "-c", "yes 0123456789abcdef | head -c 20000000").strip()
        assert api.wait(cid, timeout=300)["StatusCode"] == 0
    finally:
        srv.close()


# ------------------------------------------------------------------ syslog over tcp+tls
def make_pki(d: Path) -> dict[str, str]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate it signed, and an
    unrelated self-signed server certificate; PEM files in `d`, by name."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    import ipaddress

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def issue(cn: str, key, issuer_name, issuer_key, ca: bool, usage=None, ip: str | None = None):
        b = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(issuer_name)
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if ip:
            b = b.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), False)
        if usage:
            b = b.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        return b.sign(issuer_key, hashes.SHA256())

    def save(stem: str, cert, key) -> None:
        (d / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (d / f"{stem}-key.pem").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = issue("syslog test CA", ca_key, name("syslog test CA"), ca_key, True)
    save("ca", ca, ca_key)
    for stem, usage, ip in (("server", ExtendedKeyUsageOID.SERVER_AUTH, "127.0.0.1"),
                            ("client", ExtendedKeyUsageOID.CLIENT_AUTH, None)):
        k = ec.generate_private_key(ec.SECP256R1())
        save(stem, issue(f"syslog {stem}", k, ca.subject, ca_key, False, usage, ip), k)
    k = ec.generate_private_key(ec.SECP256R1())
    save("rogue", issue("rogue", k, name("rogue"), k, False, ExtendedKeyUsageOID.SERVER_AUTH, "127.0.0.1"), k)
    os.chmod(d, 0o755)
    return {p.stem: str(p) for p in d.glob("*.pem")}


class TLSListener:
    """A syslog receiver over TLS keeping each connection's raw bytes, so framing is checked."""

    def __init__(self, pki: dict[str, str], server: str = "server", client_ca: bool = False) -> None:
        import ssl

        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(pki[server], pki[f"{server}-key"])
        if client_ca:  # mutual TLS: no client certificate from the CA, no connection
            self.ctx.verify_mode = ssl.CERT_REQUIRED
            self.ctx.load_verify_locations(pki["ca"])
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.address = f"tcp+tls://127.0.0.1:{self.sock.getsockname()[1]}"
        self.raw: list[bytearray] = []  # per accepted TLS connection
        self.peers: list[dict | None] = []  # the client certificate each presented
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        import ssl

        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                c, _ = self.sock.accept()
                c.settimeout(10)
                t = self.ctx.wrap_socket(c, server_side=True)
            except (socket.timeout, ssl.SSLError, OSError):
                continue
            buf = bytearray()
            self.raw.append(buf)
            self.peers.append(t.getpeercert())
            threading.Thread(target=self._read, args=(t, buf), daemon=True).start()

    def _read(self, t, buf: bytearray) -> None:
        t.settimeout(0.2)
        with t:
            while not self.stop:
                try:
                    data = t.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    return
                if not data:
                    return
                buf += data

    def frames(self, octet_counting: bool) -> list[str]:
        """Every message received, split strictly by the expected framing (a bad frame raises)."""
        out: list[str] = []
        for raw in self.raw:
            data = bytes(raw)
            while data:
                if octet_counting:  # RFC 5425: MSG-LEN SP SYSLOG-MSG
                    n, _, rest = data.partition(b" ")
                    assert n.isdigit(), data[:80]
                    if len(rest) < int(n):
                        break  # the rest is on its way
                    msg, data = rest[:int(n)], rest[int(n):]
                    assert msg.endswith(b"\n")  # srslog ends the message, and counts, a newline
                else:
                    msg, nl, data = data.partition(b"\n")
                    if not nl:
                        break
                out.append(msg.decode().rstrip("\n"))
        return out

    def close(self) -> None:
        self.stop = True
        self.thread.join(5)
        self.sock.close()


def run_tls(engine, lst_address: str, *opts: str, lines: int = 100) -> str:
    args = ["run", "-d", "--log-driver", "syslog", "--log-opt", f"syslog-address={lst_address}"]
    for o in opts:
        args += ["--log-opt", o]
    return engine.cli_ok(*args, "busybox", "sh", "-c",
                         f"i=0; while [ $i -lt {lines} ]; do echo line-$i; i=$((i+1)); done; echo oops >&2").strip()


@pytest.mark.parametrize("fmt,octet_counting", [("rfc5424", True), ("rfc5424micro", True), ("rfc3164", False)])
def test_syslog_over_tls_delivers_in_order_framed_as_dockerd(engine, api, tmp_path, fmt, octet_counting):
    """dockerd (parseLogFormat): RFC 5425 octet counting for rfc5424* over tcp+tls, a newline else."""
    pki = make_pki(tmp_path)
    lst = TLSListener(pki)
    try:
        cid = run_tls(engine, lst.address, f"syslog-format={fmt}", f"syslog-tls-ca-cert={pki['ca']}",
                      "syslog-facility=local3", "tag=t-{{.ID}}")
        assert api.wait(cid, timeout=120)["StatusCode"] == 0
        msgs = wait_for(lambda: (f := lst.frames(octet_counting)) and len(f) >= 101 and f, 60,
                        seen=lambda: lst.frames(octet_counting)[-3:])
        assert len(lst.raw) == 2 and not lst.raw[0]  # the start's check, then one for the whole run
        texts = [m.rsplit(" - ", 1)[1] if fmt != "rfc3164" else m.split("]: ", 1)[1] for m in msgs]
        out = [t for t in texts if t.startswith("line-")]
        assert out == [f"line-{i}" for i in range(100)]  # all of them, in order
        err = next(m for m in msgs if m.endswith("oops"))
        assert msgs[0].startswith(f"<{19 * 8 + 6}>") and err.startswith(f"<{19 * 8 + 3}>")
        tag = f"t-{cid[:12]}"
        if fmt == "rfc3164":
            assert f" {tag}[" in msgs[0]
        else:
            head, ts, host, app, procid, msgid = msgs[0].split(" ")[:6]
            assert head == f"<{19 * 8 + 6}>1" and app == msgid == tag and procid.isdigit()
            assert ("." in ts) == (fmt == "rfc5424micro")
        assert engine.cli_ok("logs", cid).split() == [f"line-{i}" for i in range(100)]  # dual logging
    finally:
        lst.close()


def test_syslog_over_tls_with_a_client_certificate(engine, api, tmp_path):
    pki = make_pki(tmp_path)
    lst = TLSListener(pki, client_ca=True)
    try:
        cid = run_tls(engine, lst.address, f"syslog-tls-ca-cert={pki['ca']}", f"syslog-tls-cert={pki['client']}",
                      f"syslog-tls-key={pki['client-key']}", lines=5)
        api.wait(cid, timeout=120)
        msgs = wait_for(lambda: (f := lst.frames(False)) and len(f) >= 6 and f, 60, seen=lambda: lst.frames(False))
        assert [m.split("]: ", 1)[1] for m in msgs][:5] == [f"line-{i}" for i in range(5)]
        # every connection (the start's check, then the log daemon's) showed the client certificate
        assert lst.peers and all(dict(x[0] for x in p["subject"])["commonName"] == "syslog client"
                                 for p in lst.peers)
    finally:
        lst.close()


def test_syslog_over_tls_skip_verify_and_an_untrusted_receiver(engine, api, tmp_path):
    pki = make_pki(tmp_path)
    lst = TLSListener(pki, server="rogue")  # self-signed: no CA vouches for it
    try:
        # dockerd: `_, skipVerify := cfg["syslog-tls-skip-verify"]`: present means skip, whatever its value
        cid = run_tls(engine, lst.address, f"syslog-tls-ca-cert={pki['ca']}", "syslog-tls-skip-verify=false",
                      lines=3)
        api.wait(cid, timeout=120)
        wait_for(lambda: len(lst.frames(False)) >= 4, 60, seen=lambda: lst.frames(False))
        # verified against the CA, the receiver's certificate is refused: the start fails as dockerd's
        name = uniq("sltls")
        r = engine.cli("run", "--name", name, "--log-driver", "syslog", "--log-opt",
                       f"syslog-address={lst.address}", "--log-opt", f"syslog-tls-ca-cert={pki['ca']}",
                       "busybox", "true")
        assert r.returncode != 0
        assert ("failed to initialize logging driver: tls: failed to verify certificate: "
                "x509: certificate signed by unknown authority") in r.stderr.decode()
        assert not api.inspect_container(name)["State"]["Running"]
    finally:
        lst.close()


def test_syslog_over_tls_to_nothing_fails_the_start(engine, api, tmp_path):
    pki = make_pki(tmp_path)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    r = engine.cli("run", "--log-driver", "syslog", "--log-opt", f"syslog-address=tcp+tls://127.0.0.1:{port}",
                   "--log-opt", f"syslog-tls-ca-cert={pki['ca']}", "busybox", "true")
    assert r.returncode != 0  # crypto/tls dials "tcp": its error says so
    assert f"failed to initialize logging driver: dial tcp 127.0.0.1:{port}: connect: connection refused" \
        in r.stderr.decode()


def test_syslog_tls_options_are_checked_at_create(engine, api, tmp_path):
    pki = make_pki(tmp_path)
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    tls = ["--log-driver", "syslog", "--log-opt", "syslog-address=tcp+tls://127.0.0.1:6514"]
    cases = [
        (["--log-opt", "syslog-tls-ca-cert=/nonexistent/ca.pem"],
         'could not read CA certificate "/nonexistent/ca.pem": open /nonexistent/ca.pem: no such file or directory'),
        (["--log-opt", f"syslog-tls-ca-cert={tmp_path}/junk.pem"],
         f'failed to append certificates from PEM file: "{tmp_path}/junk.pem"'),
        (["--log-opt", "syslog-tls-cert=/nonexistent/c.pem", "--log-opt", f"syslog-tls-key={pki['client-key']}"],
         "could not load X509 key pair: open /nonexistent/c.pem: no such file or directory"),
        (["--log-opt", f"syslog-tls-cert={pki['client']}"],  # a certificate without its key
         "could not load X509 key pair: open : no such file or directory"),
        (["--log-opt", f"syslog-tls-cert={pki['client']}", "--log-opt", f"syslog-tls-key={pki['server-key']}"],
         "could not load X509 key pair: tls: private key does not match public key"),
        (["--log-opt", "syslog-tls-verify=1"], "unknown log opt 'syslog-tls-verify' for syslog log driver"),
    ]
    for args, message in cases:
        r = engine.cli("create", *tls, *args, "busybox", "true")
        assert r.returncode != 0 and f"Error response from daemon: {message}" in r.stderr.decode(), r.stderr
    # through the API (docker-py): a 400 with the same text
    with pytest.raises(docker.errors.APIError) as e:
        api.create_container("busybox", ["true"], host_config={"LogConfig": {"Type": "syslog", "Config": {
            "syslog-address": "tcp+tls://127.0.0.1:6514", "syslog-tls-ca-cert": "/nonexistent/ca.pem"}}})
    assert e.value.response.status_code == 400 and "could not read CA certificate" in e.value.explanation
    # dockerd reads the TLS options only for a tcp+tls address: with another one they are accepted, unused
    cid = engine.cli_ok("create", "--log-driver", "syslog", "--log-opt", "syslog-address=udp://127.0.0.1:514",
                        "--log-opt", "syslog-tls-ca-cert=/nonexistent/ca.pem", "busybox", "true").strip()
    assert api.inspect_container(cid)["HostConfig"]["LogConfig"]["Config"]["syslog-tls-ca-cert"] == \
        "/nonexistent/ca.pem"


# ------------------------------------------------------------------ daemon default
def test_daemon_default_driver_and_options(private_engine):
    eng = private_engine(["--log-driver", "local", "--log-opt", "max-file=2", "--log-opt", "max-size=1m"])
    api = eng.api()
    cid = eng.cli_ok("run", "-d", "busybox", "echo", "hi").strip()
    api.wait(cid)
    lc = api.inspect_container(cid)["HostConfig"]["LogConfig"]
    assert lc == {"Type": "local", "Config": {"max-file": "2", "max-size": "1m"}}
    assert eng.cli_ok("logs", cid) == "hi\n"
    cid2 = eng.cli_ok("run", "-d", "--log-driver", "json-file", "busybox", "echo", "x").strip()
    api.wait(cid2)
    assert api.inspect_container(cid2)["HostConfig"]["LogConfig"] == {"Type": "json-file", "Config": {}}
    assert api.info()["LoggingDriver"] == "local"


def test_engine_refuses_a_bad_default_log_config(tmp_path):
    import sys

    r = subprocess.run([sys.executable, "-m", "dockyard.cli", "engine", "-H", f"unix://{tmp_path}/e.sock",
                        "--data-root", str(tmp_path / "d"), "--exec-root", str(tmp_path / "r"),
                        "--log-opt", "max-size=abc"], capture_output=True, timeout=60)
    assert r.returncode != 0 and b"invalid size: 'abc'" in r.stderr
    assert not (tmp_path / "e.sock").exists()


# ------------------------------------------------------------------ the log daemon itself
def test_a_killed_log_daemon_is_restarted_and_resumes_without_loss(private_engine):
    eng = private_engine()
    api = eng.api()
    cid = eng.cli_ok("run", "-d", "busybox", "sh", "-c",
                     "i=0; while [ $i -lt 60 ]; do echo n$i; i=$((i+1)); sleep 0.05; done").strip()
    wait_for(lambda: b"n5" in api.logs(cid))
    (old,) = eng.logd_pids()
    os.kill(old, 9)
    new = wait_for(lambda: [p for p in eng.logd_pids() if p != old], 30)
    assert new
    api.wait(cid, timeout=60)
    assert api.logs(cid).decode().split() == [f"n{i}" for i in range(60)]


def test_the_log_daemon_starts_with_the_first_container_that_logs(private_engine):
    eng = private_engine()
    assert eng.logd_pids() == []  # an engine that ran nothing holds no log daemon
    eng.cli_ok("run", "--rm", "--log-driver", "none", "busybox", "true")
    assert eng.logd_pids() == []  # nor for a container that does not log
    cid = eng.cli_ok("run", "-d", "busybox", "sh", "-c", "echo first; sleep 300").strip()
    wait_for(lambda: eng.api().logs(cid) == b"first\n", 60)
    assert len(eng.logd_pids()) == 1
    eng.stop()  # the container goes on running, and so does the daemon
    eng.start()
    assert len(eng.logd_pids()) == 1
    eng.cli_ok("rm", "-f", cid)


def test_engine_sigkill_keeps_the_log_daemon_and_a_new_engine_adopts_it(private_engine):
    eng = private_engine()
    eng.cli_ok("run", "busybox", "echo", "hello")  # the first container to log starts the daemon
    (pid,) = wait_for(eng.logd_pids, 30)
    eng.kill9()
    assert eng.logd_pids() == [pid]
    eng.start()
    assert eng.logd_pids() == [pid]  # adopted, not a second one
    eng.remove_all_containers()
    eng.stop()  # nothing left running: the daemon stops with the engine
    wait_for(lambda: eng.logd_pids() == [], 20)
    eng.start()  # and no spool waits for one: the next engine starts none
    assert eng.logd_pids() == []


@pytest.fixture
def bare_log_daemon(tmp_path):
    """A log daemon with no engine: the test plays the engine (config files) and conmon (spools)."""
    data, run = tmp_path / "data", tmp_path / "run"
    (data / "containers").mkdir(parents=True)
    run.mkdir()
    with open(tmp_path / "logd.log", "ab") as logf:
        proc = subprocess.Popen([sys.executable, "-m", "dockyard.cli", "logd", "--data-root", str(data),
                                 "--exec-root", str(run)], stdout=logf, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        wait_for(lambda: (run / "logd.sock").exists() or proc.poll() is not None, 60)
        assert proc.poll() is None, (tmp_path / "logd.log").read_text()
        yield data / "containers", tmp_path / "logd.log"
    finally:
        proc.kill()
        proc.wait()


def spool_lines(*texts: str) -> bytes:
    """CRI lines as conmon appends them to the spool."""
    return b"".join(f"2026-11-30T12:00:00.{i:09d}+00:00 stdout F {t}\n".encode() for i, t in enumerate(texts))


def test_log_daemon_follows_a_spool_no_watch_announced(bare_log_daemon):
    # The engine tells the daemon of a started container without waiting; an engine SIGKILLed
    # right after `docker run -d` returned never did, and the daemon never followed the spool.
    ctrs, daemon_log = bare_log_daemon
    with socket.socket(socket.AF_UNIX) as s:  # an engine killed between connecting and asking
        s.connect(str(ctrs.parent.parent / "run" / "logd.sock"))
    cid = "ab" * 32
    d = ctrs / cid
    d.mkdir()
    write_config(d, "json-file", {}, ContainerInfo(id=cid, name="quiet"))
    (d / SPOOL_NAME).write_bytes(spool_lines("nobody", "told"))
    out = d / f"{cid}-json.log"

    def lines() -> list[str]:
        try:
            return [json.loads(x)["log"] for x in out.read_bytes().splitlines()]
        except FileNotFoundError:
            return []

    seen = lambda: f"{lines()}; {sorted(p.name for p in d.iterdir())}; {daemon_log.read_text()[-2000:]}"  # noqa: E731
    wait_for(lambda: lines() == ["nobody\n", "told\n"], 60, seen=seen)
    with open(d / SPOOL_NAME, "ab") as f:  # and it goes on following it
        f.write(spool_lines("more"))
    wait_for(lambda: lines()[-1:] == ["more\n"], 60, seen=seen)
    # a container whose driver cannot open is tried again only when its config changes: no busy retry
    bad = ctrs / ("cd" * 32)
    bad.mkdir()
    (bad / "logconfig.json").write_text("{not json")
    (bad / SPOOL_NAME).write_bytes(spool_lines("x"))
    wait_for(lambda: "cannot follow the log of cdcdcdcdcdcd" in daemon_log.read_text(), 60, seen=seen)
    time.sleep(3)
    assert daemon_log.read_text().count("cannot follow the log of cdcdcdcdcdcd") == 1
    assert "Traceback" not in daemon_log.read_text()


def test_logs_flow_again_when_the_log_daemon_died_while_the_engine_was_down(private_engine):
    eng = private_engine()
    cid = eng.cli_ok("run", "-d", "--log-opt", "max-size=1m", "--log-opt", "max-file=3", "busybox", "sh", "-c",
                     "sleep 3; seq 1 400000; echo done").strip()
    d = ctr_dir(eng, cid)
    stem = f"{cid}-json.log"
    (old,) = wait_for(eng.logd_pids, 30)  # started by this first container that logs
    eng.kill9()
    os.kill(old, signal.SIGKILL)  # nothing restarts it while the engine is away
    wait_for(lambda: not eng.logd_pids(), 30, seen=lambda: log_state(eng, d))
    # the container ends its output into the spool (conmon replaces it: 2.7 MB in 1 MB files)
    wait_for(lambda: b"done" in (d / SPOOL_NAME).read_bytes()[-100:], 120, 0.2, seen=lambda: log_state(eng, d))
    assert not json_done(d, stem)
    assert logs_on_disk(d, stem) < 5_000_000, log_state(eng, d)  # bounded though nothing converts
    eng.start()  # starts another daemon, which resumes the spool
    assert eng.logd_pids() and eng.logd_pids() != [old]
    wait_for(lambda: json_done(d, stem), 120, 0.2, seen=lambda: log_state(eng, d))
    api = eng.api()
    api.wait(cid, timeout=120)
    lines = api.logs(cid, tail=1000).decode().split()
    assert lines[-1] == "done"
    nums = [int(x) for x in lines[:-1]]
    assert nums == list(range(nums[0], 400001)), "the spool's newest lines, in order, each once"


def test_a_stopped_log_daemon_continues_and_the_bounds_hold(private_engine):
    # SIGSTOP stands for a daemon starved of CPU: conmon goes on replacing spools meanwhile
    eng = private_engine()
    cid = eng.cli_ok("run", "-d", "--log-opt", "max-size=1m", "--log-opt", "max-file=3", "busybox", "sh", "-c",
                     "sleep 2; seq 1 3000000; echo done").strip()
    d = ctr_dir(eng, cid)
    stem = f"{cid}-json.log"
    (pid,) = wait_for(eng.logd_pids, 30)  # started by this first container that logs
    time.sleep(2.5)
    os.kill(pid, signal.SIGSTOP)
    peak = held = 0
    try:
        t_end = time.time() + 4
        while time.time() < t_end:
            peak = max(peak, logs_on_disk(d, stem))
            held = max(held, held_spool_bytes([pid]))
            time.sleep(0.1)
    finally:
        os.kill(pid, signal.SIGCONT)

    def done() -> bool:
        nonlocal peak, held
        peak = max(peak, logs_on_disk(d, stem))
        held = max(held, held_spool_bytes([pid]))
        return json_done(d, stem)

    wait_for(done, 200, 0.1, seen=lambda: f"peak {peak}, held {held}; {log_state(eng, d)}")
    assert eng.logd_pids() == [pid]
    assert peak < 6_000_000 and held <= 2 * (1 << 20) + (64 << 10), (peak, held, log_state(eng, d))
    api = eng.api()
    api.wait(cid, timeout=120)
    lines = api.logs(cid).decode().split()
    assert lines[-1] == "done"
    nums = [int(x) for x in lines[:-1]]
    # what the bounded spool dropped is missing; the rest is in order, each line once, to the end
    assert nums == sorted(set(nums)) and nums[-1] == 3000000


def test_a_full_disk_never_blocks_the_container(private_engine):
    eng = private_engine()
    api = eng.api()
    cid = eng.cli_ok("create", "--log-driver", "local", "--log-opt", "max-size=100m", "busybox", "sh", "-c",
                     "sleep 2; yes 'output that has nowhere to go' | head -c 30000000; echo finished").strip()
    # the driver's directory and conmon's spool on a small disk of their own
    small = ctr_dir(eng, cid) / "local-logs"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(small)], check=True)
    try:
        os.symlink(small / "spool.log", ctr_dir(eng, cid) / "spool.log")
        api.start(cid)
        with open(small / "fill", "wb") as f:  # the disk fills up while the container writes
            try:
                f.write(b"\0" * (8 << 20))
            except OSError:
                pass
        assert api.wait(cid, timeout=300)["StatusCode"] == 0
        assert api.inspect_container(cid)["State"]["Status"] == "exited"
        assert api.ping()  # and the engine still answers
    finally:
        subprocess.run(["umount", "-l", str(small)], capture_output=True)
