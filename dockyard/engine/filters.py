"""Docker's `filters` query parameter: {"key": ["v", ...]} or {"key": {"v": true}}."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..errors import InvalidParameter


@dataclass
class Filters:
    values: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: str | None) -> "Filters":
        if raw is None or raw.strip() == "":
            return cls()
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InvalidParameter(f"invalid filter: {exc}") from None
        if not isinstance(data, dict):
            raise InvalidParameter("invalid filter: expected a JSON object")
        out: dict[str, list[str]] = {}
        for key, val in data.items():
            if isinstance(val, dict):
                out[key] = [k for k, on in val.items() if on]
            elif isinstance(val, list) and all(isinstance(v, str) for v in val):
                out[key] = list(val)
            elif isinstance(val, str):
                out[key] = [val]
            else:
                raise InvalidParameter(f"invalid filter value for {key!r}")
        return cls(out)

    def validate(self, allowed: set[str]) -> None:
        for key in self.values:
            if key not in allowed:
                raise InvalidParameter(f"invalid filter '{key}'")

    def get(self, key: str) -> list[str]:
        return self.values.get(key, [])

    def __contains__(self, key: str) -> bool:
        return key in self.values

    def bool_value(self, key: str) -> bool | None:
        vals = self.get(key)
        if not vals:
            return None
        v = vals[-1].lower()
        if v in ("1", "true"):
            return True
        if v in ("0", "false"):
            return False
        raise InvalidParameter(f"invalid filter '{key}={vals[-1]}'")

    def excluded_by_labels(self, labels: dict[str, str] | None) -> bool:
        """Any `label!` filter (`k` or `k=v`) that the labels match excludes the object."""
        labels = labels or {}
        for spec in self.get("label!"):
            k, sep, v = spec.partition("=")
            if k in labels and (not sep or labels[k] == v):
                return True
        return False

    def match_labels(self, labels: dict[str, str] | None, key: str = "label") -> bool:
        """Every `label` filter must match: `k` (present) or `k=v` (equal)."""
        labels = labels or {}
        for spec in self.get(key):
            k, sep, v = spec.partition("=")
            if k not in labels:
                return False
            if sep and labels[k] != v:
                return False
        return True
