""".dockerignore patterns, matched as Docker's patternmatcher matches them.

The docker CLI and docker-py already leave ignored files out of the context they send; the
builder applies the same rules again so that a raw API client gets the same result.

Rules: one pattern a line, `#` comments, `!` re-includes, paths are cleaned and relative to the
context root; `*` and `?` stay within one path segment, `**` spans any number of them; a pattern
that matches a directory matches everything below it.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass


@dataclass
class _Pattern:
    text: str
    exclusion: bool
    regex: re.Pattern[str]


def _compile(pattern: str) -> re.Pattern[str]:
    out = ["^"]
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                i += 1
                if i + 1 >= n:
                    out.append(".*")
                elif pattern[i + 1] == "/":
                    i += 1
                    out.append("(.*/)?")
                else:
                    out.append(".*")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1:end].replace("\\", "\\\\")
                out.append("[" + body + "]")
                i = end
        else:
            out.append(re.escape(ch))
        i += 1
    out.append("$")
    return re.compile("".join(out))


def read_patterns(text: str) -> list[str]:
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        out.append(line)
    return out


class IgnoreMatcher:
    def __init__(self, patterns: list[str]) -> None:
        self.patterns: list[_Pattern] = []
        for p in patterns:
            exclusion = p.startswith("!")
            if exclusion:
                p = p[1:].strip()
            p = posixpath.normpath(p).lstrip("/") if p else p
            if not p or p == ".":
                continue
            self.patterns.append(_Pattern(p, exclusion, _compile(p)))

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def ignored(self, path: str) -> bool:
        """Is `path` (relative to the context root, '/'-separated) left out?"""
        path = posixpath.normpath(path).lstrip("/")
        if path in ("", "."):
            return False
        parents = path.split("/")[:-1]
        matched = False
        for p in self.patterns:
            if p.exclusion != matched:
                continue
            hit = bool(p.regex.match(path))
            if not hit:
                for i in range(len(parents)):
                    if p.regex.match("/".join(parents[: i + 1])):
                        hit = True
                        break
            if hit:
                matched = not p.exclusion
        return matched
