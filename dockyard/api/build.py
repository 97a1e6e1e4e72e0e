"""Build routes: POST /build (the legacy builder's tar context in, JSON messages out), POST /build/prune.

Thin: query parameters -> BuildOptions, the body spooled to disk off the event loop, then
BuildService.prepare (4xx before the stream) and BuildService.run (the stream).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import shutil
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..errors import DockyardError, InvalidParameter
from ..oci import reference as oref
from .params import json_response, qbool, qint, spool_body
from .routing import Routes

if TYPE_CHECKING:  # the build frontend is imported by the first build, not by an idle engine
    from ..engine.build import BuildOptions

log = logging.getLogger(__name__)

routes = Routes()



def _json_map(request: web.Request, name: str, allow_null: bool) -> dict[str, Any]:
    raw = request.query.get(name)
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidParameter(f"invalid {name}: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(
            isinstance(v, str) or (allow_null and v is None) for v in data.values()):
        raise InvalidParameter(f"invalid {name}: expected a JSON object of strings")
    return data


def _json_list(request: web.Request, name: str) -> list[str]:
    """A JSON array of strings (`cachefrom`); a bad one is dockerd's 400."""
    raw = request.query.get(name)
    if not raw:
        return []
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidParameter(f"invalid {name}: {exc}") from None
    if data is None:
        return []
    if not isinstance(data, list) or not all(isinstance(v, str) for v in data):
        got = {dict: "object", str: "string", int: "number", float: "number", bool: "bool"}.get(type(data), "array")
        raise InvalidParameter(f"json: cannot unmarshal {got} into Go value of type []string")
    return data


def _tags(request: web.Request) -> list[oref.Reference]:
    """dockerd's sanitizeRepoAndTags: parse, default to :latest, no digests, deduplicated."""
    out: list[oref.Reference] = []
    for t in request.query.getall("t", []):
        if not t:
            continue
        ref = oref.parse(t)
        if ref.digest:
            raise InvalidParameter("build tag cannot contain a digest")
        ref = ref.tag_name_only()
        if ref not in out:
            out.append(ref)
    return out


def _registry_config(header: str | None) -> dict[str, dict[str, Any]]:
    """X-Registry-Config: base64 JSON {registry: AuthConfig}, for pulling base images."""
    if not header:
        return {}
    try:
        pad = "=" * (-len(header) % 4)
        data = json.loads(base64.urlsafe_b64decode(header + pad))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidParameter("invalid X-Registry-Config header: not base64-encoded JSON") from None
    if not isinstance(data, dict):
        return {}
    out: dict[str, dict[str, Any]] = {}
    for host, cfg in data.items():
        if isinstance(cfg, dict):
            out[host.removeprefix("https://").removeprefix("http://").split("/")[0]] = cfg
    return out


def _options(request: web.Request) -> BuildOptions:
    q = request.query
    if q.get("remote"):
        raise InvalidParameter("building from a remote context (git URL or tarball URL) is not supported: "
                               "this engine has no network access for builds; send the context instead")
    if q.get("version") == "2":
        raise InvalidParameter("BuildKit is not supported by this engine: use the legacy builder "
                               "(DOCKER_BUILDKIT=0)")
    if qbool(request, "squash"):
        raise InvalidParameter("squash is only supported with experimental mode")
    platform = q.get("platform") or ""
    if platform:
        from ..oci import image as oimg

        os_, arch, _ = oimg.parse_platform(platform)
        if (os_, arch) != ("linux", oimg.go_arch()):
            raise InvalidParameter(f"platform {platform} is not supported: this engine builds linux/{oimg.go_arch()}")
    resources: dict[str, Any] = {}
    for key, name in (("CpusetCpus", "cpusetcpus"), ("CpusetMems", "cpusetmems")):
        if q.get(name):
            resources[key] = q[name]
    for key, name in (("Memory", "memory"), ("MemorySwap", "memswap"), ("CpuShares", "cpushares"),
                      ("CpuQuota", "cpuquota"), ("CpuPeriod", "cpuperiod"), ("ShmSize", "shmsize")):
        v = qint(request, name, 0)
        if v:
            resources[key] = v
    # dockerd reads repeated `extrahosts` parameters (docker-py, the CLI); a comma list too
    extra_hosts = [h for v in q.getall("extrahosts", []) for h in v.split(",") if h]
    cache_from = _json_list(request, "cachefrom")
    forcerm = qbool(request, "forcerm")
    from ..engine.build import BuildOptions

    return BuildOptions(
        tags=_tags(request),
        dockerfile=q.get("dockerfile") or "Dockerfile",
        quiet=qbool(request, "q"),
        nocache=qbool(request, "nocache"),
        rm=qbool(request, "rm", True) or forcerm,
        forcerm=forcerm,
        target=q.get("target") or None,
        network_mode=q.get("networkmode") or "default",
        build_args=_json_map(request, "buildargs", allow_null=True),
        labels=_json_map(request, "labels", allow_null=False),
        resources=resources,
        extra_hosts=extra_hosts,
        cache_from=cache_from,
        registry_auth=_registry_config(request.headers.get("X-Registry-Config")),
    )



@routes.post("/build")
async def build(request: web.Request) -> web.StreamResponse:
    svc = request.app["engine"].builder
    options = _options(request)
    spool_dir = svc.temp_dir("build-body-")
    try:
        body = spool_dir / "context.tar"
        await spool_body(request, body)
        plan = await svc.prepare(body, options)
    finally:
        await asyncio.to_thread(shutil.rmtree, spool_dir, True)
    messages = svc.run(plan)
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    pump = asyncio.create_task(_pump(request, resp, messages))
    gone = asyncio.create_task(_client_gone(request))
    try:
        await asyncio.wait({pump, gone}, return_when=asyncio.FIRST_COMPLETED)
        if gone.done() and not pump.done():
            log.info("build: the client went away; the build is cancelled")
    finally:
        gone.cancel()
        if not pump.done():
            pump.cancel()
        try:
            await pump
        except (asyncio.CancelledError, ConnectionResetError):
            pass
        await messages.aclose()  # cancels the build if still running; removes its containers
        await asyncio.to_thread(shutil.rmtree, plan.context_dir, True)
    return resp


async def _pump(request: web.Request, resp: web.StreamResponse, messages) -> None:
    await resp.prepare(request)
    try:
        async for m in messages:
            await resp.write((json.dumps(m) + "\r\n").encode())
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    except Exception as exc:  # a bug: the status line is gone, so say it in the stream
        log.exception("error while streaming a build")
        from ..engine.build.service import error_message

        await resp.write((json.dumps(error_message(DockyardError(f"internal error: {exc!r}"))) + "\r\n").encode())
    await resp.write_eof()


async def _client_gone(request: web.Request, every: float = 0.5) -> None:
    """Returns once the client has disconnected (aiohttp does not cancel the handler for it)."""
    while True:
        await asyncio.sleep(every)
        transport = request.transport
        if transport is None or transport.is_closing():
            return


@routes.post("/build/prune")
async def prune(request: web.Request) -> web.Response:
    return json_response(request.app["engine"].builder.prune())


@routes.post("/build/cancel")
async def cancel(request: web.Request) -> web.Response:
    """The legacy builder's cancel takes a build ID it never handed out: nothing to do."""
    return web.Response(status=200)
