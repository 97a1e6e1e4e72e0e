"""Dockerfile word processing: quotes, escapes and `$VAR` expansion, as Docker's builder does it.

This is the small shell dialect of moby's `builder/dockerfile/shell` lexer, applied to the
arguments of ADD, COPY, ENV, EXPOSE, FROM, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR and ARG
(RUN, CMD and ENTRYPOINT are left to the real shell):

- '...' is literal; "..." expands variables and honours escapes of `"`, `$` and the escape char;
- the escape character (`\\` or the `# escape=` directive's backtick) makes the next char literal;
- $NAME, ${NAME}, ${NAME:-word}, ${NAME-word}, ${NAME:+word}, ${NAME+word}, ${NAME:?msg},
  ${NAME?msg}; an unset variable is the empty string; `$` not followed by a name stays a `$`.
"""

from __future__ import annotations

from ...errors import InvalidParameter


def _is_name_start(ch: str) -> bool:
    return ch.isalpha() or ch == "_"


def _is_name_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


class _Lexer:
    def __init__(self, word: str, env: dict[str, str], escape: str) -> None:
        self.s = word
        self.i = 0
        self.env = env
        self.escape = escape

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def next(self) -> str:
        ch = self.peek()
        self.i += 1
        return ch

    def process(self, stop: str = "") -> str:
        """Up to (not including) `stop` at the top level, or to the end."""
        out: list[str] = []
        while self.i < len(self.s):
            ch = self.peek()
            if stop and ch == stop:
                break
            if ch == "'":
                self.next()
                out.append(self._single_quoted())
            elif ch == '"':
                self.next()
                out.append(self._double_quoted())
            elif ch == "$":
                self.next()
                out.append(self._dollar())
            elif ch == self.escape:
                self.next()
                nxt = self.next()
                # an escape at the very end is dropped, as in moby
                out.append(nxt)
            else:
                out.append(self.next())
        return "".join(out)

    def _single_quoted(self) -> str:
        start = self.i
        end = self.s.find("'", start)
        if end < 0:
            raise InvalidParameter(f"unexpected end of statement while looking for matching single-quote in {self.s!r}")
        self.i = end + 1
        return self.s[start:end]

    def _double_quoted(self) -> str:
        out: list[str] = []
        while True:
            if self.i >= len(self.s):
                raise InvalidParameter(
                    f"unexpected end of statement while looking for matching double-quote in {self.s!r}")
            ch = self.next()
            if ch == '"':
                return "".join(out)
            if ch == "$":
                out.append(self._dollar())
            elif ch == self.escape:
                nxt = self.peek()
                if nxt == "":
                    continue
                if nxt in ('"', "$", self.escape):
                    out.append(self.next())
                else:
                    out.append(ch)
            else:
                out.append(ch)

    def _name(self) -> str:
        start = self.i
        while self.i < len(self.s) and _is_name_char(self.s[self.i]):
            self.i += 1
        return self.s[start:self.i]

    def _dollar(self) -> str:
        ch = self.peek()
        if ch == "{":
            self.next()
            return self._braced()
        if ch and _is_name_start(ch):
            return self.env.get(self._name(), "")
        if ch and ch.isdigit():  # positional parameters: always empty here
            self.next()
            return ""
        return "$"

    def _braced(self) -> str:
        name = self._name()
        if not name:
            raise InvalidParameter(f"bad substitution: missing variable name in {self.s!r}")
        ch = self.next()
        if ch == "}":
            return self.env.get(name, "")
        colon = False
        if ch == ":":
            colon = True
            ch = self.next()
        if ch not in ("-", "+", "?"):
            raise InvalidParameter(f"unsupported modifier ({ch or 'end of word'}) in substitution: {self.s!r}")
        word = self.process(stop="}")
        if self.next() != "}":
            raise InvalidParameter(f"missing '}}' in substitution: {self.s!r}")
        value = self.env.get(name)
        is_set = value is not None and (value != "" or not colon)
        if ch == "-":
            return value if is_set else word  # type: ignore[return-value]
        if ch == "+":
            return word if is_set else ""
        if not is_set:  # "?"
            raise InvalidParameter(f"{name}: {word or ('is not allowed to be empty' if colon else 'is not set')}")
        return value  # type: ignore[return-value]


def process_word(word: str, env: dict[str, str], escape: str = "\\") -> str:
    """One word: quotes removed, escapes applied, variables expanded."""
    return _Lexer(word, env, escape).process()


def env_dict(env: list[str] | None) -> dict[str, str]:
    """A config's Env list as a dict (later entries win)."""
    out: dict[str, str] = {}
    for e in env or []:
        k, _, v = e.partition("=")
        out[k] = v
    return out
