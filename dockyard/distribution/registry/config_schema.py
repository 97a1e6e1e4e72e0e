"""A small declarative schema for the registry's YAML: every key is known, typed, or refused.

A schema is a nested dict of key -> node, where a node is a `Leaf` (a typed value),
a `Section` (a nested mapping), `ListOf` (a list of sections), `Notice` (accepted and
logged: a feature dockyard does without) or `Refused` (stops the start: a feature
that would change behaviour if silently ignored).  `check` walks a parsed YAML
document against it and returns the document with values converted (durations to
seconds, sizes to bytes); any unknown key raises ConfigError naming its full path.

`apply_env` applies Distribution's environment overrides (REGISTRY_STORAGE_S3_BUCKET=b
sets storage.s3.bucket) before the check, so they are validated the same way.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import yaml

from ... import goduration

log = logging.getLogger("dockyard.registry.config")


class ConfigError(ValueError):
    """A configuration the registry refuses to start with; the message names the key."""


@dataclass(frozen=True)
class Leaf:
    kind: str  # str | bool | int | duration | size | strlist | headers | map | any
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Section:
    keys: Mapping[str, Any]
    scalar: Callable[[Any], dict[str, Any]] | None = None  # a scalar spelling of the section


@dataclass(frozen=True)
class ListOf:
    item: Section


@dataclass(frozen=True)
class Notice:
    why: str


@dataclass(frozen=True)
class Refused:
    why: str


@dataclass
class Notices:
    lines: list[str] = field(default_factory=list)


_SIZE_RE = re.compile(r"^\s*(\d+)\s*([kmgt]i?b?|b)?\s*$", re.I)


def parse_duration(value: Any, where: str) -> float:
    """Go's time.ParseDuration ("10s", "1h30m", "168h") -> seconds.  Go's YAML reads a
    bare integer as nanoseconds, which nobody means: refuse it, asking for a unit."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigError(f"{where}: expected a duration such as 10s or 24h, got {value!r}")
    if isinstance(value, (int, float)):
        if value == 0:
            return 0.0
        raise ConfigError(f"{where}: {value!r} has no unit; write a duration such as {value}s or {value}h")
    ns = goduration.parse_ns(value)
    if ns is None:
        raise ConfigError(f"{where}: invalid duration {value!r} (examples: 500ms, 10s, 24h)")
    return ns / 1e9


