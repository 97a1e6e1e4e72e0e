"""Health checks: the image's or the request's HEALTHCHECK, probed with exec sessions.

Docker's rules: probes every Interval (StartInterval during StartPeriod), each
limited to Timeout; failures during the start period do not count until the
first success; Retries consecutive failures make the container unhealthy; the
last five results are kept.  Status changes are published as
`health_status: <status>` events.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from typing import Any, Callable

from ...errors import DockyardError
from .attach import AttachStream
from .model import Container, now_rfc3339

log = logging.getLogger(__name__)

NS = 1_000_000_000
DEFAULTS = {"Interval": 30 * NS, "Timeout": 30 * NS, "StartPeriod": 0, "StartInterval": 5 * NS, "Retries": 3}
MAX_OUTPUT = 4096
KEEP_RESULTS = 5


def probe_command(check: dict[str, Any] | None) -> list[str] | None:
    """The argv of a probe, or None when health checks are off for this container."""
    test = (check or {}).get("Test") or []
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(test[1:])]
    if test[0] == "CMD":
        return list(test[1:]) or None
    return list(test)  # a bare command, as older clients send


def setting(check: dict[str, Any], key: str) -> float:
    """A duration in seconds (Retries as a count), Docker's default when 0 or missing."""
    v = check.get(key) or DEFAULTS[key]
    return float(v) if key == "Retries" else v / NS


class HealthChecker:
    def __init__(self, containers: Any, execs: Any) -> None:
        self.containers = containers
        self.execs = execs
        self._tasks: dict[str, asyncio.Task] = {}
        self.observers: list[Callable[[dict[str, Any]], None]] = []  # each probe result (metrics)

    def start(self, c: Container) -> None:
        self.stop(c.id)
        argv = probe_command(c.config.get("Healthcheck"))
        if argv is None:
            c.state.health = None
            return
        c.state.health = {"Status": "starting", "FailingStreak": 0, "Log": []}
        self._tasks[c.id] = asyncio.get_running_loop().create_task(self._run(c, argv))

    def stop(self, cid: str) -> None:
        t = self._tasks.pop(cid, None)
        if t is not None:
            t.cancel()

    def stop_all(self) -> None:
        for cid in list(self._tasks):
            self.stop(cid)

    async def _run(self, c: Container, argv: list[str]) -> None:
        check = c.config.get("Healthcheck") or {}
        started = time.monotonic()
        start_period = setting(check, "StartPeriod")
        seen_success = False
        try:
            while True:
                in_start = not seen_success and time.monotonic() - started < start_period
                await asyncio.sleep(setting(check, "StartInterval" if in_start else "Interval"))
                if c.state.status != "running":
                    continue  # paused: Docker skips probes
                result = await self._probe(c, argv, setting(check, "Timeout"))
                seen_success = seen_success or result["ExitCode"] == 0
                self._record(c, result, counts=not in_start or result["ExitCode"] == 0,
                             retries=int(setting(check, "Retries")))
        except asyncio.CancelledError:
            pass

    async def _probe(self, c: Container, argv: list[str], timeout: float) -> dict[str, Any]:
        start = now_rfc3339()
        out = bytearray()
        try:
            s = self.execs.create(c.id, {"Cmd": argv, "AttachStdout": True, "AttachStderr": True},
                                  internal=True)
            stream = AttachStream(stdin=False, stdout=True, stderr=True, tty=False, detach_keys=b"")
            await self.execs.start(s.id, stream=stream)

            async def collect() -> None:
                while (item := await stream.recv()) is not None:
                    if len(out) < MAX_OUTPUT:
                        out.extend(item[1][: MAX_OUTPUT - len(out)])
                await s.exited.wait()

            try:
                await asyncio.wait_for(collect(), timeout)
                code = s.exit_code if s.exit_code is not None else -1
                output = out.decode(errors="replace")
            except asyncio.TimeoutError:
                if s.pid:
                    try:
                        os.kill(s.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                code = -1
                output = f"Health check exceeded timeout ({timeout:g}s)"
            finally:
                stream.close()
                self.execs.forget(s.id)
        except DockyardError as exc:
            code, output = -1, exc.message
        return {"Start": start, "End": now_rfc3339(), "ExitCode": code, "Output": output}

    def _record(self, c: Container, result: dict[str, Any], *, counts: bool, retries: int) -> None:
        for observe in self.observers:
            observe(result)
        h = c.state.health or {"Status": "starting", "FailingStreak": 0, "Log": []}
        h["Log"] = (h.get("Log") or [])[-(KEEP_RESULTS - 1):] + [result]
        before = h["Status"]
        if result["ExitCode"] == 0:
            h["Status"], h["FailingStreak"] = "healthy", 0
        elif counts:
            h["FailingStreak"] += 1
            if h["FailingStreak"] >= retries:
                h["Status"] = "unhealthy"
        c.state.health = h
        self.containers.save(c)
        if h["Status"] != before:
            self.containers.events.publish("container", f"health_status: {h['Status']}", c.id,
                                           image=c.image_ref, name=c.name)
