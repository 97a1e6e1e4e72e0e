"""The Engine API spec (swagger 2.0) as JSON Schema, relaxed where dockerd itself departs from it.

Used by the API shape tests and by bench/api_fuzz (schemathesis' conform mode).  Where the spec
and a real dockerd disagree, dockyard follows dockerd, so the checks must too:

* Go marshals a nil slice or map as `null`: dockerd sends null for empty arrays/maps the spec
  calls non-nullable (Config.Env/Cmd/Entrypoint, EndpointSettings.Aliases/Links/DNSNames,
  HostConfig.Binds/CapAdd/..., ImageSummary.Labels, Volume.Options, IPAM.Options,
  SystemInfo.Warnings, GET /containers/{id}/changes with no change).  Every array and map
  (an object without fixed properties) becomes nullable; non-null values are still checked.
* Pointers in dockerd are null until set: ExecInspect.ExitCode before the process ran,
  HostConfig.MemorySwappiness (the reference dockerd shows "MemorySwappiness": null).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

_SPEC_REL = "shared/reference/engine-api/engine-api-v1.50.yaml"


def _find_spec() -> Path:
    """$DOCKYARD_ENGINE_SPEC, else ../shared next to this checkout, else the workplace's /work/shared."""
    candidates = [os.environ.get("DOCKYARD_ENGINE_SPEC"),
                  Path(__file__).resolve().parents[2].parent / _SPEC_REL, Path("/work") / _SPEC_REL]
    for c in candidates:
        if c and Path(c).is_file():
            return Path(c)
    return Path(__file__).resolve().parents[2].parent / _SPEC_REL


SPEC_PATH = _find_spec()


def load_spec(path: Path = SPEC_PATH) -> dict[str, Any]:
    import yaml

    return yaml.safe_load(path.read_text())


def docker_tolerant(spec: dict[str, Any]) -> dict[str, Any]:
    """A copy of the swagger spec with `x-nullable: true` where dockerd sends null."""
    spec = copy.deepcopy(spec)

    def relax(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") in ("array", "object") and "properties" not in node:
                node["x-nullable"] = True
            for v in node.values():
                relax(v)
        elif isinstance(node, list):
            for v in node:
                relax(v)

    relax(spec)
    exec_props = spec["paths"]["/exec/{id}/json"]["get"]["responses"][200]["schema"]["properties"]
    exec_props["ExitCode"]["x-nullable"] = True
    spec["definitions"]["Resources"]["properties"]["MemorySwappiness"]["x-nullable"] = True
    return spec


def to_json_schema(node: Any) -> Any:
    """swagger 2.0 → JSON Schema draft 4: `x-nullable` becomes a null alternative."""
    if isinstance(node, list):
        return [to_json_schema(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_json_schema(v) for k, v in node.items() if not k.startswith("x-")}
    if node.get("x-nullable"):
        if "$ref" in out:
            return {"anyOf": [{"$ref": out["$ref"]}, {"type": "null"}]}
        if "type" in out:
            out["type"] = [out["type"], "null"] if isinstance(out["type"], str) else [*out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def validator(spec: dict[str, Any], schema: dict[str, Any]):
    """A jsonschema validator for `schema` (a definition ref or a path's inline schema)."""
    import jsonschema

    root = {**to_json_schema(schema), "definitions": to_json_schema(spec["definitions"])}
    return jsonschema.Draft4Validator(root)
