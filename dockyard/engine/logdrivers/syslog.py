"""syslog: each record sent as one syslog message (dockerd's syslog driver, srslog's formats).

Never blocks the log daemon: datagram sockets drop what the kernel refuses, stream
sockets are non-blocking with a bounded send buffer (records beyond it are
dropped and counted), and a lost connection is redialled at most once a second.
`tcp+tls` (syslogtls.py) is a stream too: its handshake goes on a step per tick,
records wait in the same bounded buffer meanwhile.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from ...errors import InvalidParameter
from .attrs import DEFAULT_TAG, parse_tag
from .base import STDERR, ContainerInfo, LogRecord
from .syslogtls import check_host, client_context, handshake_error

log = logging.getLogger(__name__)

NAME = "syslog"
OPTS = {"env", "env-regex", "labels", "labels-regex", "syslog-address", "syslog-facility",
        "syslog-tls-ca-cert", "syslog-tls-cert", "syslog-tls-key", "syslog-tls-skip-verify",
        "tag", "syslog-format"}
FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
    "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
    **{f"local{i}": 16 + i for i in range(8)},
}
FORMATS = ("", "rfc3164", "rfc5424", "rfc5424micro")
SEV_INFO, SEV_ERR = 6, 3
MAX_PENDING = 1 << 20  # bytes waiting for a slow stream receiver before records are dropped
TLS_CHUNK = 16384  # one TLS record's worth per write


@dataclass
class Address:
    proto: str  # unix, unixgram, udp, tcp, tcp+tls ("" : the local syslog socket)
    addr: str | tuple[str, int]


def parse_address(address: str) -> Address:
    """As dockerd's parseAddress, with its messages."""
    if not address:
        return Address("", "/dev/log")
    try:
        u = urlsplit(address)
    except ValueError:  # a bad bracketed IPv6 host: Go's url.Parse refuses it too
        why = "missing ']' in host" if "]" not in address else "invalid IPv6 host"
        raise InvalidParameter(f"parse \"{address}\": {why}") from None
    if u.scheme in ("unix", "unixgram"):
        if not os.path.exists(u.path):
            raise InvalidParameter(f"stat {u.path}: no such file or directory")
        return Address(u.scheme, u.path)
    if u.scheme not in ("udp", "tcp", "tcp+tls"):
        raise InvalidParameter(f"unsupported scheme: '{u.scheme}'")
    host, port = u.hostname or "", 514
    try:
        if u.port is not None:
            port = u.port
    except ValueError:
        raise InvalidParameter(f"address {u.netloc}: invalid port") from None
    return Address(u.scheme, (host, port))


def parse_facility(value: str) -> int:
    if not value:
        return FACILITIES["daemon"]
    if value in FACILITIES:
        return FACILITIES[value]
    if value.isdigit() and 0 <= int(value) <= 23:
        return int(value)
    raise InvalidParameter("invalid syslog facility")


def validate(opts: dict[str, str]) -> None:
    for key in opts:
        if key not in OPTS:
            raise InvalidParameter(f"unknown log opt '{key}' for syslog log driver")
    parse_address(opts.get("syslog-address", ""))
    parse_facility(opts.get("syslog-facility", ""))
    if opts.get("syslog-format", "") not in FORMATS:
        raise InvalidParameter("Invalid syslog format")


def _describe(a: Address) -> str:
    if isinstance(a.addr, tuple):
        return f"{a.addr[0]}:{a.addr[1]}"
    return a.addr


