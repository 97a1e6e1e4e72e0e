"""Fuzz a private dockyard engine with schemathesis against the Engine API v1.50 spec.

    python bench/api_fuzz/run.py robust  [--secs 300] [--phases coverage,fuzzing,stateful]
    python bench/api_fuzz/run.py conform [--secs 120]
    python bench/api_fuzz/run.py destructive [--secs 120]

The engine gets real objects first (busybox image + a tag, a created, a running and an exited
container, an exec instance, a user network, a volume) and schemathesis is told their ids through
a generated schemathesis.toml: path parameters are bound to those ids most of the time, random
otherwise, so requests reach the handlers' logic instead of a 404.

robust       many operations (no start/restart/unpause/exec start/attach/build/push/pull/swarm), check
             not_a_server_error only: a 5xx is always a bug.
conform      the read operations, with response_schema/content_type/status_code conformance.
destructive  DELETE and prune operations (they remove the fixtures, so they run on their own).

Operations that would run arbitrary commands stay out; the running fixture container is only
ever killed/paused/stopped/updated/renamed by the fuzzer.  Report: bench/results/api-fuzz-<mode>-<ts>.txt
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "integration"))

from engine_harness import EngineProcess  # noqa: E402

from dockyard.testing.apispec import SPEC_PATH  # noqa: E402
from dockyard.testing.busybox import make_busybox_rootfs_tar  # noqa: E402

# $SPEC, else where the tests find it (../shared next to the checkout, or /work/shared from a worktree)
SPEC = Path(os.environ.get("SPEC", SPEC_PATH))

# Never: they run arbitrary commands, stream forever, or reach outside the machine.
NEVER = ("ContainerStart|ContainerRestart|ContainerUnpause|ExecStart|ImageBuild|BuildPrune|Swarm|Plugin|"
         "Service|Node|Secret|Config|Session|Distribution|ImagePush|ImageCreate|SystemAuth|ContainerAttach|"
         "ContainerWait|ImageLoad|ImageSearch|Task|GetPluginPrivileges")
DESTRUCTIVE = "Delete|Prune"  # ContainerDelete, ImageDelete, NetworkDelete, VolumeDelete, *Prune
READ_OPS = ["ContainerList", "ContainerInspect", "ImageList", "ImageInspect", "ImageHistory", "NetworkList",
            "NetworkInspect", "VolumeList", "VolumeInspect", "SystemInfo", "SystemVersion", "SystemDataUsage",
            "ExecInspect", "SystemPing", "ContainerTop", "ContainerChanges"]


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def make_fixtures(eng: EngineProcess) -> dict[str, list[str]]:
    with tempfile.TemporaryDirectory() as td:
        tar = make_busybox_rootfs_tar(Path(td) / "rootfs.tar")
        eng.cli("import", str(tar), "busybox:latest", timeout=120, check=True)
    api = eng.api()
    api.tag("busybox:latest", "fz-img", "1")
    created = api.create_container("busybox:latest", ["sleep", "1000"], name="fz-created",
                                   labels={"fz": "1"}, volumes=["/data"])["Id"]
    running = api.create_container("busybox:latest", ["sleep", "100000"], name="fz-running",
                                   host_config=api.create_host_config(port_bindings={80: None}))["Id"]
    api.start(running)
    exited = api.create_container("busybox:latest", ["sh", "-c", "echo hi > /f"], name="fz-exited")["Id"]
    api.start(exited)
    api.wait(exited, timeout=30)
    exec_id = api.exec_create(running, ["true"])["Id"]
    net = api.create_network("fz-net", driver="bridge", labels={"fz": "1"})["Id"]
    api.create_volume("fz-vol", labels={"fz": "1"})
    img = api.inspect_image("busybox:latest")["Id"]
    return {
        "containers": [created, running, exited, "fz-running", running[:12]],
        "images": ["busybox:latest", "fz-img:1", img, img.split(":")[1][:12]],
        "networks": [net, "fz-net", "bridge", "none", "host"],
        "volumes": ["fz-vol"],
        "execs": [exec_id],
        "running": [running],
    }


def toml_str(v: str) -> str:
    return json.dumps(v)


def write_config(path: Path, fx: dict[str, list[str]], probability: float) -> None:
    lines = []
    for name, values in fx.items():
        lines.append(f"[dictionaries.{name}]")
        lines.append("values = [" + ", ".join(toml_str(v) for v in values) + "]")
    lines.append("")

    def op(regex: str, key: str, dictionary: str) -> None:
        lines.append("[[operations]]")
        lines.append(f"include-path-regex = {toml_str(regex)}")
        lines.append(f"parameters = {{ {toml_str(key)} = {{ dictionary = {toml_str(dictionary)}, "
                     f"probability = {probability} }} }}")

    # Streams that would never end get one-shot variants only (an `until` in the past, no follow,
    # stream=false); every other parameter of theirs is still fuzzed.  schemathesis takes the
    # first matching [[operations]] entry, so these come first and carry the id binding too.
    binding = f"{{ dictionary = \"containers\", probability = {probability} }}"
    fixed = [("^/events$", {"query.until": "1"}),
             ("^/containers/\\{id\\}/logs$", {"query.follow": False}),
             ("^/containers/\\{id\\}/stats$", {"query.stream": False})]
    for regex, params in fixed:
        lines.append("[[operations]]")
        lines.append(f"include-path-regex = {toml_str(regex)}")
        items = [f"{toml_str(k)} = {json.dumps(v)}" for k, v in params.items()]
        if "{id}" in regex.replace("\\", ""):
            items.append(f"\"path.id\" = {binding}")
        lines.append("parameters = { " + ", ".join(items) + " }")
    op("^/containers/\\{id\\}", "path.id", "containers")
    op("^/images/\\{name\\}", "path.name", "images")
    op("^/networks/\\{id\\}", "path.id", "networks")
    op("^/volumes/\\{name\\}", "path.name", "volumes")
    op("^/exec/\\{id\\}", "path.id", "execs")
    op("^/commit$", "query.container", "containers")
    op("^/containers/create$", "body.Image", "images")
    path.write_text("\n".join(lines) + "\n")


def docker_tolerant_spec(src: Path, dst: Path) -> None:
    """The spec relaxed where dockerd itself departs from it (dockyard/testing/apispec.py says
    where and why), plus the statuses dockerd answers that the spec leaves out: GET operations
    answer 400 for a malformed query parameter or reference, and GET /containers/{id}/top 409
    for a stopped container.  So the conform mode reports only where dockyard differs from Docker."""
    import yaml

    from dockyard.testing.apispec import docker_tolerant, load_spec

    spec = docker_tolerant(load_spec(src))
    err = {"description": "bad parameter", "schema": {"$ref": "#/definitions/ErrorResponse"}}
    for ops in spec["paths"].values():
        if "get" in ops:
            ops["get"]["responses"].setdefault(400, err)
    spec["paths"]["/containers/{id}/top"]["get"]["responses"].setdefault(
        409, {"description": "container is not running", "schema": {"$ref": "#/definitions/ErrorResponse"}})
    dst.write_text(yaml.safe_dump(spec, sort_keys=False))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["robust", "conform", "destructive"])
    ap.add_argument("--secs", type=int, default=300)
    ap.add_argument("--phases", default=None)
    ap.add_argument("--probability", type=float, default=0.8)
    ap.add_argument("--workers", default="2")
    ap.add_argument("--strict-spec", action="store_true",
                    help="conform: check against the spec as written, not relaxed where dockerd departs from it")
    ap.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more schemathesis args")
    args = ap.parse_args()
    if not SPEC.exists():
        print(f"spec not found: {SPEC}", file=sys.stderr)
        return 2

    port = free_port()
    eng = EngineProcess(extra_args=["-H", f"tcp://127.0.0.1:{port}"])
    results = REPO / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    out = results / f"api-fuzz-{args.mode}-{time.strftime('%Y%m%d-%H%M%S')}.txt"
    try:
        eng.start()
        fx = make_fixtures(eng)
        cfg = eng.root / "schemathesis.toml"
        write_config(cfg, fx, args.probability)
        spec = SPEC
        if args.mode == "conform" and not args.strict_spec:
            spec = eng.root / "engine-api-docker-tolerant.yaml"
            docker_tolerant_spec(SPEC, spec)
        cmd = ["schemathesis", "--config-file", str(cfg), "run", str(spec), "-u", f"http://127.0.0.1:{port}/v1.50",
               "--max-time", str(args.secs), "-w", args.workers, "--max-failures", "500",
               "--suppress-health-check", "all", "--request-timeout", "30"]
        if args.mode == "robust":
            cmd += ["--checks", "not_a_server_error", "--phases", args.phases or "coverage,fuzzing,stateful",
                    "--exclude-operation-id-regex", f"{NEVER}|{DESTRUCTIVE}"]
        elif args.mode == "destructive":
            cmd += ["--checks", "not_a_server_error", "--phases", args.phases or "coverage,fuzzing",
                    "--include-operation-id-regex", DESTRUCTIVE, "--exclude-operation-id-regex", NEVER]
        else:
            cmd += ["--checks", "not_a_server_error,response_schema_conformance,content_type_conformance,"
                                "status_code_conformance",
                    "--phases", args.phases or "coverage,fuzzing",
                    "--include-operation-id-regex", "^(" + "|".join(READ_OPS) + ")$"]
        cmd += args.extra
        print(" ".join(cmd), flush=True)
        with open(out, "w") as f:
            f.write("# fixtures: " + json.dumps(fx) + "\n# " + " ".join(cmd) + "\n")
            f.flush()
            rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=eng.root).returncode
        # the engine's side of each 5xx (tracebacks) sits next to the report
        import shutil
        shutil.copy(eng.log_path, out.with_suffix(".engine.log"))
        print(open(out).read()[-3000:])
        print(f"report: {out} (exit {rc})")
        return rc
    finally:
        eng.cleanup()


if __name__ == "__main__":
    sys.exit(main())
