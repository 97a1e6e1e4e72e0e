"""The legacy builder's step loop: one Dockerfile instruction at a time, each an image.

Every step reuses the engine's services rather than doing their work again:

- RUN creates a container of the current image with the step's command, starts it, streams its
  log (`containers.logs`, follow), waits for its exit (`register_wait`), commits its writable
  layer (`images.commit_layer`) and removes it ("Removing intermediate container").
- COPY/ADD and WORKDIR create a container that is never started, mount its filesystem
  (`files.root`), build a tar of what the step adds (context.py, in a thread) and unpack it with
  `files.put` (chrooted), then commit the writable layer the same way.
- Metadata instructions (ENV, CMD, LABEL, USER, EXPOSE...) commit a new config with an empty
  layer (`images.commit_config`): no container at all.

Before each step the cache is probed with (parent image, the config the step would commit);
a hit prints " ---> Using cache" and moves on.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import posixpath
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Callable

from ...errors import DockyardError, InvalidParameter, NotFound
from ...oci import image as oimg
from ...oci import reference as oref
from ..containers.createspec import parse_signal
from ..containers.logs import STDERR, LogQuery
from . import configops
from . import context as ctxmod
from .cache import BuildCache
from .cachefrom import CacheSources
from .frontend import DISPATCH_REFUSED_FLAGS, Dockerfile, Instruction, Stage, pairs, parse_trigger
from .ignore import IgnoreMatcher
from .shellwords import env_dict, process_word

log = logging.getLogger(__name__)

DEFAULT_SHELL = ["/bin/sh", "-c"]
BUILTIN_ARGS = {"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
                "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"}
RESOURCE_KEYS = ("CpusetCpus", "CpusetMems", "Memory", "MemorySwap", "CpuShares", "CpuQuota", "CpuPeriod",
                 "ShmSize")
CHUNK = 1 << 16

Emit = Callable[[dict[str, Any]], None]


class StepFailed(DockyardError):
    """A RUN whose command failed: the stream's error carries its exit code, as dockerd's does."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class BuildOptions:
    tags: list[oref.Reference] = field(default_factory=list)
    dockerfile: str = "Dockerfile"
    quiet: bool = False
    nocache: bool = False
    rm: bool = True
    forcerm: bool = False
    target: str | None = None
    network_mode: str = "default"
    build_args: dict[str, str | None] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=dict)
    extra_hosts: list[str] = field(default_factory=list)
    cache_from: list[str] = field(default_factory=list)  # images whose history gives cache hits
    registry_auth: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class BuildPlan:
    options: BuildOptions
    context_dir: Path
    dockerfile: Dockerfile
    ignore: IgnoreMatcher


@dataclass
class StageState:
    image_id: str | None
    config: dict[str, Any]
    args: dict[str, str | None] = field(default_factory=dict)  # ARGs declared in this stage
    cmd_set: bool = False
    maintainer: str = ""

    @property
    def shell(self) -> list[str]:
        return list(self.config.get("Shell") or DEFAULT_SHELL)


