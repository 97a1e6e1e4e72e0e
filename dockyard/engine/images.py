"""ImageService: import, load, save, list, inspect, history, tag, remove, prune.

Storage (all under data_root):
  metadata.db   tables `images` (id = sha256 of the config bytes, config kept
                verbatim) and `image_refs` (normalised reference -> image id);
                each image holds references to its layers (store.layers).
  content/      content-addressed blobs: the uncompressed layer tars (by DiffID)
  layers/       unpacked overlayfs layers by ChainID, shared between images

An image is committed in one SQLite transaction (image row + tags + layer
references) after its layers are safely in place, so a crash leaves either no
image or a whole one; debris is swept by `start()`.

Container usage: the container service registers `set_usage_checker(fn)`
where fn(image_id) returns the containers using the image, either as IDs
(taken as stopped) or as (id, running) pairs.  `remove` refuses as Docker does.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import os
import shutil
import tarfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator, Callable

from ..config import EngineConfig
from ..errors import Conflict, InvalidParameter, NotFound
from ..oci import digest as dg
from ..oci import image as oimg
from ..oci import reference as oref
from ..store.content import ContentStore
from ..store.layers import LayerStore, write_diff_tar
from ..store.metadata import Database
from . import image_archive
from .image_parents import delete_parents
from .events import EventBus
from .filters import Filters
from .layer_pipeline import import_chunks
from .timeutil import parse_timestamp

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id            TEXT PRIMARY KEY,
    config        BLOB NOT NULL,
    created       REAL NOT NULL,
    size          INTEGER NOT NULL,
    parent        TEXT NOT NULL DEFAULT '',
    last_tag_time TEXT,
    added         REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS image_refs (
    ref      TEXT PRIMARY KEY,
    name     TEXT NOT NULL,
    tag      TEXT,
    digest   TEXT,
    image_id TEXT NOT NULL REFERENCES images(id),
    added    REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS image_refs_image ON image_refs(image_id);
"""

ZERO_TIME = "0001-01-01T00:00:00Z"
UsageChecker = Callable[[str], list]


@dataclass
class Image:
    id: str
    config: dict[str, Any]
    raw_config: bytes
    repo_tags: list[str]
    repo_digests: list[str]
    created: str
    created_unix: float
    size: int
    layer_chain_ids: list[str]
    diff_ids: list[str]
    parent: str = ""
    last_tag_time: str | None = None
    refs: list[oref.Reference] = field(default_factory=list)

    @property
    def labels(self) -> dict[str, str]:
        return dict((self.config.get("config") or {}).get("Labels") or {})


@dataclass
class LoadResult:
    messages: list[str]
    image_ids: list[str]
    layers: list[tuple[str, int]] = field(default_factory=list)  # (diff_id, tar size) loaded


