"""OCIRuntime's in-process `runc start` and `runc delete`, against the real runc binary.

The engine starts a created runc container by reading its exec fifo, and deletes a stopped
one by removing its cgroups and state directory; what runc itself would leave or refuse must
not differ: the process runs once, a dead init is an error (not a hang), and nothing of a
deleted container is left.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from dockyard.runtime.runc import OCIRuntime, RuntimeError_
from dockyard.testing.busybox import make_runc_bundle


@pytest.fixture(scope="module")
def bundle():
    root = Path(tempfile.mkdtemp(prefix="dyk-runcip-", dir="/tmp"))
    try:
        yield make_runc_bundle(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def runtime(tmp_path):
    rt = OCIRuntime("runc", tmp_path / "state")
    made: list[str] = []
    yield rt, made
    for cid in made:  # whatever a failure left
        subprocess.run(["runc", "--root", str(rt.root), "delete", "--force", cid], capture_output=True)


def _create(rt: OCIRuntime, made: list[str], b: Path, args: list[str]) -> tuple[str, int]:
    spec = json.loads((b / "config.json").read_text())
    spec["process"].update(terminal=False, args=args)
    spec["root"]["path"] = str(b / "rootfs")
    spec["mounts"].append({"destination": "/out", "type": "bind", "source": str(b.parent), "options": ["rbind"]})
    cid = "dyk-ip-" + secrets.token_hex(4)
    made.append(cid)
    # runc reads config.json from the bundle: one bundle dir per container
    cb = b.parent / cid
    cb.mkdir()
    (cb / "config.json").write_text(json.dumps(spec))
    pidfile = cb / "pid"
    subprocess.run(["runc", "--root", str(rt.root), "create", "--bundle", str(cb), "--pid-file", str(pidfile), cid],
                   check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cid, int(pidfile.read_text())


def _state(rt: OCIRuntime, cid: str) -> str | None:
    r = subprocess.run(["runc", "--root", str(rt.root), "state", cid], capture_output=True)
    return json.loads(r.stdout)["status"] if r.returncode == 0 else None


def _wait_stopped(rt: OCIRuntime, cid: str) -> None:
    deadline = time.time() + 60
    while _state(rt, cid) != "stopped":
        assert time.time() < deadline
        time.sleep(0.02)


def test_start_runs_the_process_once_and_delete_leaves_nothing(bundle, runtime):
    rt, made = runtime
    mark = f"ran-{secrets.token_hex(3)}"
    cid, pid = _create(rt, made, bundle, ["sh", "-c", f"echo x >> /out/{mark}; sleep 1"])
    assert _state(rt, cid) == "created"
    asyncio.run(rt.start(cid, pid))
    assert _state(rt, cid) == "running"  # runc's own view: the fifo is gone
    with pytest.raises(Exception):  # started already: runc's own refusal
        asyncio.run(rt.start(cid, pid))
    _wait_stopped(rt, cid)
    assert (bundle.parent / mark).read_text() == "x\n"
    cgroups = [p for p in json.loads((rt.root / cid / "state.json").read_text())["cgroup_paths"].values()]
    assert any(os.path.isdir(p) for p in cgroups)
    asyncio.run(rt.delete(cid))
    assert not (rt.root / cid).exists()
    assert [p for p in cgroups if os.path.exists(p)] == []
    assert _state(rt, cid) is None


def test_start_of_a_container_whose_init_died_fails(bundle, runtime):
    rt, made = runtime
    cid, pid = _create(rt, made, bundle, ["true"])
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(RuntimeError_) as e:
        asyncio.run(asyncio.wait_for(rt.start(cid, pid), 60))
    assert "container process is already dead" in e.value.message
    asyncio.run(rt.delete(cid))
    assert not (rt.root / cid).exists()
