"""Reading `docker load` input the way dockerd's tarexport does.

- Extraction errors carry Go's texts ("archive/tar: invalid tar header", "unexpected EOF"),
  which is what `docker load` users and scripts see from dockerd.
- The legacy `docker save` layout (Docker < 1.10, and what some tools still write): one
  directory per layer holding `json` (a v1 image: config, parent, created, container_config),
  `layer.tar` and `VERSION`, plus a `repositories` file naming the tags. Each directory becomes
  an image whose config is the v1 JSON without its v1-only keys, with the rootfs and history of
  its parent chain plus its own layer (moby's image/v1 MakeConfigFromV1Config).
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidParameter
from ..oci import digest as dg
from ..oci import image as oimg
from ..oci import reference as oref
from ..store.compression import decompressed

# v1 image keys that are no part of an image config
_V1_ONLY = ("id", "parent", "Size", "parent_id", "layer_id", "throwaway")


@dataclass
class LegacyEntry:
    config_bytes: bytes
    layers: list[Path]
    tags: list[oref.Reference]
    parent: str = ""  # the image ID of the parent directory's image
    announce: bool = False  # dockerd prints no "Loaded image" line for this layout
    old_id: str = ""
    _children: list[str] = field(default_factory=list)


def extract(archive: Path, dest: Path) -> None:
    """Unpack the uploaded archive (no escapes, no devices), with Go's error texts."""
    if archive.stat().st_size == 0:
        return  # Go's tar reader sees a clean end: dockerd goes on with an empty directory
    try:
        tf = tarfile.open(archive, "r:*")
    except tarfile.ReadError:
        raise InvalidParameter("unexpected EOF" if archive.stat().st_size < 512
                               else "archive/tar: invalid tar header") from None
    except (tarfile.TarError, EOFError, OSError):
        raise InvalidParameter("unexpected EOF") from None
    try:
        with tf:
            tf.extractall(dest, filter="data")
    except tarfile.FilterError as exc:
        raise InvalidParameter(f"invalid image archive: {exc}") from None
    except (tarfile.TarError, EOFError, OSError):
        raise InvalidParameter("unexpected EOF") from None


def _missing(path: Path) -> InvalidParameter:
    return InvalidParameter(f"open {path}: no such file or directory")


def _json_error(exc: Exception) -> InvalidParameter:
    """Go's encoding/json wording for the two common cases."""
    if isinstance(exc, json.JSONDecodeError) and exc.pos < len(exc.doc):
        return InvalidParameter(f"invalid character {exc.doc[exc.pos]!r} looking for beginning of value")
    return InvalidParameter("unexpected end of JSON input")


def _inside(work: Path, rel: str) -> Path:
    p = (work / rel).resolve()
    if p != work.resolve() and not str(p).startswith(str(work.resolve()) + os.sep):
        raise InvalidParameter(f"invalid archive: {rel!r} is outside the archive")
    return p


def _read_json(path: Path) -> Any:
    """A JSON file of the archive, with dockerd's errors for a missing or broken one."""
    try:
        raw = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        raise _missing(path) from None
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _json_error(exc) from None


def _diff_id(layer_tar: Path) -> str:
    h = hashlib.sha256()
    with open(layer_tar, "rb") as f, decompressed(f) as (plain, _kind):
        for chunk in iter(lambda: plain.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def _history_from_v1(v1: dict[str, Any]) -> dict[str, Any]:
    cc = v1.get("container_config") or {}
    cmd = cc.get("Cmd") if isinstance(cc, dict) else None
    h: dict[str, Any] = {"created": v1.get("created") or "0001-01-01T00:00:00Z"}
    if v1.get("author"):
        h["author"] = v1["author"]
    if isinstance(cmd, list) and cmd:
        h["created_by"] = " ".join(str(x) for x in cmd)
    if v1.get("comment"):
        h["comment"] = v1["comment"]
    return h


def legacy_entries(work: Path) -> list[LegacyEntry]:
    """The images of a legacy archive, parents first, tagged from `repositories`."""
    loaded: dict[str, tuple[LegacyEntry, list[str], list[dict[str, Any]]]] = {}
    order: list[LegacyEntry] = []

    def load(old_id: str, depth: int = 0) -> tuple[LegacyEntry, list[str], list[dict[str, Any]]]:
        if old_id in loaded:
            return loaded[old_id]
        if depth > 500:
            raise InvalidParameter("invalid archive: parent chain too long or cyclic")
        v1 = _read_json(_inside(work, os.path.join(old_id, "json")))
        if not isinstance(v1, dict):
            raise InvalidParameter("json: cannot unmarshal into Go value of type struct { OS string; Parent string }")
        if v1.get("os") == "windows":
            raise InvalidParameter("cannot load windows image on linux")
        diff_ids: list[str] = []
        history: list[dict[str, Any]] = []
        layers: list[Path] = []
        parent_id = ""
        if v1.get("parent"):
            parent_entry, diff_ids, history = load(str(v1["parent"]), depth + 1)
            diff_ids, history, layers = list(diff_ids), list(history), list(parent_entry.layers)
            parent_id = dg.sha256_bytes(parent_entry.config_bytes)
        layer_path = _inside(work, os.path.join(old_id, "layer.tar"))
        if not layer_path.is_file():
            raise _missing(layer_path)
        diff_ids.append(_diff_id(layer_path))
        layers.append(layer_path)
        history.append(_history_from_v1(v1))
        cfg = {k: v for k, v in v1.items() if k not in _V1_ONLY}
        cfg["rootfs"] = {"type": "layers", "diff_ids": diff_ids}
        cfg["history"] = history
        entry = LegacyEntry(oimg.encode(cfg), layers, [], parent=parent_id, old_id=old_id)
        loaded[old_id] = (entry, diff_ids, history)
        order.append(entry)
        return loaded[old_id]

    for d in sorted(work.iterdir()):
        if d.is_dir() and not d.is_symlink():
            load(d.name)
    repositories = _read_json(work / "repositories")
    if not isinstance(repositories, dict) or not all(isinstance(t, dict) for t in repositories.values()):
        raise InvalidParameter("json: cannot unmarshal into Go value of type map[string]map[string]string")
    for name, tag_map in repositories.items():
        for tag, old_id in tag_map.items():
            if old_id not in loaded:
                raise InvalidParameter(f"invalid target ID: {old_id}")
            ref = oref.parse(f"{name}:{tag}")
            entry = loaded[old_id][0]
            if ref not in entry.tags:
                entry.tags.append(ref)
    return order
