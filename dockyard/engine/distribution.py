"""DistributionService: `docker pull`, `docker push` and `docker login` against v2 registries.

Pull: resolve the manifest (an index picks linux/<this arch>), fetch and
verify the config, then pull the missing layers (max_concurrent_downloads at
a time, 3 by default as Docker): each is downloaded, verified, decompressed
and unpacked in one pass (`layer_pipeline`); layers do not wait for their
parents, each has its own snapshot.  The image is committed with its tag and
`repo@digest` once every layer is in.

Push: a layer goes up as the compressed blob we already hold (as pulled or
loaded, or as an earlier push compressed it: `store/compressed.py`); only a
layer never compressed is compressed, once, deterministically (threaded
ISA-L gzip or zstd, `store/compression.py`), so its digest is stable across
pushes and engines.  The (DiffID -> compressed digest, registry, repository)
pairs we learn by pulling and pushing are remembered in `distribution_blobs`,
so a later push finds the blob already there (HEAD) or mounts it from
another repository of the same registry instead of uploading it again.  The
manifest is Docker schema2 (OCI when the layers are zstd).

Both stream Docker's JSON progress messages.  Everything that can fail
before any byte is transferred (bad reference, unknown manifest, no
credentials, image missing locally) fails in `prepare_*`, so the HTTP layer
can answer with a plain 4xx; later errors travel in the stream.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable

from ..config import EngineConfig
from ..distribution.client.endpoints import RegistryEndpoints
from ..distribution.client import Credentials, Manifest, RegistryClient, credentials_from_json, registry_host
from ..errors import DockyardError, InvalidParameter, NotFound, SystemError_
from ..oci import digest as dg
from ..oci import image as oimg
from ..oci import reference as oref
from ..store import compression
from ..store.compressed import CompressedBlob
from ..store.pipe import HashSink, TeeReader
from .images import Image, ImageService
from .memory import release_freed
from .layer_pipeline import gather_in_order, pull_layer
from .streams import run_streamed

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS distribution_blobs (
    diff_id    TEXT NOT NULL,
    digest     TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size       INTEGER NOT NULL,
    registry   TEXT NOT NULL,
    repo       TEXT NOT NULL,
    added      REAL NOT NULL,
    PRIMARY KEY (diff_id, digest, registry, repo)
);
CREATE INDEX IF NOT EXISTS distribution_blobs_diff ON distribution_blobs(diff_id);
"""

LAYER_TYPES = {
    oimg.DOCKER_LAYER, oimg.DOCKER_LAYER_GZIP, oimg.OCI_LAYER, oimg.OCI_LAYER_GZIP, oimg.OCI_LAYER_ZSTD,
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
}
GZIP_TYPES = {oimg.DOCKER_LAYER_GZIP, oimg.OCI_LAYER_GZIP}
CONFIG_TYPES = {oimg.DOCKER_CONFIG, oimg.OCI_CONFIG}
PROGRESS_EVERY = 0.1  # seconds between progress messages of one layer

Emit = Callable[[dict[str, Any]], None]


# ---------------------------------------------------------------- messages


def _human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{int(n)}B" if unit == "B" else f"{n:.4g}{unit}"
        n /= 1000
    return f"{n}B"


def status(text: str, id: str | None = None) -> dict[str, Any]:
    m: dict[str, Any] = {"status": text}
    if id is not None:
        m["progressDetail"] = {}
        m["id"] = id
    return m


def progress(text: str, id: str, current: int, total: int) -> dict[str, Any]:
    """A progress line as dockerd writes it (the CLI redraws the bar from progressDetail)."""
    bar = ""
    if total > 0:
        filled = min(50, int(50 * current / total))
        bar = "[" + "=" * max(0, filled - 1) + (">" if filled < 50 else "=") + " " * (50 - filled) + "] "
        bar += f"{_human(current)}/{_human(total)}"
    return {"status": text, "progressDetail": {"current": current, "total": total}, "progress": bar, "id": id}


class _Throttle:
    """Emit progress at most every PROGRESS_EVERY seconds (and always the last one)."""

    def __init__(self, emit: Emit, text: str, id: str, total: int) -> None:
        self.emit, self.text, self.id, self.total = emit, text, id, total
        self._last = 0.0

    def __call__(self, current: int) -> None:
        now = time.monotonic()
        if now - self._last >= PROGRESS_EVERY or current >= self.total:
            self._last = now
            self.emit(progress(self.text, self.id, current, self.total))




