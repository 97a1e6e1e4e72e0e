"""A real dockyard engine on a private socket, data root, exec root, bridge and subnet.

Used by the session fixture in conftest.py and by tests that need an engine of
their own (restarts, crashes).  Cleanup is thorough and runs even when a test
fails: containers, monitor processes, mounts, the bridge and its iptables rules.
"""

from __future__ import annotations

import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker


def _free_subnet() -> str:
    return f"10.{random.randint(100, 250)}.{random.randint(0, 255)}.1/24"


class EngineProcess:
    def __init__(self, root: Path | None = None, bridge: str | None = None, bip: str | None = None,
                 extra_args: list[str] | None = None, own_netns: bool = False) -> None:
        self.root = root or Path(tempfile.mkdtemp(prefix="dyk-", dir="/tmp"))
        # own_netns: the engine runs in a network namespace of its own (kept until cleanup,
        # so it can be looked at after the engine stopped): every link, rule and network
        # sysctl there is this engine's doing, and a test can compare them whole, whatever
        # other engines do on the host meanwhile.
        self.netns = f"dyk{secrets.token_hex(4)}" if own_netns else None
        if self.netns:
            subprocess.run(["ip", "netns", "add", self.netns], check=True)
        self.data_root = self.root / "data"
        self.exec_root = self.root / "run"
        self.socket = str(self.root / "engine.sock")
        self.bridge = bridge or f"dyt{secrets.token_hex(3)}"
        self.bip = bip or _free_subnet()
        self.extra_args = extra_args or []
        self.log_path = self.root / "engine.log"
        self.proc: subprocess.Popen | None = None
        self.docker_config = self.root / "docker-config"
        self.docker_config.mkdir(parents=True, exist_ok=True)

    @property
    def docker_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["DOCKER_HOST"] = f"unix://{self.socket}"
        env["DOCKER_CONFIG"] = str(self.docker_config)
        env.pop("DOCKER_CONTEXT", None)
        env.pop("DOCKER_TLS_VERIFY", None)
        return env

    def start(self, timeout: float = 20) -> None:
        args = [sys.executable, "-m", "dockyard.cli", "engine", "-H", f"unix://{self.socket}",
                "--data-root", str(self.data_root), "--exec-root", str(self.exec_root),
                "--bridge", self.bridge, "--bip", self.bip, "--log-level", "debug", *self.extra_args]
        if self.netns:  # nsenter execs: the pid stays the engine's; only the network namespace differs
            args = ["nsenter", f"--net=/run/netns/{self.netns}", "--", *args]
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=self.logf, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"engine exited early:\n{self.log_tail()}")
            try:
                if self.client(timeout=2).ping():
                    return
            except Exception:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"engine did not answer in {timeout}s:\n{self.log_tail()}")

    def in_netns(self, *cmd: str) -> list[str]:
        """`cmd` run in the engine's network namespace (own_netns engines; the host's otherwise)."""
        if not self.netns:
            return list(cmd)
        return ["nsenter", f"--net=/run/netns/{self.netns}", "--", *cmd]

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_bytes()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def client(self, timeout: int = 60) -> docker.DockerClient:
        return docker.DockerClient(base_url=f"unix://{self.socket}", timeout=timeout)

    def api(self, timeout: int = 60) -> docker.APIClient:
        return docker.APIClient(base_url=f"unix://{self.socket}", timeout=timeout)

    def cli(self, *args: str, input: bytes | None = None, timeout: float = 60,
            check: bool = False) -> subprocess.CompletedProcess:
        return subprocess.run(["docker", *args], env=self.docker_env, input=input,
                              capture_output=True, timeout=timeout, check=check)

    def cli_ok(self, *args: str, input: bytes | None = None, timeout: float = 120) -> str:
        """Run the docker CLI; fail the test (with the engine's log) unless it succeeds."""
        r = self.cli(*args, input=input, timeout=timeout)
        assert r.returncode == 0, (f"docker {' '.join(args)}: {r.stderr.decode()}{r.stdout.decode()}\n"
                                   f"{self.log_tail(1500)}")
        return r.stdout.decode()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        self.proc = None
        self.logf.close()
        return rc

    def kill9(self) -> None:
        self.stop(signal.SIGKILL)

    # ------------------------------------------------------------ cleanup
    def remove_all_containers(self) -> None:
        try:
            api = self.api(timeout=30)
            for c in api.containers(all=True):
                try:
                    api.remove_container(c["Id"], force=True)
                except Exception:
                    pass
        except Exception:
            pass

    def _pids(self, is_ours) -> list[int]:
        """Processes whose argv `is_ours(argv, exec_root)` claims for this engine."""
        out = []
        marker = str(self.exec_root).encode()
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if argv and is_ours(argv, marker):
                out.append(int(d))
        return out

    def monitor_pids(self) -> list[int]:
        """conmon processes serving this engine (their command lines name our exec root)."""
        return self._pids(lambda argv, root: argv[0].endswith(b"conmon") and any(root in a for a in argv))

    def logd_pids(self) -> list[int]:
        """The engine's log daemon (it outlives a crashed engine, as conmon does)."""
        return self._pids(lambda argv, root: b"logd" in argv and root in argv)

    def mounts(self) -> list[str]:
        """Mounts under our root, but the engine's own private netns directory mount."""
        prefix = str(self.root) + "/"
        own = str(self.exec_root / "netns")
        with open("/proc/self/mountinfo") as f:
            return [mp for mp in (line.split()[4] for line in f)
                    if mp.startswith(prefix) and mp != own]

    def all_mounts(self) -> list[str]:
        prefix = str(self.root) + "/"
        with open("/proc/self/mountinfo") as f:
            return [line.split()[4] for line in f if line.split()[4].startswith(prefix)]

    def cleanup(self) -> None:
        """Leave the host as it was, whatever state the engine and tests left."""
        if self.proc is not None and self.proc.poll() is None:
            self.remove_all_containers()
            self.stop()
        # runc containers and their monitors that outlived a crashed engine
        runc_root = self.exec_root / "runc"
        if runc_root.exists():
            for d in runc_root.iterdir():
                subprocess.run(["runc", "--root", str(runc_root), "kill", "--all", d.name, "KILL"],
                               capture_output=True)
                subprocess.run(["runc", "--root", str(runc_root), "delete", "--force", d.name],
                               capture_output=True)
        for pid in self.monitor_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in self.logd_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for mp in sorted(self.all_mounts(), key=len, reverse=True):
            subprocess.run(["umount", "-l", mp], capture_output=True)
        _remove_cgroups(self.exec_root)
        keep = os.environ.get("DYK_KEEP_LOGS")  # a directory to keep engine logs in, for debugging
        if keep and self.log_path.exists():
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(self.log_path, Path(keep) / f"{self.root.name}.log")
        if self.netns:  # its links and rules go with it
            subprocess.run(["ip", "netns", "del", self.netns], capture_output=True)
        else:
            for bridge in {self.bridge, *self._network_bridges()}:
                subprocess.run(["ip", "link", "del", bridge], capture_output=True)
                _remove_iptables_rules(bridge)
        shutil.rmtree(self.root, ignore_errors=True)

    def _network_bridges(self) -> list[str]:
        """Bridges of user-defined networks the engine recorded (they outlive a crashed engine)."""
        import sqlite3

        db = self.data_root / "metadata.db"
        if not db.exists():
            return []
        try:
            conn = sqlite3.connect(db)
            try:
                return [r[0] for r in conn.execute("SELECT bridge FROM net_networks WHERE bridge IS NOT NULL")]
            finally:
                conn.close()
        except sqlite3.Error:
            return []