class Builder:
    """One build: runs the plan, emits dockerd's stream messages through `emit`."""

    def __init__(self, engine: Any, cache: BuildCache, plan: BuildPlan, emit: Emit) -> None:
        self.engine = engine
        self.images = engine.images
        self.containers = engine.containers
        self.files = engine.files
        self.cache = cache
        self.plan = plan
        self.opts = plan.options
        self.df = plan.dockerfile
        self._emit = emit
        self.escape = plan.dockerfile.escape
        self.stage_images: dict[int, str | None] = {}
        self.tmp: list[str] = []            # RUN containers not yet removed
        self.consumed: set[str] = set()     # build args some ARG declared
        self.meta_env: dict[str, str] = {}
        self.meta_args: dict[str, str | None] = {}
        self._cache_sources: CacheSources | None = None  # made at the first probe that needs it

    # ------------------------------------------------------------ output

    def out(self, text: str) -> None:
        if not self.opts.quiet:
            self._emit({"stream": text})

    # ------------------------------------------------------------ the build

    async def run(self) -> str:
        ok = False
        try:
            image_id = await self._run()
            ok = True
            return image_id
        finally:
            if self.tmp and (self.opts.forcerm or (ok and self.opts.rm) or not ok and _cancelled()):
                await self._remove_tmp(announce=not _cancelled())

    async def _run(self) -> str:
        stages = self.df.until_target(self.opts.target)
        self._meta_args()
        extra_label = self._labels_instruction()
        total = sum(len(s.instructions) + 1 for s in stages) + (1 if extra_label else 0)
        step = 0
        st: StageState | None = None
        for stage in stages:
            step += 1
            self.out(f"Step {step}/{total} : {stage.origin.original}\n")
            st = await self._from(stage)
            self.out(f" ---> {_short(st.image_id)}\n")
            instructions = list(stage.instructions)
            if extra_label and stage is stages[-1]:
                instructions.append(extra_label)
            for ins in instructions:
                step += 1
                self.out(f"Step {step}/{total} : {ins.original}\n")
                await self._dispatch(st, ins)
                self.out(f" ---> {_short(st.image_id)}\n")
            self.stage_images[stage.index] = st.image_id
        leftover = sorted(k for k in self.opts.build_args if k not in self.consumed and k not in BUILTIN_ARGS)
        if leftover:
            self.out(f"[Warning] One or more build-args [{' '.join(leftover)}] were not consumed\n")
        if st is None or not st.image_id:
            raise InvalidParameter("No image was generated. Is your Dockerfile empty?")
        image_id = st.image_id
        self._emit({"aux": {"ID": image_id}})
        self.out(f"Successfully built {_short(image_id)}\n")
        for ref in self.opts.tags:
            self.images.tag(image_id, ref.name, ref.tag)
            self.out(f"Successfully tagged {ref.familiar()}\n")
        if self.opts.quiet:
            self._emit({"stream": image_id + "\n"})
        return image_id

    def _labels_instruction(self) -> Instruction | None:
        if not self.opts.labels:
            return None
        items = sorted(self.opts.labels.items())
        text = "LABEL " + " ".join(f"{json.dumps(k)}='{v}'" for k, v in items)
        args = [x for kv in items for x in kv]
        ins = Instruction(cmd="LABEL", original=text, args=args)
        ins.flags["__literal__"] = "1"  # values come from the API, not from Dockerfile syntax
        return ins

    # ------------------------------------------------------------ ARGs and expansion

    def _meta_args(self) -> None:
        for ins in self.df.meta_args:
            for a in ins.args:
                name, eq, default = a.partition("=")
                value = process_word(default, self.meta_env, self.escape) if eq else None
                given = self.opts.build_args.get(name)
                if name in self.opts.build_args:
                    self.consumed.add(name)
                if given is not None:
                    value = given
                self.meta_args[name] = value
                if value is not None:
                    self.meta_env[name] = value
                else:
                    self.meta_env.pop(name, None)

    def _allowed_args(self, st: StageState) -> dict[str, str]:
        """dockerd's FilterAllowed: declared ARGs with a value and the given proxy args,
        unless ENV sets the same name."""
        env = env_dict(st.config.get("Env"))
        out: dict[str, str] = {}
        for k, v in st.args.items():
            if v is not None and k not in env:
                out[k] = v
        for k in BUILTIN_ARGS:
            v = self.opts.build_args.get(k)
            if v is not None and k not in env and k not in out:
                out[k] = v
        return out

    def _env(self, st: StageState) -> dict[str, str]:
        env = env_dict(st.config.get("Env"))
        env.update({k: v for k, v in self._allowed_args(st).items() if k not in env})
        return env

    def _expand(self, st: StageState, word: str) -> str:
        return process_word(word, self._env(st), self.escape)

    # ------------------------------------------------------------ FROM

    async def _from(self, stage: Stage) -> StageState:
        base = process_word(stage.base, self.meta_env, self.escape)
        if not base:
            raise InvalidParameter(f"base name ({stage.base}) should not be blank")
        if stage.platform:
            plat = process_word(stage.platform, self.meta_env, self.escape)
            os_, arch, _ = oimg.parse_platform(plat)
            if (os_, arch) != ("linux", oimg.go_arch()):
                raise InvalidParameter(f"platform {plat} is not supported: this engine builds linux/{oimg.go_arch()}")
        if base.lower() == "scratch":
            return StageState(None, oimg.empty_container_config())
        prior = next((s for s in self.df.stages[: stage.index] if s.name == base.lower()), None)
        if prior is not None:
            image_id = self.stage_images[prior.index]
            img_cfg = self.images.resolve(image_id).config if image_id else {}
        else:
            img = await self._image(base)
            image_id, img_cfg = img.id, img.config
        config = {**oimg.empty_container_config(), **copy.deepcopy(img_cfg.get("config") or {})}
        st = StageState(image_id, config)
        triggers = list(config.get("OnBuild") or [])
        if triggers:
            config["OnBuild"] = None  # a trigger runs once, in the image built FROM it
            self.out(f"# Executing {len(triggers)} build trigger{'s' if len(triggers) > 1 else ''}\n")
            for t in triggers:
                await self._dispatch(st, parse_trigger(t))
        return st

    async def _image(self, ref: str) -> Any:
        """A base image: local, else pulled when the reference names a registry."""
        try:
            return self.images.resolve(ref)
        except NotFound:
            pass
        parsed = oref.parse(ref)
        if parsed.domain == oref.DEFAULT_DOMAIN:
            raise NotFound(f"pull access denied for {parsed.familiar_name}: the image is not present and this "
                           "engine does not pull from Docker Hub; name a registry, e.g. "
                           f"127.0.0.1:5000/{parsed.familiar()}")
        from ...distribution.client.auth import credentials_from_json

        dist = self.engine.distribution
        creds = credentials_from_json(self.opts.registry_auth.get(parsed.domain) or {})
        plan = await dist.prepare_pull(str(parsed.tag_name_only()), None, creds)
        try:
            async for m in dist.pull(plan):
                if not self.opts.quiet:
                    self._emit(m)
        finally:
            await plan.client.close()
        return self.images.resolve(ref)

    # ------------------------------------------------------------ dispatch

    async def _dispatch(self, st: StageState, ins: Instruction) -> None:
        handler = getattr(self, "_i_" + ins.cmd.lower(), None)
        if handler is None:
            raise InvalidParameter(f"unknown instruction: {ins.cmd}")
        refused = [f for f in ins.flags if f in DISPATCH_REFUSED_FLAGS.get(ins.cmd, ())]
        if refused:  # dockerd's legacy builder: the first such flag, once the step is reached
            raise InvalidParameter(f"the --{refused[0]} option requires BuildKit. Refer to "
                                   "https://docs.docker.com/go/buildkit/ to learn how to build images with "
                                   "BuildKit enabled")
        await handler(st, ins)

    def _words(self, st: StageState, ins: Instruction) -> list[str]:
        if ins.flags.get("__literal__"):
            return list(ins.args)
        return [self._expand(st, a) for a in ins.args]

    # metadata instructions ---------------------------------------------------

    async def _commit_meta(self, st: StageState, comment: str) -> None:
        st.config["Image"] = st.image_id or ""
        probe = {**copy.deepcopy(st.config), "Cmd": st.shell + ["#(nop) ", comment]}
        if self._probe(st, probe):
            return
        updates: dict[str, Any] = {"config": copy.deepcopy(st.config), "container_config": probe}
        if st.maintainer:
            updates["author"] = st.maintainer
        new_id = self.images.commit_config(st.image_id, updates,
                                           {"created_by": " ".join(st.shell + ["#(nop) ", comment])})
        self.cache.record(st.image_id, probe, new_id)
        st.image_id = new_id

    def _probe(self, st: StageState, probe: dict[str, Any]) -> bool:
        if self.opts.nocache:
            return False
        hit = self.cache.probe(st.image_id, probe)
        if hit is None and self.opts.cache_from:
            if self._cache_sources is None:
                self._cache_sources = CacheSources(self.images, self.opts.cache_from)
            hit = self._cache_sources.probe(st.image_id, list(probe.get("Cmd") or []), st.config, probe)
        if hit is None:
            return False
        self.out(" ---> Using cache\n")
        st.image_id = hit
        return True

    async def _i_env(self, st: StageState, ins: Instruction) -> None:
        env = list(st.config.get("Env") or [])
        shown = []
        # the whole line is expanded first: `ENV A=1 B=$A` gives B the previous A, as in Docker
        expanded = [(self._expand(st, k), self._expand(st, v)) for k, v in pairs(ins.args)]
        for k, v in expanded:
            keys = [e.partition("=")[0] for e in env]
            if k in keys:
                env[keys.index(k)] = f"{k}={v}"
            else:
                env.append(f"{k}={v}")
            shown.append(f"{k}={v}")
        st.config["Env"] = env
        await self._commit_meta(st, "ENV " + " ".join(shown))

    async def _i_label(self, st: StageState, ins: Instruction) -> None:
        labels = dict(st.config.get("Labels") or {})
        shown = []
        literal = bool(ins.flags.get("__literal__"))
        for k, v in pairs(ins.args):
            if not literal:
                k, v = self._expand(st, k), self._expand(st, v)
            labels[k] = v
            shown.append(f"{k}={v}")
        st.config["Labels"] = labels
        await self._commit_meta(st, "LABEL " + " ".join(shown))

    async def _i_maintainer(self, st: StageState, ins: Instruction) -> None:
        st.maintainer = self._expand(st, ins.args[0])
        await self._commit_meta(st, "MAINTAINER " + st.maintainer)

    async def _i_arg(self, st: StageState, ins: Instruction) -> None:
        shown = []
        for a in ins.args:
            name, eq, default = a.partition("=")
            value = self._expand(st, default) if eq else self.meta_args.get(name)
            if name in self.opts.build_args:
                self.consumed.add(name)
                if self.opts.build_args[name] is not None:
                    value = self.opts.build_args[name]
            st.args[name] = value
            shown.append(f"{name}={self._expand(st, default)}" if eq else name)
        await self._commit_meta(st, "ARG " + " ".join(shown))

    async def _i_user(self, st: StageState, ins: Instruction) -> None:
        st.config["User"] = self._expand(st, ins.args[0])
        await self._commit_meta(st, "USER " + st.config["User"])

    async def _i_expose(self, st: StageState, ins: Instruction) -> None:
        specs = [w for a in self._words(st, ins) for w in a.split()]
        ports = dict(st.config.get("ExposedPorts") or {})
        for p in configops.exposed_ports(specs):
            ports[p] = {}
        st.config["ExposedPorts"] = ports
        await self._commit_meta(st, "EXPOSE " + " ".join(specs))

    async def _i_volume(self, st: StageState, ins: Instruction) -> None:
        vols = dict(st.config.get("Volumes") or {})
        paths = self._words(st, ins)
        for v in paths:
            if not v.strip():
                raise InvalidParameter("VOLUME specified can not be an empty string")
            vols[v] = {}
        st.config["Volumes"] = vols
        await self._commit_meta(st, f"VOLUME [{' '.join(paths)}]")

    async def _i_stopsignal(self, st: StageState, ins: Instruction) -> None:
        sig = self._expand(st, ins.args[0])
        parse_signal(sig)  # 4xx for a bad one
        st.config["StopSignal"] = sig
        await self._commit_meta(st, "STOPSIGNAL " + sig)

    async def _i_cmd(self, st: StageState, ins: Instruction) -> None:
        cmd = list(ins.args) if ins.json else st.shell + [ins.args[0]]
        st.config["Cmd"] = cmd
        st.cmd_set = True
        await self._commit_meta(st, "CMD " + configops.go_list(cmd))

    async def _i_entrypoint(self, st: StageState, ins: Instruction) -> None:
        ep = list(ins.args) if ins.json else st.shell + [ins.args[0]]
        st.config["Entrypoint"] = ep or None
        if not st.cmd_set:
            st.config["Cmd"] = None  # an inherited CMD does not survive a new ENTRYPOINT
        await self._commit_meta(st, "ENTRYPOINT " + configops.go_list(ep))

    async def _i_shell(self, st: StageState, ins: Instruction) -> None:
        st.config["Shell"] = list(ins.args)
        await self._commit_meta(st, f"SHELL [{' '.join(ins.args)}]")

    async def _i_onbuild(self, st: StageState, ins: Instruction) -> None:
        st.config["OnBuild"] = list(st.config.get("OnBuild") or []) + [ins.trigger]
        await self._commit_meta(st, "ONBUILD " + ins.trigger)

    async def _i_healthcheck(self, st: StageState, ins: Instruction) -> None:
        hc = configops.healthcheck(ins.args, ins.json, ins.flags)
        st.config["Healthcheck"] = hc
        await self._commit_meta(st, "HEALTHCHECK " + json.dumps(hc, separators=(",", ":")))

    # WORKDIR -----------------------------------------------------------------

    async def _i_workdir(self, st: StageState, ins: Instruction) -> None:
        wd = self._expand(st, ins.args[0])
        if not wd.startswith("/"):
            wd = posixpath.join("/", st.config.get("WorkingDir") or "/", wd)
        wd = posixpath.normpath(wd)
        st.config["WorkingDir"] = wd
        comment = "WORKDIR " + wd
        st.config["Image"] = st.image_id or ""
        probe = {**copy.deepcopy(st.config), "Cmd": st.shell + ["#(nop) " + comment]}
        if self._probe(st, probe):
            return
        await self._layer_step(st, probe, " ".join(probe["Cmd"]),
                               lambda rootfs, out: ctxmod.workdir_tar(out, rootfs, wd))

    # COPY / ADD --------------------------------------------------------------

    async def _i_copy(self, st: StageState, ins: Instruction) -> None:
        await self._copy(st, ins, add=False)

    async def _i_add(self, st: StageState, ins: Instruction) -> None:
        await self._copy(st, ins, add=True)

    async def _copy(self, st: StageState, ins: Instruction, add: bool) -> None:
        words = self._words(st, ins)
        srcs, dest = words[:-1], words[-1]
        for s in srcs:
            if re.match(r"^(https?|git|ssh)://|^git@", s):
                raise InvalidParameter(f"{ins.cmd} {s}: remote sources are not supported: this engine has no "
                                       "network access for builds; download the file into the build context")
        chown = self._expand(st, ins.flag("chown") or "") or None
        src_from = self._expand(st, ins.flag("from") or "") or None
        dest_n = ctxmod.normalize_dest(dest, st.config.get("WorkingDir") or "")
        async with self._source_root(st, src_from) as (root, ignore):
            sources = await asyncio.to_thread(ctxmod.resolve_sources, root, srcs, ignore, ins.cmd)

            def hash_all() -> str:
                for s in sources:
                    s.hash = ctxmod.source_hash(s, ignore)
                return ctxmod.combined_hash(sources)

            src_hash = await asyncio.to_thread(hash_all)
            chown_comment = f"--chown={chown} " if chown else ""
            comment = f"{ins.cmd} {chown_comment}{src_hash} in {dest} "
            st.config["Image"] = st.image_id or ""
            probe = {**copy.deepcopy(st.config), "Cmd": st.shell + ["#(nop) " + comment]}
            if self._probe(st, probe):
                return

            def make_tar(rootfs: str, out: Path) -> bool:
                owner = ctxmod.resolve_chown(rootfs, chown) if chown else (0, 0)
                ctxmod.write_copy_tar(out, rootfs, sources, dest_n, owner, add, ignore, ins.cmd)
                return True

            await self._layer_step(st, probe, " ".join(probe["Cmd"]), make_tar)

    @contextlib.asynccontextmanager
    async def _source_root(self, st: StageState, src_from: str | None) -> AsyncIterator[tuple[str, IgnoreMatcher | None]]:
        """Where COPY reads: the context, or the filesystem of a stage or image (--from)."""
        if not src_from:
            yield str(self.plan.context_dir), self.plan.ignore
            return
        idx = self.df.stage_index(src_from)
        if idx is not None:
            if idx not in self.stage_images:
                raise InvalidParameter(f"invalid from flag value {src_from}: refers to current build stage "
                                       "or a later one")
            image_id = self.stage_images[idx]
            if not image_id:
                raise InvalidParameter(f"invalid from flag value {src_from}: the stage has no filesystem")
        else:
            image_id = (await self._image(src_from)).id
        c, _ = await self.containers.create(None, {
            "Image": image_id, "Cmd": ["#(nop) source of COPY --from"], "Entrypoint": [""],
            "Healthcheck": {"Test": ["NONE"]}, "HostConfig": {"NetworkMode": "none"}})
        try:
            async with self.files.root(c.id, live=False) as (root, _):
                yield root, None
        finally:
            await self._remove_quietly(c.id)

    # a step that adds a layer without running anything ------------------------

    async def _ensure_base(self, st: StageState) -> None:
        """`FROM scratch` has no image yet: an empty one to create containers from."""
        if st.image_id is None:
            st.image_id = self.images.commit_config(None, {"config": copy.deepcopy(st.config)}, None)
            st.config["Image"] = st.image_id

    async def _layer_step(self, st: StageState, probe: dict[str, Any], created_by: str,
                          make_tar: Callable[[str, Path], bool]) -> None:
        parent = st.image_id
        await self._ensure_base(st)
        c, _ = await self.containers.create(None, {
            **copy.deepcopy(st.config), "Image": st.image_id, "Cmd": probe["Cmd"], "Entrypoint": [""],
            "Healthcheck": {"Test": ["NONE"]}, "HostConfig": {"NetworkMode": "none"}})
        work = self.images.content.temp_dir("build-step-")
        tar_path = work / "layer.tar"
        try:
            async with self.files.root(c.id, live=False) as (rootfs, _):
                changed = await asyncio.to_thread(make_tar, rootfs, tar_path)
                if changed:
                    # into the layer, under a VOLUME path too (as the legacy builder's COPY)
                    await self.files.put(c.id, "/", _file_chunks(tar_path), copy_uid_gid=True,
                                         no_overwrite_dir_non_dir=False, with_mounts=False)
            config = copy.deepcopy(st.config)
            if changed:
                img = await self.images.commit_layer(
                    self.containers.ctr_dir(c.id) / "upper", st.image_id, config, container_id=c.id,
                    created_by=created_by, repo=None, tag=None, changes=[], comment="", author=st.maintainer)
                new_id = img.id
            else:
                new_id = self.images.commit_config(st.image_id, {"config": config, "container_config": probe},
                                                   {"created_by": created_by})
        finally:
            await self._remove_quietly(c.id)
            await asyncio.to_thread(shutil.rmtree, work, True)
        self.cache.record(parent, probe, new_id)
        st.image_id = new_id

    # RUN ---------------------------------------------------------------------

    async def _i_run(self, st: StageState, ins: Instruction) -> None:
        cmd = list(ins.args) if ins.json else st.shell + [ins.args[0]]
        allowed = self._allowed_args(st)
        build_env = [f"{k}={v}" for k, v in sorted(allowed.items())]
        save_cmd = cmd
        if allowed:
            # dockerd keeps proxy args out of the cache key (and the history) unless declared
            shown = [f"{k}={v}" for k, v in sorted(allowed.items()) if k in st.args or k not in BUILTIN_ARGS]
            save_cmd = [f"|{len(shown)}", *shown, *cmd]
        parent = st.image_id
        st.config["Image"] = st.image_id or ""
        probe = {**copy.deepcopy(st.config), "Cmd": save_cmd, "Entrypoint": None}
        if self._probe(st, probe):
            return
        await self._ensure_base(st)
        # the step's output is read back from its log, whatever the daemon's default driver
        hc: dict[str, Any] = {"NetworkMode": self.opts.network_mode or "default",
                              "LogConfig": {"Type": "json-file", "Config": {}}}
        hc.update(self.opts.resources)
        if self.opts.extra_hosts:
            hc["ExtraHosts"] = list(self.opts.extra_hosts)
        body = {**copy.deepcopy(st.config), "Image": st.image_id, "Cmd": cmd, "Entrypoint": [""],
                "Env": list(st.config.get("Env") or []) + build_env, "Healthcheck": {"Test": ["NONE"]},
                "AttachStdout": True, "AttachStderr": True, "HostConfig": hc}
        c, _ = await self.containers.create(None, body)
        self.tmp.append(c.id)
        self.out(f" ---> Running in {c.id[:12]}\n")
        waiter = self.containers.register_wait(c.id, "next-exit")
        await self.containers.start(c.id)
        _, records = self.containers.logs(c.id, LogQuery(follow=True))
        async for rec in records:
            text = rec.data.decode("utf-8", errors="replace")
            self.out(f"\x1b[91m{text}\x1b[0m" if rec.stream == STDERR else text)
        result = await waiter()
        code = int(result.get("StatusCode") or 0)
        if code != 0:
            raise StepFailed(f"The command '{' '.join(cmd)}' returned a non-zero code: {code}", code)
        img = await self.images.commit_layer(
            self.containers.ctr_dir(c.id) / "upper", st.image_id, copy.deepcopy(st.config), container_id=c.id,
            created_by=" ".join(save_cmd), repo=None, tag=None, changes=[], comment="", author=st.maintainer)
        self.cache.record(parent, probe, img.id)
        st.image_id = img.id
        if self.opts.rm:
            await self._remove_tmp(announce=True)

    # containers --------------------------------------------------------------

    async def _remove_tmp(self, announce: bool) -> None:
        for cid in list(self.tmp):
            ok = await self._remove_quietly(cid)
            self.tmp.remove(cid)
            if announce:
                self.out(f"Removing intermediate container {cid[:12]}\n" if ok else
                         f"Error removing intermediate container {cid[:12]}\n")

    async def _remove_quietly(self, cid: str) -> bool:
        try:
            await self.containers.remove(cid, force=True, volumes=True)
            return True
        except NotFound:
            return True
        except DockyardError as exc:
            log.warning("build: could not remove container %s: %s", cid[:12], exc.message)
            return False


def _cancelled() -> bool:
    task = asyncio.current_task()
    return bool(task and task.cancelling())


def _short(image_id: str | None) -> str:
    return image_id.partition(":")[2][:12] if image_id else ""


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    f = await asyncio.to_thread(open, path, "rb")
    try:
        while chunk := await asyncio.to_thread(f.read, CHUNK):
            yield chunk
    finally:
        f.close()
