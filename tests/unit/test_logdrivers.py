"""Log drivers: one suite every driver passes, then each driver's specifics.

The shared suite writes the same records through each driver and reads them
back the way a consumer would: `docker logs`' reader for json-file and local,
a syslog receiver on a unix datagram socket for syslog, nothing for none.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import socket
import time
from pathlib import Path

import pytest

from dockyard.engine import logdrivers
from dockyard.engine.logdrivers import jsonfile, local, syslog
from dockyard.engine.logdrivers.base import STDERR, STDOUT, ContainerInfo, LogQuery, LogRecord
from dockyard.engine.logdrivers.logd import Tap, write_config
from dockyard.engine.logdrivers.reader import read_logs
from dockyard.engine.logdrivers.spool import SPOOL_NAME, SpoolReader
from dockyard.errors import InvalidParameter

CID = "c0ffee" + "0" * 58
INFO = ContainerInfo(id=CID, name="web", image_id="sha256:" + "ab" * 32, image_name="busybox:latest",
                     labels={"com.example.team": "a", "other": "b"}, env=["REGION=eu", "SECRET=x", "PATH=/bin"])
T0 = 1_790_000_000_000_000_000

RECORDS = [
    LogRecord(STDOUT, T0 + 1, b"hello\n"),
    LogRecord(STDERR, T0 + 2, b"oops \xc3\xa9t\xc3\xa9\n"),
    LogRecord(STDOUT, T0 + 3, b"<tag> & \"quoted\"\n"),
    LogRecord(STDOUT, T0 + 4, b"no newline at the end"),
]


def read_all(live: Path, codec, **q) -> list[LogRecord]:
    async def run():
        return [r async for r in read_logs(live, codec, LogQuery(**q), lambda: False)]
    return asyncio.run(run())


class Sink:
    """A driver under test and a way to get back what it delivered."""

    def __init__(self, name: str, tmp: Path) -> None:
        self.name, self.tmp = name, tmp
        self.opts: dict[str, str] = {}
        self.rx: socket.socket | None = None
        if name == "syslog":
            path = str(tmp / "syslog.sock")
            self.rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.rx.bind(path)
            self.rx.settimeout(5)
            self.opts = {"syslog-address": f"unixgram://{path}", "syslog-format": "rfc5424micro"}

    def driver(self):
        return logdrivers.open_driver(self.name, self.tmp, INFO, self.opts)

    def delivered(self, n: int) -> list[tuple[int, bytes]]:
        """(stream, data) in order; syslog gives the stream back from the severity."""
        if self.name in logdrivers.READABLE:
            return [(r.stream, r.data) for r in
                    read_all(logdrivers.log_file(self.name, self.tmp, CID), logdrivers.codec(self.name))]
        if self.name == "syslog":
            # dual logging: the cache holds exactly what the driver was given
            cached = [(r.stream, r.data) for r in read_all(self.tmp / logdrivers.CACHE_NAME, local.LocalCodec)]
            assert cached == [(r.stream, r.data) for r in RECORDS[:len(cached)]] and len(cached) == n
            out = []
            for _ in range(n):
                msg = self.rx.recv(65536).decode()
                pri = int(msg[1:msg.index(">")])
                content = msg.split(" - ", 1)[1].rstrip("\n")
                out.append((STDERR if pri & 7 == 3 else STDOUT, content.encode() + b"\n"))
            return out
        return []

    def close(self) -> None:
        if self.rx:
            self.rx.close()


@pytest.fixture(params=["json-file", "local", "syslog", "none"])
def sink(request, tmp_path):
    s = Sink(request.param, tmp_path)
    yield s
    s.close()


# ------------------------------------------------------------- shared suite
def test_records_come_back_in_order_with_their_streams(sink):
    d = sink.driver()
    for r in RECORDS:
        d.write(r)
    d.close()
    got = sink.delivered(len(RECORDS))
    if sink.name == "none":
        assert got == []
        return
    want = [(r.stream, r.data) for r in RECORDS]
    if sink.name == "syslog":  # a message is a line: the unfinished one is sent as a line
        want[-1] = (STDOUT, RECORDS[-1].data + b"\n")
    assert got == want


def test_an_empty_driver_closes_cleanly_and_reopens(sink):
    sink.driver().close()
    d = sink.driver()
    d.write(RECORDS[0])
    d.close()
    got = sink.delivered(1)
    assert got == ([] if sink.name == "none" else [(STDOUT, b"hello\n")])


def test_each_driver_validates_its_own_options(sink):
    logdrivers.validate_log_config(sink.name, sink.opts)
    if sink.name == "none":
        logdrivers.validate_log_config("none", {"anything": "goes"})  # as dockerd: none takes all
        return
    with pytest.raises(InvalidParameter) as e:
        logdrivers.validate_log_config(sink.name, {**sink.opts, "bogus": "1"})
    assert "unknown log opt 'bogus'" in e.value.message


# ------------------------------------------------------------- json-file
def test_json_file_lines_are_dockers(tmp_path):
    d = logdrivers.open_driver("json-file", tmp_path, INFO, {})
    for r in RECORDS:
        d.write(r)
    d.close()
    lines = (tmp_path / f"{CID}-json.log").read_bytes().splitlines()
    assert lines[0] == b'{"log":"hello\\n","stream":"stdout","time":"2026-09-21T14:13:20.000000001Z"}'
    assert lines[2].startswith(b'{"log":"\\u003ctag\\u003e \\u0026 \\"quoted\\"\\n"')
    assert json.loads(lines[1])["log"] == "oops été\n"
    assert json.loads(lines[3])["log"] == "no newline at the end"


def test_json_file_attrs_from_labels_env_and_tag(tmp_path):
    opts = {"labels": "com.example.team,missing", "env-regex": "^REG", "env": "SECRET",
            "tag": "{{.Name}}/{{.ID}}/{{.ImageName}}"}
    d = logdrivers.open_driver("json-file", tmp_path, INFO, opts)
    d.write(RECORDS[0])
    d.close()
    entry = json.loads((tmp_path / f"{CID}-json.log").read_text())
    assert list(entry) == ["log", "stream", "attrs", "time"]
    assert entry["attrs"] == {"com.example.team": "a", "REGION": "eu", "SECRET": "x",
                              "tag": f"web/{CID[:12]}/busybox:latest"}


@pytest.mark.parametrize("driver", ["json-file", "local"])
def test_rotation_keeps_max_file_files_compressed(tmp_path, driver):
    d = logdrivers.open_driver(driver, tmp_path, INFO, {"max-size": "2k", "max-file": "3", "compress": "true"})
    for i in range(400):
        d.write(LogRecord(STDOUT, T0 + i, f"line {i:04d} ".encode() + b"x" * 40 + b"\n"))
    d.close()
    live = logdrivers.log_file(driver, tmp_path, CID)
    names = sorted(p.name for p in live.parent.iterdir() if p.name.startswith(live.name))
    assert names == [live.name, live.name + ".1.gz", live.name + ".2.gz"]
    with gzip.open(str(live) + ".1.gz") as f:
        assert f.read()  # real gzip
    recs = read_all(live, logdrivers.codec(driver))
    total = sum(p.stat().st_size for p in live.parent.iterdir() if p.name.startswith(live.name))
    assert total < 3 * 2100
    # the newest records, in order, with none missing at the end
    nums = [int(r.data.split()[1]) for r in recs]
    assert nums == list(range(nums[0], 400)) and nums[0] > 0
    tail = read_all(live, logdrivers.codec(driver), tail=len(recs) - 5)
    assert [r.data for r in tail] == [r.data for r in recs[5:]]
    since = read_all(live, logdrivers.codec(driver), since_ns=T0 + 390)
    assert [int(r.data.split()[1]) for r in since] == list(range(390, 400))


def test_a_compression_cut_short_is_finished_by_the_next_daemon(tmp_path):
    d = logdrivers.open_driver("json-file", tmp_path, INFO, {"max-size": "2k", "max-file": "3", "compress": "true"})
    for i in range(100):
        d.write(LogRecord(STDOUT, T0 + i, f"line {i:04d} ".encode() + b"x" * 40 + b"\n"))
    d.close()
    live = logdrivers.log_file("json-file", tmp_path, CID)
    # the daemon was SIGKILLed between a rotation's rename and the end of its gzip
    newest_rotated = gzip.decompress((tmp_path / f"{live.name}.1.gz").read_bytes())
    (tmp_path / f"{live.name}.1.gz").unlink()
    (tmp_path / f"{live.name}.1").write_bytes(newest_rotated)
    (tmp_path / f"{live.name}.1.gz.tmp").write_bytes(b"\x1f\x8b half")
    before = [r.data for r in read_all(live, jsonfile.JSONCodec)]
    d = logdrivers.open_driver("json-file", tmp_path, INFO, {"max-size": "2k", "max-file": "3", "compress": "true"})
    assert not (tmp_path / f"{live.name}.1").exists()  # finished when the daemon opened the driver
    assert gzip.decompress((tmp_path / f"{live.name}.1.gz").read_bytes()) == newest_rotated
    first = (tmp_path / f"{live.name}.1.gz").stat().st_ino
    i = 100
    while (tmp_path / f"{live.name}.1.gz").stat().st_ino == first:  # one more rotation: `.1.gz` → `.2.gz`
        d.write(LogRecord(STDOUT, T0 + i, f"line {i:04d} ".encode() + b"x" * 40 + b"\n"))
        i += 1
    d.close()
    names = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(live.name))
    assert names == [live.name, live.name + ".1.gz", live.name + ".2.gz"]
    assert gzip.decompress((tmp_path / f"{live.name}.2.gz").read_bytes()) == newest_rotated
    nums = [int(r.data.split()[1]) for r in read_all(live, jsonfile.JSONCodec)]
    assert nums == list(range(nums[0], i)) and nums[0] < int(before[0].split()[1]) + 20


def test_json_file_without_compress_keeps_plain_numbered_files(tmp_path):
    d = logdrivers.open_driver("json-file", tmp_path, INFO, {"max-size": "1k", "max-file": "2"})
    for i in range(100):
        d.write(LogRecord(STDOUT, T0 + i, b"y" * 30 + b"\n"))
    d.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{CID}-json.log", f"{CID}-json.log.1"]


def test_follow_crosses_a_rotation(tmp_path):
    d = logdrivers.open_driver("json-file", tmp_path, INFO, {"max-size": "1k", "max-file": "2"})
    live = tmp_path / f"{CID}-json.log"
    d.write(LogRecord(STDOUT, T0, b"first\n"))
    running = [True]

    async def run():
        got = []

        async def consume():
            async for r in read_logs(live, jsonfile.JSONCodec, LogQuery(follow=True), lambda: running[0],
                                     poll=0.01):
                got.append(r.data)

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.1)
        for i in range(60):  # several rotations
            d.write(LogRecord(STDOUT, T0 + i + 1, f"n{i:02d}".encode() + b"z" * 40 + b"\n"))
            if i % 10 == 0:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        running[0] = False
        await asyncio.wait_for(task, 10)
        return got

    got = asyncio.run(run())
    d.close()
    assert got[0] == b"first\n"
    # every record written after the reader started, none twice (a fast burst between two
    # polls may rotate a file away unread only if it rotates twice: not with these pauses)
    assert [g[:3] for g in got[1:]] == [f"n{i:02d}".encode() for i in range(60)]


# ------------------------------------------------------------- local
def test_local_entries_are_length_framed_protobuf(tmp_path):
    d = logdrivers.open_driver("local", tmp_path, INFO, {})
    d.write(LogRecord(STDERR, T0, b"abc\n"))
    d.close()
    raw = (tmp_path / "local-logs" / "container.log").read_bytes()
    size = int.from_bytes(raw[:4], "big")
    assert len(raw) == size + 8 and raw[-4:] == raw[:4]
    body = raw[4:-4]
    # source "stderr" (field 1), time_nano (field 2, varint), line "abc" without newline (field 3)
    assert body.startswith(b"\x0a\x06stderr\x10") and body.endswith(b"\x1a\x03abc")


def test_local_defaults_are_dockerds():
    assert local.parse_opts({}) == (20 * 1024 * 1024, 5, True)


# ------------------------------------------------------------- validation texts
@pytest.mark.parametrize("driver,opts,message", [
    ("asdf", {}, "logger: no log driver named 'asdf' is registered"),
    ("json-file", {"max-size": "abc"}, "invalid size: 'abc'"),
    ("json-file", {"max-size": "0"}, "max-size must be a positive number"),
    ("json-file", {"max-file": "0"}, "max-file cannot be less than 1"),
    ("json-file", {"max-file": "x"}, 'strconv.Atoi: parsing "x": invalid syntax'),
    ("json-file", {"compress": "true"}, "compress cannot be true when max-file is less than 2 or max-size is not set"),
    ("json-file", {"foo": "1"}, "unknown log opt 'foo' for json-file log driver"),
    ("local", {"foo": "1"}, "unknown log opt 'foo' for log driver local"),
    ("local", {"max-size": "abc"}, "invalid value for max-size: abc: invalid size: 'abc'"),
    ("local", {"max-file": "1"}, "compression cannot be enabled when max file count is 1"),
    ("syslog", {"syslog-address": "http://x"}, "unsupported scheme: 'http'"),
    ("syslog", {"syslog-facility": "nope"}, "invalid syslog facility"),
    ("syslog", {"syslog-format": "nope"}, "Invalid syslog format"),
    ("syslog", {"syslog-address": "unix:///nonexistent/sock"}, "stat /nonexistent/sock: no such file or directory"),
    ("json-file", {"mode": "fast"}, "logger: logging mode not supported: fast"),
    ("json-file", {"max-buffer-size": "1m"}, "logger: max-buffer-size option is only supported with 'mode=non-blocking'"),
])
def test_bad_configs_get_dockerds_messages(driver, opts, message):
    with pytest.raises(InvalidParameter) as e:
        logdrivers.validate_log_config(driver, opts)
    assert e.value.message == message


def test_good_configs_pass():
    logdrivers.validate_log_config("json-file", {"max-size": "10m", "max-file": "3", "compress": "true",
                                                 "mode": "non-blocking", "max-buffer-size": "4m"})
    logdrivers.validate_log_config("syslog", {"syslog-address": "udp://127.0.0.1", "syslog-facility": "local3",
                                              "syslog-format": "rfc5424", "tag": "x"})
    assert jsonfile.parse_opts({"max-size": "10m"})[0] == 10_000_000


def test_what_docker_logs_reads_for_each_driver(tmp_path):
    from dockyard.errors import NotImplemented_

    assert logdrivers.log_file("json-file", tmp_path, CID) == tmp_path / f"{CID}-json.log"
    assert logdrivers.log_file("local", tmp_path, CID) == tmp_path / "local-logs" / "container.log"
    assert logdrivers.log_file("syslog", tmp_path, CID, {}) == tmp_path / "container-cached.log"
    for driver, opts in (("none", {}), ("syslog", {"cache-disabled": "true"})):
        with pytest.raises(NotImplemented_) as e:
            logdrivers.log_file(driver, tmp_path, CID, opts)
        assert e.value.message == "configured logging driver does not support reading"


def test_journald_is_refused_clearly_without_journald():
    if os.path.exists(logdrivers.JOURNALD_SOCKET):
        pytest.skip("journald runs here")
    with pytest.raises(InvalidParameter) as e:
        logdrivers.validate_log_config("journald", {})
    assert e.value.message == "journald is not enabled on this host"


def test_merge_takes_the_daemon_default_and_its_options():
    lc = logdrivers.merge_log_config(None, "local", {"max-file": "2"})
    assert lc == {"Type": "local", "Config": {"max-file": "2"}}
    # another driver named explicitly: the default's options are not mixed in
    assert logdrivers.merge_log_config({"Type": "none"}, "local", {"max-file": "2"}) == {"Type": "none", "Config": {}}


# ------------------------------------------------------------- syslog
def test_syslog_formats_are_srslogs():
    from datetime import datetime, timezone

    now = datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=timezone.utc)
    assert syslog.format_message("rfc5424", 30, "t", "hi", "h", 9, now) == "<30>1 2026-03-04T05:06:07Z h t 9 t - hi"
    assert syslog.format_message("rfc5424micro", 30, "t", "hi", "h", 9, now) == \
        "<30>1 2026-03-04T05:06:07.123456Z h t 9 t - hi"
    assert syslog.format_message("rfc3164", 30, "t", "hi", "h", 9, now) == "<30>Mar  4 05:06:07 h t[9]: hi"
    assert syslog.format_message("", 30, "t", "hi", "h", 9, now) == "<30>Mar  4 05:06:07 t[9]: hi"


def test_syslog_to_a_dead_stream_receiver_never_blocks(tmp_path):
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    path = str(tmp_path / "s.sock")
    srv.bind(path)
    srv.listen(1)  # accepts the connection but never reads
    d = logdrivers.open_driver("syslog", tmp_path, INFO, {"syslog-address": f"unix://{path}", "cache-disabled": "true"})
    t = time.monotonic()
    for i in range(20000):
        d.write(LogRecord(STDOUT, T0, b"z" * 200 + b"\n"))
    d.close()
    srv.close()
    assert time.monotonic() - t < 30
    assert d.dropped > 0


# ------------------------------------------------------------- spool and daemon tap
def spool_line(t: int, stream: str, tag: str, text: str) -> bytes:
    return f"2026-09-21T14:13:20.{t:09d}+00:00 {stream} {tag} {text}\n".encode()


def test_spool_reader_joins_partials_and_follows_conmons_replacement(tmp_path):
    p = tmp_path / SPOOL_NAME
    p.write_bytes(spool_line(1, "stdout", "P", "ab") + spool_line(2, "stderr", "F", "err") +
                  spool_line(3, "stdout", "F", "cd"))
    r = SpoolReader(p)
    r.open()
    assert [(x.stream, x.data) for x in r.read()] == [(STDERR, b"err\n"), (STDOUT, b"abcd\n")]
    with open(p, "ab") as f:
        f.write(spool_line(4, "stdout", "F", "before-replace"))
    # conmon's --log-size-max: a fresh file renamed over the spool
    tmp = tmp_path / (SPOOL_NAME + ".tmp")
    tmp.write_bytes(spool_line(5, "stdout", "F", "after-replace"))
    os.rename(tmp, p)
    assert [x.data for x in r.read()] == [b"before-replace\n", b"after-replace\n"]
    r.close()


def test_a_lagging_spool_reader_holds_two_files_at_most(tmp_path):
    """Replaced spools stay on disk while open: a reader slower than conmon finishes the
    file it is in and jumps to the newest, dropping those between (as conmon drops them)."""
    p = tmp_path / SPOOL_NAME

    def replace(*lines: bytes) -> None:  # conmon's --log-size-max: a fresh file renamed over the spool
        tmp = tmp_path / (SPOOL_NAME + ".tmp")
        tmp.write_bytes(b"".join(lines))
        os.rename(tmp, p)

    p.write_bytes(spool_line(1, "stdout", "F", "a1") + spool_line(2, "stdout", "F", "a2"))
    r = SpoolReader(p)
    r.open()
    assert [x.data for x in r.read(limit=len(spool_line(1, "stdout", "F", "a1")))] == [b"a1\n"]
    middle = [spool_line(3 + i, "stdout", "F", f"m{i}") for i in range(5)]
    for i, line in enumerate(middle):  # each replacement seen, none read: the reader lags
        replace(line)
        r.notice_replacement()
        assert len(r.files) <= 2
    replace(spool_line(9, "stdout", "F", "newest"))
    assert [x.data for x in r.read()] == [b"a2\n", b"newest\n"]
    assert r.skipped == sum(map(len, middle))
    assert len(r.files) == 1
    r.close()


def test_tap_resumes_from_its_saved_offset(tmp_path):
    write_config(tmp_path, "json-file", {}, INFO)
    spool = tmp_path / SPOOL_NAME
    spool.write_bytes(spool_line(1, "stdout", "F", "one") + spool_line(2, "stdout", "P", "tw"))
    t = Tap(tmp_path)
    t.pump()
    t.close()  # the daemon dies with "tw" pending: its offset is where "tw" starts
    with open(spool, "ab") as f:
        f.write(spool_line(3, "stdout", "F", "o") + spool_line(4, "stderr", "F", "three"))
    t = Tap(tmp_path)
    t.stop()
    recs = read_all(tmp_path / f"{CID}-json.log", jsonfile.JSONCodec)
    assert [r.data for r in recs] == [b"one\n", b"two\n", b"three\n"]
    assert not spool.exists()


def test_a_new_spool_on_a_reused_inode_is_read_from_its_start(tmp_path):
    write_config(tmp_path, "json-file", {}, INFO)
    spool = tmp_path / SPOOL_NAME
    spool.write_bytes(spool_line(1, "stdout", "F", "old one") + spool_line(2, "stdout", "F", "old two"))
    t = Tap(tmp_path)
    t.pump()
    t.close()  # the daemon dies; conmon replaces the spool twice, and the newest gets the old inode
    ino = spool.stat().st_ino
    with open(spool, "r+b") as f:  # the same inode, another file's content
        f.truncate(0)
        f.write(b"".join(spool_line(10 + i, "stdout", "F", f"new {i}") for i in range(4)))
    assert spool.stat().st_ino == ino
    t = Tap(tmp_path)
    t.stop()
    recs = read_all(tmp_path / f"{CID}-json.log", jsonfile.JSONCodec)
    assert [r.data for r in recs] == [b"old one\n", b"old two\n"] + [f"new {i}\n".encode() for i in range(4)]


def test_the_clis_seconds_nanoseconds_are_exact():
    from dockyard.engine.timeutil import parse_timestamp_ns

    assert parse_timestamp_ns("1790000000.000000123") == 1_790_000_000_000_000_123
    assert parse_timestamp_ns("1790000000") == 1_790_000_000_000_000_000
    assert parse_timestamp_ns("1790000000.5") == 1_790_000_000_500_000_000


@pytest.mark.parametrize("driver", ["json-file", "local"])
def test_attributes_come_back_for_details(tmp_path, driver):
    from dockyard.engine.logdrivers.base import format_details

    d = logdrivers.open_driver(driver, tmp_path, INFO, {"labels": "com.example.team", "tag": "a b&c"})
    d.write(RECORDS[0])
    d.close()
    (rec,) = read_all(logdrivers.log_file(driver, tmp_path, CID), logdrivers.codec(driver))
    assert rec.attrs == {"com.example.team": "a", "tag": "a b&c"}
    assert format_details(rec.attrs) == b"com.example.team=a,tag=a+b%26c"


def test_syslog_tls_to_a_receiver_that_never_shakes_hands_never_blocks(tmp_path):
    """tcp+tls: the handshake goes a step per flush; records wait in the bounded queue meanwhile."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)  # the TCP connection is accepted by the kernel, no TLS ever answers
    addr = f"tcp+tls://127.0.0.1:{srv.getsockname()[1]}"
    d = logdrivers.open_driver("syslog", tmp_path, INFO, {"syslog-address": addr, "syslog-tls-skip-verify": "",
                                                          "syslog-format": "rfc5424", "cache-disabled": "true"})
    t = time.monotonic()
    for i in range(20000):
        d.write(LogRecord(STDOUT, T0, b"z" * 200 + b"\n"))
        d.flush()  # as the daemon's tick
    assert d.handshaking and d.dropped > 0  # still waiting: the queue filled up, then records were dropped
    assert 0 < len(d.pending) <= syslog.MAX_PENDING
    d.close()
    srv.close()
    assert time.monotonic() - t < 30


