"""Docker's Config/HostConfig → an OCI runtime spec (config.json) for runc.

Pure apart from reading the engine's own capability set and rlimits (and
stat-ing devices/bind sources): everything the container service already
resolved — rootfs, network namespace, /etc files, cgroup resources, user —
comes in as arguments.  The result follows dockerd's defaults: the default
capability set, Docker's seccomp filter, masked and read-only paths, a
private /dev with devpts, mqueue and a sized /dev/shm.

Network namespace (`netns_path`):
  None   share the host's (NetworkMode "host")
  ""     a fresh, empty namespace created by runc (loopback only)
  path   join the namespace the network service prepared
"""

from __future__ import annotations

import os
import posixpath

from dockyard.errors import InvalidParameter
from dockyard.oci import capabilities as capmod
from dockyard.oci import linux_defaults, rlimits, seccomp

OCI_VERSION = "1.0.2-dev"
INIT_PATH_IN_CONTAINER = "/sbin/docker-init"

_BIND_MODES_RW = {"rw", "ro"}
_PROPAGATIONS = {"shared", "rshared", "slave", "rslave", "private", "rprivate"}
_LABELS = {"z", "Z"}
_IGNORED_MODES = {"nocopy", "consistent", "cached", "delegated"}
_TMPFS_DEFAULT = ["noexec", "nosuid", "nodev"]

