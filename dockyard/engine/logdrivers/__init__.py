"""Log drivers: where a container's output goes, and how `docker logs` reads it back.

The interface is small (base.LogDriver): `write(record)` and `close()`; drivers
that keep files rotate them inside `write` (rotating.RotatingFile) and expose a
codec (`split` records out of bytes, find the `tail_offset` of the last n) that
`reader.read_logs` uses for tail/since/until/follow across rotated and gzipped
files.  Implementations live side by side:

    json-file  jsonfile.py  Docker's files and format, rotation, attrs
    local      local.py     dockerd's protobuf entries, rotated and compressed by default
    syslog     syslog.py    unix/unixgram/udp/tcp/tcp+tls (syslogtls.py), rfc3164/rfc5424/rfc5424micro
    none       (nothing: conmon is told to keep no log at all)
    dual logging: drivers that cannot be read back (syslog) also write a `local`
    cache, `container-cached.log`, unless `cache-disabled=true` (dockerd 20.10+)
    journald   refused with dockerd's message where journald is not running

Who runs them: the per-engine log daemon (logd.py), which outlives the engine
like conmon does, so rotation goes on while the engine is down.  See logd.py.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ...errors import InvalidParameter, NotImplemented_
from . import jsonfile, local
from .base import ContainerInfo, LogDriver, LogQuery, LogRecord  # noqa: F401
from .startchecks import check_start_options

# every driver name dockerd registers on Linux that dockyard knows of
DRIVERS = ("json-file", "local", "none", "syslog", "journald")
READABLE = ("json-file", "local")
# options every driver takes (dockerd's builtInLogOpts and dual logging's)
BUILTIN_OPTS = {"mode", "max-buffer-size", "cache-disabled"}
CACHE_NAME = "container-cached.log"
JOURNALD_OPTS = {"tag", "labels", "labels-regex", "env", "env-regex"}
JOURNALD_SOCKET = "/run/systemd/journal/socket"


def validate_log_config(driver: str, opts: dict[str, str]) -> None:
    """Refuse what dockerd refuses, with its messages (ValidateLogOpts, then each driver's
    own checks of the values, which dockerd makes at start and dockyard already at create)."""
    if driver == "none":
        return
    mode = opts.get("mode", "")
    if mode not in ("", "blocking", "non-blocking"):
        raise InvalidParameter(f"logger: logging mode not supported: {mode}")
    if "max-buffer-size" in opts:
        if mode != "non-blocking":
            raise InvalidParameter("logger: max-buffer-size option is only supported with 'mode=non-blocking'")
        from .options import human_size

        try:
            human_size(opts["max-buffer-size"])
        except InvalidParameter as exc:
            raise InvalidParameter(f"error parsing option max-buffer-size: {exc.message}") from None
    if driver not in DRIVERS:
        raise InvalidParameter(f"logger: no log driver named '{driver}' is registered")
    if "cache-disabled" in opts:
        from .options import go_bool

        go_bool(opts["cache-disabled"])
    own = {k: v for k, v in opts.items() if k not in BUILTIN_OPTS}
    if driver == "json-file":
        jsonfile.validate(own)
    elif driver == "local":
        local.validate(own)
    elif driver == "syslog":
        from . import syslog  # syslog brings ssl (tcp+tls): 4 MiB a log daemon without it does not hold

        syslog.validate(own)
    elif driver == "journald":
        for key in own:
            if key not in JOURNALD_OPTS:
                raise InvalidParameter(f"unknown log opt '{key}' for journald log driver")
        if not os.path.exists(JOURNALD_SOCKET):
            raise InvalidParameter("journald is not enabled on this host")
        raise InvalidParameter("the journald log driver is not supported by dockyard")


def merge_log_config(lc: dict[str, Any] | None, default_driver: str,
                     default_opts: dict[str, str]) -> dict[str, Any]:
    """HostConfig.LogConfig with the daemon's default filled in, as mergeAndVerifyLogConfig."""
    lc = lc or {}
    driver = lc.get("Type") or default_driver
    opts = {str(k): str(v) for k, v in (lc.get("Config") or {}).items()}
    if driver == default_driver:
        for k, v in default_opts.items():
            opts.setdefault(k, v)
    validate_log_config(driver, opts)
    check_start_options(driver, {k: v for k, v in opts.items() if k not in BUILTIN_OPTS})
    return {"Type": driver, "Config": opts}


