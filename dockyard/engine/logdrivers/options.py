"""Parsing of log-opt values, with the messages dockerd gives for bad ones."""

from __future__ import annotations

import re

from ...errors import InvalidParameter

_SIZE = re.compile(r"^(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$")
_DECIMAL = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4, "p": 1000**5}


def human_size(value: str) -> int:
    """go-units FromHumanSize: decimal units (10m = 10,000,000 bytes), as dockerd parses max-size."""
    m = _SIZE.match(value.strip())
    if not m:
        raise InvalidParameter(f"invalid size: '{value}'")
    return int(float(m.group(1)) * _DECIMAL[(m.group(2) or "").lower()])


def go_atoi(value: str) -> int:
    if not re.fullmatch(r"[+-]?\d+", value):
        raise InvalidParameter(f'strconv.Atoi: parsing "{value}": invalid syntax')
    return int(value)


def go_bool(value: str) -> bool:
    """strconv.ParseBool's accepted spellings."""
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise InvalidParameter(f'strconv.ParseBool: parsing "{value}": invalid syntax')
