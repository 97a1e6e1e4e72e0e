"""A checker for Go text/template sources, with Go's error texts.

dockerd parses a log driver's `tag` option with text/template (named
"log-tag", plus its json/split/join/title/lower/upper/pad/truncate functions)
and runs it on a *logger.Info; a bad template fails the container's start with
Go's message.  Python has no text/template, so this follows Go's lexer and
parser far enough to give the same first error for what users get wrong:
unclosed actions, comments and parentheses, bad characters and strings,
unknown functions and variables, stray or missing {{end}}/{{else}}, empty
pipelines, and — as execution would — a field the data does not have
(`can't evaluate field X in type T`) or a method called with the wrong number of
arguments, in what runs whatever the data (not inside the bodies of if/range/with).
Valid templates are not rendered here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from .errors import InvalidParameter

# Go's builtin functions: name -> (arguments wanted, or at least that many if variadic)
GO_BUILTINS = {"and": (1, True), "or": (1, True), "not": (1, False), "len": (1, False),
               "index": (1, True), "slice": (1, True), "call": (1, True), "print": (0, True),
               "println": (0, True), "printf": (1, True), "html": (0, True), "js": (0, True),
               "urlquery": (0, True), "eq": (1, True), "ne": (2, False), "lt": (2, False),
               "le": (2, False), "gt": (2, False), "ge": (2, False)}
KEYWORDS = {"block", "break", "continue", "define", "else", "end", "if", "range", "template", "with"}


@dataclass(frozen=True)
class GoType:
    """Just enough of a Go type to say whether `.Name` can be evaluated on it."""
    name: str  # as Go prints it: "*logger.Info", "string", "map[string]string"
    fields: dict[str, "GoType"] = field(default_factory=dict)
    methods: dict[str, tuple[int, "GoType"]] = field(default_factory=dict)  # name -> (arity, result)
    lookup: bool = False  # a map: any key evaluates (to its element type)
    elem: "GoType | None" = None
    opaque: bool = False  # not modelled: anything goes


STRING = GoType("string")
ANY = GoType("?", opaque=True)
# a missing key gives Go's "no value", on which any further field evaluates: the keys are not known here
STRING_MAP = GoType("map[string]string", lookup=True, elem=ANY)


class TemplateError(InvalidParameter):
    pass


class _LexError(Exception):
    def __init__(self, pos: int, msg: str) -> None:
        super().__init__(msg)
        self.pos, self.msg = pos, msg


@dataclass
class _Item:
    kind: str  # text, left, right, space, field, ident, var, string, number, char, dot, pipe,
    #            assign, declare, lparen, rparen, bool, nil, keyword, eof
    val: str
    pos: int


class _Lexer:
    def __init__(self, name: str, src: str) -> None:
        self.name, self.src = name, src
        self.items: list[_Item] = []
        # comments make no items; their trim markers matter to rendering: (start, end, left, right)
        self.comments: list[tuple[int, int, bool, bool]] = []

    def fail(self, pos: int, msg: str) -> None:
        raise _LexError(pos, msg)

    def run(self) -> list[_Item]:
        """The items; a lexing error ends them with an `error` item (Go's parser meets it
        in turn, so an earlier parse error is the one reported)."""
        s, i = self.src, 0
        try:
            while True:
                j = s.find("{{", i)
                if j < 0:
                    if i < len(s):
                        self.items.append(_Item("text", s[i:], i))
                    self.items.append(_Item("eof", "", len(s)))
                    return self.items
                if j > i:
                    self.items.append(_Item("text", s[i:j], i))
                i = self._action(j)
        except _LexError as exc:
            self.items.append(_Item("error", exc.msg, exc.pos))
            return self.items

    def _action(self, start: int) -> int:
        s = self.src
        i = start + 2
        trim_left = s.startswith("-", i) and i + 1 < len(s) and s[i + 1] in " \t\r\n"
        if trim_left:
            i += 2  # a trim marker
        if s.startswith("/*", i):  # a comment opens right after the delimiter (and trim marker)
            end = s.find("*/", i + 2)
            if end < 0:
                self.fail(start, "unclosed comment")
            e = end + 2
            if s.startswith("}}", e):
                self.comments.append((start, e + 2, trim_left, False))
                return e + 2
            if e < len(s) and s[e] in " \t\r\n" and s.startswith("-}}", e + 1):
                self.comments.append((start, e + 4, trim_left, True))
                return e + 4
            self.fail(start, "comment ends before closing delimiter")
        self.items.append(_Item("left", "{{", start))
        depth = 0
        while True:
            if i >= len(s):
                self.fail(i, "unclosed action")
            c = s[i]
            if s.startswith("}}", i) or (c in " \t\r\n" and s.startswith("-}}", i + 1)):
                if depth:
                    self.fail(i, "unclosed left paren")
                if c != "}":
                    i += 2  # past the trim marker
                self.items.append(_Item("right", "}}", i))
                return i + 2
            if c in " \t\r\n":
                k = i
                while k < len(s) and s[k] in " \t\r\n":
                    k += 1
                if not (s.startswith("-}}", k) and k > i):
                    self.items.append(_Item("space", s[i:k], i))
                    i = k
                else:
                    i = k - 1
                continue
            if c == "=":
                self.items.append(_Item("assign", "=", i))
                i += 1
            elif c == ":":
                if not s.startswith(":=", i):
                    self.fail(i, "expected :=")
                self.items.append(_Item("declare", ":=", i))
                i += 2
            elif c == "|":
                self.items.append(_Item("pipe", "|", i))
                i += 1
            elif c == '"':
                i = self._quoted(i, '"', "unterminated quoted string", kind="string")
            elif c == "`":
                end = s.find("`", i + 1)
                if end < 0:
                    self.fail(i, "unterminated raw quoted string")
                self.items.append(_Item("string", s[i:end + 1], i))
                i = end + 1
            elif c == "'":
                i = self._quoted(i, "'", "unterminated character constant", kind="number")
            elif c == "$":
                k = self._terminated(self._word(i + 1))
                self.items.append(_Item("var", s[i:k], i))
                i = k
            elif c == "." and i + 1 < len(s) and not s[i + 1].isdigit():  # else a number, as Go's
                k = self._terminated(self._word(i + 1))
                self.items.append(_Item("field" if k > i + 1 else "dot", s[i:k], i))
                i = k
            elif c in "+-." or c.isdigit():
                i = self._number(i)
            elif c.isalpha() or c == "_":
                k = self._terminated(self._word(i))
                w = s[i:k]
                kind = ("keyword" if w in KEYWORDS else "bool" if w in ("true", "false")
                        else "nil" if w == "nil" else "ident")
                self.items.append(_Item(kind, w, i))
                i = k
            elif c == "(":
                depth += 1
                self.items.append(_Item("lparen", c, i))
                i += 1
            elif c == ")":
                depth -= 1
                self.items.append(_Item("rparen", c, i))  # the parser meets it before the error
                if depth < 0:
                    self.fail(i, f"unexpected right paren {_u(c)}")
                i += 1
            elif c.isascii() and c.isprintable():
                self.items.append(_Item("char", c, i))
                i += 1
            else:
                self.fail(i, f"unrecognized character in action: {_u(c)}")

    def _word(self, i: int) -> int:
        while i < len(self.src) and (self.src[i].isalnum() or self.src[i] == "_"):
            i += 1
        return i

    def _terminated(self, k: int) -> int:
        """Go wants a word followed by a space, `.`, `,`, `|`, `:`, a paren or the delimiter."""
        s = self.src
        if k >= len(s) or s[k] in " \t\r\n.,|:()" or s.startswith("}}", k):
            return k
        self.fail(k, f"bad character {_u(s[k])}")
        return k

    def _quoted(self, i: int, quote: str, msg: str, kind: str) -> int:
        s = self.src
        k = i + 1
        while True:
            if k >= len(s) or s[k] == "\n":
                self.fail(i, msg)
            if s[k] == "\\":
                k += 2
                continue
            if s[k] == quote:
                self.items.append(_Item(kind, s[i:k + 1], i))
                return k + 1
            k += 1

    def _number(self, i: int) -> int:
        """Go's scanNumber: sign, base prefix, digits, fraction, exponent, `i`; a letter or digit
        right after is a bad number (the parser judges whether the rest is a number at all)."""
        s = self.src

        def run(k: int, chars: str) -> int:
            while k < len(s) and s[k] in chars:
                k += 1
            return k

        k = i + 1 if s[i] in "+-" else i
        digits = "0123456789_"
        if s.startswith("0", k) and k + 1 < len(s) and s[k + 1] in "xXoObB":
            digits = {"x": "0123456789abcdefABCDEF_", "o": "01234567_", "b": "01_"}[s[k + 1].lower()]
            k += 2
        k = run(k, digits)
        if k < len(s) and s[k] == ".":
            k = run(k + 1, digits)
        if k < len(s) and ((len(digits) == 11 and s[k] in "eE") or (len(digits) == 23 and s[k] in "pP")):
            k += 1
            if k < len(s) and s[k] in "+-":
                k += 1
            k = run(k, "0123456789_")
        if k < len(s) and s[k] == "i":
            k += 1
        if k < len(s) and (s[k].isalnum() or s[k] == "_"):
            self.fail(i, f"bad number syntax: {_quote(s[i:k + 1])}")
        self.items.append(_Item("number", s[i:k], i))
        return k


def _quote(text: str) -> str:
    """Go's %q, for the ASCII text of templates."""
    return json.dumps(text)