def parse_size(value: Any, where: str) -> int:
    """Bytes, as an integer or with a unit (5MiB, 10MB are both binary here, as for chunk sizes)."""
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a size in bytes, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ConfigError(f"{where}: size must not be negative")
        return value
    m = _SIZE_RE.match(str(value))
    if not m:
        raise ConfigError(f"{where}: invalid size {value!r} (examples: 10485760, 10MiB)")
    unit = (m.group(2) or "b").lower()[0]
    return int(m.group(1)) * {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[unit]


def _bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ConfigError(f"{where}: expected true or false, got {value!r}")


def _leaf(node: Leaf, value: Any, where: str) -> Any:
    k = node.kind
    if k == "any":
        return value
    if k == "str":
        if isinstance(value, (dict, list)) or value is None:
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        s = str(value)
        if node.choices and s.lower() not in node.choices:
            raise ConfigError(f"{where}: {s!r} is not one of {', '.join(node.choices)}")
        return s.lower() if node.choices else s
    if k == "bool":
        return _bool(value, where)
    if k == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            try:
                return int(str(value))
            except ValueError:
                raise ConfigError(f"{where}: expected an integer, got {value!r}") from None
        return value
    if k == "duration":
        return parse_duration(value, where)
    if k == "size":
        return parse_size(value, where)
    if k == "strlist":
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
            raise ConfigError(f"{where}: expected a list of strings")
        return [str(v) for v in value]
    if k == "headers":  # Go's http.Header: name -> [values]; a single string is accepted too
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping of header names to lists of values")
        out: dict[str, list[str]] = {}
        for name, vals in value.items():
            vals = [vals] if isinstance(vals, (str, int, float)) else vals
            if not isinstance(vals, list) or not all(isinstance(v, (str, int, float)) for v in vals):
                raise ConfigError(f"{where}.{name}: expected a list of strings")
            out[str(name)] = [str(v) for v in vals]
        return out
    if k == "map":
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping")
        return value
    raise AssertionError(k)


def check(doc: Any, schema: Section, where: str, notices: Notices) -> dict[str, Any]:
    """Validate and convert `doc` against `schema` (see the module docstring)."""
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        if schema.scalar is not None and isinstance(doc, str):
            doc = schema.scalar(doc)
        else:
            raise ConfigError(f"{where or 'configuration'}: expected a mapping, got {doc!r}")
    out: dict[str, Any] = {}
    for key, value in doc.items():
        path = f"{where}.{key}" if where else str(key)
        node = schema.keys.get(str(key))
        if node is None:
            raise ConfigError(f"{path}: unknown configuration key")
        if isinstance(node, Refused):
            raise ConfigError(f"{path}: not supported by dockyard: {node.why}")
        if isinstance(node, Notice):
            notices.lines.append(f"{path}: accepted and ignored: {node.why}")
            continue
        if isinstance(node, Leaf):
            out[str(key)] = None if value is None else _leaf(node, value, path)
        elif isinstance(node, Section):
            out[str(key)] = check(value, node, path, notices)
        elif isinstance(node, ListOf):
            if value is None:
                value = []
            if not isinstance(value, list):
                raise ConfigError(f"{path}: expected a list")
            out[str(key)] = [check(v, node.item, f"{path}[{i}]", notices) for i, v in enumerate(value)]
        else:
            raise AssertionError(node)
    return out


# --- environment overrides --------------------------------------------------------

def _find_key(schema: Section, rest: str) -> str | None:
    """The schema key that `rest` (lower case, '_'-separated) starts with; the longest wins
    because dockyard's own keys may contain '_' (anonymous_pull)."""
    best = None
    for key in schema.keys:
        if (rest == key or rest.startswith(key + "_")) and (best is None or len(key) > len(best)):
            best = key
    return best


def apply_env(doc: dict[str, Any], schema: Section, env: Mapping[str, str], prefix: str = "REGISTRY_",
              driver_keys: frozenset[str] = frozenset()) -> dict[str, Any]:
    """REGISTRY_A_B_C=value sets a.b.c (value read as YAML, as Distribution does).  A variable
    whose first part names no section is ignored with a warning (container platforms set
    REGISTRY_PORT_5000_TCP and the like); one that names a section but no key there is an
    error.  Setting a storage driver's key (or REGISTRY_STORAGE=s3) replaces the driver."""
    for name in sorted(env):
        if not name.startswith(prefix) or name == prefix:
            continue
        rest = name[len(prefix):].lower()
        node: Any = schema
        path: list[str] = []
        while rest:
            if not isinstance(node, Section):
                break
            key = _find_key(node, rest)
            if key is None:
                if not path:
                    log.warning("ignoring environment variable %s: no configuration section %r", name, rest)
                    path = []
                    break
                raise ConfigError(f"{name}: {'.'.join(path)} has no key {rest!r}")
            path.append(key)
            node = node.keys[key]
            rest = rest[len(key) + 1:]
        if not path:
            continue
        if rest:
            raise ConfigError(f"{name}: {'.'.join(path)} has no key {rest!r}")
        value = yaml.safe_load(env[name]) if env[name] != "" else ""
        _set(doc, path, value, driver_keys)
    return doc


def _set(doc: dict[str, Any], path: list[str], value: Any, driver_keys: frozenset[str]) -> None:
    if path[0] == "storage":
        storage = doc.get("storage")
        if isinstance(storage, str):
            storage = {storage: {}}
        storage = dict(storage or {})
        if len(path) == 1 and isinstance(value, str) and value in driver_keys:
            # REGISTRY_STORAGE=s3: choose the driver, keep delete/redirect/maintenance.
            doc["storage"] = {k: v for k, v in storage.items() if k not in driver_keys} | {value: {}}
            return
        if len(path) >= 2 and path[1] in driver_keys:
            storage = {k: v for k, v in storage.items() if k not in driver_keys or k == path[1]}
        doc["storage"] = storage
    cur = doc
    for key in path[:-1]:
        nxt = cur.get(key)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[key] = nxt
        cur = nxt
    cur[path[-1]] = value
