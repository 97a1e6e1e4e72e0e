"""Fixtures shared by the unit tests."""

from __future__ import annotations

import pytest

from dockyard.store.content import ContentStore
from dockyard.store.layers import LayerStore
from dockyard.store.metadata import Database


@pytest.fixture
def store(tmp_path):
    """A layer store (with its content store and metadata database) under tmp_path."""
    db = Database(tmp_path / "meta.db")
    s = LayerStore(tmp_path / "layers", db, ContentStore(tmp_path / "content"))
    yield s
    db.close()
