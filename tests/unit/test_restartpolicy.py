"""Restart policy decisions and Docker's back-off."""

from dockyard.engine.containers import restartpolicy as rp


def test_after_exit():
    assert not rp.after_exit({"Name": "no"}, 1, 0, False)
    assert rp.after_exit({"Name": "always"}, 0, 5, False)
    assert not rp.after_exit({"Name": "always"}, 0, 0, True)  # stopped by hand
    assert rp.after_exit({"Name": "unless-stopped"}, 0, 0, False)
    assert not rp.after_exit({"Name": "on-failure"}, 0, 0, False)
    assert rp.after_exit({"Name": "on-failure"}, 2, 100, False)  # no limit
    assert rp.after_exit({"Name": "on-failure", "MaximumRetryCount": 2}, 2, 1, False)
    assert not rp.after_exit({"Name": "on-failure", "MaximumRetryCount": 2}, 2, 2, False)


def test_at_engine_start():
    assert rp.at_engine_start({"Name": "always"}, True, True)  # even after a manual stop
    assert rp.at_engine_start({"Name": "unless-stopped"}, True, False)
    assert not rp.at_engine_start({"Name": "unless-stopped"}, True, True)
    assert not rp.at_engine_start({"Name": "always"}, False, False)  # never started
    assert not rp.at_engine_start({"Name": "on-failure"}, True, False)


def test_backoff_doubles_caps_and_resets():
    delay, nxt = rp.backoff(0.5, None)
    assert (delay, nxt) == (0.1, 0.2)
    delays = []
    prev = None
    for _ in range(12):
        d, prev = rp.backoff(0.5, prev)
        delays.append(d)
    assert delays[:4] == [0.1, 0.2, 0.4, 0.8] and max(delays) == 60.0
    assert rp.backoff(10.0, 60.0)[0] == 0.1  # ran long enough: start over
