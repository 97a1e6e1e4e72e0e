"""Packages registered without running their __init__, so an idle engine holds only the submodules it uses.

Some libraries' __init__ imports everything they offer:
- pyroute2's imports every protocol it speaks (IPDB, NDB, nftables, conntrack, wireguard, ...),
  where the engine needs the rtnetlink socket only: 9 MiB of idle RSS and ~90 ms of start;
- aiohttp's imports its client (connector, cookie jar, two default SSL contexts, each loading the
  system CA bundle), where an idle engine serves HTTP and needs a client only to pull or push:
  ~4 MiB;
- unittest's imports its test runner (case, loader, runner, difflib, pprint), where pyroute2
  needs only `unittest.mock` for its netlink mock: ~0.7 MiB.

`register_bare(name)` puts the package in sys.modules from its spec alone.  Its submodules then
import as usual, each with just what it needs.  A name of the package itself that is not a
submodule (`aiohttp.ClientSession`, `unittest.TestCase`) runs the real __init__ into the
registered package on first lookup, so every use keeps working, only later.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from types import ModuleType

_VERSION = re.compile(r"""^__version__\s*=\s*["']([^"']+)["']""", re.MULTILINE)


def register_bare(name: str) -> None:
    """Put package `name` in sys.modules without running its __init__ (no-op once imported)."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return  # not installed, or not a package: the plain import says so
    pkg = importlib.util.module_from_spec(spec)
    version = _declared_version(spec.origin)
    if version is not None:  # aiohttp.http does `from . import __version__`
        pkg.__version__ = version  # type: ignore[attr-defined]

    def __getattr__(attr: str) -> object:  # PEP 562: only names not set on the package
        if attr.startswith("__"):
            raise AttributeError(attr)
        if importlib.util.find_spec(f"{name}.{attr}") is not None:
            return importlib.import_module(f"{name}.{attr}")  # `from pyroute2 import config`
        _run_init(pkg)
        try:
            return pkg.__dict__[attr]
        except KeyError:
            raise AttributeError(f"module {name!r} has no attribute {attr!r}") from None

    pkg.__getattr__ = __getattr__  # type: ignore[attr-defined]
    sys.modules[name] = pkg


def _declared_version(init_path: str | None) -> str | None:
    """The literal `__version__ = "..."` of a package's __init__.py, if it has one."""
    if not init_path or not init_path.endswith(".py"):
        return None
    try:
        with open(init_path, encoding="utf-8") as f:
            m = _VERSION.search(f.read())
    except OSError:
        return None
    return m.group(1) if m else None


def _run_init(pkg: ModuleType) -> None:
    pkg.__dict__.pop("__getattr__", None)
    assert pkg.__spec__ is not None and pkg.__spec__.loader is not None
    pkg.__spec__.loader.exec_module(pkg)
