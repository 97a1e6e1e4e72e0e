"""Running a Go text/template: what dockerd does with a log driver's `tag`.

gotemplate.py checks a template with Go's error texts; this renders a template
that passed the check, as Go's text/template would: text and actions (with
trim markers), pipelines whose commands are fields and method calls on dot or
on variables, literals, parenthesised pipelines, functions (Go's builtins and
the caller's, e.g. dockerd's json/split/join/title/lower/upper/pad/truncate),
variables, and if/else/with/range.  Values print as Go's fmt prints them
(`[a b]`, `map[k:v]`, `<no value>` for a missing map key).  `define`,
`template`, `block`, `break`, `continue` and `call` are refused.
"""

from __future__ import annotations

import html
import json
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable

from .gotemplate import TemplateError, _Item, _Lexer


class _NoValue:
    """What a missing map key evaluates to (Go's invalid reflect.Value)."""

    def __repr__(self) -> str:
        return "<no value>"


NO_VALUE = _NoValue()


@dataclass
class GoStruct:
    """A Go value with fields and methods (a method: Python callable taking the call's arguments)."""
    type_name: str
    fields: dict[str, Any] = field(default_factory=dict)
    methods: dict[str, Callable[..., Any]] = field(default_factory=dict)


@dataclass
class GoFunc:
    """A template function; `params` are Go types of its parameters ("string", "int", "[]string",
    "any") for Go's argument checks."""
    fn: Callable[..., Any]
    params: tuple[str, ...]


# ---------------------------------------------------------------- nodes


@dataclass
class _Operand:
    kind: str  # dot, field, var, literal, ident, pipe
    value: Any = None  # literal value, var name, ident name, nested _Pipe
    chain: list[str] = field(default_factory=list)  # field names applied after
    pos: int = 0
    text: str = ""


@dataclass
class _Pipe:
    decl: list[str]
    assign: bool
    cmds: list[list[_Operand]]
    pos: int = 0


@dataclass
class _Node:
    kind: str  # text, action, if, with, range
    text: str = ""
    pipe: _Pipe | None = None
    body: list["_Node"] = field(default_factory=list)
    other: list["_Node"] = field(default_factory=list)


class _Unsupported(Exception):
    pass


