"""SIGHUP: re-read daemon.json and apply what dockerd applies live.

The new configuration is built and checked whole (daemonconfig.reload) before
anything changes: a broken file is logged and the running configuration stays.
Services hold the engine's one EngineConfig object, so applying a change is
setting its fields; the few consumers with state of their own (the log level)
are told here.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import fields
from typing import Any

from ..daemonconfig import BY_KEY, ConfigError, reload
from ..logsetup import apply_level
from .sdnotify import notify

log = logging.getLogger(__name__)


class Reloader:
    def __init__(self, engine: Any, flags: dict[str, Any]) -> None:
        self.engine = engine
        self.flags = flags

    async def run(self, requests: asyncio.Queue) -> None:
        while True:
            await requests.get()
            self.reload_once()

    def reload_once(self) -> dict[str, tuple[Any, Any]]:
        notify("RELOADING=1")
        try:
            return self._reload()
        finally:
            notify("READY=1")

    def _reload(self) -> dict[str, tuple[Any, Any]]:
        cfg = self.engine.config
        log.info("got SIGHUP: reloading configuration from %s", cfg.config_file or "(no file)")
        try:
            fresh, changes = reload(cfg, self.flags)
        except ConfigError as exc:
            log.error("configuration reload failed, keeping the current configuration: %s", exc)
            self.engine.events.publish("daemon", "reload", "dockyard", error=str(exc))
            return {}
        for f in fields(fresh):
            setattr(cfg, f.name, getattr(fresh, f.name))
        apply_level(cfg)
        for key, (old, new) in changes.items():
            log.info("configuration reload: %s changed from %s to %s", key, _show(old), _show(new))
        if not changes:
            log.info("configuration reload: nothing changed")
        # dockerd's reload event carries the effective reloadable settings
        attrs = {k: _show(getattr(cfg, BY_KEY[k].field)) for k in sorted(BY_KEY) if BY_KEY[k].reloadable}
        self.engine.events.publish("daemon", "reload", "dockyard", **attrs)
        return changes


def _show(v: Any) -> str:
    import json

    if isinstance(v, (list, dict, bool)):
        return json.dumps(v)
    return str(v)
