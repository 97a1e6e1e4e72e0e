"""`labels`, `env`, their `-regex` forms and the `tag` template (dockerd's loggerutils)."""

from __future__ import annotations

import json
import logging
import re
import socket
from datetime import datetime, timezone

from ...errors import InvalidParameter
from ...gotemplate_exec import NO_VALUE, GoFunc, GoStruct, render
from .base import ContainerInfo

DEFAULT_TAG = "{{.ID}}"

log = logging.getLogger(__name__)


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


def _title(s: str) -> str:
    """strings.Title: each letter after a separator (not a letter, digit or `_`) upper-cased."""
    out, prev_sep = [], True
    for c in s:
        out.append(c.upper() if prev_sep and c.isalpha() else c)
        prev_sep = not (c.isalnum() or c == "_")
    return "".join(out)


def _json(v: object) -> str:
    """json.Encoder with SetEscapeHTML(false), trailing newline trimmed."""
    return json.dumps(None if v is NO_VALUE else v, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _truncate(s: str, n: int) -> str:
    b = s.encode()
    return s if len(b) < n else b[:n].decode(errors="replace")


# daemon/logger/templates' functions
TAG_FUNCS = {
    "json": GoFunc(_json, ("any",)), "split": GoFunc(lambda s, sep: s.split(sep) if sep else list(s),
                                                     ("string", "string")),
    "join": GoFunc(lambda xs, sep: sep.join(xs), ("[]string", "string")),
    "title": GoFunc(_title, ("string",)), "lower": GoFunc(str.lower, ("string",)),
    "upper": GoFunc(str.upper, ("string",)),
    "pad": GoFunc(lambda s, a, b: s and " " * a + s + " " * b, ("string", "int", "int")),
    "truncate": GoFunc(_truncate, ("string", "int")),
}


def go_time(rfc3339: str) -> GoStruct:
    """A time.Time for templates, from inspect's `Created` (UTC, up to nanoseconds); Go's zero time
    when there is none.  Prints as Go's Time.String; Unix, Year and IsZero as Go's."""
    m = re.match(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?Z$", rfc3339)
    if not m:
        return GoStruct("time.Time", methods={"String": lambda: "0001-01-01 00:00:00 +0000 UTC",
                                               "Unix": lambda: -62135596800, "Year": lambda: 1,
                                               "IsZero": lambda: True})
    year, mon, day, hh, mm, ss = (int(x) for x in m.groups()[:6])
    frac = (m.group(7) or "").rstrip("0")
    text = f"{year:04d}-{mon:02d}-{day:02d} {hh:02d}:{mm:02d}:{ss:02d}{'.' + frac if frac else ''} +0000 UTC"
    unix = int(datetime(year, mon, day, hh, mm, ss, tzinfo=timezone.utc).timestamp())
    return GoStruct("time.Time", methods={"String": lambda: text, "Unix": lambda: unix,
                                           "Year": lambda: year, "IsZero": lambda: False})


def _short(image_id: str) -> str:
    """stringid.TruncateID: past any `algo:`, 12 characters."""
    return image_id.split(":", 1)[-1][:12]


def logger_info(info: ContainerInfo, opts: dict[str, str]) -> GoStruct:
    """A *logger.Info as templates see it: its fields and methods."""
    fields = {"Config": dict(opts), "ContainerID": info.id, "ContainerName": "/" + info.name,
              "ContainerEntrypoint": info.entrypoint, "ContainerArgs": list(info.args),
              "ContainerCreated": go_time(info.created),
              "ContainerImageID": info.image_id,
              "ContainerImageName": info.image_name, "ContainerEnv": list(info.env),
              "ContainerLabels": dict(info.labels), "LogPath": info.log_path, "DaemonName": info.daemon_name}
    methods = {"ID": lambda: info.id[:12], "FullID": lambda: info.id, "Name": lambda: info.name,
               "ImageID": lambda: _short(info.image_id), "ImageFullID": lambda: info.image_id,
               "ImageName": lambda: info.image_name,
               "Command": lambda: " ".join([info.entrypoint, *info.args]),
               "Hostname": socket.gethostname,
               "ExtraAttributes": lambda _keymod=None: extra_attributes(info, opts)}
    return GoStruct("*logger.Info", fields, methods)


def parse_tag(info: ContainerInfo, opts: dict[str, str], default: str) -> str:
    """Expand the `tag` template as dockerd does: Go's text/template ("log-tag") on a *logger.Info.

    The template passed gotemplate.check at create; should running it still fail here (what
    dockyard does not model), the records keep flowing under the template's plain fields."""
    template = opts.get("tag") or default
    try:
        return render("log-tag", template, TAG_FUNCS, logger_info(info, opts))
    except InvalidParameter as exc:
        log.warning("log tag %r: %s; using its plain fields only", template, exc)
        fields = logger_info(info, opts)
        return _FIELD.sub(lambda m: str(fields.methods[m.group(1)]()) if m.group(1) in fields.methods
                          else m.group(0), template)


_FIELD = re.compile(r"\{\{\s*\.(\w+)\s*\}\}")
