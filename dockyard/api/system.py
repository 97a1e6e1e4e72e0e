"""/_ping, /version, /info, /events, /system/df."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import socket

from aiohttp import web

from .. import __version__
from ..engine.containers.daemondefaults import init_binary
from ..engine.events import EVENT_FILTERS, matches
from ..engine.timeutil import parse_timestamp
from .params import json_response, qfilters, qstr
from .routing import Routes
from .versions import MAX_VERSION, MIN_VERSION

routes = Routes()

PING_HEADERS = {
    "API-Version": MAX_VERSION,
    "OSType": "linux",
    "Docker-Experimental": "false",
    "Builder-Version": "1",
    "Swarm": "inactive",
    "Cache-Control": "no-cache, no-store, must-revalidate",
    "Pragma": "no-cache",
}


@routes.get("/_ping")
async def ping(request: web.Request) -> web.Response:
    return web.Response(text="OK", headers=PING_HEADERS)


@routes.head("/_ping")
async def ping_head(request: web.Request) -> web.Response:
    return web.Response(headers={**PING_HEADERS, "Content-Type": "text/plain; charset=utf-8",
                                 "Content-Length": "0"})


def _kernel() -> str:
    return platform.release()


@routes.get("/version")
async def version(request: web.Request) -> web.Response:
    import aiohttp

    engine = request.app["engine"]
    runtime_version, runtime_commit = await engine.runtime.version()
    return json_response({
        "Platform": {"Name": "dockyard"},
        "Components": [
            {"Name": "Engine", "Version": __version__,
             "Details": {"ApiVersion": MAX_VERSION, "MinAPIVersion": MIN_VERSION,
                         "Os": "linux", "Arch": _arch(), "KernelVersion": _kernel(), "GitCommit": "",
                         "GoVersion": "python" + platform.python_version(), "BuildTime": "",
                         "Experimental": "false",
                         "Python": platform.python_version(), "aiohttp": aiohttp.__version__}},
            {"Name": "runc", "Version": runtime_version,
             "Details": {"GitCommit": runtime_commit, "Path": engine.runtime.binary}},
            {"Name": "conmon", "Version": await engine.monitor.version(),
             "Details": {"Path": engine.monitor.binary}},
        ],
        "Version": __version__,
        "ApiVersion": MAX_VERSION,
        "MinAPIVersion": MIN_VERSION,
        "GitCommit": "",
        "GoVersion": "python" + platform.python_version(),
        "Os": "linux",
        "Arch": _arch(),
        "KernelVersion": _kernel(),
        "BuildTime": "",
    })


def _arch() -> str:
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)


def _mem_total() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def _os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


@routes.get("/info")
async def info(request: web.Request) -> web.Response:
    engine = request.app["engine"]
    counts = engine.containers.counts()
    total = sum(counts.values())
    cg = engine.cgroups
    cg_version = getattr(cg, "version", "1") if cg else "1"
    cfg = engine.config
    return json_response({
        "ID": engine.config.data_root.as_posix(),
        "Containers": total,
        "ContainersRunning": counts["running"],
        "ContainersPaused": counts["paused"],
        "ContainersStopped": counts["stopped"],
        # dockerd counts its whole image store (len(imageStore.Map())), intermediate images too,
        # so the figure matches `docker images -a`
        "Images": len(engine.images.all_images()),
        "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"],
                         ["Using metacopy", "false"], ["Native Overlay Diff", "true"]],
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"],
                    "Authorization": None, "Log": ["json-file", "local", "syslog"]},
        "MemoryLimit": True,
        "SwapLimit": True,
        "CpuCfsPeriod": True,
        "CpuCfsQuota": True,
        "CPUShares": True,
        "CPUSet": True,
        "PidsLimit": True,
        "OomKillDisable": cg_version == "1",
        "IPv4Forwarding": _ip_forwarding(),
        "Debug": cfg.debug or cfg.log_level == "debug",
        "NFd": len(os.listdir("/proc/self/fd")),
        "NGoroutines": len(asyncio.all_tasks()),
        "SystemTime": _now(),
        "LoggingDriver": cfg.log_driver,
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": str(cg_version),
        "NEventsListener": len(engine.events._subscribers),
        "KernelVersion": _kernel(),
        "OperatingSystem": _os_name(),
        "OSVersion": "",
        "OSType": "linux",
        "Architecture": platform.machine(),
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": _registry_config(engine),
        "NCPU": os.cpu_count() or 1,
        "MemTotal": _mem_total(),
        "GenericResources": None,
        "DockerRootDir": str(engine.config.data_root),
        "HttpProxy": "", "HttpsProxy": "", "NoProxy": "",
        "Name": socket.gethostname(),
        "Labels": list(cfg.labels),
        "ExperimentalBuild": False,
        "ServerVersion": __version__,
        "Runtimes": {name: {"path": engine.runtime.binary if name == "runc" else cfg.runtime_path(name)}
                     for name in cfg.runtime_names()},
        "DefaultRuntime": cfg.default_runtime,
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
                  "ControlAvailable": False, "Error": "", "RemoteManagers": None},
        "LiveRestoreEnabled": cfg.live_restore,
        "Isolation": "",
        "InitBinary": init_binary(cfg) or "",
        "DefaultAddressPools": [{"Base": p["base"], "Size": p["size"]} for p in cfg.default_address_pools],
        "ContainerdCommit": {"ID": ""},
        "RuncCommit": {"ID": (await engine.runtime.version())[1]},
        "InitCommit": {"ID": ""},
        "SecurityOptions": ["name=seccomp,profile=builtin"],
        "CDISpecDirs": [],
        "Warnings": None,
    })


def _ip_forwarding() -> bool:
    try:
        with open("/proc/sys/net/ipv4/ip_forward") as f:
            return f.read().strip() == "1"
    except OSError:
        return False


def _registry_config(engine) -> dict:
    """dockerd's RegistryConfig: what `docker info` prints as Insecure Registries and Registry Mirrors."""
    cfg, eps = engine.config, engine.distribution.endpoints
    mirrors = list(cfg.registry_mirrors)
    index = {"docker.io": {"Name": "docker.io", "Mirrors": mirrors, "Secure": True, "Official": True}}
    for name in eps.insecure_names():
        index[name] = {"Name": name, "Mirrors": [], "Secure": False, "Official": False}
    return {"AllowNondistributableArtifactsCIDRs": None, "AllowNondistributableArtifactsHostnames": None,
            "InsecureRegistryCIDRs": eps.insecure_cidrs(), "IndexConfigs": index, "Mirrors": mirrors}


