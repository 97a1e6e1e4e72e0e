"""`labels`, `env`, their `-regex` forms and the `tag` template (dockerd's loggerutils)."""

from __future__ import annotations

import re

from ...errors import InvalidParameter
from .base import ContainerInfo

DEFAULT_TAG = "{{.ID}}"


def extra_attributes(info: ContainerInfo, opts: dict[str, str]) -> dict[str, str]:
    """The attributes json-file and local add to each record when labels/env opts ask."""
    out: dict[str, str] = {}
    for key in filter(None, (opts.get("labels") or "").split(",")):
        if key in info.labels:
            out[key] = info.labels[key]
    if opts.get("labels-regex"):
        rx = _regex(opts["labels-regex"])
        out.update({k: v for k, v in info.labels.items() if rx.search(k)})
    env = dict(e.split("=", 1) if "=" in e else (e, "") for e in info.env)
    for key in filter(None, (opts.get("env") or "").split(",")):
        if key in env:
            out[key] = env[key]
    if opts.get("env-regex"):
        rx = _regex(opts["env-regex"])
        out.update({k: v for k, v in env.items() if rx.search(k)})
    return out


def _regex(expr: str) -> re.Pattern:
    try:
        return re.compile(expr)
    except re.error as exc:
        raise InvalidParameter(f"error parsing regexp: {exc}") from None


_FIELD = re.compile(r"\{\{\s*\.(\w+)\s*\}\}")


def parse_tag(info: ContainerInfo, opts: dict[str, str], default: str) -> str:
    """Expand the `tag` template ({{.ID}}, {{.FullID}}, {{.Name}}, {{.ImageName}}…)."""
    template = opts.get("tag") or default
    values = {
        "ID": info.id[:12], "FullID": info.id, "Name": info.name,
        "ImageID": info.image_id.removeprefix("sha256:")[:12], "ImageFullID": info.image_id,
        "ImageName": info.image_name, "DaemonName": info.daemon_name,
    }

    def sub(m: re.Match) -> str:
        if m.group(1) not in values:
            raise InvalidParameter(
                f'template: log-tag:1:2: executing "log-tag" at <.{m.group(1)}>: '
                f"can't evaluate field {m.group(1)} in type *logger.Info")
        return values[m.group(1)]

    return _FIELD.sub(sub, template)
