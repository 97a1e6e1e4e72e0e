"""The engine's metadata database: SQLite in WAL mode.

Why SQLite: atomic multi-row transactions survive a SIGKILL at any point (the
journal is replayed on open), so a crash never leaves the metadata half
written; it is in the standard library; and `docker ps` with hundreds of
containers is one indexed query.

Each service owns its own tables and declares them with `ensure_schema`; no
service reads another's tables directly.  Calls are synchronous and short
(milliseconds); the engine is the only writer.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


class Database:
    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL is durable against process crashes in WAL mode; only a power
        # cut may lose the last transactions, never corrupt the file.
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._depth = 0

    def ensure_schema(self, sql: str) -> None:
        with self._lock:
            self._conn.executescript(sql)

    def ensure_columns(self, table: str, columns: dict[str, str]) -> None:
        """Add the columns a newer engine needs to a table an older one made
        (`columns`: name -> declaration with its DEFAULT)."""
        with self._lock:
            have = {r[1] for r in self._conn.execute(f"PRAGMA table_info({table})")}
            for name, decl in columns.items():
                if name not in have:
                    self._conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {decl}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Nestable transaction: the outermost one commits or rolls back."""
        with self._lock:
            outer = self._depth == 0
            if outer:
                self._conn.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield self._conn
            except BaseException:
                self._depth -= 1
                if outer:
                    self._conn.execute("ROLLBACK")
                raise
            else:
                self._depth -= 1
                if outer:
                    self._conn.execute("COMMIT")

    def execute(self, sql: str, params: tuple | dict = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._conn.execute(sql, params)

    def query(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def query_one(self, sql: str, params: tuple | dict = ()) -> sqlite3.Row | None:
        with self._lock:
            return self._conn.execute(sql, params).fetchone()

    def scalar(self, sql: str, params: tuple | dict = ()) -> Any:
        row = self.query_one(sql, params)
        return None if row is None else row[0]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