def dial(a: Address, timeout: float = 5.0, tls: ssl.SSLContext | None = None) -> socket.socket:
    """Connect as srslog's Dial does; an error says what Go's net.Dial would say.

    tcp+tls: with `tls`, the whole handshake within `timeout` (the check at start);
    without, the TCP connection only (the driver then shakes hands without blocking)."""
    proto = a.proto or "unixgram"
    if proto in ("unix", "unixgram"):
        kinds = [socket.SOCK_STREAM] if proto == "unix" else [socket.SOCK_DGRAM]
        if not a.proto:
            kinds = [socket.SOCK_DGRAM, socket.SOCK_STREAM]  # the local socket: either kind
        last: OSError | None = None
        for kind in kinds:
            s = socket.socket(socket.AF_UNIX, kind)
            try:
                s.settimeout(timeout)
                s.connect(a.addr)
                s.setblocking(False)
                return s
            except OSError as exc:
                s.close()
                last = exc
        raise _dial_error(proto, _describe(a), last)
    if proto == "tcp+tls":
        proto = "tcp"  # crypto/tls dials "tcp": its errors say so
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    try:
        infos = socket.getaddrinfo(a.addr[0], a.addr[1], type=kind)
    except socket.gaierror as exc:
        raise InvalidParameter(f"dial {proto} {_describe(a)}: lookup {a.addr[0]}: {exc.strerror}") from None
    family, _, _, _, sockaddr = infos[0]
    s = socket.socket(family, kind)
    try:
        s.settimeout(timeout)
        s.connect(sockaddr)
    except OSError as exc:
        s.close()
        raise _dial_error(proto, _describe(a), exc) from None
    if tls is not None:
        return _shake_hands(s, tls, a.addr[0])
    s.setblocking(False)
    return s


def _shake_hands(s: socket.socket, tls: ssl.SSLContext, host: str) -> ssl.SSLSocket:
    try:
        t = tls.wrap_socket(s, server_hostname=host or None)  # handshakes within s's timeout
        if tls.verify_mode != ssl.CERT_NONE:
            check_host(t, host)
    except (ssl.SSLError, ConnectionError) as exc:
        s.close()
        raise InvalidParameter(handshake_error(exc)) from None
    except socket.timeout:
        s.close()
        raise InvalidParameter("tls: handshake timed out") from None
    except InvalidParameter:
        t.close()
        raise
    t.setblocking(False)
    return t


def _dial_error(proto: str, addr: str, exc: OSError | None) -> InvalidParameter:
    reason = {errno.ECONNREFUSED: "connection refused", errno.ENOENT: "no such file or directory",
              errno.ETIMEDOUT: "i/o timeout", errno.EACCES: "permission denied"}.get(
        getattr(exc, "errno", None) or 0, (getattr(exc, "strerror", None) or str(exc)).lower())
    if isinstance(exc, socket.timeout):
        reason = "i/o timeout"
    return InvalidParameter(f"dial {proto} {addr}: connect: {reason}")


def format_message(fmt: str, priority: int, tag: str, content: str, hostname: str, pid: int,
                   now: datetime | None = None) -> str:
    """srslog's formatters as dockerd uses them; the framer adds nothing, the writer a newline."""
    now = now or datetime.now().astimezone()
    if fmt == "rfc3164":
        return f"<{priority}>{now.strftime('%b %e %H:%M:%S')} {hostname} {tag}[{pid}]: {content}"
    if fmt in ("rfc5424", "rfc5424micro"):
        if fmt == "rfc5424":
            ts = now.replace(microsecond=0).isoformat()
        else:
            ts = now.isoformat(timespec="microseconds")
        ts = ts.replace("+00:00", "Z")
        return f"<{priority}>1 {ts} {hostname} {tag} {pid} {tag} - {content}"
    return f"<{priority}>{now.strftime('%b %e %H:%M:%S')} {tag}[{pid}]: {content}"


