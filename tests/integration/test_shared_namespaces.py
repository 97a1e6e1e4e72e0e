"""Containers joining another's namespaces (compose's `network_mode: service:x`, `pid: service:x`):
through the docker CLI."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.usefixtures("cleanup_containers")

BUSYBOX = "busybox:latest"


def test_pid_mode_container(engine):
    donor = engine.cli_ok("run", "-d", BUSYBOX, "sh", "-c", "exec sleep 301").strip()
    out = engine.cli_ok("run", "--rm", "--pid", f"container:{donor}", BUSYBOX, "ps", "-o", "args")
    assert "sleep 301" in out  # the donor's process is visible
    assert json.loads(engine.cli_ok("inspect", donor))[0]["State"]["Pid"] > 0
    stopped = engine.cli_ok("create", BUSYBOX, "true").strip()
    r = engine.cli("run", "--rm", "--pid", f"container:{stopped}", BUSYBOX, "true")
    assert r.returncode != 0 and f"container {stopped} is not running" in r.stderr.decode()


def test_network_mode_container_takes_the_hostname(engine):
    donor = engine.cli_ok("run", "-d", "--hostname", "donorhost", BUSYBOX, "sleep", "300").strip()
    cid = engine.cli_ok("run", "-d", "--network", f"container:{donor}", BUSYBOX, "sleep", "300").strip()
    assert engine.cli_ok("exec", cid, "hostname").strip() == "donorhost"
    assert json.loads(engine.cli_ok("inspect", cid))[0]["Config"]["Hostname"] == "donorhost"
