"""The engine's own log: level (reloadable) and format (`--log-format text|json`)."""

from __future__ import annotations

import json
import logging
import time
from typing import Callable

from .config import EngineConfig

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
           "warning": logging.WARNING, "error": logging.ERROR, "fatal": logging.CRITICAL,
           "panic": logging.CRITICAL}


class JSONFormatter(logging.Formatter):
    """One JSON object per line, with dockerd's (logrus) field names: time, level, msg."""

    def format(self, record: logging.LogRecord) -> str:
        t = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        entry = {"time": f"{t}.{int(record.msecs * 1000):06d}Z",
                 "level": {"WARNING": "warning", "CRITICAL": "fatal"}.get(record.levelname,
                                                                          record.levelname.lower()),
                 "msg": record.getMessage(), "module": record.name}
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def level_of(cfg: EngineConfig) -> int:
    return logging.DEBUG if cfg.debug else _LEVELS[cfg.log_level]


def setup_logging(cfg: EngineConfig, record_filter: Callable[[logging.LogRecord], bool]) -> None:
    handler = logging.StreamHandler()
    if cfg.log_format == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    # pyroute2 resets its own logger's level on import and logs every netlink
    # message at DEBUG: filter at the handler instead, whatever the import order.
    handler.addFilter(record_filter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level_of(cfg))


def apply_level(cfg: EngineConfig) -> None:
    """SIGHUP: debug / log-level take effect at once."""
    logging.getLogger().setLevel(level_of(cfg))