class ImageService:
    def __init__(self, config: EngineConfig, db: Database, events: EventBus) -> None:
        self.config = config
        self.db = db
        self.events = events
        db.ensure_schema(SCHEMA)
        self.content = ContentStore(config.data_root / "content")
        self.layers = LayerStore(config.data_root / "layers", db, self.content)
        self._usage: UsageChecker | None = None
        self._config_cache: dict[str, dict[str, Any]] = {}

    async def start(self) -> None:
        """Sweep what interrupted imports and deletes left behind."""
        def repair() -> None:
            n = self.content.repair()
            stats = self.layers.repair()
            if n or any(stats.values()):
                log.info("image store repair: %d temp files, layers %s", n, stats)
        await asyncio.to_thread(repair)

    def set_usage_checker(self, fn: UsageChecker) -> None:
        self._usage = fn

    # ------------------------------------------------------------ lookups

    def _users(self, image_id: str) -> list[tuple[str, bool]]:
        if self._usage is None:
            return []
        out = []
        for u in self._usage(image_id) or []:
            out.append((u[0], bool(u[1])) if isinstance(u, (tuple, list)) else (str(u), False))
        return out

    def _row_to_image(self, row) -> Image:
        image_id = row["id"]
        cfg = self._config_cache.get(image_id)
        if cfg is None:
            cfg = json.loads(row["config"])
            self._config_cache[image_id] = cfg
        refs = [oref.parse(r["ref"]) for r in self.db.query(
            "SELECT ref FROM image_refs WHERE image_id=? ORDER BY added, ref", (image_id,))]
        diff_ids = oimg.diff_ids_of(cfg)
        created = cfg.get("created") or ZERO_TIME
        return Image(
            id=image_id, config=cfg, raw_config=bytes(row["config"]),
            repo_tags=[r.familiar() for r in refs if r.tag and not r.digest],
            repo_digests=[r.familiar() for r in refs if r.digest],
            created=created, created_unix=row["created"], size=row["size"],
            layer_chain_ids=dg.chain_ids(diff_ids), diff_ids=diff_ids, parent=row["parent"] or "",
            last_tag_time=row["last_tag_time"], refs=refs,
        )

    def _get(self, image_id: str) -> Image | None:
        row = self.db.query_one("SELECT * FROM images WHERE id=?", (image_id,))
        return None if row is None else self._row_to_image(row)

    def _lookup_id(self, s: str) -> str:
        """Docker's GetImage: a digest, a reference, then an ID prefix."""
        if not isinstance(s, str) or not s:
            raise InvalidParameter("image name cannot be blank")
        if oref.DIGEST_ONLY_RE.match(s) or oref.ID_RE.match(s):
            image_id = s if s.startswith("sha256:") else "sha256:" + s
            if self.db.scalar("SELECT 1 FROM images WHERE id=?", (image_id,)):
                return image_id
            raise NotFound(f"No such image: {s}")
        try:
            ref: oref.Reference | None = oref.parse(s).tag_name_only()
        except InvalidParameter:
            if not oref.SHORT_ID_RE.match(s):
                raise
            ref = None
        if ref is not None:
            image_id = self.db.scalar("SELECT image_id FROM image_refs WHERE ref=?", (str(ref),))
            if image_id is None and ref.digest and ref.tag:
                image_id = self.db.scalar("SELECT image_id FROM image_refs WHERE ref=?",
                                          (f"{ref.name}@{ref.digest}",))
            if image_id is not None:
                return image_id
        if oref.SHORT_ID_RE.match(s):
            prefix = s[7:] if s.startswith("sha256:") else s
            rows = self.db.query("SELECT id FROM images WHERE id LIKE ?", (f"sha256:{prefix}%",))
            if len(rows) == 1:
                return rows[0]["id"]
        raise NotFound(f"No such image: {ref.familiar() if ref is not None else s}")

    def resolve(self, ref_or_id: str) -> Image:
        img = self._get(self._lookup_id(ref_or_id))
        if img is None:  # deleted between the two queries
            raise NotFound(f"No such image: {ref_or_id}")
        return img

    def image_config(self, image_id: str) -> dict[str, Any]:
        return self.resolve(image_id).config

    def layer_dirs(self, image_id: str) -> list[Path]:
        """Overlay lowerdirs of the image, top-most first (for lowerdir=a:b:c).

        Also answers for an image force-deleted while stopped containers used it:
        their layers are held for them (see `_delete_image`).
        """
        try:
            chain = self.resolve(image_id).layer_chain_ids
        except NotFound:
            chain = self._held_chain(image_id)
            if chain is None:
                raise
        return [self.layers.diff_dir(c) for c in reversed(chain)]

    # Layers of a deleted image that containers still use are referenced by
    # owners named "container:<container id>:<image id>".
    def _held_chain(self, image_id: str) -> list[str] | None:
        rows = self.db.query("SELECT DISTINCT chain_id FROM layer_refs WHERE owner LIKE ?",
                             (f"container:%:{image_id}",))
        if not rows:
            return None
        layers = {r["chain_id"]: self.layers.get(r["chain_id"]) for r in rows}
        parents = {l.parent for l in layers.values() if l is not None}
        tops = [c for c in layers if c not in parents]
        chain: list[str] = []
        cur: str | None = tops[0] if tops else None
        while cur is not None and cur in layers:
            chain.append(cur)
            layer = layers[cur]
            cur = layer.parent if layer is not None else None
        return list(reversed(chain))

    def release_container(self, container_id: str) -> None:
        """A container is gone: drop the layers it held of a deleted image (idempotent), and
        delete those nothing else holds (in a worker thread: off the removal's path)."""
        owner = f"container:{container_id}:%"
        held = {r["chain_id"] for r in self.db.query("SELECT chain_id FROM layer_refs WHERE owner LIKE ?", (owner,))}
        if not held:
            return
        with self.db.transaction():
            self.db.execute("DELETE FROM layer_refs WHERE owner LIKE ?", (owner,))
        task = asyncio.get_running_loop().run_in_executor(None, self.layers.gc, held)
        task.add_done_callback(_log_failure)

    def _sweep_holds(self) -> set[str]:
        """Drop holds of containers that no longer use the image (in case release_container was
        missed); returns the chain IDs they held."""
        released: set[str] = set()
        if self._usage is None:
            return released
        for r in self.db.query("SELECT DISTINCT owner FROM layer_refs WHERE owner LIKE 'container:%'"):
            _, cid, image_id = r["owner"].split(":", 2)
            if cid not in {u for u, _ in self._users(image_id)}:
                released.update(x["chain_id"] for x in
                                self.db.query("SELECT chain_id FROM layer_refs WHERE owner=?", (r["owner"],)))
                with self.db.transaction():
                    self.layers.drop_refs(r["owner"])
        return released

    def all_images(self) -> list[Image]:
        return [self._row_to_image(r) for r in self.db.query("SELECT * FROM images ORDER BY created DESC, id")]

    # ------------------------------------------------------------ commit

    def _layer_size(self, chain_ids: list[str]) -> int:
        total = 0
        for c in chain_ids:
            layer = self.layers.get(c)
            total += layer.size if layer else 0
        return total

    def _commit(self, raw_config: bytes, cfg: dict[str, Any], tags: list[oref.Reference],
                parent: str = "") -> tuple[str, list[tuple[oref.Reference, str]]]:
        """Record an image whose layers are in place; move `tags` to it.

        Returns the image ID and the (tag, previous image) pairs that moved.
        """
        image_id = dg.sha256_bytes(raw_config)
        chain_ids = dg.chain_ids(oimg.diff_ids_of(cfg))
        created = oimg.parse_time(cfg.get("created"))
        moved: list[tuple[oref.Reference, str]] = []
        now = time.time()
        with self.db.transaction():
            self.db.execute(
                "INSERT OR IGNORE INTO images(id, config, created, size, parent, added) VALUES (?,?,?,?,?,?)",
                (image_id, raw_config, created.timestamp() if created else 0.0,
                 self._layer_size(chain_ids), parent, now),
            )
            self.layers.add_refs(image_id, chain_ids)
            for ref in tags:
                prev = self._set_ref(ref, image_id, now)
                if prev is not None and prev != image_id:
                    moved.append((ref, prev))
        return image_id, moved

    def _set_ref(self, ref: oref.Reference, image_id: str, now: float) -> str | None:
        prev = self.db.scalar("SELECT image_id FROM image_refs WHERE ref=?", (str(ref),))
        self.db.execute(
            "INSERT INTO image_refs(ref, name, tag, digest, image_id, added) VALUES (?,?,?,?,?,?) "
            "ON CONFLICT(ref) DO UPDATE SET image_id=excluded.image_id, added=excluded.added",
            (str(ref), ref.name, ref.tag, ref.digest, image_id, now),
        )
        self.db.execute("UPDATE images SET last_tag_time=? WHERE id=?",
                        (oimg.rfc3339(datetime.fromtimestamp(now, timezone.utc)), image_id))
        return prev

    def _event(self, action: str, image_id: str, name: str) -> None:
        img = self._get(image_id)
        attrs = dict(img.labels) if img else {}
        attrs["name"] = name
        self.events.publish("image", action, image_id, **attrs)

    # ------------------------------------------------------------ import

    async def import_image(self, src: Path | AsyncIterator[bytes], repo: str | None = None, tag: str | None = None,
                           changes: list[str] | None = None, message: str | None = None,
                           platform: str | None = None, source: str = "-") -> Image:
        """`docker import`: one rootfs tar (any compression) becomes a one-layer image."""
        ref = oref.repo_tag(repo, tag) if repo else None
        if tag and not repo:
            raise InvalidParameter("tag is specified without a repository")
        # Validate the config (changes, platform) before the expensive part.
        oimg.import_config([], changes or [], message or "", datetime.now(timezone.utc), platform)
        with self.layers.pinning() as pinned:
            if isinstance(src, Path):
                layer = await asyncio.to_thread(self.layers.import_layer, src, None, pinned)
            else:  # an upload: hashed, kept and unpacked as it arrives
                layer = await import_chunks(self.layers, src, None, pinned)
            created = datetime.now(timezone.utc)
            cfg = oimg.import_config([layer.diff_id], changes or [], message or f"Imported from {source}",
                                     created, platform)
            raw = oimg.encode(cfg)
            image_id, _ = self._commit(raw, cfg, [ref] if ref else [])
        self._event("import", image_id, image_id)
        if ref is not None:
            self._event("tag", image_id, ref.familiar())
        return self.resolve(image_id)

    # ------------------------------------------------------------ load

    async def load(self, archive: Path) -> LoadResult:
        """`docker load`: a docker-save tarball (manifest.json), an OCI image layout, or the
        legacy layout (`repositories`, one directory per layer), with dockerd's errors."""
        work = self.content.temp_dir("load-")
        try:
            await asyncio.to_thread(image_archive.extract, archive, work)
            if (work / "manifest.json").is_file():
                entries = await asyncio.to_thread(_docker_entries, work)
            elif (work / "index.json").is_file():
                entries = await asyncio.to_thread(_oci_entries, work)
            else:
                entries = await asyncio.to_thread(image_archive.legacy_entries, work)
            result = LoadResult([], [])
            for entry in entries:
                msgs, image_id = await self._load_entry(work, entry, result.layers)
                result.messages += msgs
                result.image_ids.append(image_id)
            return result
        finally:
            await asyncio.to_thread(shutil.rmtree, work, True)

    async def _load_entry(self, work: Path, entry: "_Entry",
                          loaded: list[tuple[str, int]]) -> tuple[list[str], str]:
        raw = entry.config_bytes
        cfg = oimg.validate_config(raw)
        diff_ids = oimg.diff_ids_of(cfg)
        if len(diff_ids) != len(entry.layers):
            raise InvalidParameter(
                f"invalid manifest: {len(entry.layers)} layers but the config lists {len(diff_ids)}")
        with self.layers.pinning() as pinned:
            parent = None
            for path, diff_id in zip(entry.layers, diff_ids):
                layer = await asyncio.to_thread(self.layers.import_layer, path, parent, pinned, diff_id)
                parent = layer.chain_id
                if all(d != diff_id for d, _ in loaded):
                    loaded.append((diff_id, self.layers.tar_size(diff_id)))
            image_id, moved = self._commit(raw, cfg, entry.tags, parent=entry.parent)
        messages = []
        for ref, prev in moved:
            messages.append(f"The image {ref.familiar()} already exists, renaming the old one with ID "
                            f"{prev} to empty string")
        self._event("load", image_id, image_id)
        if entry.announce and entry.tags:
            messages += [f"Loaded image: {t.familiar()}" for t in entry.tags]
        elif entry.announce:
            messages.append(f"Loaded image ID: {image_id}")
        return messages, image_id

    # ------------------------------------------------------------ save

    def _save_set(self, names: list[str]) -> dict[str, list[oref.Reference]]:
        """Docker's tarexport name rules: repo name = all its tags, tag = it, ID = no tags."""
        out: dict[str, list[oref.Reference]] = {}
        for name in names:
            if oref.DIGEST_ONLY_RE.match(name) or oref.ID_RE.match(name):
                out.setdefault(self._lookup_id(name), [])
                continue
            try:
                ref = oref.parse(name)
            except InvalidParameter:
                out.setdefault(self._lookup_id(name), [])
                continue
            if ref.tag is None and ref.digest is None:
                rows = self.db.query("SELECT ref, image_id FROM image_refs WHERE name=? AND digest IS NULL "
                                     "ORDER BY ref", (ref.name,))
                if rows:
                    for r in rows:
                        out.setdefault(r["image_id"], []).append(oref.parse(r["ref"]))
                    continue
                out.setdefault(self._lookup_id(name), [])
                continue
            image_id = self._lookup_id(name)
            tags = out.setdefault(image_id, [])
            if ref.tag and not ref.digest and ref not in tags:
                tags.append(ref)
        return out

    async def save(self, names: list[str]) -> Path:
        """Write the images to a temp tar file (the caller streams and deletes it)."""
        if not names:
            raise InvalidParameter("no images specified")
        selected = self._save_set(names)
        images = [(self.resolve(i), tags) for i, tags in selected.items()]
        dest = self.content.temp_file("save-")
        try:
            await asyncio.to_thread(self._write_archive, dest, images)
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
        for img, _ in images:
            self._event("save", img.id, img.id)
        return dest

    def _write_archive(self, dest: Path, images: list[tuple[Image, list[oref.Reference]]]) -> None:
        manifest_json: list[dict[str, Any]] = []
        index_manifests: list[dict[str, Any]] = []
        repositories: dict[str, dict[str, str]] = {}
        written: set[str] = set()
        with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tf:
            def add_dir(name: str) -> None:
                ti = tarfile.TarInfo(name)
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(ti)

            def add_bytes(name: str, data: bytes, mtime: float = 0) -> None:
                ti = tarfile.TarInfo(name)
                ti.size, ti.mode, ti.mtime = len(data), 0o644, mtime
                tf.addfile(ti, io.BytesIO(data))

            def add_blob_bytes(digest: str, data: bytes, mtime: float = 0) -> None:
                if digest not in written:
                    written.add(digest)
                    add_bytes(f"blobs/sha256/{dg.hex_of(digest)}", data, mtime)

            add_dir("blobs")
            add_dir("blobs/sha256")
            for img, tags in images:
                add_blob_bytes(img.id, img.raw_config, img.created_unix)
                layer_descs: list[tuple[str, int]] = []
                for diff_id in img.diff_ids:
                    path = self.layers.tar_path(diff_id)
                    size = path.stat().st_size
                    if diff_id not in written:
                        written.add(diff_id)
                        ti = tf.gettarinfo(str(path), arcname=f"blobs/sha256/{dg.hex_of(diff_id)}")
                        ti.uid = ti.gid = 0
                        ti.uname = ti.gname = ""
                        ti.mode = 0o644
                        ti.mtime = img.created_unix
                        with open(path, "rb") as f:
                            tf.addfile(ti, f)
                    layer_descs.append((diff_id, size))
                manifest = oimg.encode(oimg.oci_manifest(img.id, len(img.raw_config), layer_descs))
                mdigest = dg.sha256_bytes(manifest)
                add_blob_bytes(mdigest, manifest, img.created_unix)
                desc = {"mediaType": oimg.OCI_MANIFEST, "digest": mdigest, "size": len(manifest)}
                if tags:
                    for t in tags:
                        index_manifests.append({**desc, "annotations": {
                            oimg.ANNOTATION_CONTAINERD_NAME: str(t),
                            oimg.ANNOTATION_REF_NAME: t.tag,
                        }})
                        if img.diff_ids:
                            repositories.setdefault(t.familiar_name, {})[t.tag or "latest"] = \
                                dg.hex_of(img.diff_ids[-1])
                else:
                    index_manifests.append(desc)
                manifest_json.append({
                    "Config": f"blobs/sha256/{dg.hex_of(img.id)}",
                    "RepoTags": [t.familiar() for t in tags] or None,
                    "Layers": [f"blobs/sha256/{dg.hex_of(d)}" for d in img.diff_ids],
                })
            add_bytes("index.json", oimg.encode({
                "schemaVersion": 2, "mediaType": oimg.OCI_INDEX, "manifests": index_manifests}))
            add_bytes("manifest.json", oimg.encode(manifest_json))
            add_bytes("oci-layout", oimg.encode({"imageLayoutVersion": oimg.OCI_LAYOUT_VERSION}))
            if repositories:
                add_bytes("repositories", oimg.encode(repositories))

    # ------------------------------------------------------------ tag

    def tag(self, source: str, repo: str, tag: str | None = None) -> oref.Reference:
        ref = oref.repo_tag(repo, tag)
        image_id = self._lookup_id(source)
        if ref.familiar_name == "sha256":
            raise InvalidParameter("refusing to create an ambiguous tag using digest algorithm as name")
        with self.db.transaction():
            self._set_ref(ref, image_id, time.time())
        self._event("tag", image_id, ref.familiar())
        return ref

    # ------------------------------------------------------------ pull / push (engine/distribution.py)

    def commit_pulled(self, raw_config: bytes, refs: list[oref.Reference]) -> tuple[str, bool]:
        """Record a pulled image whose layers are in place (pinned by the caller); point `refs` at it.

        Returns (image ID, updated): updated is False when every reference
        already named this image (Docker's "Image is up to date").
        """
        cfg = oimg.validate_config(raw_config)
        missing = [c for c in dg.chain_ids(oimg.diff_ids_of(cfg)) if self.layers.get(c) is None]
        if missing:
            raise NotFound(f"layer {missing[0]} of the pulled image is missing")
        image_id = dg.sha256_bytes(raw_config)
        before = [self.db.scalar("SELECT image_id FROM image_refs WHERE ref=?", (str(r),)) for r in refs]
        image_id, _ = self._commit(raw_config, cfg, refs)
        name = refs[0].familiar() if refs else image_id
        self.events.publish("image", "pull", name, name=name)
        return image_id, any(b != image_id for b in before) or not refs

    async def commit_layer(self, upper: Path, base_id: str, container_config: dict[str, Any], *,
                           container_id: str, created_by: str, repo: str | None, tag: str | None,
                           changes: list[str], comment: str, author: str) -> Image:
        """`docker commit`: the base image plus the container's writable layer."""
        ref = oref.repo_tag(repo, tag) if repo else None
        if tag and not repo:
            raise InvalidParameter("tag is specified without a repository")
        base = self.resolve(base_id)
        new_config = oimg.apply_changes(container_config, changes)  # bad changes: 400 before the work
        tmp = self.content.temp_dir("commit-") / "layer.tar"
        try:
            await asyncio.to_thread(write_diff_tar, upper, tmp)
            with self.layers.pinning() as pinned:
                parent = base.layer_chain_ids[-1] if base.layer_chain_ids else None
                layer = await asyncio.to_thread(self.layers.import_layer, tmp, parent, pinned)
                now = oimg.rfc3339(datetime.now(timezone.utc))
                cfg = dict(base.config)
                cfg.update(config=new_config, created=now, container=container_id,
                           container_config=container_config, docker_version=oimg.DOCKER_VERSION)
                if author:
                    cfg["author"] = author
                cfg["comment"] = comment
                entry = {"created": now, "created_by": created_by}
                if comment:
                    entry["comment"] = comment
                if author:
                    entry["author"] = author
                cfg["history"] = list(base.config.get("history") or []) + [entry]
                cfg["rootfs"] = {"type": "layers", "diff_ids": list(base.diff_ids) + [layer.diff_id]}
                image_id, _ = self._commit(oimg.encode(cfg), cfg, [ref] if ref else [], parent=base.id)
        finally:
            shutil.rmtree(tmp.parent, ignore_errors=True)
        self._event("commit", image_id, ref.familiar() if ref else image_id)
        return self.resolve(image_id)

    def commit_config(self, base_id: str | None, updates: dict[str, Any],
                      history_entry: dict[str, Any] | None) -> str:
        """A layer-less child image (the builder's ENV, CMD, LABEL...): the base's
        config with `updates` applied to its top-level fields, plus one empty-layer
        history entry. `base_id` None starts from nothing (`FROM scratch`)."""
        now = oimg.rfc3339(datetime.now(timezone.utc))
        if base_id:
            base = self.resolve(base_id)
            cfg = dict(base.config)
            history = list(base.config.get("history") or [])
        else:
            cfg = {"architecture": oimg.go_arch(), "os": "linux", "config": oimg.empty_container_config(),
                   "rootfs": {"type": "layers", "diff_ids": []}}
            history = []
        cfg.update(updates)
        cfg.update(created=now, docker_version=oimg.DOCKER_VERSION)
        if history_entry is not None:
            history.append({"created": now, **history_entry, "empty_layer": True})
        cfg["history"] = history
        image_id, _ = self._commit(oimg.encode(cfg), cfg, [], parent=base_id or "")
        return image_id

    def create_image(self, cfg: dict[str, Any], parent: str = "") -> str:
        """An image from a config whose layers are all in the store (the builder's images
        restored from a `cache_from` source)."""
        image_id, _ = self._commit(oimg.encode(cfg), cfg, [], parent=parent)
        return image_id

    def add_repo_digest(self, image_id: str, ref: oref.Reference) -> None:
        """Remember `repo@sha256:...` for an image after a push (RepoDigests)."""
        if not ref.digest:
            raise InvalidParameter("a repository digest reference needs a digest")
        with self.db.transaction():
            if not self.db.scalar("SELECT 1 FROM images WHERE id=?", (image_id,)):
                raise NotFound(f"No such image: {image_id}")
            self.db.execute(
                "INSERT INTO image_refs(ref, name, tag, digest, image_id, added) VALUES (?,?,?,?,?,?) "
                "ON CONFLICT(ref) DO UPDATE SET image_id=excluded.image_id",
                (str(ref), ref.name, None, ref.digest, image_id, time.time()))

    # ------------------------------------------------------------ list

    def list_images(self, all: bool = False, filters: Filters | None = None, shared_size: bool = False,
                    container_counts: bool = False) -> list[dict[str, Any]]:
        """`GET /images/json` entries, newest first."""
        f = filters or Filters()
        f.validate({"dangling", "label", "label!", "reference", "before", "since", "until"})
        dangling = f.bool_value("dangling")
        before = self.resolve(f.get("before")[-1]).created_unix if f.get("before") else None
        since = self.resolve(f.get("since")[-1]).created_unix if f.get("since") else None
        until = min(parse_timestamp(u) for u in f.get("until")) if f.get("until") else None
        images = self.all_images()
        child_parents = {i.parent for i in images if i.parent}
        refcounts: dict[str, int] = {}
        if shared_size:
            for r in self.db.query("SELECT chain_id, COUNT(*) AS n FROM layer_refs GROUP BY chain_id"):
                refcounts[r["chain_id"]] = r["n"]
        out = []
        for img in images:
            if before is not None and not img.created_unix < before:
                continue
            if since is not None and not img.created_unix > since:
                continue
            if until is not None and not img.created_unix < until:
                continue
            if not f.match_labels(img.labels) or not _match_not_labels(f, img.labels):
                continue
            tags, digests = img.repo_tags, img.repo_digests
            if "reference" in f:
                hits = [r for r in img.refs if any(oref.familiar_match(p, r) for p in f.get("reference"))]
                tags = [r.familiar() for r in hits if r.tag and not r.digest]
                digests = [r.familiar() for r in hits if r.digest]
                if not hits:
                    continue
            is_dangling = not img.repo_tags and not img.repo_digests
            if is_dangling and not all and img.id in child_parents:
                continue
            if dangling is True and not is_dangling:
                continue
            if dangling is False and is_dangling:
                continue
            shared = -1
            if shared_size:
                shared = sum(l.size for c in img.layer_chain_ids
                             if refcounts.get(c, 0) > 1 and (l := self.layers.get(c)) is not None)
            out.append({
                "Containers": len(self._users(img.id)) if container_counts else -1,
                "Created": int(img.created_unix),
                "Id": img.id,
                "Labels": img.labels or None,
                "ParentId": img.parent,
                "RepoDigests": digests,
                "RepoTags": tags,
                "SharedSize": shared,
                "Size": img.size,
            })
        return out

    # ------------------------------------------------------------ inspect / history

    def inspect(self, name: str) -> dict[str, Any]:
        img = self.resolve(name)
        cfg = img.config
        top = img.layer_chain_ids[-1] if img.layer_chain_ids else None
        graph: dict[str, Any] = {"Data": None, "Name": "overlay2"}
        if top:
            data = {
                "MergedDir": str(self.layers.dir(top) / "merged"),
                "UpperDir": str(self.layers.diff_dir(top)),
                "WorkDir": str(self.layers.dir(top) / "work"),
            }
            lowers = [str(self.layers.diff_dir(c)) for c in reversed(img.layer_chain_ids[:-1])]
            if lowers:
                data["LowerDir"] = ":".join(lowers)
            graph["Data"] = data
        out: dict[str, Any] = {
            "Id": img.id,
            "RepoTags": img.repo_tags,
            "RepoDigests": img.repo_digests,
            "Parent": img.parent,
            "Comment": cfg.get("comment", ""),
            "Created": cfg.get("created") or ZERO_TIME,
            "DockerVersion": cfg.get("docker_version", ""),
            "Author": cfg.get("author", ""),
            "Config": cfg.get("config"),
            "Architecture": cfg.get("architecture", ""),
            "Os": cfg.get("os", ""),
            "Size": img.size,
            "GraphDriver": graph,
            "RootFS": {"Type": "layers", "Layers": img.diff_ids} if img.diff_ids else {"Type": "layers"},
            "Metadata": {"LastTagTime": img.last_tag_time or ZERO_TIME},
        }
        if cfg.get("variant"):
            out["Variant"] = cfg["variant"]
        if cfg.get("os.version"):
            out["OsVersion"] = cfg["os.version"]
        return out

    def history(self, name: str) -> list[dict[str, Any]]:
        img = self.resolve(name)
        hist = img.config.get("history") or []
        if not hist:  # configs without history: one line per layer, as Docker does
            hist = [{"created": img.created} for _ in img.diff_ids] or [{"created": img.created}]
        layer_sizes = [self.layers.get(c) for c in img.layer_chain_ids]
        out: list[dict[str, Any]] = []
        li = 0
        for h in hist:
            size = 0
            if not h.get("empty_layer"):
                if li < len(layer_sizes) and layer_sizes[li] is not None:
                    size = layer_sizes[li].size  # type: ignore[union-attr]
                li += 1
            t = oimg.parse_time(h.get("created"))
            out.append({
                "Comment": h.get("comment", ""),
                "Created": int(t.timestamp()) if t else 0,
                "CreatedBy": h.get("created_by", ""),
                "Id": "<missing>",
                "Size": size,
                "Tags": None,
            })
        out.reverse()
        out[0]["Id"] = img.id
        out[0]["Tags"] = img.repo_tags or None
        return out

    # ------------------------------------------------------------ remove / prune

    async def remove(self, name: str, force: bool = False, noprune: bool = False) -> list[dict[str, str]]:
        """Docker's ImageDelete: untag a reference, or delete by ID; 409s as dockerd."""
        image_id = self._lookup_id(name)
        img = self._get(image_id)
        if img is None:
            raise NotFound(f"No such image: {name}")
        records: list[dict[str, str]] = []
        refs = img.refs
        quiet = False
        if not oref.is_id_prefix(image_id, name):
            ref = oref.parse(name).tag_name_only()
            if str(ref) not in {str(r) for r in refs} and ref.digest and ref.tag:
                ref = oref.Reference(ref.domain, ref.path, None, ref.digest)
            if not force and _is_single_reference(refs):
                users = self._users(image_id)
                if users:
                    raise Conflict(
                        f'conflict: unable to remove repository reference "{name}" (must force) - '
                        f"container {dg.short_id(users[0][0])} is using its referenced image "
                        f"{dg.short_id(image_id)}")
            self._untag(ref, image_id, records)
            remaining = [r for r in refs if str(r) != str(ref)]
            if not ref.digest and not any(r.name == ref.name and not r.digest for r in remaining):
                # The last tag of a repository takes that repository's digests with it.
                for r in [r for r in remaining if r.digest and r.name == ref.name]:
                    self._untag(r, image_id, records)
                    remaining.remove(r)
            if remaining:
                return records
            quiet = True
        elif _is_single_reference(refs):
            self._check_conflicts(img, hard_only=force, active_refs=False)
            for r in refs:
                self._untag(r, image_id, records)
        await self._delete_helper(img, records, force, quiet, prune=not noprune)
        return records

    def _untag(self, ref: oref.Reference, image_id: str, records: list[dict[str, str]]) -> None:
        with self.db.transaction():
            n = self.db.execute("DELETE FROM image_refs WHERE ref=? AND image_id=?", (str(ref), image_id)).rowcount
        if n:
            records.append({"Untagged": ref.familiar()})
            self._event("untag", image_id, image_id)

    def _check_conflicts(self, img: Image, hard_only: bool, active_refs: bool = True) -> None:
        short = dg.short_id(img.id)
        if self.db.scalar("SELECT 1 FROM images WHERE parent=?", (img.id,)):
            raise Conflict(f"conflict: unable to delete {short} (cannot be forced) - image has dependent child images")
        users = self._users(img.id)
        running = [u for u, r in users if r]
        if running:
            raise Conflict(f"conflict: unable to delete {short} (cannot be forced) - "
                           f"image is being used by running container {dg.short_id(running[0])}")
        if hard_only:
            return
        if active_refs and self.db.scalar("SELECT COUNT(*) FROM image_refs WHERE image_id=?", (img.id,)):
            raise Conflict(f"conflict: unable to delete {short} (must be forced) - "
                           "image is referenced in multiple repositories")
        if users:
            raise Conflict(f"conflict: unable to delete {short} (must be forced) - "
                           f"image is being used by stopped container {dg.short_id(users[0][0])}")

    async def _delete_helper(self, img: Image, records: list[dict[str, str]], force: bool, quiet: bool,
                             prune: bool = True) -> None:
        try:
            self._check_conflicts(img, hard_only=force)
        except Conflict:
            # After untagging its last name an image still in use stays, silently, as in dockerd.
            if quiet and (self._users(img.id) or not self._is_dangling(img.id)):
                return
            raise
        current = self._get(img.id)
        for r in current.refs if current else []:
            self._untag(r, img.id, records)
        removed = await self._delete_image(img.id)
        records.append({"Deleted": img.id})
        records.extend({"Deleted": c} for c in removed)
        if prune:
            await delete_parents(self, img.parent, records)

    def _is_dangling(self, image_id: str) -> bool:
        """No name and no child image (moby's imageIsDangling): a parent is never dangling."""
        return not (self.db.scalar("SELECT COUNT(*) FROM image_refs WHERE image_id=?", (image_id,))
                    or self.db.scalar("SELECT 1 FROM images WHERE parent=?", (image_id,)))

    async def _delete_image(self, image_id: str) -> list[str]:
        """Forget the image and collect the layers nobody uses any more.

        Stopped containers of a force-deleted image keep its layers: the image's
        layer references pass to them, as dockerd's RW layers hold theirs.
        """
        img = self._get(image_id)
        users = self._users(image_id)
        freed = self._sweep_holds() | set(img.layer_chain_ids if img is not None else ())
        with self.db.transaction():
            if img is not None:
                for cid, _ in users:
                    self.layers.add_refs(f"container:{cid}:{image_id}", img.layer_chain_ids)
            self.db.execute("DELETE FROM image_refs WHERE image_id=?", (image_id,))
            self.layers.drop_refs(image_id)
            self.db.execute("DELETE FROM images WHERE id=?", (image_id,))
        self._config_cache.pop(image_id, None)
        self.events.publish("image", "delete", image_id, name=image_id)
        return await asyncio.to_thread(self.layers.gc, freed)

    async def prune(self, filters: Filters | None = None) -> dict[str, Any]:
        f = filters or Filters()
        f.validate({"dangling", "until", "label", "label!"})
        dangling_only = f.bool_value("dangling")
        dangling_only = True if dangling_only is None else dangling_only
        until = min(parse_timestamp(u) for u in f.get("until")) if f.get("until") else None
        deleted: list[dict[str, str]] = []
        reclaimed = 0
        self._sweep_holds()  # layers held by containers since removed
        sizes = {l.chain_id: l.size for l in self.layers.all()}
        reclaimed += sum(sizes.get(c, 0) for c in await asyncio.to_thread(self.layers.gc))
        for img in self.all_images():
            if dangling_only and (img.repo_tags or img.repo_digests):
                continue
            if until is not None and not img.created_unix < until:
                continue
            if not f.match_labels(img.labels) or not _match_not_labels(f, img.labels):
                continue
            if self._users(img.id) or self.db.scalar("SELECT 1 FROM images WHERE parent=?", (img.id,)):
                continue
            sizes = {c: (l.size if (l := self.layers.get(c)) else 0) for c in img.layer_chain_ids}
            records: list[dict[str, str]] = []
            for r in img.refs:
                self._untag(r, img.id, records)
            removed = await self._delete_image(img.id)
            records.append({"Deleted": img.id})
            records.extend({"Deleted": c} for c in removed)
            reclaimed += sum(sizes.get(c, 0) for c in removed)
            deleted += records
        if deleted:
            self.events.publish("image", "prune", "", reclaimed=str(reclaimed))
        return {"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed}


# ---------------------------------------------------------------- helpers


def _match_not_labels(f: Filters, labels: dict[str, str]) -> bool:
    for spec in f.get("label!"):
        k, sep, v = spec.partition("=")
        if k in labels and (not sep or labels[k] == v):
            return False
    return True


def _is_single_reference(refs: list[oref.Reference]) -> bool:
    """dockerd's isSingleReference: at most one tag, and all refs in one repository."""
    if len(refs) <= 1:
        return len(refs) == 1
    single = None
    names: set[str] = set()
    for r in refs:
        if r.digest:
            names.add(r.name)
        elif single is None:
            names.add(r.name)
            single = r
        else:
            return False
    single = single or refs[0]
    return len(names) == 1 and single.name in names


@dataclass
class _Entry:
    config_bytes: bytes
    layers: list[Path]
    tags: list[oref.Reference]
    parent: str = ""
    announce: bool = True  # "Loaded image: …" lines (the legacy layout has none)


def _inside(work: Path, rel: str) -> Path:
    if not isinstance(rel, str) or not rel:
        raise InvalidParameter("invalid manifest: empty path")
    p = (work / rel).resolve()
    if not str(p).startswith(str(work.resolve()) + os.sep) or not p.is_file():
        raise InvalidParameter(f"invalid archive: {rel!r} is not a file in the archive")
    return p


def _docker_entries(work: Path) -> list[_Entry]:
    try:
        manifest = json.loads((work / "manifest.json").read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidParameter(f"invalid manifest.json: {exc}") from None
    if not isinstance(manifest, list):
        raise InvalidParameter("invalid manifest.json: expected a list")
    entries = []
    for m in manifest:
        if not isinstance(m, dict) or not isinstance(m.get("Config"), str):
            raise InvalidParameter("invalid manifest.json entry")
        layers = m.get("Layers") or []
        if not isinstance(layers, list):
            raise InvalidParameter("invalid manifest.json: Layers must be a list")
        tags = []
        for t in m.get("RepoTags") or []:
            ref = oref.parse(t)
            if ref.tag is None or ref.digest is not None:
                raise InvalidParameter(f"invalid tag {t!r} in manifest.json")
            tags.append(ref)
        entries.append(_Entry(_inside(work, m["Config"]).read_bytes(),
                              [_inside(work, l) for l in layers], tags))
    return entries


def _verified_blob(work: Path, desc: Any) -> Path:
    """The blob a descriptor points to, checked against its digest (verified on the way in)."""
    if not isinstance(desc, dict) or not isinstance(desc.get("digest"), str):
        raise InvalidParameter("invalid OCI descriptor")
    digest = dg.validate(desc["digest"])
    path = _inside(work, f"blobs/sha256/{dg.hex_of(digest)}")
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    if "sha256:" + h.hexdigest() != digest:
        raise InvalidParameter(f"blob {digest} does not match its digest")
    return path


def _oci_names(annotations: dict[str, str]) -> list[oref.Reference]:
    name = annotations.get(oimg.ANNOTATION_CONTAINERD_NAME)
    if not name:
        rn = annotations.get(oimg.ANNOTATION_REF_NAME, "")
        # A bare tag ("latest") cannot name an image by itself.
        if rn and ("/" in rn or ":" in rn):
            name = rn
    if not name:
        return []
    try:
        ref = oref.parse_tagged(name)
    except InvalidParameter:
        return []
    return [ref] if ref.tag and not ref.digest else []


def _oci_entries(work: Path) -> list[_Entry]:
    try:
        index = json.loads((work / "index.json").read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidParameter(f"invalid index.json: {exc}") from None
    by_manifest: dict[str, _Entry] = {}
    order: list[str] = []
    arch = oimg.go_arch()

    def visit(desc: dict, names: list[oref.Reference], depth: int) -> None:
        if depth > 4:
            raise InvalidParameter("invalid OCI layout: nested indexes too deep")
        mt = desc.get("mediaType")
        data = json.loads(_verified_blob(work, desc).read_bytes())
        mt = mt or data.get("mediaType")
        if mt in oimg.INDEX_TYPES or "manifests" in data:
            children = data.get("manifests") or []
            plat = [c for c in children if (c.get("platform") or {}).get("os", "linux") == "linux"
                    and (c.get("platform") or {}).get("architecture", arch) == arch]
            if not plat:
                raise InvalidParameter(f"no image for linux/{arch} in the OCI index")
            visit(plat[0], names, depth + 1)
            return
        digest = desc["digest"]
        if digest not in by_manifest:
            cfg_path = _verified_blob(work, data.get("config"))
            layers = [_verified_blob(work, l) for l in data.get("layers") or []]
            by_manifest[digest] = _Entry(cfg_path.read_bytes(), layers, [])
            order.append(digest)
        entry = by_manifest[digest]
        entry.tags += [n for n in names if n not in entry.tags]

    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
        raise InvalidParameter("invalid index.json: no manifests")
    for desc in index["manifests"]:
        if not isinstance(desc, dict):
            raise InvalidParameter("invalid index.json: bad descriptor")
        visit(desc, _oci_names(desc.get("annotations") or {}), 0)
    return [by_manifest[d] for d in order]


def _log_failure(fut: "asyncio.Future[object]") -> None:
    if not fut.cancelled() and fut.exception() is not None:
        log.warning("deleting released layers: %s", fut.exception())
