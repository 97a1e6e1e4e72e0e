"""`docker exec`: extra processes in a running container, each under its own conmon.

An exec session's process spec is the container's own (capabilities, rlimits,
seccomp context apply to it through runc exec), with the request's command,
environment, user, working directory and terminal.  conmon's `--exec-attach`
handshake lets attach clients connect before the process runs, so no output
is lost.  Sessions live in memory, as in dockerd; they end with their container.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import Conflict, InvalidParameter, NotFound
from ..oci import users
from ..oci.capabilities import engine_capabilities
from ..runtime.conmon import Monitor
from .containers.attach import AttachStream, parse_detach_keys
from .containers.createspec import merge_env
from .containers.fieldtypes import HOST_CONFIG, check_struct, go_keys, B, L, S, SL
from .containers.starterrors import exit_code_for, is_users_fault

log = logging.getLogger(__name__)

EXEC_FIELDS = {"AttachStdin": B, "AttachStdout": B, "AttachStderr": B, "DetachKeys": S, "Tty": B,
               "Env": L, "Cmd": SL, "Privileged": B, "User": S, "WorkingDir": S,
               "ConsoleSize": HOST_CONFIG["ConsoleSize"]}

START_FIELDS = {"Detach": B, "Tty": B}


def check_start(body: dict[str, Any]) -> None:
    """POST /exec/{id}/start decodes into ExecStartCheck: a wrong JSON type is a 400."""
    check_struct("ExecStartCheck", body, START_FIELDS)


@dataclass
class ExecSession:
    id: str
    container_id: str
    config: dict[str, Any]
    bundle: Path
    running: bool = False
    started: bool = False
    exit_code: int | None = None
    pid: int = 0
    conmon_pid: int = 0
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    internal: bool = False  # the engine's own (health probes): no events, not in ExecIDs


class ExecService:
    def __init__(self, containers: Any, monitor: Monitor, run_dir: Path) -> None:
        self.containers = containers
        self.monitor = monitor
        self.run_dir = run_dir
        self._sessions: dict[str, ExecSession] = {}
        shutil.rmtree(run_dir, ignore_errors=True)  # sessions do not outlive the engine
        run_dir.mkdir(parents=True, exist_ok=True)

    def get(self, exec_id: str) -> ExecSession:
        s = self._sessions.get(exec_id)
        if s is None:
            raise NotFound(f"No such exec instance: {exec_id}")
        return s

    def ids_for(self, container_id: str) -> list[str]:
        return [s.id for s in self._sessions.values() if s.container_id == container_id and not s.internal]

    def forget(self, exec_id: str) -> None:
        """Drop a finished session (health probes do not pile up)."""
        s = self._sessions.pop(exec_id, None)
        if s is not None:
            shutil.rmtree(s.bundle, ignore_errors=True)

    def forget_container(self, container_id: str) -> None:
        for sid in self.ids_for(container_id):
            s = self._sessions.pop(sid)
            shutil.rmtree(s.bundle, ignore_errors=True)

    def create(self, ref: str, body: dict[str, Any], internal: bool = False) -> ExecSession:
        body = go_keys(body, EXEC_FIELDS)
        check_struct("ExecConfig", body, EXEC_FIELDS)
        c = self.containers.get(ref)
        if c.state.status == "paused":
            raise Conflict(f"Container {c.id} is paused, unpause the container before exec")
        if c.state.status != "running":
            raise Conflict(f"container {c.id} is not running")
        cmd = body.get("Cmd")
        if isinstance(cmd, str):
            cmd = [cmd]
        if not cmd:
            raise InvalidParameter("No exec command specified")
        if body.get("DetachKeys"):  # checked here as dockerd does, not first at an attached start
            try:
                parse_detach_keys(body["DetachKeys"])
            except InvalidParameter:
                raise InvalidParameter(f"Invalid escape keys ({body['DetachKeys']}) provided") from None
        sid = secrets.token_hex(32)
        cfg = {k: body.get(k) for k in EXEC_FIELDS}
        cfg["Cmd"] = cmd
        s = ExecSession(id=sid, container_id=c.id, config=cfg, bundle=self.run_dir / sid, internal=internal)
        self._sessions[sid] = s
        if internal:
            return s
        self.containers.events.publish("container", f"exec_create: {' '.join(cmd)}", c.id,
                                       execID=sid, image=c.image_ref, name=c.name)
        return s

    def _process_spec(self, s: ExecSession) -> dict[str, Any]:
        c = self.containers.get(s.container_id)
        spec = json.loads((self.containers.bundle_dir(c.id) / "config.json").read_text())
        proc = dict(spec["process"])
        cfg = s.config
        proc["args"] = list(cfg["Cmd"])
        proc["terminal"] = bool(cfg.get("Tty"))
        proc.pop("consoleSize", None)
        proc["env"] = merge_env(proc.get("env"), cfg.get("Env"))
        if cfg.get("WorkingDir"):
            if not cfg["WorkingDir"].startswith("/"):
                raise InvalidParameter(f"the working directory '{cfg['WorkingDir']}' is invalid, it needs to be an absolute path")
            proc["cwd"] = cfg["WorkingDir"]
        if cfg.get("User"):
            rootfs = spec["root"]["path"]
            u = users.resolve_user(rootfs, cfg["User"], c.host_config.get("GroupAdd") or [])
            proc["user"] = {"uid": u.uid, "gid": u.gid, "additionalGids": list(u.additional_gids)}
        if cfg.get("Privileged"):
            caps = [f"CAP_{n}" if not n.startswith("CAP_") else n for n in engine_capabilities()]
            proc["capabilities"] = {k: caps for k in ("bounding", "effective", "permitted")}
        return proc

    async def start(self, exec_id: str, *, stream: AttachStream | None,
                    console_size: tuple[int, int] | None = None) -> ExecSession:
        """Run the process; `stream` (when attached) is connected before it starts."""
        s = self.get(exec_id)
        if s.started:
            raise Conflict(f"exec {exec_id} has already been started" if not s.running
                           else f"Error: Exec command {exec_id} is already running")
        c = self.containers.get(s.container_id)
        if c.state.status != "running":
            raise Conflict(f"container {c.id} is not running")
        s.started = True
        s.bundle.mkdir(parents=True, exist_ok=True)
        try:
            proc = await asyncio.to_thread(self._process_spec, s)  # reads the container's files
            (s.bundle / "process.json").write_text(json.dumps(proc))

            def attach_now() -> None:
                if stream is not None:
                    stream.connect(s.bundle)
                if console_size:
                    Monitor.resize(s.bundle, *console_size)

            if stream is not None and s.config.get("Tty"):
                # the monitor makes its pty non-blocking once the process runs: until then
                # a client's burst of input could fill the pty and stall the monitor's output
                stream.hold_input()
            try:
                handle = await self.monitor.exec(
                    c.id, s.id, s.bundle, s.bundle / "process.json", s.bundle / "exec.log",
                    terminal=bool(s.config.get("Tty")), stdin=bool(s.config.get("AttachStdin")),
                    on_attach_ready=attach_now)
            finally:
                if stream is not None:
                    stream.release_input()
        except BaseException as exc:
            s.exit_code = exit_code_for(exc.message) if is_users_fault(exc) else 126
            s.exited.set()
            if stream is not None:
                stream.end()
            if is_users_fault(exc):  # a command not found: dockerd's 400, not a 500
                raise InvalidParameter(exc.message) from exc
            raise
        s.running, s.pid, s.conmon_pid = True, handle.container_pid, handle.conmon_pid
        self._watch(s)
        if s.internal:
            return s
        self.containers.events.publish("container", f"exec_start: {' '.join(s.config['Cmd'])}",
                                       c.id, execID=s.id, image=c.image_ref, name=c.name)
        return s

    def _watch(self, s: ExecSession) -> None:
        loop = asyncio.get_running_loop()
        try:
            fd = os.pidfd_open(s.conmon_pid)
        except ProcessLookupError:
            self._exited(s)
            return

        def ready() -> None:
            loop.remove_reader(fd)
            os.close(fd)
            self._exited(s)

        loop.add_reader(fd, ready)

    def _exited(self, s: ExecSession) -> None:
        code = Monitor.exec_exit_code(s.bundle, s.container_id)
        s.exit_code = 126 if code is None else code
        s.running = False
        s.exited.set()
        for name in ("process.json", "exec.log"):
            try:
                (s.bundle / name).unlink()
            except FileNotFoundError:
                pass
        c = self.containers._ctrs.get(s.container_id)
        if c is not None and not s.internal:
            self.containers.events.publish("container", "exec_die", c.id, execID=s.id,
                                           exitCode=str(s.exit_code), image=c.image_ref, name=c.name)

    def resize(self, exec_id: str, height: int, width: int) -> None:
        s = self.get(exec_id)
        if not s.running:
            raise Conflict(f"exec {exec_id} is not running")
        Monitor.resize(s.bundle, height, width)

    def inspect(self, exec_id: str) -> dict[str, Any]:
        s = self.get(exec_id)
        cfg = s.config
        return {
            "CanRemove": False,
            "ContainerID": s.container_id,
            "DetachKeys": cfg.get("DetachKeys") or "",
            "ExitCode": s.exit_code,
            "ID": s.id,
            "OpenStderr": bool(cfg.get("AttachStderr")),
            "OpenStdin": bool(cfg.get("AttachStdin")),
            "OpenStdout": bool(cfg.get("AttachStdout")),
            "ProcessConfig": {"arguments": cfg["Cmd"][1:], "entrypoint": cfg["Cmd"][0],
                              "privileged": bool(cfg.get("Privileged")), "tty": bool(cfg.get("Tty")),
                              "user": cfg.get("User") or ""},
            "Running": s.running,
            "Pid": s.pid if s.running else 0,
        }
