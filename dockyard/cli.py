"""Entry points: `dockyard engine`, `dockyard registry`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def _engine_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dockyard engine", description="Run the Docker-compatible engine")
    p.add_argument("-H", "--host", action="append", dest="hosts", default=None,
                   help="socket to listen on: unix:///path or tcp://ADDR:PORT (repeatable)")
    p.add_argument("--data-root", default="/var/lib/dockyard", help="persistent state")
    p.add_argument("--exec-root", default="/run/dockyard", help="runtime state (bundles, sockets)")
    p.add_argument("--bridge", default="dockyard0", help="name of the default bridge")
    p.add_argument("--bip", default="172.29.0.1/16", help="address/prefix of the default bridge")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warn", "warning", "error", "fatal"])
    p.add_argument("--runtime", default="runc", help="OCI runtime binary")
    p.add_argument("--conmon", default="conmon", help="container monitor binary")
    p.add_argument("--tlscert")
    p.add_argument("--tlskey")
    p.add_argument("--tlscacert")
    p.add_argument("--tlsverify", action="store_true")
    p.add_argument("--iptables", default="true", choices=["true", "false"],
                   help="manage iptables NAT and forwarding rules")
    p.add_argument("--default-address-pool", action="append", dest="default_address_pools", default=None,
                   metavar="base=CIDR,size=N",
                   help="a pool that networks created without a subnet take theirs from (repeatable)")
    p.add_argument("--ipv6", action="store_true", help="IPv6 on the default bridge")
    p.add_argument("--fixed-cidr-v6", default=None, help="the default bridge's IPv6 subnet (with --ipv6)")
    p.add_argument("--stop-containers-on-shutdown", action="store_true",
                   help="stop running containers on SIGTERM instead of leaving them running")
    return p


def _quiet_libraries(record: logging.LogRecord) -> bool:
    if record.levelno >= logging.WARNING:
        return True
    return not record.name.startswith(("pyroute2", "asyncio"))


def engine_main(argv: list[str]) -> int:
    from .config import EngineConfig
    from .engine.daemon import run_daemon

    a = _engine_parser().parse_args(argv)
    level = {"warn": "WARNING", "fatal": "CRITICAL"}.get(a.log_level, a.log_level.upper())
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # pyroute2 resets its own logger's level on import and logs every netlink
    # message at DEBUG: filter at the handler instead, whatever the import order.
    for handler in logging.getLogger().handlers:
        handler.addFilter(_quiet_libraries)
    cfg = EngineConfig(
        data_root=Path(a.data_root),
        exec_root=Path(a.exec_root),
        hosts=a.hosts or ["unix:///var/run/dockyard.sock"],
        bridge=a.bridge,
        bip=a.bip,
        log_level=a.log_level,
        runtime=a.runtime,
        conmon=a.conmon,
        tls_cert=a.tlscert,
        tls_key=a.tlskey,
        tls_cacert=a.tlscacert,
        tls_verify=a.tlsverify,
        iptables=a.iptables == "true",
        stop_containers_on_shutdown=a.stop_containers_on_shutdown,
        default_address_pools=[_pool_flag(v) for v in a.default_address_pools or []],
        ipv6=a.ipv6,
        fixed_cidr_v6=a.fixed_cidr_v6,
    )
    return run_daemon(cfg)


def _pool_flag(value: str) -> dict:
    """`base=10.10.0.0/16,size=24` (dockerd's --default-address-pool) as daemon.json's shape."""
    from .errors import InvalidParameter
    from .network.ipamconfig import parse_default_pools

    fields = dict(part.split("=", 1) for part in value.split(",") if "=" in part)
    if "base" not in fields or not fields.get("size", "").isdigit():
        raise SystemExit(f"invalid --default-address-pool {value!r}: expected base=CIDR,size=N")
    pool = {"base": fields["base"], "size": int(fields["size"])}
    try:
        parse_default_pools([pool])
    except InvalidParameter as exc:
        raise SystemExit(exc.message) from None
    return pool


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
    if cmd == "registry":
        from .distribution.registry.cli import main as registry_main

        return registry_main(rest)
    print(f"dockyard: unknown command {cmd!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
