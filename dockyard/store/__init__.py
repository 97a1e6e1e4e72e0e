"""Persistence: metadata (SQLite), content (blobs by digest), layers (overlay snapshots)."""