class _Builder:
    """Items (already checked by gotemplate.check) to nodes."""

    def __init__(self, src: str, items: list[_Item], comments: list[tuple[int, int, bool, bool]]) -> None:
        self.src = src
        self.items = items
        self.i = 0
        # text next to a comment's trim marker: `x {{- /* c */ -}} y` is "xy"
        self.rstrip_at = {start for start, _, left, _ in comments if left}
        self.lstrip_at = {end for _, end, _, right in comments if right}

    def peek(self, skip_space: bool = True) -> _Item:
        j = self.i
        while skip_space and self.items[j].kind == "space":
            j += 1
        return self.items[j]

    def next(self, skip_space: bool = True) -> _Item:
        while skip_space and self.items[self.i].kind == "space":
            self.i += 1
        it = self.items[self.i]
        self.i += 1
        return it

    def trims_left(self, left: _Item) -> bool:
        p = left.pos + 2
        return self.src.startswith("-", p) and p + 1 < len(self.src) and self.src[p + 1] in " \t\r\n"

    def trims_right(self, right: _Item) -> bool:
        p = right.pos
        return p >= 2 and self.src[p - 1] == "-" and self.src[p - 2] in " \t\r\n"

    def build(self) -> list[_Node]:
        nodes, end = self.list_until()
        if end is not None:  # pragma: no cover - the checker refused it
            raise _Unsupported(end)
        return nodes

    def list_until(self) -> tuple[list[_Node], str | None]:
        """Nodes up to {{end}} / {{else}} (returned as the second item) or EOF."""
        nodes: list[_Node] = []
        while True:
            it = self.next(skip_space=False)
            if it.kind == "eof":
                return nodes, None
            if it.kind == "text":
                text = it.val
                if it.pos in self.lstrip_at:
                    text = text.lstrip(" \t\r\n")
                if it.pos + len(it.val) in self.rstrip_at:
                    text = text.rstrip(" \t\r\n")
                nodes.append(_Node("text", text))
                continue
            if it.kind != "left":  # pragma: no cover
                raise _Unsupported(it.kind)
            if self.trims_left(it) and nodes and nodes[-1].kind == "text":
                nodes[-1].text = nodes[-1].text.rstrip(" \t\r\n")
            head = self.peek()
            if head.kind == "keyword":
                self.next()
                word = head.val
                if word in ("end", "else"):
                    if word == "else" and self.peek().kind == "keyword" and self.peek().val in ("if", "with"):
                        return nodes, "else " + self.next().val  # else if / else with: nested
                    self.close()
                    return nodes, word
                if word not in ("if", "with", "range"):
                    raise _Unsupported(word)
                nodes.append(self.control(word))
            else:
                nodes.append(_Node("action", pipe=self.pipeline()))
                self.close()

    def close(self) -> None:
        right = self.next()
        if right.kind != "right":  # pragma: no cover
            raise _Unsupported(right.kind)
        if self.trims_right(right) and self.items[self.i].kind == "text":
            t = self.items[self.i]
            self.items[self.i] = _Item("text", t.val.lstrip(" \t\r\n"), t.pos)

    def control(self, word: str) -> _Node:
        node = _Node(word, pipe=self.pipeline())
        self.close()
        node.body, end = self.list_until()
        if end == "else":
            node.other, end = self.list_until()
        elif end in ("else if", "else with"):
            nested = self.control(end.split()[1])  # consumes the shared {{end}}
            node.other, end = [nested], "end"
        if end != "end":  # pragma: no cover
            raise _Unsupported(str(end))
        return node

    def pipeline(self) -> _Pipe:
        start = self.peek()
        decl: list[str] = []
        assign = False
        j = self.i
        names: list[str] = []
        # `$x :=`, `$x =`, `$i, $v :=`
        while self.peek().kind == "var":
            names.append(self.next().val)
            nxt = self.peek()
            if nxt.kind in ("declare", "assign"):
                self.next()
                decl, assign = names, nxt.kind == "assign"
                break
            if nxt.kind == "char" and nxt.val == ",":
                self.next()
                continue
            self.i = j  # a variable used, not declared
            break
        cmds: list[list[_Operand]] = []
        while True:
            cmds.append(self.command())
            if self.peek().kind != "pipe":
                break
            self.next()
        return _Pipe(decl, assign, cmds, start.pos)

    def command(self) -> list[_Operand]:
        ops: list[_Operand] = []
        while self.peek().kind not in ("pipe", "right", "rparen", "eof"):
            ops.append(self.operand())
        return ops

    def operand(self) -> _Operand:
        it = self.next()
        k = it.kind
        if k == "dot":
            op = _Operand("dot", pos=it.pos, text=".")
        elif k == "field":
            op = _Operand("dot", chain=[it.val[1:]], pos=it.pos, text=it.val)
        elif k == "var":
            op = _Operand("var", it.val, pos=it.pos, text=it.val)
        elif k == "string":
            op = _Operand("literal", _unquote(it.val), pos=it.pos, text=it.val)
        elif k == "number":
            op = _Operand("literal", _number(it.val), pos=it.pos, text=it.val)
        elif k == "bool":
            op = _Operand("literal", it.val == "true", pos=it.pos, text=it.val)
        elif k == "nil":
            op = _Operand("literal", None, pos=it.pos, text="nil")
        elif k == "ident":
            op = _Operand("ident", it.val, pos=it.pos, text=it.val)
        elif k == "lparen":
            inner = self.pipeline()
            close = self.next()  # the rparen
            op = _Operand("pipe", inner, pos=it.pos, text=self.src[it.pos:close.pos + 1])
        else:
            raise _Unsupported(k)
        while self.items[self.i].kind == "field":  # `.A.B`, `$x.A`, `(...).A`: no space between
            f = self.items[self.i]
            self.i += 1
            op.chain.append(f.val[1:])
            op.text += f.val
        return op


