"""Entry points: `dockyard engine`, `dockyard registry`."""

from __future__ import annotations

import logging
import sys


def _quiet_libraries(record: logging.LogRecord) -> bool:
    if record.levelno >= logging.WARNING:
        return True
    return not record.name.startswith(("pyroute2", "asyncio"))


def prepare_engine_imports() -> None:
    """Before the engine's first import of aiohttp: its server only (dockyard/lazypkg.py); its
    client comes with the first pull, push, login or search."""
    from .lazypkg import register_bare

    register_bare("aiohttp")


def engine_main(argv: list[str]) -> int:
    prepare_engine_imports()
    from .daemonconfig import ConfigError, load
    from .engine.daemon import run_daemon
    from .logsetup import setup_logging

    try:
        loaded = load(argv)
    except ConfigError as exc:
        print(f"dockyard engine: {exc}", file=sys.stderr)
        return 1
    setup_logging(loaded.config, _quiet_libraries)
    return run_daemon(loaded)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: dockyard {engine,registry} [options]\n\n"
              "  engine     run the Docker-compatible engine\n"
              "  registry   run the OCI distribution registry (and `registry gc`)")
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    if cmd == "engine":
        return engine_main(rest)
    if cmd == "logd":  # started by the engine: the per-engine log daemon
        from .engine.logdrivers.logd import main as logd_main

        return logd_main(rest)
    if cmd == "registry":
        from .distribution.registry.cli import main as registry_main

        return registry_main(rest)
    print(f"dockyard: unknown command {cmd!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
