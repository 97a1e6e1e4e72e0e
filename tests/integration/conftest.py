"""Session fixtures: one real engine for the session, a busybox image in it."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from engine_harness import EngineProcess, kill_tmux_server  # noqa: E402

from dockyard.testing.busybox import make_busybox_rootfs_tar  # noqa: E402

BUSYBOX = "busybox:latest"


@pytest.fixture(scope="session", autouse=True)
def tmux_server():
    """The tests' own tmux server (engine_harness.TMUX) ends with the test session."""
    yield
    kill_tmux_server()


@pytest.fixture(scope="session")
def engine():
    eng = EngineProcess()
    try:
        eng.start()
        with tempfile.TemporaryDirectory() as td:
            tar = make_busybox_rootfs_tar(Path(td) / "rootfs.tar")
            r = eng.cli("import", str(tar), BUSYBOX, timeout=120)
            assert r.returncode == 0, r.stderr.decode() + eng.log_tail()
        yield eng
    finally:
        eng.cleanup()


@pytest.fixture
def client(engine):
    c = engine.client()
    yield c
    c.close()


@pytest.fixture
def api(engine):
    a = engine.api()
    yield a
    a.close()


@pytest.fixture
def cleanup_containers(engine):
    """Remove, after the test, every container it created."""
    before = {c["Id"] for c in engine.api().containers(all=True)}
    yield
    api = engine.api()
    for c in api.containers(all=True):
        if c["Id"] not in before:
            try:
                api.remove_container(c["Id"], force=True)
            except Exception:
                pass


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can tell a failure."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture
def private_engine(request):
    """An engine of the test's own, for crashing and restarting; cleaned up whatever happens."""
    made: list[EngineProcess] = []

    def make(extra_args: list[str] | None = None, own_netns: bool = False,
             before_start=None) -> EngineProcess:
        eng = EngineProcess(extra_args=extra_args, own_netns=own_netns)
        made.append(eng)
        if before_start is not None:  # e.g. a look at its network namespace before the engine
            before_start(eng)
        eng.start()
        with tempfile.TemporaryDirectory() as td:
            tar = make_busybox_rootfs_tar(Path(td) / "rootfs.tar")
            r = eng.cli("import", str(tar), BUSYBOX, timeout=120)
            assert r.returncode == 0, r.stderr.decode() + eng.log_tail()
        return eng

    yield make
    failed = getattr(getattr(request.node, "rep_call", None), "failed", False)
    for eng in made:
        if failed:  # the engine's side of the story, in the test report
            print(f"--- engine log ({eng.root}) ---\n{eng.log_tail(8000)}")
        eng.cleanup()
