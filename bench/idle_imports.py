"""Where an idle engine's RSS goes: the engine's start-path imports in stages, VmRSS after each.

    python bench/idle_imports.py            # from the repository root (its dockyard is imported)

One interpreter imports the stages in order (each stage's figure is what it adds to those
before it); the last stage is everything `tests/unit/test_idle_imports.py` imports as the
start path.  An engine's idle RSS is this total plus what it holds at run time (threads, the
event loop, SQLite, the app's routes): compare with `engine_bench.py`'s "RSS idle".
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

STAGES = [
    ("asyncio (+ ssl)", ["asyncio"]),
    ("aiohttp.web (its package registered bare, as the engine does: no client, no SSL contexts)", ["aiohttp.web"]),
    ("sqlite3, ctypes", ["sqlite3", "ctypes"]),
    ("pyroute2's rtnetlink modules (as dockyard/network/netlink.py imports them)", []),
    ("dockyard: daemon, services, API modules", [
        "dockyard.cli", "dockyard.engine.daemon", "dockyard.network.service", "dockyard.runtime.cgroups",
        "dockyard.runtime.conmon", "dockyard.runtime.runc", "dockyard.engine.containers.service",
        "dockyard.engine.containers.health", "dockyard.engine.exec", "dockyard.engine.volumes",
        "dockyard.engine.images", "dockyard.engine.listeners", "dockyard.engine.pidfile",
        "dockyard.engine.reload", "dockyard.api.app"]),
]


def vmrss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    prev = vmrss_mib()
    print(f"| stage | adds | VmRSS | import time |\n|---|---|---|---|\n| interpreter (site) | | {prev:.1f} MiB | |")
    from dockyard.cli import prepare_engine_imports

    prepare_engine_imports()
    for label, modules in STAGES:
        t0 = time.perf_counter()
        for m in modules:
            importlib.import_module(m)
        if label.startswith("pyroute2"):  # the file alone: dockyard.network's __init__ imports its service
            spec = importlib.util.spec_from_file_location("dockyard.network.netlink", REPO / "dockyard" / "network" / "netlink.py")
            assert spec is not None and spec.loader is not None
            spec.loader.exec_module(importlib.util.module_from_spec(spec))
        if label.startswith("dockyard:"):
            from dockyard.api import app

            for name in app.RESOURCE_MODULES:
                importlib.import_module(f"dockyard.api.{name}")
        now = vmrss_mib()
        print(f"| {label} | +{now - prev:.1f} MiB | {now:.1f} MiB | {(time.perf_counter() - t0) * 1000:.0f} ms |")
        prev = now
    return 0


if __name__ == "__main__":
    sys.exit(main())
