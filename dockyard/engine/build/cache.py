"""The legacy builder's layer cache: (parent image, step) -> the image that step produced.

The step is keyed as dockerd's image cache compares it: the run config the step would commit
(Cmd carries the instruction, `#(nop) COPY file:<checksum> in /dest` for COPY/ADD, the
`|N ARG=v` prefix for RUN), so a different instruction, environment, user, workdir, build
argument or copied content is a different key. A record whose image has since been deleted
is a miss (and is dropped).
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any, Callable

from ...store.metadata import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS build_cache (
    key       TEXT PRIMARY KEY,
    parent    TEXT NOT NULL,
    image_id  TEXT NOT NULL,
    created   REAL NOT NULL,
    last_used REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS build_cache_image ON build_cache(image_id);
"""


def cache_key(parent: str | None, probe_config: dict[str, Any]) -> str:
    blob = json.dumps({"parent": parent or "", "config": probe_config}, sort_keys=True,
                      separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


class BuildCache:
    def __init__(self, db: Database, image_exists: Callable[[str], bool]) -> None:
        self.db = db
        self.image_exists = image_exists
        db.ensure_schema(SCHEMA)

    def probe(self, parent: str | None, probe_config: dict[str, Any]) -> str | None:
        key = cache_key(parent, probe_config)
        image_id = self.db.scalar("SELECT image_id FROM build_cache WHERE key=?", (key,))
        if image_id is None:
            return None
        if not self.image_exists(image_id):
            with self.db.transaction():
                self.db.execute("DELETE FROM build_cache WHERE key=?", (key,))
            return None
        with self.db.transaction():
            self.db.execute("UPDATE build_cache SET last_used=? WHERE key=?", (time.time(), key))
        return image_id

    def record(self, parent: str | None, probe_config: dict[str, Any], image_id: str) -> None:
        now = time.time()
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO build_cache(key, parent, image_id, created, last_used) VALUES (?,?,?,?,?) "
                "ON CONFLICT(key) DO UPDATE SET image_id=excluded.image_id, last_used=excluded.last_used",
                (cache_key(parent, probe_config), parent or "", image_id, now, now))

    def prune(self, keep_images: bool = True) -> list[str]:
        """Forget every record (the images stay: they are ordinary images). Returns the keys."""
        rows = self.db.query("SELECT key FROM build_cache ORDER BY created")
        with self.db.transaction():
            self.db.execute("DELETE FROM build_cache")
        return [r["key"] for r in rows]
