"""Compressed copies of layers kept in the content store, by DiffID and media type.

A layer that arrived compressed (pull, import or load of a .tar.gz/.tar.zst)
keeps its compressed blob exactly as received, and a layer that push had to
compress keeps the result: a later push (to another registry, or after the
registry lost it) sends those bytes again instead of compressing once more.
The rows go when the layer's last chain is garbage-collected
(`LayerStore.gc` calls `forget`).
"""

from __future__ import annotations

from dataclasses import dataclass

from .content import ContentStore
from .metadata import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS compressed_blobs (
    diff_id    TEXT NOT NULL,
    compression TEXT NOT NULL,  -- gzip | zstd
    digest     TEXT NOT NULL,
    size       INTEGER NOT NULL,
    tar_size   INTEGER NOT NULL,  -- of the layer tar, which may not be kept uncompressed
    PRIMARY KEY (diff_id, compression)
);
"""


@dataclass(frozen=True)
class CompressedBlob:
    diff_id: str
    compression: str
    digest: str
    size: int
    tar_size: int


class CompressedBlobs:
    def __init__(self, db: Database, content: ContentStore) -> None:
        self.db = db
        self.content = content
        cols = {r["name"] for r in db.query("PRAGMA table_info(compressed_blobs)")}
        if cols and "tar_size" not in cols:
            # The first version (by media type, tar always kept beside): only a cache of
            # blobs whose tars are still in the content store, so it can start again empty.
            db.execute("DROP TABLE compressed_blobs")
        db.ensure_schema(SCHEMA)

    def add(self, diff_id: str, compression: str, digest: str, size: int, tar_size: int) -> None:
        """Record a blob already in the content store (the newest one per compression wins)."""
        old = self.find(diff_id, compression)
        self.db.execute(
            "INSERT INTO compressed_blobs(diff_id, compression, digest, size, tar_size) VALUES (?,?,?,?,?) "
            "ON CONFLICT DO UPDATE SET digest=excluded.digest, size=excluded.size",
            (diff_id, compression, digest, size, tar_size))
        if old is not None and old.digest != digest:
            self._delete_unused(old.digest)

    def find(self, diff_id: str, compression: str) -> CompressedBlob | None:
        """The kept blob, if its bytes are still in the content store."""
        row = self.db.query_one("SELECT * FROM compressed_blobs WHERE diff_id=? AND compression=?",
                                (diff_id, compression))
        if row is None or not self.content.exists(row["digest"]):
            return None
        return CompressedBlob(row["diff_id"], row["compression"], row["digest"], row["size"], row["tar_size"])

    def forget(self, diff_id: str) -> None:
        rows = self.db.query("SELECT digest FROM compressed_blobs WHERE diff_id=?", (diff_id,))
        self.db.execute("DELETE FROM compressed_blobs WHERE diff_id=?", (diff_id,))
        for r in rows:
            self._delete_unused(r["digest"])

    def _delete_unused(self, digest: str) -> None:
        if self.db.scalar("SELECT COUNT(*) FROM compressed_blobs WHERE digest=?", (digest,)) == 0:
            self.content.delete(digest)