def _u(c: str) -> str:
    """Go's %#U."""
    return f"U+{ord(c):04X} '{c}'"


class _Parser:
    def __init__(self, name: str, src: str, items: list[_Item], arity: dict[str, tuple[int, bool]],
                 dot: GoType) -> None:
        self.name, self.src, self.items, self.dot = name, src, items, dot
        self.arity = arity
        self.funcs = set(arity)
        self.i = 0
        self.vars: list[str] = ["$"]
        self.range_depth = 0
        self.exec_error: str | None = None  # the first execution error, if parsing succeeds
        self.defined: set[str] = set()
        self.called: list[tuple[_Item, str]] = []  # top-level {{template "name" pipe}}s: checked at the end

    def line(self, it: _Item) -> int:
        return 1 + self.src.count("\n", 0, it.pos)

    def fail(self, it: _Item, msg: str) -> None:
        """A parse error at `it`; the lexer's own error when `it` is where lexing failed."""
        raise TemplateError(f"template: {self.name}:{self.line(it)}: {it.val if it.kind == 'error' else msg}")

    def next(self) -> _Item:
        it = self.items[self.i]
        if it.kind != "error":  # the error item stays: every later read meets it again
            self.i += 1
        return it

    def next_nonspace(self) -> _Item:
        it = self.next()
        while it.kind == "space":
            it = self.next()
        return it

    def peek_nonspace(self) -> _Item:
        j = self.i
        while self.items[j].kind == "space":
            j += 1
        return self.items[j]

    def parse(self) -> None:
        self.list_until(top=True, executed=True)  # up to EOF, or a TemplateError

    def list_until(self, top: bool, executed: bool) -> str | None:
        """Parse text and actions; return the keyword (end/else) that ended the list, None at EOF."""
        while True:
            it = self.next()
            if it.kind in ("eof", "error"):
                if it.kind == "error" or not top:
                    self.fail(it, "unexpected EOF")
                return None
            if it.kind == "text":
                continue
            kw = self.peek_nonspace()
            if kw.kind == "keyword":
                self.next_nonspace()
                if kw.val in ("end", "else"):
                    if kw.val == "else":
                        stop = self.else_clause()
                    else:
                        tok = self.next_nonspace()
                        if tok.kind != "right":
                            self.fail(tok, f"unexpected {_show(tok)} in end")
                        stop = "end"
                    if top:  # Go reads the whole {{end}}/{{else}} first
                        self.fail(kw, f"unexpected {{{{{kw.val}}}}}")
                    return stop
                self.control(kw, executed)
                continue
            self.pipeline("command", executed)

    def else_clause(self) -> str:
        nxt = self.peek_nonspace()
        if nxt.kind == "keyword" and nxt.val in ("if", "with"):
            return "else-chain"
        tok = self.next_nonspace()
        if tok.kind != "right":
            self.fail(tok, f"unexpected {_show(tok)} in else")
        return "else"

    def control(self, kw: _Item, executed: bool) -> None:
        word = kw.val
        if word in ("break", "continue"):
            tok = self.next_nonspace()
            if tok.kind != "right":
                self.fail(tok, f"unexpected {_show(tok)} in {{{{{word}}}}}")
            if not self.range_depth:
                self.fail(kw, f"{{{{{word}}}}} outside {{{{range}}}}")
            return
        if word in ("template", "define", "block"):
            ctx = f"{word} clause"
            tok = self.next_nonspace()
            if tok.kind != "string" or tok.val[0] == "'":
                self.fail(tok, f"unexpected {_show(tok)} in {ctx}")
            if word != "template":
                self.defined.add(tok.val[1:-1])
            if word == "block":  # {{block "name" pipeline}}: the pipeline is required
                self.pipeline(ctx, False)
            elif word == "template" and self.peek_nonspace().kind != "right":
                self.pipeline(ctx, False)
            else:
                end = self.next_nonspace()
                if end.kind != "right":
                    self.fail(end, f"unexpected {_show(end)} in {ctx}")
            if word == "template" and executed:
                pipe = self.src[tok.pos + len(tok.val):self.items[self.i - 1].pos].rstrip()
                if pipe.endswith(" -"):  # a trim marker before the closing delimiter
                    pipe = pipe[:-2]
                self.called.append((tok, " ".join(pipe.split())))
            if word != "template":
                self.body(word)
            return
        # if, range, with
        saved = list(self.vars)
        self.pipeline(word, executed)
        if word == "range":
            self.range_depth += 1
        self.body(word)
        if word == "range":
            self.range_depth -= 1
        self.vars = saved

    def body(self, word: str) -> None:
        while True:
            stop = self.list_until(top=False, executed=False)
            if stop == "end":
                return
            if stop == "else-chain":  # {{else if ...}}: the chained clause closes both
                kw = self.next_nonspace()
                self.pipeline(kw.val, False)
                continue
            # a plain {{else}}: its list ends with {{end}}
            if self.list_until(top=False, executed=False) != "end":
                self.fail(self.items[self.i - 1], "expected end; found {{else}}")
            return

    def pipeline(self, ctx: str, executed: bool) -> None:
        """Declarations, then commands joined by `|`, up to `}}` (or `)` inside parens)."""
        self.declarations(ctx)
        end = "rparen" if ctx == "parenthesized pipeline" else "right"
        ncmds = 0
        while True:
            tok = self.peek_nonspace()
            if tok.kind == end:
                if ncmds == 0:
                    self.fail(tok, f"missing value for {ctx}")
                self.next_nonspace()
                return
            if tok.kind not in _COMMAND_START:
                self.fail(tok, f"unexpected {_show(tok)} in {ctx}")
            self.command(executed, piped=ncmds > 0)
            ncmds += 1
            if self.peek_nonspace().kind == "pipe":
                self.next_nonspace()

    def declarations(self, ctx: str) -> None:
        """`$x :=`, `$x =`, and range's `$i, $v :=`; a variable that is not one is left alone."""
        ndecl = 0
        while self.peek_nonspace().kind == "var":
            j = self.i
            var = self.next_nonspace()
            nxt = self.peek_nonspace()
            if nxt.kind in ("declare", "assign"):
                self.next_nonspace()
                self.vars.append(var.val)
                return
            if nxt.kind == "char" and nxt.val == ",":
                self.next_nonspace()
                self.vars.append(var.val)
                ndecl += 1
                if ctx == "range" and ndecl < 2:
                    if self.peek_nonspace().kind in ("var", "right", "rparen"):
                        continue
                    self.fail(self.peek_nonspace(), "range can only initialize variables")
                self.fail(nxt, f"too many declarations in {ctx}")
            self.i = j
            return

    def command(self, executed: bool, piped: bool) -> None:
        """Operands separated by spaces, up to `|`, `}}` or `)`; then, where it runs, Go's
        execution checks in Go's order (the function's arity before its arguments)."""
        ops: list[tuple[_Item, str, list[_Item]]] = []
        while True:
            tok = self.peek_nonspace()
            if tok.kind in _OPERAND_START:
                ops.append(self.operand(executed))
            after = self.items[self.i]
            if after.kind == "space":
                self.i += 1
                continue
            if after.kind in ("right", "rparen", "pipe"):
                break
            self.fail(after, f"unexpected {_show(after)} in operand")
        if ops and executed and self.exec_error is None:
            self.exec_error = self.run_command(ops, len(ops) - 1 + piped)

    def run_command(self, ops: list[tuple[_Item, str, list[_Item]]], nargs: int) -> str | None:
        head, kind, fields = ops[0]
        if kind == "nil":
            return self.at(head, "nil", "nil is not a command")
        if kind == "ident":
            err = self.call_arity(head, nargs)
            if err:
                return err
        elif fields:
            err, last = self.evaluate(head, fields)
            if err:
                return err
            name = fields[-1].val[1:]
            if last is not None and last[0] == "method" and last[1] != nargs:
                return self.at(head, head.val, f"wrong number of args for {name}: want {last[1]} got {nargs}")
            if last is not None and last[0] == "field" and nargs:
                return self.at(head, head.val, f"{name} has arguments but cannot be invoked as function")
            if last is not None and last[0] == "key" and nargs:
                return self.at(head, head.val, f"{name} is not a method but has arguments")
        for tok, k, flds in ops[1:]:
            err = self.call_arity(tok, 0) if k == "ident" else self.evaluate(tok, flds)[0] if flds else None
            if err:
                return err
        return None

    def call_arity(self, tok: _Item, nargs: int) -> str | None:
        """A function called with `nargs` arguments (an argument that names one calls it with none)."""
        want, variadic = self.arity.get(tok.val, (0, True))
        if nargs < want or (nargs != want and not variadic):
            return self.at(tok, tok.val, f"wrong number of args for {tok.val}: "
                                         f"want {'at least ' if variadic else ''}{want} got {nargs}")
        return None

    def at(self, it: _Item, what: str, msg: str) -> str:
        """An execution error, as Go's ErrorContext places it."""
        line_start = self.src.rfind("\n", 0, it.pos) + 1
        return (f"template: {self.name}:{self.line(it)}:{it.pos - line_start}: "
                f'executing "{self.name}" at <{what}>: {msg}')

    def operand(self, executed: bool) -> tuple[_Item, str, list[_Item]]:
        """Parse one operand: the token that places and names it, its kind, and the fields
        to evaluate on the data (`.A.B`, `$.A`; empty when the value is not the data's)."""
        tok = self.next_nonspace()
        kind = tok.kind
        if kind == "ident":
            if tok.val not in self.funcs:
                self.fail(tok, f'function "{tok.val}" not defined')
        elif kind == "var":
            if tok.val not in self.vars:
                self.fail(tok, f'undefined variable "{tok.val}"')
        elif kind == "lparen":
            self.pipeline("parenthesized pipeline", executed)
        elif kind == "number" and not tok.val.startswith("'") and not _is_number(tok.val):
            self.fail(tok, f"illegal number syntax: {_quote(tok.val)}")
        elif kind not in ("field", "dot", "string", "number", "bool", "nil"):
            self.fail(tok, f"unexpected {_show(tok)} in operand")
        if kind in ("string", "number", "bool", "nil", "dot") and self.items[self.i].kind == "field":
            self.fail(self.items[self.i], f"unexpected . after term {_quote(tok.val)}")
        head = tok
        after: list[_Item] = []
        while self.items[self.i].kind == "field":
            after.append(self.next())
        if after:  # Go places a chain at the first item after its term
            tok = _Item(kind, head.val + "".join(c.val for c in after), after[0].pos)
        if kind == "field":
            return tok, kind, [head] + after
        if kind == "var" and head.val == "$":
            return tok, kind, after  # `$` is the data
        return tok, kind, []

    def evaluate(self, at: _Item, fields: list[_Item]) -> tuple[str | None, tuple[str, int] | None]:
        """Go's execution of `.A.B…` on the data: the error for the first field it cannot
        evaluate, else (None, what the last one is: ("method", arity), ("field", 0), ("key", 0);
        None where the type is not modelled)."""
        t = self.dot
        last: tuple[str, int] | None = None
        for it in fields:
            if t.opaque:
                return None, None
            name = it.val[1:]
            if t.lookup:
                t, last = t.elem or ANY, ("key", 0)
            elif name in t.methods:
                arity, t = t.methods[name]
                last = ("method", arity)
            elif name in t.fields:
                t, last = t.fields[name], ("field", 0)
            else:
                return self.at(at, at.val, f"can't evaluate field {name} in type {t.name}"), None
        return None, last


