"""Restart policies: no, on-failure[:N], always, unless-stopped — with back-off and across engine restarts."""

from __future__ import annotations

import signal
import time

import pytest


def wait_for(fn, timeout: float = 15, step: float = 0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(step)
    raise AssertionError("condition not reached")


@pytest.mark.usefixtures("cleanup_containers")
def test_on_failure_with_max_retries(api):
    cid = api.create_container("busybox", ["sh", "-c", "exit 3"],
                               host_config=api.create_host_config(
                                   restart_policy={"Name": "on-failure", "MaximumRetryCount": 2}))["Id"]
    api.start(cid)
    info = wait_for(lambda: (lambda i: i if i["RestartCount"] == 2 and i["State"]["Status"] == "exited" else None)(
        api.inspect_container(cid)))
    assert info["State"]["ExitCode"] == 3
    time.sleep(1)  # no further restart after the maximum
    assert api.inspect_container(cid)["RestartCount"] == 2


@pytest.mark.usefixtures("cleanup_containers")
def test_on_failure_does_not_restart_success_and_no_never_restarts(api):
    ok = api.create_container("busybox", "true", host_config=api.create_host_config(
        restart_policy={"Name": "on-failure"}))["Id"]
    never = api.create_container("busybox", ["sh", "-c", "exit 1"])["Id"]
    api.start(ok)
    api.start(never)
    api.wait(ok)
    api.wait(never)
    time.sleep(0.5)
    assert api.inspect_container(ok)["RestartCount"] == 0
    assert api.inspect_container(never)["RestartCount"] == 0
    assert api.inspect_container(never)["HostConfig"]["RestartPolicy"]["Name"] == "no"


@pytest.mark.usefixtures("cleanup_containers")
def test_always_restarts_with_backoff_and_restarting_state(api):
    cid = api.create_container("busybox", ["sh", "-c", "exit 0"], host_config=api.create_host_config(
        restart_policy={"Name": "always"}))["Id"]
    api.start(cid)
    seen = set()
    deadline = time.time() + 2.0
    while time.time() < deadline:
        seen.add(api.inspect_container(cid)["State"]["Status"])
        time.sleep(0.02)
    count = api.inspect_container(cid)["RestartCount"]
    assert count >= 2
    # back-off doubles from 100 ms: 0.1+0.2+0.4+0.8 s fit in 2 s, not 20 restarts
    assert count <= 6
    assert "restarting" in seen
    # a manual stop ends it
    api.stop(cid, timeout=1)
    time.sleep(0.6)
    st = api.inspect_container(cid)["State"]
    assert st["Status"] == "exited"
    n = api.inspect_container(cid)["RestartCount"]
    time.sleep(0.5)
    assert api.inspect_container(cid)["RestartCount"] == n


def test_policies_across_engine_restart(private_engine):
    eng = private_engine(["--stop-containers-on-shutdown"])
    api = eng.api()

    def run(policy: str) -> str:
        cid = api.create_container("busybox", "sleep 300", host_config=api.create_host_config(
            restart_policy={"Name": policy}))["Id"]
        api.start(cid)
        return cid

    always, unless, unless_stopped_by_hand, always_stopped_by_hand, plain = (
        run("always"), run("unless-stopped"), run("unless-stopped"), run("always"), run("no"))
    api.stop(unless_stopped_by_hand, timeout=1)
    api.stop(always_stopped_by_hand, timeout=1)
    assert eng.stop(signal.SIGTERM) == 0  # stops every container: the flag is on
    eng.start()
    api = eng.api()

    def status(cid: str) -> str:
        return api.inspect_container(cid)["State"]["Status"]

    wait_for(lambda: status(always) == "running" and status(unless) == "running"
             and status(always_stopped_by_hand) == "running")
    assert status(unless_stopped_by_hand) == "exited"
    assert status(plain) == "exited"


def test_exit_during_engine_downtime_triggers_policy(private_engine):
    eng = private_engine()
    api = eng.api()
    cid = api.create_container("busybox", ["sh", "-c", "sleep 1; exit 4"], host_config=api.create_host_config(
        restart_policy={"Name": "on-failure", "MaximumRetryCount": 1}))["Id"]
    api.start(cid)
    eng.kill9()
    time.sleep(1.5)
    eng.start()
    api = eng.api()
    info = wait_for(lambda: (lambda i: i if i["RestartCount"] == 1 else None)(api.inspect_container(cid)))
    assert info["RestartCount"] == 1
    api.remove_container(cid, force=True)


def test_forced_remove_while_a_restart_is_starting(api):
    """A remove that lands in the middle of an automatic restart neither hangs nor fails."""
    cid = api.create_container("busybox", ["sh", "-c", "exit 1"], host_config=api.create_host_config(
        restart_policy={"Name": "always"}))["Id"]
    api.start(cid)
    for _ in range(30):  # hit restarts at different moments
        time.sleep(0.037)
        if api.inspect_container(cid)["RestartCount"] >= 3:
            break
    api.remove_container(cid, force=True)  # used to time out with a 500 when it landed mid-start
    assert cid not in [c["Id"] for c in api.containers(all=True)]
