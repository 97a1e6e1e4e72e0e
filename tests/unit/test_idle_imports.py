"""What an idle engine imports: every module its start path imports, in a fresh interpreter.

Libraries only some requests need are imported by the first such request (they were the
bulk of the idle engine's RSS): dnspython (embedded DNS), the Dockerfile frontend (build),
ISA-L / zstandard (compression), boto3 (the registry's S3 driver), prometheus_client
(metrics-addr), and pyroute2's package import, which brings every protocol it speaks
(IPDB, NDB, nftables, ...) where the engine uses the rtnetlink socket only.
"""

from __future__ import annotations

import json
import subprocess
import sys

# dockyard.engine.daemon, what Engine.__init__ and serve() import, and the API modules
START_PATH = """
import json, sys
import dockyard.cli, dockyard.engine.daemon as d
from dockyard.network.service import NetworkService
from dockyard.runtime import cgroups, conmon, runc
from dockyard.engine.containers import service, archive, health
from dockyard.engine import distribution, exec, volumes, images, listeners, pidfile, reload
from dockyard.api import app
for name in app.RESOURCE_MODULES:
    __import__("dockyard.api." + name)
print(json.dumps(sorted(sys.modules)))
"""

NOT_AT_START = ("dns", "boto3", "botocore", "isal", "zstandard", "prometheus_client", "yaml",
                "jsonschema", "dockyard.engine.build", "dockyard.distribution.registry",
                "pyroute2.ndb", "pyroute2.ipdb", "pyroute2.nftables", "pyroute2.conntrack",
                "pyroute2.netlink.nfnetlink", "pyroute2.netlink.generic")


def test_start_path_leaves_request_only_libraries_out():
    r = subprocess.run([sys.executable, "-c", START_PATH], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    mods = set(json.loads(r.stdout))
    assert "pyroute2.iproute.linux" in mods  # the check below is not vacuous
    loaded = sorted(m for m in mods if any(m == n or m.startswith(n + ".") for n in NOT_AT_START))
    assert loaded == []


PYROUTE2_LATE = """
import dockyard.network.links as links
from pyroute2 import NDB, IPRoute  # a name of the package itself: its real __init__ runs now
from pyroute2.conntrack import Conntrack
import pyroute2
assert IPRoute is links.IPRoute and pyroute2.NDB is NDB and pyroute2.__version__ != "unknown"
print("ok")
"""


def test_pyroute2_package_names_still_import():
    r = subprocess.run([sys.executable, "-c", PYROUTE2_LATE], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"
