"""The registry client reads a manifest (or config) to its end, however it arrives.

aiohttp's StreamReader.read(n) returns what has arrived so far, not n bytes: a
manifest the registry sent in several pieces came back cut ("not JSON").
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from dockyard.distribution.client.registry import RegistryClient
from dockyard.oci import digest as dg

MANIFEST = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
    "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 2,
               "digest": "sha256:" + "0" * 64},
    "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": i,
                "digest": "sha256:" + f"{i:064x}"} for i in range(40)],
}).encode()


async def _in_pieces(request: web.Request, body: bytes, ctype: str) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": ctype, "Content-Length": str(len(body))})
    await resp.prepare(request)
    third = len(body) // 3
    for piece in (body[:third], body[third:2 * third], body[2 * third:]):
        await resp.write(piece)
        await asyncio.sleep(0.05)  # each piece its own segment: the client sees a partial body
    await resp.write_eof()
    return resp


async def _scenario() -> tuple[bytes, str, bytes]:
    async def ping(r: web.Request) -> web.Response:
        return web.json_response({})

    async def manifest(r: web.Request) -> web.StreamResponse:
        return await _in_pieces(r, MANIFEST, "application/vnd.docker.distribution.manifest.v2+json")

    async def blob(r: web.Request) -> web.StreamResponse:
        return await _in_pieces(r, MANIFEST, "application/octet-stream")

    app = web.Application()
    app.router.add_get("/v2/", ping)
    app.router.add_get("/v2/r/manifests/t", manifest)
    app.router.add_get("/v2/r/blobs/{digest}", blob)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with RegistryClient(f"127.0.0.1:{port}", insecure=True) as c:
            await c.ping()
            m = await c.get_manifest("r", "t")
            blob = await c.fetch_blob_bytes("r", dg.sha256_bytes(MANIFEST))
        return m.body, m.digest, blob
    finally:
        await runner.cleanup()


def test_manifest_and_config_sent_in_pieces_are_read_whole():
    body, digest, blob = asyncio.run(_scenario())
    assert body == MANIFEST
    assert digest == dg.sha256_bytes(MANIFEST)
    assert blob == MANIFEST