# Sysctls Docker lets a container set (they are namespaced).
_IPC_SYSCTLS = {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"}


# ------------------------------------------------------------------ mounts

def _clean_dest(dest: str, kind: str) -> str:
    if not dest:
        raise InvalidParameter(f'invalid mount config for type "{kind}": field Target must not be empty')
    if not dest.startswith("/"):
        raise InvalidParameter(
            f"invalid mount config for type \"{kind}\": invalid mount path: '{dest}' mount path must be absolute")
    dest = posixpath.normpath(dest)
    if dest == "/":
        raise InvalidParameter("invalid specification: destination can't be '/'")
    return dest


def parse_bind(spec: str) -> dict:
    """One HostConfig.Binds entry "src:dst[:mode]" →
    {source, destination, named, read_only, propagation}."""
    if not isinstance(spec, str) or not spec:
        raise InvalidParameter(f"invalid volume specification: '{spec}'")
    parts = spec.split(":")
    if len(parts) == 1:
        # "/data" alone is an anonymous volume: the volume service's business.
        raise InvalidParameter(f"invalid volume specification: '{spec}': anonymous volumes are not supported here")
    if len(parts) > 3:
        raise InvalidParameter(f"invalid volume specification: '{spec}'")
    source, dest = parts[0], parts[1]
    mode = parts[2] if len(parts) == 3 else ""
    if not source or not dest:
        raise InvalidParameter(f"invalid volume specification: '{spec}'")
    if not dest.startswith("/"):
        raise InvalidParameter(
            f"invalid volume specification: '{spec}': invalid mount config for type \"bind\": "
            f"invalid mount path: '{dest}' mount path must be absolute")
    if posixpath.normpath(dest) == "/":
        raise InvalidParameter(f"invalid volume specification: '{spec}': invalid specification: destination can't be '/'")
    read_only = False
    propagation = "rprivate"
    seen_rw = seen_prop = seen_label = False
    for m in [m for m in mode.split(",") if m] if mode else []:
        if m in _BIND_MODES_RW and not seen_rw:
            seen_rw, read_only = True, (m == "ro")
        elif m in _PROPAGATIONS and not seen_prop:
            seen_prop, propagation = True, m
        elif m in _LABELS and not seen_label:
            seen_label = True  # SELinux relabel: no SELinux here
        elif m in _IGNORED_MODES:
            pass
        else:
            raise InvalidParameter(f"invalid mode: {mode}")
    named = not source.startswith("/")
    if named and ("/" in source or source in (".", "..")):
        raise InvalidParameter(
            f"invalid volume specification: '{spec}': \"{source}\" includes invalid characters for a local "
            "volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host "
            "directory, use absolute path")
    return {"source": source if named else posixpath.normpath(source),
            "destination": posixpath.normpath(dest), "named": named,
            "read_only": read_only, "propagation": propagation}


def _tmpfs_options(opts: str | None) -> list[str]:
    """Docker merges user tmpfs options over noexec,nosuid,nodev."""
    result = list(_TMPFS_DEFAULT)
    for o in [o.strip() for o in (opts or "").split(",") if o.strip()]:
        key = o.split("=", 1)[0]
        opposite = {"exec": "noexec", "noexec": "exec", "suid": "nosuid", "nosuid": "suid",
                    "dev": "nodev", "nodev": "dev", "ro": "rw", "rw": "ro"}.get(o)
        result = [r for r in result if r != opposite and r.split("=", 1)[0] != key]
        result.append(o)
    for o in result:
        key = o.split("=", 1)[0]
        if key not in {"exec", "noexec", "suid", "nosuid", "dev", "nodev", "ro", "rw", "size", "mode",
                       "uid", "gid", "nr_inodes", "nr_blocks", "mpol", "sync", "async", "atime",
                       "noatime", "relatime", "norelatime", "strictatime", "nostrictatime",
                       "diratime", "nodiratime", "tmpcopyup", "notmpcopyup", "huge"}:
            raise InvalidParameter(f"invalid tmpfs option {o!r}")
    return result


def user_mounts(host_config: dict, volume_paths: dict[str, str] | None = None,
                *, create_missing_bind_sources: bool = True) -> list[dict]:
    """HostConfig Binds + Mounts + Tmpfs → OCI mounts, parents before children."""
    volume_paths = volume_paths or {}
    out: list[dict] = []
    seen: set[str] = set()

    def add(mount: dict) -> None:
        if mount["destination"] in seen:
            raise InvalidParameter(f"Duplicate mount point: {mount['destination']}")
        seen.add(mount["destination"])
        out.append(mount)

    def volume_source(name: str) -> str:
        if name not in volume_paths:
            raise InvalidParameter(f"no such volume: {name}")
        return volume_paths[name]

    for spec in host_config.get("Binds") or []:
        b = parse_bind(spec)
        if b["named"]:
            source = volume_source(b["source"])
        else:
            source = b["source"]
            if not os.path.exists(source):
                if not create_missing_bind_sources:
                    raise InvalidParameter(
                        f'invalid mount config for type "bind": bind source path does not exist: {source}')
                try:  # Docker creates a missing Binds source as a directory
                    os.makedirs(source, mode=0o755, exist_ok=True)
                except OSError as e:
                    raise InvalidParameter(f"error while creating mount source path '{source}': {e.strerror}") from None
        opts = ["rbind", b["propagation"]]
        if b["read_only"]:
            opts.append("ro")
        add({"destination": b["destination"], "type": "bind", "source": source, "options": opts})

    for m in host_config.get("Mounts") or []:
        if not isinstance(m, dict):
            raise InvalidParameter("invalid mount config: expected an object")
        kind = m.get("Type") or ""
        dest = _clean_dest(m.get("Target") or "", kind or "bind")
        ro = bool(m.get("ReadOnly"))
        if kind == "bind":
            source = m.get("Source") or ""
            if not source:
                raise InvalidParameter('invalid mount config for type "bind": field Source must not be empty')
            if not source.startswith("/"):
                raise InvalidParameter(
                    f"invalid mount config for type \"bind\": invalid mount path: '{source}' mount path must be absolute")
            if not os.path.exists(source):
                opts_b = m.get("BindOptions") or {}
                if opts_b.get("CreateMountpoint"):
                    os.makedirs(source, exist_ok=True)
                else:
                    raise InvalidParameter(
                        f'invalid mount config for type "bind": bind source path does not exist: {source}')
            bo = m.get("BindOptions") or {}
            prop = bo.get("Propagation") or "rprivate"
            if prop not in _PROPAGATIONS:
                raise InvalidParameter(f'invalid mount config for type "bind": invalid propagation mode: {prop}')
            opts = ["bind" if bo.get("NonRecursive") else "rbind", prop]
            if ro:
                opts.append("ro")
            add({"destination": dest, "type": "bind", "source": posixpath.normpath(source), "options": opts})
        elif kind == "volume":
            name = m.get("Source") or ""
            if not name:
                raise InvalidParameter("invalid mount config for type \"volume\": anonymous volumes are not supported here")
            opts = ["rbind", "rprivate"] + (["ro"] if ro else [])
            add({"destination": dest, "type": "bind", "source": volume_source(name), "options": opts})
        elif kind == "tmpfs":
            if m.get("Source"):
                raise InvalidParameter('invalid mount config for type "tmpfs": field Source must not be specified')
            to = m.get("TmpfsOptions") or {}
            opts = list(_TMPFS_DEFAULT)
            if to.get("SizeBytes"):
                size = int(to["SizeBytes"])
                if size < 0:
                    raise InvalidParameter('invalid mount config for type "tmpfs": invalid size')
                opts.append(f"size={size}")
            if to.get("Mode"):
                opts.append(f"mode={int(to['Mode']):o}")
            if ro:
                opts.append("ro")
            add({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": opts})
        else:
            raise InvalidParameter(f"mount type unknown or not supported: {kind!r}")

    for dest, opts in (host_config.get("Tmpfs") or {}).items():
        d = _clean_dest(dest, "tmpfs")
        add({"destination": d, "type": "tmpfs", "source": "tmpfs", "options": _tmpfs_options(opts)})

    # Parents before children, like dockerd's sort by path depth.
    out.sort(key=lambda mt: mt["destination"].rstrip("/").count("/"))
    return out


# ---------------------------------------------------------- security options

def parse_security_opt(opts: list[str] | None) -> dict:
    """→ {"no_new_privileges": bool, "seccomp": None | "unconfined" | profile dict}."""
    result: dict = {"no_new_privileges": False, "seccomp": None}
    for opt in opts or []:
        if not isinstance(opt, str):
            raise InvalidParameter(f"Invalid --security-opt: {opt!r}")
        if opt == "no-new-privileges":
            result["no_new_privileges"] = True
            continue
        if "=" in opt:
            key, value = opt.split("=", 1)
        elif ":" in opt:  # legacy "label:..." / "seccomp:..." syntax
            key, value = opt.split(":", 1)
        else:
            raise InvalidParameter(f"Invalid --security-opt: {opt!r}")
        if key == "no-new-privileges":
            if value.lower() not in ("true", "false", "1", "0"):
                raise InvalidParameter(f"invalid --security-opt 2: {opt!r}")
            result["no_new_privileges"] = value.lower() in ("true", "1")
        elif key == "seccomp":
            if value == "unconfined":
                result["seccomp"] = "unconfined"
            elif value == "builtin" or value == "":
                result["seccomp"] = None
            else:
                result["seccomp"] = seccomp.load_profile(value)
        elif key in ("apparmor", "label"):
            pass  # no AppArmor/SELinux on this host: accepted and ignored, like a host without them
        elif key == "systempaths":
            if value != "unconfined":
                raise InvalidParameter(f"invalid --security-opt: {opt!r}")
            result["systempaths_unconfined"] = True
        elif key == "writable-cgroups":
            if value.lower() not in ("true", "false"):
                raise InvalidParameter(f"invalid --security-opt: {opt!r}")
            result["writable_cgroups"] = value.lower() == "true"
        else:
            raise InvalidParameter(f"Invalid --security-opt: {opt!r}")
    return result


def _validate_sysctls(sysctls: dict, *, host_net: bool, host_ipc: bool, host_uts: bool) -> dict:
    out: dict = {}
    for key, value in (sysctls or {}).items():
        ok = (key in _IPC_SYSCTLS or key.startswith("fs.mqueue.")) and not host_ipc
        if key in ("kernel.domainname", "kernel.hostname") and not host_uts:
            ok = True
        if key.startswith("net.") and not host_net:
            ok = True
        if not ok:
            if key.startswith("net.") and host_net:
                raise InvalidParameter(f"sysctl '{key}' not allowed in host network namespace")
            raise InvalidParameter(f"sysctl '{key}' is not allowed")
        out[key] = str(value)
    return out


# --------------------------------------------------------------- the builder

def build_spec(config: dict, host_config: dict, *, rootfs: str, hostname: str,
               netns_path: str | None,
               etc_files: dict[str, str],
               cgroups_path: str, cgroup_resources: dict, user: tuple[int, int, list[int]],
               env: list[str], args: list[str], cwd: str, init_path: str | None = None,
               engine_caps: list[str] | None = None,
               volume_paths: dict[str, str] | None = None,
               cgroup_version: int | None = None,
               pid_ns_path: str | None = None,
               ipc_ns_path: str | None = None, shm_source: str | None = None) -> dict:
    """The config.json for one container.

    `volume_paths` maps named volumes used in Binds/Mounts to host paths;
    `cgroup_version` defaults to what this host runs (v2: private cgroup
    namespace, v1: the host's, as dockerd does).  `ipc_ns_path` is the IPC
    namespace an IpcMode `container:<id>` joins, `shm_source` a host path bound at /dev/shm.
    """
    config = config or {}
    hc = host_config or {}
    if not args:
        raise InvalidParameter("No command specified")
    privileged = bool(hc.get("Privileged"))
    if engine_caps is None:
        engine_caps = capmod.engine_capabilities()
    if cgroup_version is None:
        cgroup_version = 2 if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else 1

    caps = capmod.container_capabilities(hc.get("CapAdd"), hc.get("CapDrop"), privileged, engine_caps)
    sec = parse_security_opt(hc.get("SecurityOpt"))

    # -- namespaces
    ipc_mode = hc.get("IpcMode") or "private"
    pid_mode = hc.get("PidMode") or ""
    uts_mode = hc.get("UTSMode") or ""
    cgroupns_mode = hc.get("CgroupnsMode") or ("private" if cgroup_version == 2 else "host")
    joins_ipc = ipc_mode.startswith("container:") and ipc_ns_path
    if ipc_mode not in ("private", "shareable", "host", "none") and not joins_ipc:
        raise InvalidParameter(f"invalid IPC mode: {ipc_mode}")
    if pid_mode not in ("", "host", "private") and not (pid_mode.startswith("container:") and pid_ns_path):
        raise InvalidParameter(f"invalid PID mode: {pid_mode}")
    if uts_mode not in ("", "host", "private"):
        raise InvalidParameter(f"invalid UTS mode: {uts_mode}")
    if cgroupns_mode not in ("private", "host"):
        raise InvalidParameter(f"invalid cgroup namespace mode: {cgroupns_mode}")
    namespaces: list[dict] = [{"type": "mount"}]
    if netns_path is not None:
        namespaces.append({"type": "network", "path": netns_path} if netns_path else {"type": "network"})
    if uts_mode != "host":
        namespaces.append({"type": "uts"})
    if pid_ns_path:  # PidMode container:<id>: that container's namespace
        namespaces.append({"type": "pid", "path": pid_ns_path})
    elif pid_mode != "host":
        namespaces.append({"type": "pid"})
    if ipc_ns_path:  # IpcMode container:<id>: that container's namespace
        namespaces.append({"type": "ipc", "path": ipc_ns_path})
    elif ipc_mode != "host":
        namespaces.append({"type": "ipc"})
    if cgroupns_mode == "private":
        namespaces.append({"type": "cgroup"})

    # -- mounts: defaults, then /etc files, then the user's (user wins on clashes)
    user_mts = user_mounts(hc, volume_paths)
    user_dests = {m["destination"] for m in user_mts}
    shm_size = hc.get("ShmSize") or 0
    if shm_size and int(shm_size) < 0:
        raise InvalidParameter("SHM size can not be less than 0")
    mounts = [m for m in linux_defaults.default_mounts(
        shm_size=int(shm_size) or None, privileged=privileged,
        shm=ipc_mode != "none" and "/dev/shm" not in user_dests, host_ipc=ipc_mode == "host",
        shm_source=shm_source)
        if m["destination"] not in user_dests]
    for dest, source in sorted(etc_files.items()):
        if dest in user_dests:
            continue
        mounts.append({"destination": dest, "type": "bind", "source": source,
                       "options": ["rbind", "rprivate"]})
    if init_path:
        mounts.append({"destination": INIT_PATH_IN_CONTAINER, "type": "bind", "source": init_path,
                       "options": ["rbind", "rprivate", "ro"]})
        args = [INIT_PATH_IN_CONTAINER, "--", *args]
    mounts.extend(user_mts)

    # -- process
    uid, gid, extra_gids = user
    oom_adj = hc.get("OomScoreAdj") or 0
    if not -1000 <= int(oom_adj) <= 1000:
        raise InvalidParameter(f"Invalid value {oom_adj}, range for oom score adj is [-1000, 1000]")
    if int(oom_adj) < _engine_oom_score_adj() and "CAP_SYS_RESOURCE" not in engine_caps:
        raise InvalidParameter(
            f"OomScoreAdj {oom_adj} is lower than the engine's own ({_engine_oom_score_adj()}); "
            "lowering it needs CAP_SYS_RESOURCE, which the engine does not hold on this host")
    process: dict = {
        "terminal": bool(config.get("Tty")),
        "user": {"uid": int(uid), "gid": int(gid),
                 **({"additionalGids": [int(g) for g in extra_gids]} if extra_gids else {})},
        "args": list(args),
        "env": list(env),
        "cwd": cwd or "/",
        "capabilities": {"bounding": list(caps), "effective": list(caps),
                         "permitted": list(caps), "inheritable": []},
        "rlimits": rlimits.build_rlimits(hc.get("Ulimits")),
        "noNewPrivileges": bool(sec["no_new_privileges"]),
    }
    if int(oom_adj):
        process["oomScoreAdj"] = int(oom_adj)
    size = hc.get("ConsoleSize") or [0, 0]
    if process["terminal"] and isinstance(size, list) and len(size) == 2 and all(size):
        # the CLI's terminal size at create, so the first prompt is drawn right
        process["consoleSize"] = {"height": int(size[0]), "width": int(size[1])}
    if not process["cwd"].startswith("/"):
        raise InvalidParameter(f"the working directory '{process['cwd']}' is invalid, it needs to be an absolute path")

    # -- linux
    devices: list[dict] = []
    if privileged:
        devices = linux_defaults.host_devices()
        device_rules = linux_defaults.privileged_device_rules()
    else:
        device_rules = linux_defaults.default_device_rules()
    extra_devices, extra_rules = linux_defaults.user_devices(hc.get("Devices"))
    devices = [d for d in devices if d["path"] not in {e["path"] for e in extra_devices}] + extra_devices
    if not privileged:
        device_rules += extra_rules
        device_rules += [linux_defaults.parse_device_cgroup_rule(r) for r in hc.get("DeviceCgroupRules") or []]

    resources = dict(cgroup_resources or {})
    resources["devices"] = device_rules
    linux: dict = {
        "cgroupsPath": cgroups_path,
        "resources": resources,
        "namespaces": namespaces,
        "devices": devices,
        "sysctl": _validate_sysctls(hc.get("Sysctls") or {}, host_net=netns_path is None,
                                    host_ipc=ipc_mode == "host", host_uts=uts_mode == "host"),
    }
    if sec.get("writable_cgroups"):
        for m in mounts:
            if m["destination"] == "/sys/fs/cgroup":
                m["options"] = [o for o in m["options"] if o != "ro"] + ["rw"]
    if not privileged and not sec.get("systempaths_unconfined"):
        # The docker CLI turns `--security-opt systempaths=unconfined` into
        # MaskedPaths/ReadonlyPaths = [] itself; a list given (even empty) wins.
        masked, readonly = hc.get("MaskedPaths"), hc.get("ReadonlyPaths")
        for key, value in (("MaskedPaths", masked), ("ReadonlyPaths", readonly)):
            if value is not None and (not isinstance(value, list) or not all(
                    isinstance(p, str) and p.startswith("/") for p in value)):
                raise InvalidParameter(f"invalid {key}: expected a list of absolute paths")
        linux["maskedPaths"] = list(linux_defaults.MASKED_PATHS if masked is None else masked)
        linux["readonlyPaths"] = list(linux_defaults.READONLY_PATHS if readonly is None else readonly)
    if not privileged:
        if sec["seccomp"] is None:
            linux["seccomp"] = seccomp.default_profile(caps)
        elif sec["seccomp"] != "unconfined":
            linux["seccomp"] = seccomp.to_oci(sec["seccomp"], caps)
    elif isinstance(sec["seccomp"], dict):
        linux["seccomp"] = seccomp.to_oci(sec["seccomp"], caps)

    spec: dict = {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": rootfs, "readonly": bool(hc.get("ReadonlyRootfs"))},
        "mounts": mounts,
        "linux": linux,
        "annotations": {},
    }
    if uts_mode != "host":
        spec["hostname"] = hostname
        if config.get("Domainname"):
            spec["domainname"] = config["Domainname"]
    return spec


def _engine_oom_score_adj() -> int:
    try:
        with open("/proc/self/oom_score_adj") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return 0
