"""Two engines on one host (different data roots, exec roots, bridges) never touch each other.

The cgroups: an engine at start removes the container cgroups under its parent that it
does not know (a crash's leftovers), and at stop its own parent.  With one parent shared by
every engine, a start removed a sibling's cgroup that runc had just made (still empty), and
that sibling's container start failed ("unable to get oom kill count").
"""

from __future__ import annotations

import os
import threading

from dockyard.runtime import cgroups


def _dirs_exist(dirs: list[str]) -> list[str]:
    return [d for d in dirs if os.path.isdir(d)]


def test_engines_keep_to_their_own_cgroups(private_engine):
    a, b = private_engine(), private_engine()
    parent_a, parent_b = cgroups.engine_parent(a.exec_root), cgroups.engine_parent(b.exec_root)
    assert parent_a != parent_b and cgroups.DEFAULT_PARENT not in (parent_a, parent_b)
    drv_a, drv_b = cgroups.detect(parent_a), cgroups.detect(parent_b)
    ca = a.client().containers.run("busybox", "sleep 300", detach=True)
    assert _dirs_exist(drv_a.directories(ca.id)), "container a's cgroups are under a's parent"
    # What runc makes first when it creates a container: an empty cgroup, for a start in flight.
    in_flight = "0f" * 32
    made = drv_a.directories(in_flight)
    for d in made:
        os.makedirs(d, exist_ok=True)
    try:
        b.cli_ok("run", "--rm", "busybox", "true")
        b.stop()
        b.start()  # start-time repair of b: a's cgroups are none of its business
        assert _dirs_exist(made) == made

        # b restarts (repair at start, parent removed at stop) while a starts containers
        errors: list[str] = []

        def churn_b() -> None:
            try:
                for _ in range(3):
                    b.cli_ok("run", "--rm", "busybox", "true")
                    b.stop()
                    b.start()
            except BaseException as exc:  # reported by the main thread
                errors.append(f"engine b: {exc!r}")

        t = threading.Thread(target=churn_b)
        t.start()
        try:
            runs = 0
            while t.is_alive() or runs < 10:
                r = a.cli("run", "--rm", "busybox", "sh", "-c", f"echo run{runs}", timeout=120)
                assert (r.returncode, r.stdout) == (0, f"run{runs}\n".encode()), \
                    (r.stderr.decode(), a.log_tail(2000))
                runs += 1
        finally:
            t.join(300)
        assert not errors, errors
        assert _dirs_exist(made) == made
        ca.reload()
        assert ca.status == "running" and _dirs_exist(drv_a.directories(ca.id))
        assert a.cli_ok("exec", ca.id, "echo", "alive") == "alive\n"

        # b stops with nothing running: its parent goes; a's (which has children) stays
        b.remove_all_containers()
        assert b.stop() == 0
        assert _dirs_exist(drv_b.parent_directories()) == []
        assert _dirs_exist(drv_a.parent_directories())
    finally:
        for d in made:
            try:
                os.rmdir(d)
            except OSError:
                pass