def test_syslog_tls_host_check_words_as_go():
    """Go's x509 HostnameError texts, from the certificate the receiver showed."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from dockyard.engine.logdrivers import syslogtls

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)

    class Peer:  # what an SSLSocket gives: the DER certificate
        def __init__(self, *sans, cn="x"):
            b = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
                 .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ca")]))
                 .public_key(key.public_key()).serial_number(1).not_valid_before(now)
                 .not_valid_after(now + datetime.timedelta(days=1)))
            if sans:
                b = b.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
            self.der = b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

        def getpeercert(self, binary_form=False):
            return self.der

    ip = x509.IPAddress(ipaddress.ip_address("10.0.0.1"))
    syslogtls.check_host(Peer(x509.DNSName("*.example.com")), "logs.example.com")
    syslogtls.check_host(Peer(ip), "10.0.0.1")
    for peer, host, why in [
        (Peer(x509.DNSName("logs.example.com"), ip), "127.0.0.1", "certificate is valid for 10.0.0.1, not 127.0.0.1"),
        (Peer(x509.DNSName("logs.example.com")), "127.0.0.1",
         "cannot validate certificate for 127.0.0.1 because it doesn't contain any IP SANs"),
        (Peer(x509.DNSName("a.example.com"), x509.DNSName("b.example.com")), "c.example.com",
         "certificate is valid for a.example.com, b.example.com, not c.example.com"),
        (Peer(cn="logs"), "logs", "certificate relies on legacy Common Name field, use SANs instead"),
    ]:
        with pytest.raises(InvalidParameter) as e:
            syslogtls.check_host(peer, host)
        assert e.value.message == f"tls: failed to verify certificate: x509: {why}"


def test_syslog_tls_redials_once_the_receiver_closed(tmp_path):
    """A receiver that closes its end is noticed (its close is read) and redialled; nothing queued is lost."""
    import datetime
    import ssl
    import threading

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    n = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "r")])
    cert = (x509.CertificateBuilder().subject_name(n).issuer_name(n).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    (tmp_path / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "k.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    got: list[bytes] = []  # per connection
    closed = threading.Event()

    def serve() -> None:
        for _ in range(2):
            c = ctx.wrap_socket(srv.accept()[0], server_side=True)
            c.settimeout(30)
            data = b""
            while not data.endswith(b"\n"):
                data += c.recv(4096)
            got.append(data)
            c.close()  # after the first message
            closed.set()

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    d = logdrivers.open_driver("syslog", tmp_path, INFO, {
        "syslog-address": f"tcp+tls://127.0.0.1:{srv.getsockname()[1]}", "syslog-tls-skip-verify": "",
        "cache-disabled": "true"})
    d.write(LogRecord(STDOUT, T0, b"one\n"))
    deadline = time.monotonic() + 30
    while len(got) < 1 and time.monotonic() < deadline:
        d.flush()
        time.sleep(0.01)
    first = d.sock
    assert closed.wait(30)  # the receiver's close is on its way (loopback: arrived)
    d.write(LogRecord(STDOUT, T0, b"two\n"))  # queued; the close read, the connection dropped
    assert d.sock is None and d.pending
    while len(got) < 2 and time.monotonic() < deadline:
        d.flush()
        time.sleep(0.01)
    th.join(5)
    d.close()
    srv.close()
    assert got[0].endswith(b": one\n") and first is not None
    assert got[1].endswith(b": two\n")  # redialled (within the once-a-second limit), nothing lost