def _unquote(lit: str) -> str:
    if lit.startswith("`"):
        return lit[1:-1]
    body = lit[1:-1]
    # Go's escapes that JSON lacks: \a \v \x.. \ooo \U........ and \'
    out, i = [], 0
    simple = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
              "\\": "\\", '"': '"', "'": "'"}
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        e = body[i + 1]
        if e in simple:
            out.append(simple[e])
            i += 2
        elif e in "xuU":
            n = {"x": 2, "u": 4, "U": 8}[e]
            out.append(chr(int(body[i + 2:i + 2 + n], 16)))
            i += 2 + n
        else:  # octal \ooo
            out.append(chr(int(body[i + 1:i + 4], 8)))
            i += 4
    return "".join(out)


def _number(text: str) -> int | float:
    if text.startswith("'"):
        return ord(_unquote('"' + text[1:-1] + '"'))
    t = text.replace("_", "")
    try:
        return int(t, 0)
    except ValueError:
        return float(t)


# ---------------------------------------------------------------- values


def go_type(v: Any) -> str:
    if isinstance(v, GoStruct):
        return v.type_name
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "[]string"
    if isinstance(v, dict):
        return "map[string]string"
    return "<nil>" if v is None else type(v).__name__


def go_print(v: Any) -> str:
    """fmt.Sprint of one value."""
    if v is NO_VALUE:
        return "<no value>"
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "[" + " ".join(go_print(x) for x in v) + "]"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{go_print(k)}:{go_print(v[k])}" for k in sorted(v)) + "]"
    if isinstance(v, float):
        return repr(v) if v != int(v) or abs(v) >= 1e21 else str(int(v))
    if isinstance(v, GoStruct):
        if "String" in v.methods:  # a fmt.Stringer
            return v.methods["String"]()
        return "{" + " ".join(go_print(x) for x in v.fields.values()) + "}"
    return str(v)


def truth(v: Any) -> bool:
    if v is NO_VALUE or v is None:
        return False
    if isinstance(v, GoStruct):
        return True
    return bool(v)


def _sprint(*args: Any) -> str:
    """fmt.Sprint: a space between operands when neither is a string."""
    out = ""
    for i, a in enumerate(args):
        if i and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out += " "
        out += go_print(a)
    return out


def _sprintf(fmt: str, *args: Any) -> str:
    """fmt.Sprintf for the common verbs (%s %v %d %q %x %t %%)."""
    out, i, n = [], 0, 0
    while i < len(fmt):
        c = fmt[i]
        if c != "%" or i + 1 == len(fmt):
            out.append(c)
            i += 1
            continue
        verb = fmt[i + 1]
        i += 2
        if verb == "%":
            out.append("%")
            continue
        if n >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        a = args[n]
        n += 1
        if verb == "q" and isinstance(a, str):
            out.append(json.dumps(a, ensure_ascii=False))
        elif verb == "x" and isinstance(a, int):
            out.append(format(a, "x"))
        elif verb == "x" and isinstance(a, str):
            out.append(a.encode().hex())
        else:
            out.append(go_print(a))
    if n < len(args):
        out.append("%!(EXTRA " + ", ".join(f"{go_type(a)}={go_print(a)}" for a in args[n:]) + ")")
    return "".join(out)


def _index(item: Any, *keys: Any) -> Any:
    for k in keys:
        if isinstance(item, dict):
            item = item.get(k, "")  # index gives the zero value of a missing key
        elif isinstance(item, (list, str)):
            if not isinstance(k, int) or not 0 <= k < len(item):
                raise _ExecError(f"error calling index: index out of range: {k}")
            item = item[k] if isinstance(item, list) else item.encode()[k]
        else:
            raise _ExecError(f"error calling index: can't index item of type {go_type(item)}")
    return item


def _slice(item: Any, *idx: int) -> Any:
    b = item.encode() if isinstance(item, str) else item
    lo = idx[0] if idx else 0
    hi = idx[1] if len(idx) > 1 else len(b)
    if not 0 <= lo <= hi <= len(b):
        raise _ExecError(f"error calling slice: index out of range: {hi}")
    out = b[lo:hi]
    return out.decode(errors="replace") if isinstance(item, str) else out


