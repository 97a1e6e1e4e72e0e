"""Flags + daemon.json -> EngineConfig, through one table of keys.

`OPTIONS` is the only list of settings: each entry names the daemon.json key
(dockerd's name and meaning), the EngineConfig field it fills, how a value is
checked and converted, whether SIGHUP may change it, and its command-line
flag.  The argument parser, the file loader, the flag/file conflict check, the
SIGHUP reload and `docker info` all read this table, so a key cannot be
accepted by one and ignored by another.

Errors are `ConfigError` with the key named; the engine refuses to start (or,
on SIGHUP, keeps the configuration it has) before anything is touched.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from .config import DEFAULT_CONFIG_FILE, EngineConfig

log = logging.getLogger(__name__)


class ConfigError(Exception):
    """A configuration that cannot be used; the message names the key."""


Parse = Callable[[Any], Any]


# ---------------------------------------------------------------- value checkers
# Each takes the JSON value (or the flag's value, already shaped like JSON) and
# returns the typed value, or raises ValueError saying what is wrong with it.


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError(f"expected a string, got {json.dumps(v)}")
    return v


def _nonempty_str(v: Any) -> str:
    if not _str(v):
        raise ValueError("must not be empty")
    return v


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"expected true or false, got {json.dumps(v)}")
    return v


def _int_min(minimum: int, what: str = "") -> Parse:
    def parse(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"expected an integer, got {json.dumps(v)}")
        if v < minimum:
            # dockerd's words for the max-concurrent-* keys
            raise ValueError(f"invalid {what}: {v}" if what else f"{v} is below the minimum of {minimum}")
        return v
    return parse


def _str_list(item: Parse = _str) -> Parse:
    def parse(v: Any) -> list:
        if not isinstance(v, list):
            raise ValueError(f"expected a list, got {json.dumps(v)}")
        return [item(x) for x in v]
    return parse


def _path(v: Any) -> Path:
    s = _nonempty_str(v)
    if not s.startswith("/"):
        raise ValueError(f"{s!r} is not an absolute path")
    return Path(s)


def _host(v: Any) -> str:
    s = _nonempty_str(v)
    proto, sep, addr = s.partition("://")
    if not sep:
        raise ValueError(f"bad format {s}, expected PROTO://ADDR")
    if proto not in ("unix", "tcp", "fd"):
        raise ValueError(f"invalid bind address ({s}): unsupported proto '{proto}'")
    if proto == "unix" and not addr.startswith("/"):
        raise ValueError(f"{s}: the unix socket path must be absolute")
    if proto == "tcp":
        h, colon, p = addr.rpartition(":")
        if not colon or not p.isdigit() or not 0 < int(p) < 65536:
            raise ValueError(f"{s}: expected tcp://ADDR:PORT")
    if proto == "fd" and addr and not addr.isdigit():
        raise ValueError(f"{s}: expected fd:// or fd://N")
    return s


def _ip(v: Any) -> str:
    s = _str(v)
    try:
        ipaddress.ip_address(s)
    except ValueError:
        raise ValueError(f"IP address is not correctly formatted: {s}") from None
    return s


_DOMAIN_RE = re.compile(r"^(?=.{1,255}$)(\.|[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})?)*\.?)$")


def _dns_search(v: Any) -> str:
    s = _str(v)
    if not _DOMAIN_RE.match(s):
        raise ValueError(f"{s} is not a valid domain")
    return s


def _cidr6(v: Any) -> str:
    s = _str(v)
    try:
        net = ipaddress.IPv6Network(s, strict=False)
    except ValueError:
        raise ValueError(f"{s!r} is not an IPv6 CIDR (e.g. fd00:1::/64)") from None
    if net.prefixlen > 126:
        raise ValueError(f"{s} is too small: a /126 or larger is needed")
    return str(net)


def _bip(v: Any) -> str:
    s = _str(v)
    try:
        iface = ipaddress.IPv4Interface(s)
    except ValueError:
        raise ValueError(f"{s!r} is not an IPv4 address with a prefix length (e.g. 172.29.0.1/16)") from None
    if "/" not in s or iface.network.prefixlen > 30:
        raise ValueError(f"{s!r} needs a prefix length of at most /30 (e.g. 172.29.0.1/16)")
    if iface.ip in (iface.network.network_address, iface.network.broadcast_address):
        raise ValueError(f"{s!r}: the bridge address must be a host address of its subnet")
    return s


def _address_pools(v: Any) -> list[dict]:
    if not isinstance(v, list):
        raise ValueError(f"expected a list of {{\"base\": CIDR, \"size\": N}}, got {json.dumps(v)}")
    out = []
    for p in v:
        if not isinstance(p, dict) or set(p) - {"base", "size"} or "base" not in p or "size" not in p:
            raise ValueError(f"invalid pool {json.dumps(p)}: expected {{\"base\": CIDR, \"size\": N}}")
        try:
            base = ipaddress.ip_network(_str(p["base"]), strict=True)
        except ValueError as exc:
            raise ValueError(f"invalid base {p['base']!r}: {exc}") from None
        size = p["size"]
        if isinstance(size, bool) or not isinstance(size, int) or not base.prefixlen <= size <= base.max_prefixlen:
            raise ValueError(f"invalid size {json.dumps(size)} for base {base}: must be between "
                             f"{base.prefixlen} and {base.max_prefixlen}")
        out.append({"base": str(base), "size": size})
    return out


_LEVELS = ("debug", "info", "warn", "warning", "error", "fatal", "panic")


def _log_level(v: Any) -> str:
    s = _str(v).lower()
    if s not in _LEVELS:
        raise ValueError(f"invalid logging level: {v}")
    return s


def _log_format(v: Any) -> str:
    s = _str(v)
    if s not in ("text", "json"):
        raise ValueError(f"unknown log format {s!r}: use text or json")
    return s


def _compression(v: Any) -> str:
    s = _str(v)
    if s not in ("gzip", "zstd"):
        raise ValueError(f"unknown compression {s!r}: use gzip or zstd")
    return s


def _str_map(v: Any) -> dict[str, str]:
    if not isinstance(v, dict) or not all(isinstance(x, str) for x in v.values()):
        raise ValueError(f"expected an object of strings, got {json.dumps(v)}")
    return dict(v)


def _insecure_registry(v: Any) -> str:
    s = _nonempty_str(v)
    if "://" in s:
        raise ValueError(f"insecure registry {s} should not contain '://'")
    if "/" in s:
        try:
            ipaddress.ip_network(s, strict=False)
        except ValueError:
            raise ValueError(f"{s} is neither host[:port] nor a CIDR") from None
    return s


def _mirror(v: Any) -> str:
    s = _nonempty_str(v)
    u = urlsplit(s)
    if u.scheme not in ("http", "https"):
        raise ValueError(f"invalid mirror: unsupported scheme {u.scheme!r} in {s!r}")
    if (u.path not in ("", "/")) or u.query or u.fragment or not u.netloc:
        raise ValueError(f"invalid mirror: path, query, or fragment at end of the URI {s!r}")
    return s.rstrip("/") + "/"


_ULIMIT_NAMES = ("as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice",
                 "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack")


def _ulimits(v: Any) -> dict[str, dict]:
    if not isinstance(v, dict):
        raise ValueError(f"expected an object of {{\"Name\", \"Soft\", \"Hard\"}}, got {json.dumps(v)}")
    out = {}
    for name, ul in v.items():
        if name not in _ULIMIT_NAMES:
            raise ValueError(f"invalid ulimit type: {name}")
        if not isinstance(ul, dict) or set(ul) - {"Name", "Soft", "Hard"}:
            raise ValueError(f"{name}: expected {{\"Name\", \"Soft\", \"Hard\"}}")
        soft, hard = ul.get("Soft", 0), ul.get("Hard", 0)
        for x in (soft, hard):
            if isinstance(x, bool) or not isinstance(x, int) or x < -1:
                raise ValueError(f"{name}: invalid limit {json.dumps(x)}")
        if hard != -1 and (soft == -1 or soft > hard):
            raise ValueError(f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")
        out[name] = {"Name": name, "Soft": soft, "Hard": hard}
    return out


_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgtp]?)i?b?$", re.I)


def _bytes(v: Any) -> int:
    if isinstance(v, int) and not isinstance(v, bool):
        n = v
    else:
        m = _SIZE_RE.match(_str(v).strip())
        if not m:
            raise ValueError(f"invalid size: {v!r}")
        n = int(float(m.group(1)) * 1024 ** " kmgtp".index((m.group(2) or " ").lower()))
    if n <= 0:
        raise ValueError(f"must be greater than 0, got {v!r}")
    return n


def _runtimes(v: Any) -> dict[str, dict]:
    if not isinstance(v, dict):
        raise ValueError(f"expected an object of {{\"path\": ...}} by name, got {json.dumps(v)}")
    out = {}
    for name, rt in v.items():
        if name == "runc":
            raise ValueError("runtime name 'runc' is reserved")
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", name):
            raise ValueError(f"invalid runtime name {name!r}")
        if not isinstance(rt, dict) or set(rt) != {"path"}:
            raise ValueError(f"runtime {name}: expected {{\"path\": \"/path/to/runtime\"}} "
                             "(runtimeArgs and runtimeType are not supported)")
        out[name] = {"path": _nonempty_str(rt["path"])}
    return out


def _label(v: Any) -> str:
    s = _str(v)
    if "=" not in s or s.startswith("="):
        raise ValueError(f"bad attribute format: {s}")
    return s


def _addr(v: Any) -> str:
    s = _nonempty_str(v)
    h, colon, p = s.rpartition(":")
    if not colon or not p.isdigit() or not 0 < int(p) < 65536:
        raise ValueError(f"{s!r}: expected ADDR:PORT")
    return s


# ---------------------------------------------------------------- flag text -> JSON shape


def _flag_bool(s: str) -> bool:
    low = s.lower()
    if low in ("1", "t", "true"):
        return True
    if low in ("0", "f", "false"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {s!r}")


def _flag_int(s: str) -> int:
    try:
        return int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer {s!r}") from None


def _kv(s: str) -> tuple[str, str]:
    k, sep, v = s.partition("=")
    if not sep or not k:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {s!r}")
    return k, v


def _flag_ulimit(s: str) -> tuple[str, dict]:
    name, sep, lim = s.partition("=")
    soft, _, hard = lim.partition(":")
    try:
        return name, {"Name": name, "Soft": int(soft), "Hard": int(hard or soft)}
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid ulimit {s!r}: expected name=soft[:hard]") from None


def _flag_runtime(s: str) -> tuple[str, dict]:
    k, v = _kv(s)
    return k, {"path": v}


def _flag_pool(s: str) -> dict:
    d: dict[str, Any] = {}
    for part in s.split(","):
        k, v = _kv(part)
        d[k] = int(v) if k == "size" and v.isdigit() else v
    return d


# ---------------------------------------------------------------- the table


@dataclass(frozen=True)
class Option:
    key: str  # daemon.json key (dockerd's)
    field: str  # EngineConfig attribute
    parse: Parse  # JSON value -> typed value (ValueError: why not)
    reloadable: bool = False  # SIGHUP applies a change
    flags: tuple[str, ...] = ()  # command-line flags; () = the key as --key
    flag_type: Callable[[str], Any] | None = None  # flag text -> JSON-shaped value
    repeat: str = ""  # "list": flag repeats into a list; "map": repeats into an object
    help: str = ""

    @property
    def flag_names(self) -> tuple[str, ...]:
        return self.flags or (f"--{self.key}",)


OPTIONS: tuple[Option, ...] = (
    Option("hosts", "hosts", _str_list(_host), flags=("-H", "--host"), flag_type=str, repeat="list",
           help="socket to listen on: unix:///path, tcp://ADDR:PORT, fd:// or fd://N (repeatable)"),
    Option("data-root", "data_root", _path, help="persistent state"),
    Option("exec-root", "exec_root", _path, help="runtime state (bundles, sockets)"),
    Option("pidfile", "pidfile", _path, flags=("-p", "--pidfile"),
           help="where the engine writes its PID (default <exec-root>/dockyard.pid)"),
    Option("group", "group", _nonempty_str, flags=("-G", "--group"),
           help="group owning the unix sockets (default: docker if it exists, else root)"),
    Option("bridge", "bridge", _nonempty_str, flags=("-b", "--bridge"), help="name of the default bridge"),
    Option("bip", "bip", _bip, help="address/prefix of the default bridge"),
    Option("default-address-pools", "default_address_pools", _address_pools,
           flags=("--default-address-pool",), flag_type=_flag_pool, repeat="list",
           help="base=CIDR,size=N: subnets for user-defined networks (repeatable)"),
    Option("iptables", "iptables", _bool, flag_type=_flag_bool, help="manage iptables NAT and forwarding rules"),
    Option("ipv6", "ipv6", _bool, flag_type=_flag_bool, help="IPv6 on the default bridge"),
    Option("fixed-cidr-v6", "fixed_cidr_v6", _cidr6, help="the default bridge's IPv6 subnet (with --ipv6)"),
    Option("ip-forward", "ip_forward", _bool, flag_type=_flag_bool, help="enable net.ipv4.ip_forward"),
    Option("dns", "dns", _str_list(_ip), flag_type=str, repeat="list", help="DNS server for containers"),
    Option("dns-search", "dns_search", _str_list(_dns_search), flag_type=str, repeat="list",
           help="DNS search domain for containers"),
    Option("dns-opts", "dns_opts", _str_list(), flags=("--dns-opt",), flag_type=str, repeat="list",
           help="DNS option for containers"),
    Option("log-level", "log_level", _log_level, reloadable=True, flags=("-l", "--log-level"),
           help="debug, info, warn, error or fatal"),
    Option("debug", "debug", _bool, reloadable=True, flags=("-D", "--debug"), flag_type=_flag_bool,
           help="debug mode (log level debug)"),
    Option("log-format", "log_format", _log_format, help="engine log format: text or json"),
    Option("log-driver", "log_driver", _nonempty_str, help="default log driver of containers"),
    Option("log-opts", "log_opts", _str_map, flags=("--log-opt",), flag_type=_kv, repeat="map",
           help="default log driver option KEY=VALUE (repeatable)"),
    Option("insecure-registries", "insecure_registries", _str_list(_insecure_registry), reloadable=True,
           flags=("--insecure-registry",), flag_type=str, repeat="list",
           help="registry (host:port or CIDR) reached over plain HTTP or unverified TLS"),
    Option("registry-mirrors", "registry_mirrors", _str_list(_mirror), reloadable=True,
           flags=("--registry-mirror",), flag_type=str, repeat="list",
           help="mirror of Docker Hub (http(s)://host[:port])"),
    Option("max-concurrent-downloads", "max_concurrent_downloads", _int_min(1, "max concurrent downloads"), reloadable=True,
           flag_type=_flag_int, help="layers downloaded at once per pull"),
    Option("max-concurrent-uploads", "max_concurrent_uploads", _int_min(1, "max concurrent uploads"), reloadable=True,
           flag_type=_flag_int, help="layers uploaded at once per push"),
    # dockyard's own key: docker push has no compression flag, so the daemon chooses
    Option("push-compression", "push_compression", _compression,
           help="compression of the layers docker push compresses: gzip or zstd"),
    Option("live-restore", "live_restore", _bool, reloadable=True, flag_type=_flag_bool,
           help="keep containers running when the engine stops (default true)"),
    Option("shutdown-timeout", "shutdown_timeout", _int_min(-1), reloadable=True, flag_type=_flag_int,
           help="seconds to wait for containers to stop when the engine stops them"),
    Option("default-ulimits", "default_ulimits", _ulimits, flags=("--default-ulimit",),
           flag_type=_flag_ulimit, repeat="map", help="name=soft[:hard] for containers (repeatable)"),
    Option("default-shm-size", "default_shm_size", _bytes, help="default size of containers' /dev/shm"),
    Option("runtimes", "runtimes", _runtimes, reloadable=True, flags=("--add-runtime",),
           flag_type=_flag_runtime, repeat="map", help="NAME=PATH of an OCI runtime (repeatable)"),
    Option("default-runtime", "default_runtime", _nonempty_str, reloadable=True,
           help="runtime of containers that name none"),
    Option("init", "init", _bool, flag_type=_flag_bool, help="run an init as PID 1 in every container"),
    Option("init-path", "init_path", _path, help="init binary (default: tini)"),
    Option("labels", "labels", _str_list(_label), reloadable=True, flags=("--label",), flag_type=str,
           repeat="list", help="engine label KEY=VALUE (repeatable)"),
    Option("metrics-addr", "metrics_addr", _addr, help="ADDR:PORT to serve Prometheus metrics on"),
    Option("tls", "tls", _bool, flag_type=_flag_bool, help="serve TCP hosts over TLS"),
    Option("tlsverify", "tls_verify", _bool, flag_type=_flag_bool, help="require client certificates"),
    Option("tlscacert", "tls_cacert", _nonempty_str, help="CA that client certificates must chain to"),
    Option("tlscert", "tls_cert", _nonempty_str, help="server certificate"),
    Option("tlskey", "tls_key", _nonempty_str, help="server key"),
)

BY_KEY = {o.key: o for o in OPTIONS}
RELOADABLE = tuple(o.key for o in OPTIONS if o.reloadable)


# ---------------------------------------------------------------- parsing


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dockyard engine", description="Run the Docker-compatible engine",
                                argument_default=argparse.SUPPRESS)
    p.add_argument("--config-file", help=f"daemon.json to read (default {DEFAULT_CONFIG_FILE}; "
                   "a missing default file is fine)")
    p.add_argument("--runtime", help="path of the runc runtime binary")
    p.add_argument("--conmon", help="container monitor binary")
    p.add_argument("--stop-containers-on-shutdown", action="store_true",
                   help="same as --live-restore=false")
    for o in OPTIONS:
        kw: dict[str, Any] = {"dest": o.key, "help": o.help}
        if o.flag_type is _flag_bool:
            kw.update(nargs="?", const=True, type=_flag_bool, metavar="true|false")
        elif o.repeat:
            kw.update(action="append", type=o.flag_type or str)
        else:
            kw.update(type=o.flag_type or str)
        p.add_argument(*o.flag_names, **kw)
    return p


def _flag_values(ns: argparse.Namespace) -> dict[str, Any]:
    """Flags that were given, keyed and shaped like daemon.json."""
    given = vars(ns)
    out: dict[str, Any] = {}
    for o in OPTIONS:
        if o.key not in given:
            continue
        v = given[o.key]
        if o.repeat == "map":
            v = dict(v)
        elif o.key in ("data-root", "exec-root", "pidfile", "init-path") and isinstance(v, str):
            v = str(Path(v).absolute())
        out[o.key] = v
    if given.get("stop_containers_on_shutdown"):
        if "live-restore" in out:
            raise ConfigError("--stop-containers-on-shutdown and --live-restore both given: use --live-restore=false")
        out["live-restore"] = False
    return out


def read_file(path: Path) -> dict[str, Any]:
    """daemon.json -> its object, refusing what is not JSON or not an object."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"unable to configure the engine with file {path}: {exc.strerror}") from None
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"unable to configure the engine with file {path}: invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"unable to configure the engine with file {path}: the file must hold a JSON object")
    unknown = sorted(set(data) - set(BY_KEY))
    if unknown:
        raise ConfigError(f"unable to configure the engine with file {path}: the following directives "
                          f"don't match any configuration option: {', '.join(unknown)}")
    return data


