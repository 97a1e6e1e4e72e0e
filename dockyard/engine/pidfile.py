"""The engine's PID file (`pidfile`): refused while another live engine holds it, as dockerd does."""

from __future__ import annotations

import os
from pathlib import Path


class PidFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def acquire(self) -> None:
        try:
            other = int(self.path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            other = None
        if other and other != os.getpid() and Path(f"/proc/{other}").exists():
            raise SystemExit(f"pid file found, ensure dockyard is not running or delete {self.path}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(f"{os.getpid()}")
        tmp.replace(self.path)

    def release(self) -> None:
        try:
            if self.path.read_text().strip() == str(os.getpid()):
                self.path.unlink()
        except OSError:
            pass