def _now() -> str:
    from ..engine.containers.model import now_rfc3339

    return now_rfc3339()


@routes.get("/events")
async def events(request: web.Request) -> web.StreamResponse:
    engine = request.app["engine"]
    filters = qfilters(request)
    filters.validate(EVENT_FILTERS)
    since = qstr(request, "since")
    until = qstr(request, "until")
    since_ns = int(parse_timestamp(since) * 1e9) if since else None
    until_ns = int(parse_timestamp(until) * 1e9) if until else None

    def match(ev) -> bool:
        return matches(ev, filters)

    q = engine.events.subscribe()
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    try:
        if since_ns is not None:
            for ev in engine.events.history():
                if ev.time_nano >= since_ns and (until_ns is None or ev.time_nano <= until_ns) and match(ev):
                    await resp.write(json.dumps(ev.to_json()).encode() + b"\n")
        while True:
            timeout = None
            if until_ns is not None:
                import time as _t

                timeout = until_ns / 1e9 - _t.time()
                if timeout <= 0:
                    break
            try:
                ev = await asyncio.wait_for(q.get(), timeout)
            except asyncio.TimeoutError:
                break
            if ev is None:
                break  # we fell too far behind: the bus dropped us
            if match(ev):
                await resp.write(json.dumps(ev.to_json()).encode() + b"\n")
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        engine.events.unsubscribe(q)
    return resp


@routes.get("/system/df")
async def system_df(request: web.Request) -> web.Response:
    engine = request.app["engine"]
    from .container_views import list_entry

    ctrs = []
    for c in engine.containers.all():
        e = list_entry(engine, c)
        e["SizeRw"] = await asyncio.to_thread(engine.containers.size_rw, c)
        e["SizeRootFs"] = e["SizeRw"]
        ctrs.append(e)
    images = engine.images.list_images(all=False) if hasattr(engine.images, "list_images") else []
    vols = []
    for v in engine.volumes.list():
        d = v.to_docker()
        d["UsageData"] = {"Size": await asyncio.to_thread(engine.volumes.size, v.name),
                          "RefCount": len(engine.volumes.users(v.name))}
        vols.append(d)
    return json_response({"LayersSize": sum(i.get("Size", 0) for i in images if isinstance(i, dict)),
                          "Images": images, "Containers": ctrs, "Volumes": vols, "BuildCache": []})
