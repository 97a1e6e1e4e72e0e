"""Docker's restart policies as pure decisions: whether, and after how long."""

from __future__ import annotations

from typing import Any

FIRST_DELAY = 0.1
MAX_DELAY = 60.0
RESET_AFTER = 10.0  # seconds of running that reset the back-off


def after_exit(policy: dict[str, Any], exit_code: int, restart_count: int, stopped_by_user: bool) -> bool:
    """Should a container that just exited be started again?"""
    if stopped_by_user:
        return False
    name = policy.get("Name") or "no"
    if name in ("always", "unless-stopped"):
        return True
    if name == "on-failure" and exit_code != 0:
        limit = int(policy.get("MaximumRetryCount") or 0)
        return limit == 0 or restart_count < limit
    return False


def at_engine_start(policy: dict[str, Any], has_been_started: bool, stopped_by_user: bool) -> bool:
    """Docker's rule when the daemon starts: `always` comes back even after a manual stop,
    `unless-stopped` only if it was not stopped by hand."""
    name = policy.get("Name") or "no"
    return has_been_started and (name == "always" or (name == "unless-stopped" and not stopped_by_user))


def backoff(ran_seconds: float, previous: float | None) -> tuple[float, float]:
    """(delay now, delay next time): 100 ms doubling up to a minute, reset by 10 s of running."""
    delay = FIRST_DELAY if previous is None or ran_seconds >= RESET_AFTER else previous
    return delay, min(delay * 2, MAX_DELAY)