def _cmp(name: str, op: Callable[[Any, Any], bool]) -> Callable[..., bool]:
    def f(a: Any, b: Any) -> bool:
        if type(a) is not type(b) and not (isinstance(a, (int, float)) and isinstance(b, (int, float))):
            raise _ExecError(f"error calling {name}: incompatible types for comparison")
        return op(a, b)
    return f


def _eq(a: Any, *bs: Any) -> bool:
    return any(a == b for b in bs)


BUILTINS: dict[str, Callable[..., Any]] = {
    "not": lambda a: not truth(a), "len": lambda a: len(a.encode() if isinstance(a, str) else a),
    "index": _index, "slice": _slice, "print": _sprint,
    "println": lambda *a: " ".join(go_print(x) for x in a) + "\n", "printf": _sprintf,
    "html": lambda *a: html.escape(_sprint(*a)).replace("&#x27;", "&#39;"),
    "urlquery": lambda *a: urllib.parse.quote_plus(_sprint(*a)),
    "js": lambda *a: json.dumps(_sprint(*a))[1:-1].replace("'", "\\'"),
    "eq": _eq, "ne": lambda a, b: a != b,
    "lt": _cmp("lt", lambda a, b: a < b), "le": _cmp("le", lambda a, b: a <= b),
    "gt": _cmp("gt", lambda a, b: a > b), "ge": _cmp("ge", lambda a, b: a >= b),
}


class _ExecError(Exception):
    pass


# ---------------------------------------------------------------- execution


