"""Go's regexp.Compile errors for a pattern, from Python's parser and RE2's limits.

dockerd compiles options such as `labels-regex` with Go's regexp (RE2 syntax):
its errors read `error parsing regexp: <code>: `<part>``.  Python's `re` finds
the same syntax errors with other words and positions; this maps them, and adds
what RE2 refuses but Python takes (lookaround, backreferences).  A pattern Go
takes that Python's `re` does not (\\z, \\pL, \\Q…\\E) is not refused here.
"""

from __future__ import annotations

import re
import warnings

from .errors import InvalidParameter

_GO_ONLY_ESCAPES = set("zpPQEC")
_LOOKAROUND = re.compile(r"\(\?(<=|<!|=|!)")
_BACKREF = re.compile(r"\\[1-9]")


def _fail(code: str, part: str) -> None:
    raise InvalidParameter(f"error parsing regexp: {code}: `{part}`")


def check(expr: str) -> None:
    """Raise InvalidParameter with Go's message where regexp.Compile(expr) fails."""
    try:
        with warnings.catch_warnings():  # Python's hints about future syntax (nested sets) are not errors
            warnings.simplefilter("ignore")
            re.compile(expr)
    except re.error as exc:
        _map(expr, exc)
    # RE2 has neither lookaround nor backreferences (skip escaped backslashes first)
    plain = expr.replace("\\\\", "\0\0")
    m = _LOOKAROUND.search(plain)
    if m and (m.start() == 0 or plain[m.start() - 1] != "\\"):
        _fail("invalid or unsupported Perl syntax", m.group(0))
    m = _BACKREF.search(plain)
    if m:
        _fail("invalid escape sequence", m.group(0))


def _map(expr: str, exc: re.error) -> None:
    msg, pos = exc.msg, exc.pos or 0
    if msg.startswith("unterminated character set"):
        _fail("missing closing ]", expr[pos:])
    if msg.startswith("missing ), unterminated subpattern"):
        _fail("missing closing )", expr)
    if msg.startswith("unbalanced parenthesis"):
        _fail("unexpected )", expr)
    if msg.startswith("nothing to repeat"):
        _fail("missing argument to repetition operator", expr[pos:pos + 1])
    if msg.startswith("multiple repeat"):
        _fail("invalid nested repetition operator", expr[max(pos - 1, 0):pos + 1])
    if msg == "bad escape (end of pattern)":
        _fail("trailing backslash at end of expression", "")
    if msg.startswith("bad escape"):
        if expr[pos + 1:pos + 2] in _GO_ONLY_ESCAPES:
            return
        _fail("invalid escape sequence", expr[pos:pos + 2])
    if msg.startswith("invalid group reference"):
        return  # a backreference: refused below, as RE2 does
    if msg.startswith("bad character range"):
        _fail("invalid character class range", msg.rsplit(" ", 1)[-1])
    if msg.startswith("min repeat greater than max repeat"):
        end = expr.find("}", pos)
        start = expr.rfind("{", 0, end)
        _fail("invalid repeat count", expr[start:end + 1])
    if msg.startswith(("unknown extension", "missing group name", "bad character in group name",
                       "unknown flag", "missing :")):
        return  # Go reads some of these (named groups, flags) otherwise: leave them to it
    raise InvalidParameter(f"error parsing regexp: {msg}: `{expr}`")