def uniq(prefix: str) -> str:
    """A name no other test (or test session) uses."""
    return f"{prefix}-{secrets.token_hex(3)}"


def _remove_cgroups(exec_root: Path) -> None:
    """The engine's own cgroup parent and what a killed engine left in it (empty by now)."""
    from dockyard.runtime import cgroups

    try:
        driver = cgroups.detect(cgroups.engine_parent(exec_root))
        for cid in driver.leftovers(set()):
            driver.remove(cid)
        driver.remove_parent()
    except OSError:
        pass


def _remove_iptables_rules(bridge: str) -> None:
    """Delete the chains and rules an engine made for our bridge (a safety net after crashes)."""
    from dockyard.network.firewall import Firewall

    try:
        Firewall(True).remove_bridge(bridge)
    except Exception:
        pass


# tmux with a server of this test session's own: on the default socket, another session's last
# kill-session ends the shared server while this one connects ("server exited unexpectedly").
# The same happens within one session (a test kills its last tmux session, then opens the
# next): so the server stays up when it has no session left (exit-empty off) until
# kill_tmux_server() at the end of the test session.
# The config file is written by the first tmux command, not at import: the benchmarks import
# this module too, and never use tmux (nor end a server), so each of their runs left one behind.
_TMUX_CONF = Path(tempfile.gettempdir()) / f"dyk-tmux-{os.getpid()}.conf"
TMUX = ["tmux", "-L", f"dyk-{os.getpid()}", "-f", str(_TMUX_CONF)]


def tmux_argv(*args: str) -> list[str]:
    """The argv of a tmux command on the session's own server (its config written first)."""
    if not _TMUX_CONF.exists():
        _TMUX_CONF.write_text("set -g exit-empty off\n")
    return [*TMUX, *args]


def tmux(*args: str) -> str:
    """A tmux command on the session's own server; its stdout."""
    return subprocess.run(tmux_argv(*args), capture_output=True, text=True, timeout=20).stdout


def kill_tmux_server() -> None:
    """End the test session's tmux server, if one was started, and drop its config."""
    subprocess.run([*TMUX, "kill-server"], capture_output=True, timeout=20)
    _TMUX_CONF.unlink(missing_ok=True)
    # tmux leaves its socket file behind
    (Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}" / TMUX[2]).unlink(missing_ok=True)
