"""What an idle engine imports: every module its start path imports, in a fresh interpreter.

Libraries only some requests need are imported by the first such request (they were the
bulk of the idle engine's RSS): dnspython (embedded DNS), the Dockerfile frontend (build),
ISA-L / zstandard (compression), boto3 (the registry's S3 driver), prometheus_client
(metrics-addr), the registry client and the tar code of `docker cp` (engine.distribution
and engine.files are made by their first use), aiohttp's client (its package __init__ is not
run: lazypkg.py), and pyroute2's package import, which brings every protocol it speaks
(IPDB, NDB, nftables, ...) where the engine uses the rtnetlink socket only.
"""

from __future__ import annotations

import json
import subprocess
import sys

# dockyard.engine.daemon, what Engine.__init__ and serve() import, and the API modules
START_PATH = """
import json, sys
import dockyard.cli
dockyard.cli.prepare_engine_imports()  # as engine_main does first
import dockyard.engine.daemon as d
from dockyard.network.service import NetworkService
from dockyard.runtime import cgroups, conmon, runc
from dockyard.engine.containers import service, health
from dockyard.engine import exec, volumes, images, listeners, pidfile, reload
from dockyard.api import app
for name in app.RESOURCE_MODULES:
    __import__("dockyard.api." + name)
print(json.dumps(sorted(sys.modules)))
"""

NOT_AT_START = ("dns", "boto3", "botocore", "isal", "zstandard", "prometheus_client", "yaml",
                "jsonschema", "dockyard.engine.build", "dockyard.distribution.registry",
                "pyroute2.ndb", "pyroute2.ipdb", "pyroute2.nftables", "pyroute2.conntrack",
                "pyroute2.netlink.nfnetlink", "pyroute2.netlink.generic", "aiohttp.client",
                "aiohttp.connector", "aiohttp.cookiejar", "dockyard.distribution.client",
                "dockyard.engine.distribution", "dockyard.engine.containers.archive", "unittest.case")


def fresh_interpreter(code: str) -> str:
    """What `code` prints, run in an interpreter of its own (nothing imported by pytest)."""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_start_path_leaves_request_only_libraries_out():
    mods = set(json.loads(fresh_interpreter(START_PATH)))
    assert {"pyroute2.iproute.linux", "aiohttp.web", "unittest.mock"} <= mods  # the check below is not vacuous
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
    assert fresh_interpreter(PYROUTE2_LATE).strip() == "ok"


AIOHTTP_LATE = """
import dockyard.cli
dockyard.cli.prepare_engine_imports()
from aiohttp import web
import aiohttp, sys
assert "aiohttp.client" not in sys.modules and aiohttp.__version__
from aiohttp import ClientSession, UnixConnector  # a name of the package itself: its __init__ runs now
import dockyard.network.netlink  # registers unittest bare: pyroute2 takes unittest.mock alone
assert "unittest.mock" in sys.modules and "unittest.case" not in sys.modules
from unittest import TestCase  # and so for unittest
assert aiohttp.ClientSession is ClientSession and aiohttp.web is web and TestCase.__module__ == "unittest.case"
print("ok")
"""


def test_aiohttp_and_unittest_package_names_still_import():
    assert fresh_interpreter(AIOHTTP_LATE).strip() == "ok"


LOGD_PATH = """
import json, sys
import dockyard.engine.logdrivers.logd
print(json.dumps(sorted(sys.modules)))
"""


def test_log_daemon_loads_the_syslog_driver_and_ssl_only_for_a_syslog_container():
    # ssl is 4 MiB of a log daemon (one runs whenever a container logs): only syslog's tcp+tls needs it
    mods = set(json.loads(fresh_interpreter(LOGD_PATH)))
    assert {"dockyard.engine.logdrivers.jsonfile", "dockyard.engine.logdrivers.local"} <= mods
    assert not {"ssl", "_ssl", "dockyard.engine.logdrivers.syslog", "dockyard.engine.logdrivers.syslogtls"} & mods