class NoneDriver:
    """`none`: keeps nothing (conmon is not even given a spool for it)."""

    name = "none"

    def write(self, rec: LogRecord) -> None:
        pass

    def close(self) -> None:
        pass


def open_driver(driver: str, ctr_dir: Path, info: ContainerInfo, opts: dict[str, str]) -> LogDriver:
    """A running driver for one container, with dual logging's cache where dockerd adds one."""
    own = {k: v for k, v in opts.items() if k not in BUILTIN_OPTS}
    if driver == "json-file":
        return jsonfile.JSONFileDriver(ctr_dir, info, own)
    if driver == "local":
        return local.LocalDriver(ctr_dir, info, own)
    if driver == "none":
        return NoneDriver()
    if driver == "syslog":
        from . import syslog

        d: LogDriver = syslog.SyslogDriver(info, own)
    else:
        raise InvalidParameter(f"logger: no log driver named '{driver}' is registered")
    if uses_cache(driver, opts):
        # dockerd's cache: a local driver (20m x 5, compressed) beside the real one
        d = Tee(d, local.LocalDriver(ctr_dir, info, {}, path=ctr_dir / CACHE_NAME))
    return d


class Tee:
    """Dual logging: every record to the driver and to the cache `docker logs` reads."""

    def __init__(self, main: LogDriver, cache: LogDriver) -> None:
        self.main, self.cache, self.name = main, cache, main.name

    def write(self, rec: LogRecord) -> None:
        try:
            self.main.write(rec)
        finally:
            self.cache.write(rec)

    def flush(self) -> None:
        if hasattr(self.main, "flush"):
            self.main.flush()

    def close(self) -> None:
        try:
            self.main.close()
        finally:
            self.cache.close()


def uses_cache(driver: str, opts: dict[str, str]) -> bool:
    """Dual logging: on for drivers that cannot be read, unless cache-disabled (dockerd's rule)."""
    if driver in READABLE or driver == "none":
        return False
    from .options import go_bool

    try:
        return not go_bool(opts.get("cache-disabled") or "false")
    except InvalidParameter:
        return False


def log_file(driver: str, ctr_dir: Path, cid: str, opts: dict[str, str] | None = None) -> Path:
    """The live file `docker logs` reads; 501 with dockerd's text when there is none."""
    if driver == "json-file":
        return jsonfile.log_path(ctr_dir, cid)
    if driver == "local":
        return local.log_path(ctr_dir)
    if uses_cache(driver, opts or {}):
        return ctr_dir / CACHE_NAME
    raise NotImplemented_("configured logging driver does not support reading")


def codec(driver: str):
    """How the file of `log_file` is decoded (the dual-logging cache is in local's format)."""
    return jsonfile.JSONCodec if driver == "json-file" else local.LocalCodec


def inspect_log_path(driver: str, ctr_dir: Path, cid: str) -> str:
    """`LogPath` in inspect: set for json-file only, as dockerd does."""
    return str(jsonfile.log_path(ctr_dir, cid)) if driver == "json-file" else ""


def total_limit(driver: str, opts: dict[str, str]) -> int:
    """About how many bytes the driver keeps on disk (-1: unbounded or not on disk)."""
    own = {k: v for k, v in opts.items() if k not in BUILTIN_OPTS}
    if driver == "json-file":
        size, files, _ = jsonfile.parse_opts(own)
        return size * files if size > 0 else -1
    if driver == "local":
        size, files, _ = local.parse_opts(own)
        return size * max(files, 1) if size > 0 else -1
    return -1


def check_reachable(driver: str, opts: dict[str, str]) -> None:
    """What dockerd checks when it starts a container's logger: syslog dials its address."""
    if driver == "syslog":
        from . import syslog, syslogtls

        addr = syslog.parse_address(opts.get("syslog-address", ""))
        try:
            tls = syslogtls.client_context(opts) if addr.proto == "tcp+tls" else None
            syslog.dial(addr, timeout=2.0, tls=tls).close()
        except InvalidParameter as exc:
            raise InvalidParameter(f"failed to create task for container: failed to initialize logging driver: "
                                   f"{exc.message}") from None