class SyslogDriver:
    name = NAME

    def __init__(self, info: ContainerInfo, opts: dict[str, str]) -> None:
        validate(opts)
        self.address = parse_address(opts.get("syslog-address", ""))
        self.facility = parse_facility(opts.get("syslog-facility", ""))
        self.format = opts.get("syslog-format", "")
        self.tag = parse_tag(info, opts, DEFAULT_TAG)
        self.hostname = socket.gethostname()
        self.pid = os.getpid()
        self.tls = client_context(opts) if self.address.proto == "tcp+tls" else None
        # dockerd frames rfc5424 over TLS by octet counting (RFC 5425), everything else by a newline
        self.octet_counting = self.tls is not None and self.format in ("rfc5424", "rfc5424micro")
        self.sock: socket.socket | None = None
        self.handshaking = False
        self.inflight = 0  # bytes of a TLS write to repeat as they were (OpenSSL's rule after WANT_WRITE)
        self.stream = False
        self.pending = bytearray()
        self.dropped = 0
        self._next_dial = 0.0

    def _connect(self) -> bool:
        if self.sock is not None:
            return True
        if time.monotonic() < self._next_dial:
            return False
        self._next_dial = time.monotonic() + 1.0
        try:
            self.sock = dial(self.address, timeout=1.0)
        except InvalidParameter as exc:
            log.warning("syslog %s: %s", _describe(self.address), exc.message)
            return False
        self.stream = self.sock.type == socket.SOCK_STREAM
        if self.tls is not None:
            self.sock = self.tls.wrap_socket(self.sock, server_hostname=self.address.addr[0] or None,
                                             do_handshake_on_connect=False)
            self.handshaking, self.inflight = True, 0
        return True

    def _handshake(self) -> bool:
        """One non-blocking step of the TLS handshake; True once it is done."""
        assert isinstance(self.sock, ssl.SSLSocket)
        try:
            self.sock.do_handshake()
            if self.tls is not None and self.tls.verify_mode != ssl.CERT_NONE:
                check_host(self.sock, self.address.addr[0])
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return False
        except InvalidParameter as exc:
            log.warning("syslog %s: %s", _describe(self.address), exc.message)
            self._reset()
            return False
        except OSError as exc:
            log.warning("syslog %s: %s", _describe(self.address), handshake_error(exc))
            self._reset()
            return False
        self.handshaking = False
        return True

    def write(self, rec: LogRecord) -> None:
        line = rec.data[:-1] if rec.data.endswith(b"\n") else rec.data
        if not line:
            return  # dockerd skips empty lines
        sev = SEV_ERR if rec.stream == STDERR else SEV_INFO
        msg = format_message(self.format, self.facility << 3 | sev, self.tag,
                             line.decode(errors="replace"), self.hostname, self.pid)
        data = (msg + "\n").encode()
        if self.octet_counting:
            data = b"%d " % len(data) + data
        if not self._connect():
            self.dropped += 1
            return
        if self.stream:
            if len(self.pending) + len(data) > MAX_PENDING:
                self.dropped += 1
            else:
                self.pending += data
            self.flush()
            return
        try:
            self.sock.send(data)
        except BlockingIOError:
            self.dropped += 1
        except OSError:
            self.dropped += 1
            self._reset()

    def flush(self) -> None:
        """Send what a stream receiver can take now; called after writes and by the daemon's tick."""
        if not self.stream or not self.pending or self.sock is None:
            if self.stream and self.pending and self.sock is None:
                self._connect()
            return
        if self.handshaking and not self._handshake():
            return
        if self.tls is not None and not self._discard_incoming():
            return
        try:
            if self.tls is None:
                del self.pending[:self.sock.send(self.pending)]
            while self.tls is not None and self.pending:
                # a TLS write refused for now (WANT_WRITE) is repeated with the same bytes
                chunk = self.pending[:self.inflight or TLS_CHUNK]
                self.inflight = len(chunk)
                n = self.sock.send(chunk)
                self.inflight = 0
                del self.pending[:n]
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
        except OSError:
            self._reset()

    def _discard_incoming(self) -> bool:
        """Read what a TLS receiver sends (session tickets, its close): left unread, closing
        our end would reset the connection and the receiver lose what it had not read yet.
        False when the receiver has gone (then, as srslog, the next record redials)."""
        try:
            while self.sock.recv(4096):
                pass
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return True
        except OSError:
            pass
        self._reset()
        return False

    def _reset(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = None
        self.handshaking, self.inflight = False, 0

    def close(self) -> None:
        if self.stream and self.pending and self.sock is not None:
            # a last bounded attempt to hand over what is queued
            deadline = time.monotonic() + 1.0
            while self.pending and self.sock is not None and time.monotonic() < deadline:
                self.flush()
                if self.pending:
                    time.sleep(0.01)
        if self.tls is not None and self.sock is not None and not self.handshaking:
            self._discard_incoming()
        self._reset()
