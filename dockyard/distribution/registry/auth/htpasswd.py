"""htpasswd files with bcrypt hashes (what `htpasswd -B` writes), reloaded when they change."""

from __future__ import annotations

import hashlib
import os
import threading

import bcrypt


class Htpasswd:
    def __init__(self, path: str) -> None:
        self.path = path
        self._users: dict[str, bytes] = {}
        self._mtime = -1.0
        self._ok: set[tuple[str, str, bytes]] = set()  # bcrypt is slow on purpose: remember successes
        self._lock = threading.Lock()
        self._load()

    def _load(self) -> None:
        try:
            mtime = os.stat(self.path).st_mtime
        except FileNotFoundError:
            self._users, self._mtime = {}, -1.0
            return
        if mtime == self._mtime:
            return
        users: dict[str, bytes] = {}
        with open(self.path) as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith("#") or ":" not in line:
                    continue
                user, h = line.split(":", 1)
                if h.startswith(("$2y$", "$2a$", "$2b$")):
                    users[user] = h.replace("$2y$", "$2b$", 1).encode()
        with self._lock:
            self._users, self._mtime, self._ok = users, mtime, set()

    def verify(self, user: str, password: str) -> bool:
        self._load()
        h = self._users.get(user)
        if h is None:
            return False
        key = (user, hashlib.sha256(password.encode()).hexdigest(), h)
        if key in self._ok:
            return True
        try:
            ok = bcrypt.checkpw(password.encode(), h)
        except ValueError:
            return False
        if ok:
            with self._lock:
                self._ok.add(key)
        return ok