def _is_number(text: str) -> bool:
    t = text.replace("_", "").removesuffix("i")
    try:
        if t.lower().lstrip("+-").startswith(("0x", "0o", "0b")) and "." not in t and "p" not in t.lower():
            int(t, 0)
        else:
            float(t) if not t.lower().lstrip("+-").startswith("0x") else float.fromhex(t)
        return True
    except ValueError:
        return False


_OPERAND_START = {"field", "dot", "ident", "var", "string", "number", "bool", "nil", "lparen"}
_COMMAND_START = _OPERAND_START


def _show(it: _Item) -> str:
    """Go's item.String(), as its parse errors quote a token."""
    if it.kind == "eof":
        return "EOF"
    if it.kind == "error":
        return it.val
    if it.kind in ("keyword", "dot", "nil"):
        return f"<{it.val}>"
    if len(it.val) > 10:
        return _quote(it.val[:10]) + "..."
    return _quote(it.val)


def check(name: str, src: str, funcs: dict[str, tuple[int, bool]], dot: GoType) -> None:
    """Raise TemplateError with Go's message when parsing or running `src` on `dot` would fail.

    `funcs`: the template's own functions, as name -> (arguments, variadic)."""
    items = _Lexer(name, src).run()
    p = _Parser(name, src, items, GO_BUILTINS | funcs, dot)
    p.parse()
    if p.exec_error:
        raise TemplateError(p.exec_error)
    for call, pipe in p.called:
        if call.val[1:-1] not in p.defined:
            node = f"{{{{template {call.val}{' ' + pipe if pipe else ''}}}}}"
            raise TemplateError(p.at(call, node, f"template {call.val} not defined"))