# ---------------------------------------------------------------- plans


@dataclass
class PullPlan:
    ref: oref.Reference  # what was asked: name with a tag or a digest
    client: RegistryClient
    manifest_digest: str  # the top-level manifest (or index): the repo digest
    manifest: dict[str, Any]  # the image manifest for our platform
    config: bytes
    layers: list[dict[str, Any]]

    @property
    def repo(self) -> str:
        return self.ref.path


@dataclass
class PushPlan:
    name: oref.Reference  # the repository (no tag)
    client: RegistryClient
    tags: list[tuple[oref.Reference, Image]] = field(default_factory=list)

    @property
    def repo(self) -> str:
        return self.name.path


def _hub_refused(what: str, ref: oref.Reference) -> InvalidParameter:
    return InvalidParameter(
        f"{what} not supported for Docker Hub ({ref.familiar()}): this engine talks only to registries "
        f"named in the reference, e.g. 127.0.0.1:5000/{ref.familiar()}")


def pull_reference(from_image: str, tag: str | None) -> oref.Reference:
    """fromImage + tag (which may be a digest) -> the reference to pull, as dockerd combines them."""
    if not from_image:
        raise InvalidParameter("fromImage is required")
    ref = oref.parse(from_image)
    if tag:
        if oref.DIGEST_ONLY_RE.match(tag):
            ref = oref.Reference(ref.domain, ref.path, None, tag)
        elif tag.startswith("sha256:"):
            dg.validate(tag)
        else:
            ref = ref.with_tag(tag)
    if ref.tag and ref.digest:
        ref = oref.Reference(ref.domain, ref.path, None, ref.digest)  # the digest wins, as in Docker
    return ref.tag_name_only()


def _pick_platform(index: dict[str, Any], platform: str | None, what: str) -> dict[str, Any]:
    os_, arch, variant = oimg.parse_platform(platform)
    entries = [m for m in index.get("manifests") or [] if isinstance(m, dict)]
    fits = []
    for m in entries:
        p = m.get("platform") or {}
        if p.get("os") == os_ and p.get("architecture") == arch and (variant is None or p.get("variant") == variant):
            fits.append(m)
    if not fits:
        plats = sorted({f"{(m.get('platform') or {}).get('os')}/{(m.get('platform') or {}).get('architecture')}"
                        for m in entries})
        raise NotFound(f"no matching manifest for {os_}/{arch}{'/' + variant if variant else ''} "
                       f"in the manifest list entries of {what} (has: {', '.join(plats) or 'none'})")
    return fits[0]