class _Exec:
    def __init__(self, name: str, src: str, funcs: dict[str, GoFunc], root: Any) -> None:
        self.name, self.src, self.funcs = name, src, funcs
        self.vars: list[tuple[str, Any]] = [("$", root)]
        self.out: list[str] = []

    def fail(self, op: _Operand | _Pipe, msg: str) -> None:
        line = self.src.count("\n", 0, op.pos) + 1
        col = op.pos - (self.src.rfind("\n", 0, op.pos) + 1)
        what = op.text if isinstance(op, _Operand) else ""
        raise TemplateError(f'template: {self.name}:{line}:{col}: executing "{self.name}" at <{what}>: {msg}')

    def walk(self, nodes: list[_Node], dot: Any) -> None:
        for n in nodes:
            if n.kind == "text":
                self.out.append(n.text)
            elif n.kind == "action":
                assert n.pipe is not None
                v = self.pipe(n.pipe, dot)
                if not n.pipe.decl:
                    self.out.append(go_print(v))
            else:
                self.control(n, dot)

    def control(self, n: _Node, dot: Any) -> None:
        mark = len(self.vars)
        assert n.pipe is not None
        if n.kind == "range":
            v = self.pipe(n.pipe, dot, declare=False)
            items = (list(enumerate(v)) if isinstance(v, list)
                     else [(k, v[k]) for k in sorted(v)] if isinstance(v, dict) else None)
            if items is None:
                if v is None or v is NO_VALUE:
                    items = []
                else:
                    self.fail(n.pipe.cmds[0][0], f"range can't iterate over {go_print(v)}")
            for k, e in items or []:
                if len(n.pipe.decl) == 1:
                    self.vars.append((n.pipe.decl[0], e))
                elif len(n.pipe.decl) == 2:
                    self.vars += [(n.pipe.decl[0], k), (n.pipe.decl[1], e)]
                self.walk(n.body, e)
                del self.vars[mark:]
            if not items:
                self.walk(n.other, dot)
        else:
            v = self.pipe(n.pipe, dot)
            if truth(v):
                self.walk(n.body, v if n.kind == "with" else dot)
            else:
                self.walk(n.other, dot)
        del self.vars[mark:]

    def pipe(self, p: _Pipe, dot: Any, declare: bool = True) -> Any:
        v: Any = NO_VALUE
        for i, cmd in enumerate(p.cmds):
            v = self.command(cmd, dot, None if i == 0 else (v,))
        if declare and p.decl:
            if p.assign:
                for j in range(len(self.vars) - 1, -1, -1):
                    if self.vars[j][0] == p.decl[0]:
                        self.vars[j] = (p.decl[0], v)
                        break
            else:
                self.vars.append((p.decl[0], v))
        return v

    def command(self, cmd: list[_Operand], dot: Any, final: tuple[Any] | None) -> Any:
        head, args = cmd[0], cmd[1:]
        if head.kind == "ident" and not head.chain:
            return self.call(head, [self.arg(a, dot) for a in args] + list(final or ()), args)
        if head.kind in ("dot", "var") and head.chain:  # the last name may be a method with arguments
            recv = self.operand(_Operand(head.kind, head.value, head.chain[:-1], head.pos, head.text), dot)
            call_args = [self.arg(a, dot) for a in args] + list(final or ())
            return self.field(head, recv, head.chain[-1], call_args)
        if args or final:
            self.fail(head, f"can't give argument to non-function {head.text}")
        return self.operand(head, dot)

    def arg(self, op: _Operand, dot: Any) -> Any:
        if op.kind == "ident" and not op.chain:
            return self.call(op, [])
        return self.operand(op, dot)

    def operand(self, op: _Operand, dot: Any) -> Any:
        if op.kind == "dot":
            v = dot
        elif op.kind == "var":
            v = next((val for name, val in reversed(self.vars) if name == op.value), NO_VALUE)
        elif op.kind == "literal":
            v = op.value
        elif op.kind == "pipe":
            v = self.pipe(op.value, dot)
        else:  # an ident with a chain: call it, then the fields
            v = self.call(op, [])
        for name in op.chain:
            v = self.field(op, v, name, [])
        return v

    def field(self, op: _Operand, recv: Any, name: str, args: list[Any]) -> Any:
        if isinstance(recv, GoStruct):
            if name in recv.methods:
                return recv.methods[name](*args)
            if name in recv.fields and not args:
                return recv.fields[name]
        elif isinstance(recv, dict) and not args:
            return recv.get(name, NO_VALUE)
        elif recv is NO_VALUE or recv is None:
            self.fail(op, f"nil pointer evaluating {go_type(recv)}.{name}")
        if args:
            self.fail(op, f"{name} has arguments but cannot be invoked as function")
        self.fail(op, f"can't evaluate field {name} in type {go_type(recv)}")

    def call(self, op: _Operand, args: list[Any], arg_ops: list[_Operand] | None = None) -> Any:
        name = op.value
        if name in ("and", "or"):
            for a in args:
                if truth(a) == (name == "or"):
                    return a
            return NO_VALUE if args[-1] is None else args[-1]  # a nil argument is Go's invalid value
        if name in self.funcs:
            f = self.funcs[name]
            if len(args) != len(f.params):
                self.fail(op, f"wrong number of args for {name}: want {len(f.params)} got {len(args)}")
            for i, (want, a) in enumerate(zip(f.params, args)):
                got = go_type(a)
                if want != "any" and got != want:
                    at = arg_ops[i] if arg_ops and i < len(arg_ops) else op
                    self.fail(at, f"wrong type for value; expected {want}; got {got}")
            v = f.fn(*args)
        elif name in BUILTINS:
            try:
                v = BUILTINS[name](*args)
            except _ExecError as exc:
                self.fail(op, str(exc))
            except TypeError:
                self.fail(op, f"wrong number of args for {name}")
        else:
            raise _Unsupported(name)  # call, and what the checker lets through
        for field_name in op.chain:
            v = self.field(op, v, field_name, [])
        return v


def render(name: str, src: str, funcs: dict[str, GoFunc], dot: Any) -> str:
    """Execute `src` (already accepted by gotemplate.check) on `dot`, as Go's text/template."""
    lexer = _Lexer(name, src)
    items = lexer.run()
    try:
        nodes = _Builder(src, items, lexer.comments).build()
        ex = _Exec(name, src, funcs, dot)
        ex.walk(nodes, dot)
    except _Unsupported as exc:
        raise TemplateError(f"template: {name}: {exc} is not supported in a dockyard template") from None
    return "".join(ex.out)