def _fmt(v: Any) -> str:
    """A value as dockerd prints it in conflicts (Go's %v)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "[" + " ".join(_fmt(x) for x in v) + "]"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{_fmt(x)}" for k, x in sorted(v.items())) + "]"
    return str(v)


def _conflicts(flags: dict[str, Any], file: dict[str, Any]) -> list[str]:
    return [f"{k}: (from flag: {_fmt(flags[k])}, from file: {_fmt(file[k])})" for k in flags if k in file]


def _apply(base: EngineConfig, values: dict[str, Any], where: str) -> EngineConfig:
    """Check each value through the table and return a new config with them."""
    changes: dict[str, Any] = {}
    for key, raw in values.items():
        o = BY_KEY[key]
        try:
            changes[o.field] = o.parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{where}invalid value for {key}: {exc}") from None
    return replace(base, **changes)


def _validate(cfg: EngineConfig, where: str) -> None:
    """Checks that involve several keys."""
    if cfg.default_runtime not in cfg.runtime_names():
        raise ConfigError(f"{where}invalid value for default-runtime: specified default runtime "
                          f"'{cfg.default_runtime}' does not exist")
    if cfg.tls_verify and not cfg.tls_cacert:
        raise ConfigError(f"{where}--tlsverify needs --tlscacert to check client certificates against")
    if (cfg.tls or cfg.tls_verify) and not (cfg.tls_cert and cfg.tls_key):
        raise ConfigError(f"{where}--tls needs --tlscert and --tlskey")
    if cfg.tls is False and cfg.tls_verify:
        raise ConfigError(f"{where}tls=false contradicts tlsverify=true")
    if not cfg.hosts:
        raise ConfigError(f"{where}invalid value for hosts: no hosts configured")
    validate_log_config(cfg.log_driver, cfg.log_opts, where)


def validate_log_config(driver: str, opts: dict[str, str], where: str = "") -> None:
    """The log drivers' own checks (dockerd's messages), with the key named."""
    from .engine.logdrivers import validate_log_config as check
    from .errors import DockyardError

    try:
        check(driver, opts)
    except DockyardError as exc:
        raise ConfigError(f"{where}invalid value for log-driver/log-opts: {exc}") from None


@dataclass
class Loaded:
    config: EngineConfig
    flags: dict[str, Any]  # daemon.json-shaped flags that were given (kept for reloads)
    file_keys: set[str]


def load(argv: list[str]) -> Loaded:
    """Command line (+ the file it names or the default one) -> a checked EngineConfig."""
    parser = build_parser()
    ns = parser.parse_args(argv)
    given = vars(ns)
    flags = _flag_values(ns)
    explicit = "config_file" in given
    path = Path(given.get("config_file") or DEFAULT_CONFIG_FILE).absolute()
    file: dict[str, Any] = {}
    if explicit or path.exists():
        file = read_file(path)
        conflicts = _conflicts(flags, file)
        if conflicts:
            raise ConfigError(f"unable to configure the engine with file {path}: the following directives "
                              f"are specified both as a flag and in the configuration file: {', '.join(conflicts)}")
    base = EngineConfig(config_file=path if (explicit or path.exists()) else None, config_dir=path.parent)
    if "runtime" in given:
        base.runtime = given["runtime"]
    if "conmon" in given:
        base.conmon = given["conmon"]
    where = f"unable to configure the engine with file {path}: " if file else ""
    cfg = _apply(base, file, where)
    cfg = _apply(cfg, flags, "")
    said = {**file, **flags}
    cfg.tls_opt_out = said.get("tls") is False or said.get("tlsverify") is False
    _validate(cfg, where)
    return Loaded(cfg, flags, set(file))


def reload(current: EngineConfig, flags: dict[str, Any]) -> tuple[EngineConfig, dict[str, tuple[Any, Any]]]:
    """Re-read the file for SIGHUP: (new config, {key: (old, new)}) for the reloadable keys.

    Keys that cannot change while running keep their value (a change is logged and
    ignored, as dockerd does); a broken file raises ConfigError and changes nothing.
    """
    path = current.config_file or (current.config_dir / DEFAULT_CONFIG_FILE.name)
    file = read_file(path) if path.exists() else {}
    conflicts = _conflicts(flags, file)
    if conflicts:
        raise ConfigError(f"unable to configure the engine with file {path}: the following directives "
                          f"are specified both as a flag and in the configuration file: {', '.join(conflicts)}")
    where = f"unable to configure the engine with file {path}: "
    # reloadable keys absent from the file and not given as flags go back to their defaults
    defaults = EngineConfig()
    base = replace(current, **{BY_KEY[k].field: getattr(defaults, BY_KEY[k].field)
                               for k in RELOADABLE if k not in flags})
    fresh = _apply(_apply(base, file, where), flags, "")
    _validate(fresh, where)
    changes: dict[str, tuple[Any, Any]] = {}
    kept: dict[str, Any] = {}
    for o in OPTIONS:
        old, new = getattr(current, o.field), getattr(fresh, o.field)
        if old == new:
            continue
        if o.reloadable:
            changes[o.key] = (old, new)
        else:
            kept[o.field] = old
            log.warning("configuration reload: %s changed in %s but needs a restart to apply", o.key, path)
    return replace(fresh, **kept), changes