class DistributionService:
    def __init__(self, images: ImageService, config: EngineConfig) -> None:
        self.images = images
        self.config = config
        self.endpoints = RegistryEndpoints(config)
        self.db = images.db
        self.db.ensure_schema(SCHEMA)

    # ------------------------------------------------------------ blob memory

    def _remember(self, diff_id: str, digest: str, media_type: str, size: int, registry: str, repo: str) -> None:
        self.db.execute(
            "INSERT INTO distribution_blobs(diff_id, digest, media_type, size, registry, repo, added) "
            "VALUES (?,?,?,?,?,?,?) ON CONFLICT DO UPDATE SET added=excluded.added",
            (diff_id, digest, media_type, size, registry, repo, time.time()))

    def _known(self, diff_id: str, media_types: set[str]) -> list[dict[str, Any]]:
        rows = self.db.query("SELECT * FROM distribution_blobs WHERE diff_id=? ORDER BY added DESC", (diff_id,))
        return [dict(r) for r in rows if r["media_type"] in media_types]

    # ------------------------------------------------------------ login

    async def login(self, body: dict[str, Any]) -> dict[str, str]:
        creds = credentials_from_json(body)
        host = registry_host(str(body.get("serveraddress") or ""))
        if host == "docker.io":
            raise InvalidParameter("login to Docker Hub is not supported by this engine: "
                                   "name a registry, e.g. `docker login 127.0.0.1:5000`")
        async with self.endpoints.client(host, creds) as client:
            token = await client.login()
        return {"Status": "Login Succeeded", "IdentityToken": token}

    # ------------------------------------------------------------ pull

    async def prepare_pull(self, from_image: str, tag: str | None, creds: Credentials,
                           platform: str | None = None) -> PullPlan:
        """Resolve everything up to the config; raises before any progress is streamed."""
        ref = pull_reference(from_image, tag)
        oimg.parse_platform(platform)
        endpoints = self.endpoints.for_pull(ref.domain)
        if not endpoints:
            raise _hub_refused("pull", ref)
        last: DockyardError | None = None
        for ep in endpoints:
            client = self.endpoints.client(ep.host, creds, ep.schemes)
            try:
                return await self._resolve(client, ref, platform)
            except DockyardError as exc:
                if not ep.mirror:
                    raise
                log.info("pull %s from mirror %s failed, trying the next: %s", ref.familiar(), ep.host, exc)
                last = exc
        # every mirror failed; Docker Hub itself is never contacted from this engine
        raise type(last)(f"{last} (from the registry mirrors; Docker Hub itself is not contacted)")

    async def _resolve(self, client: RegistryClient, ref: oref.Reference, platform: str | None) -> PullPlan:
        try:
            wanted = ref.digest or ref.tag or oref.DEFAULT_TAG
            top = await client.get_manifest(ref.path, wanted)
            man = top
            data = top.json()
            if top.media_type in oimg.INDEX_TYPES or (not top.media_type and "manifests" in data):
                entry = _pick_platform(data, platform, ref.familiar())
                man = await client.get_manifest(ref.path, dg.validate(entry.get("digest", "")))
                data = man.json()
            self._check_manifest(man, data, ref)
            cfg_desc = data["config"]
            config = await client.fetch_blob_bytes(ref.path, dg.validate(cfg_desc["digest"]))
            cfg = oimg.validate_config(config)
            if len(oimg.diff_ids_of(cfg)) != len(data["layers"]):
                raise SystemError_(f"invalid image {ref.familiar()}: the manifest has {len(data['layers'])} "
                                   f"layers, the config {len(oimg.diff_ids_of(cfg))}")
            return PullPlan(ref, client, top.digest, data, config, data["layers"])
        except BaseException:
            await client.close()
            raise

    @staticmethod
    def _check_manifest(man: Manifest, data: dict[str, Any], ref: oref.Reference) -> None:
        mt = man.media_type or data.get("mediaType") or ""
        if data.get("schemaVersion") == 1 or "prettyjws" in mt:
            raise InvalidParameter(f"{ref.familiar()}: Docker Image manifest schema 1 is not supported")
        if mt and mt not in oimg.MANIFEST_TYPES:
            raise InvalidParameter(f"{ref.familiar()}: unsupported manifest media type {mt}")
        cfg = data.get("config")
        if not isinstance(cfg, dict) or not isinstance(cfg.get("digest"), str):
            raise SystemError_(f"invalid manifest for {ref.familiar()}: no config")
        if cfg.get("mediaType") not in CONFIG_TYPES | {None}:
            raise InvalidParameter(f"{ref.familiar()}: media type {cfg.get('mediaType')} is not an image "
                                   "config (is this an artifact?)")
        layers = data.get("layers")
        if not isinstance(layers, list) or not all(isinstance(l, dict) for l in layers):
            raise SystemError_(f"invalid manifest for {ref.familiar()}: no layers")
        for l in layers:
            dg.validate(l.get("digest", ""))
            if l.get("mediaType") not in LAYER_TYPES:
                raise InvalidParameter(f"{ref.familiar()}: unsupported layer media type {l.get('mediaType')}")

    def pull(self, plan: PullPlan) -> AsyncIterator[dict[str, Any]]:
        return run_streamed(lambda emit: self._pull(plan, emit))

    async def _pull(self, plan: PullPlan, emit: Emit) -> None:
        try:
            await self._pull_layers(plan, emit)
        finally:
            await plan.client.close()

    async def _pull_layers(self, plan: PullPlan, emit: Emit) -> None:
        ref, client = plan.ref, plan.client
        emit(status(f"Pulling from {ref.path}", ref.tag or ref.digest))  # dockerd names the remote path
        diff_ids = oimg.diff_ids_of(oimg.validate_config(plan.config))
        chain = dg.chain_ids(diff_ids)
        ids = [dg.short_id(l["digest"]) for l in plan.layers]
        present = [self.images.layers.get(c) is not None for c in chain]
        for i, have in enumerate(present):
            emit(status("Already exists" if have else "Pulling fs layer", ids[i]))
        sem = asyncio.Semaphore(max(1, self.config.max_concurrent_downloads))

        def throttle(i: int) -> Callable[[str, int], Callable[[int], None]]:
            return lambda text, total: _Throttle(emit, text, ids[i], total)

        with self.images.layers.pinning() as pinned:
            async def one(i: int) -> None:
                async with sem:
                    await pull_layer(client, plan.repo, plan.layers[i], self.images.layers,
                                     chain[i - 1] if i else None, diff_ids[i], pinned, ids[i], emit,
                                     progress, status, throttle(i))
                emit(status("Pull complete", ids[i]))

            # Each layer unpacks into its own snapshot, so they need not wait for their parents.
            await gather_in_order([one(i) for i, have in enumerate(present) if not have])
            refs = [oref.Reference(ref.domain, ref.path, None, plan.manifest_digest)]
            if ref.tag and not ref.digest:
                refs.insert(0, ref)
            _, updated = self.images.commit_pulled(plan.config, refs)
        for diff_id, desc in zip(diff_ids, plan.layers):
            self._remember(diff_id, desc["digest"], desc.get("mediaType") or "", int(desc.get("size") or 0),
                           ref.domain, ref.path)
        emit(status(f"Digest: {plan.manifest_digest}"))
        word = "Downloaded newer image" if updated else "Image is up to date"
        emit(status(f"Status: {word} for {ref.familiar()}"))

    # ------------------------------------------------------------ push

    async def prepare_push(self, name: str, tag: str | None, creds: Credentials) -> PushPlan:
        ref = oref.parse(name)
        if ref.digest:
            raise InvalidParameter("cannot push a digest reference")
        if ref.domain == oref.DEFAULT_DOMAIN:
            raise _hub_refused("push", ref)
        repo = ref.name_only()
        if tag:
            refs = [ref.with_tag(tag)]
        elif ref.tag:
            refs = [ref]
        else:  # all tags of the repository, as `docker push --all-tags`
            refs = sorted({oref.parse(t) for img in self.images.all_images() for t in img.repo_tags
                           if oref.parse(t).name == repo.name}, key=str)
        tags = []
        for r in refs:
            try:
                tags.append((r, self.images.resolve(str(r))))
            except NotFound:
                raise NotFound(f"An image does not exist locally with the tag: {r.familiar()}") from None
        if not tags:
            raise NotFound(f"An image does not exist locally with the tag: {repo.familiar_name}")
        client = self.endpoints.client(ref.domain, creds)
        try:
            await client.ping()
        except BaseException:
            await client.close()
            raise
        return PushPlan(repo, client, tags)

    def push(self, plan: PushPlan) -> AsyncIterator[dict[str, Any]]:
        return run_streamed(lambda emit: self._push(plan, emit))

    async def _push(self, plan: PushPlan, emit: Emit) -> None:
        try:
            emit(status(f"The push refers to repository [{plan.name.name}]"))
            for ref, img in plan.tags:
                await self._push_one(plan, ref, img, emit)
        finally:
            await plan.client.close()
            await asyncio.to_thread(release_freed)  # compression and upload buffers (engine RSS)

    async def _push_one(self, plan: PushPlan, ref: oref.Reference, img: Image, emit: Emit) -> None:
        order = list(reversed(range(len(img.diff_ids))))  # dockerd lists the top layer first
        for i in order:
            emit(status("Preparing", dg.short_id(img.diff_ids[i])))
        sem = asyncio.Semaphore(max(1, self.config.max_concurrent_uploads))

        async def one(i: int) -> dict[str, Any]:
            async with sem:
                return await self._push_layer(plan, img.diff_ids[i], emit)

        results = await asyncio.gather(*(one(i) for i in range(len(img.diff_ids))))
        client, repo = plan.client, plan.repo
        cfg_digest = img.id
        if not await client.blob_exists(repo, cfg_digest, for_push=True):
            await client.upload_bytes(repo, cfg_digest, img.raw_config)
        # zstd layers exist only in OCI manifests; gzip ones go in Docker's schema2, as dockerd pushes.
        oci = any(l["mediaType"] == oimg.OCI_LAYER_ZSTD for l in results)
        manifest_type = oimg.OCI_MANIFEST if oci else oimg.DOCKER_MANIFEST
        manifest = {
            "schemaVersion": 2,
            "mediaType": manifest_type,
            "config": {"mediaType": oimg.OCI_CONFIG if oci else oimg.DOCKER_CONFIG, "size": len(img.raw_config),
                       "digest": cfg_digest},
            "layers": results,
        }
        body = json.dumps(manifest, indent=3).encode()
        digest = await client.put_manifest(repo, ref.tag or oref.DEFAULT_TAG, body, manifest_type)
        self.images.add_repo_digest(img.id, oref.Reference(ref.domain, ref.path, None, digest))
        self.images.events.publish("image", "push", ref.familiar(), name=ref.familiar())
        emit(status(f"{ref.tag}: digest: {digest} size: {len(body)}"))
        emit({"progressDetail": {}, "aux": {"Tag": ref.tag, "Digest": digest, "Size": len(body)}})

    async def _push_layer(self, plan: PushPlan, diff_id: str, emit: Emit) -> dict[str, Any]:
        client, repo, host = plan.client, plan.repo, plan.name.domain
        sid = dg.short_id(diff_id)
        kind = self.images.config.push_compression
        media_type = compression.media_type_of(kind)
        assert media_type is not None

        def desc(digest: str, size: int) -> dict[str, Any]:
            return {"mediaType": media_type, "size": size, "digest": digest}

        known = self._known(diff_id, {media_type} if kind == compression.ZSTD else GZIP_TYPES)
        # 1. Already in the target repository?
        for row in known:
            if row["registry"] == host and await client.blob_exists(repo, row["digest"], for_push=True):
                emit(status("Layer already exists", sid))
                self._remember(diff_id, row["digest"], media_type, row["size"], host, repo)
                return desc(row["digest"], row["size"])
        # 2. In another repository of the same registry: mount it.
        upload_at: str | None = None
        for row in known:
            if row["registry"] == host and row["repo"] != repo:
                mounted, upload_at = await client.mount_blob(repo, row["digest"], row["repo"])
                if mounted:
                    emit(status(f"Mounted from {row['repo']}", sid))
                    self._remember(diff_id, row["digest"], media_type, row["size"], host, repo)
                    return desc(row["digest"], row["size"])
                break
        # 3. The compressed blob as we received or made it before, else compress now (once:
        #    deterministically, so the digest is the one any push of this tar gets).
        blob = await asyncio.to_thread(self.images.layers.compressed.find, diff_id, kind)
        if blob is None:
            blob = await self._compress_layer(diff_id, kind, sid, emit)
        digest, size = blob.digest, blob.size
        if await client.blob_exists(repo, digest, for_push=True):
            emit(status("Layer already exists", sid))
            if upload_at:
                await client.cancel_upload(repo, upload_at)
        else:
            tick = _Throttle(emit, "Pushing", sid, size)
            tick(0)
            await client.upload_blob(repo, digest, self.images.content.path(digest), size, tick,
                                     location=upload_at)
            emit(status("Pushed", sid))
        self._remember(diff_id, digest, media_type, size, host, repo)
        return desc(digest, size)

    async def _compress_layer(self, diff_id: str, kind: str, sid: str, emit: Emit) -> CompressedBlob:
        """Compress a layer tar into the content store (kept for later pushes): its blob.

        The tar is streamed from wherever the layer keeps it (never written out whole) and
        hashed on the way: bytes that are not the DiffID's are refused, not pushed."""
        layers = self.images.layers
        tar_size = await asyncio.to_thread(layers.tar_size, diff_id)
        tick = _Throttle(emit, "Compressing", sid, tar_size)
        tick(0)
        content = self.images.content

        def run() -> CompressedBlob:
            seen = HashSink()
            with content.writer() as w, layers.open_tar(diff_id) as tar:
                digest, size = compression.compress_stream(TeeReader(tar, seen), w, kind, tick)  # type: ignore[arg-type]
                if seen.digest != diff_id:
                    raise SystemError_(f"layer {diff_id} is damaged: its tar reads back as {seen.digest}")
                w.commit(digest)
            layers.compressed.add(diff_id, kind, digest, size, tar_size)
            return CompressedBlob(diff_id, kind, digest, size, tar_size)

        return await asyncio.to_thread(run)


def error_message(exc: DockyardError) -> dict[str, Any]:
    """An error in the middle of a progress stream, as dockerd writes it."""
    return {"errorDetail": {"message": exc.message}, "error": exc.message}
