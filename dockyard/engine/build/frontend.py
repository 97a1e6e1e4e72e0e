"""The Dockerfile front end: moby's own parser (the `dockerfile` package) plus the checks that
dockerd's legacy builder makes before running anything (instruction names, argument counts,
flags, stages). Pure: text in, a `Dockerfile` of stages and instructions out, or an
InvalidParameter whose message is dockerd's ("dockerfile parse error line N: ...").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import dockerfile as _parser

from ...errors import InvalidParameter

KNOWN = {"ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
         "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"}

# Flags each instruction accepts; those only BuildKit knows are refused with its words.
FLAGS: dict[str, set[str]] = {
    "FROM": {"platform"},
    "COPY": {"from", "chown"},
    "ADD": {"chown"},
    "HEALTHCHECK": {"interval", "timeout", "start-period", "start-interval", "retries"},
}
BUILDKIT_ONLY_FLAGS = {"chmod", "link", "mount", "network", "security", "checksum", "keep-git-dir",
                       "exclude", "parents"}
# Flags dockerd's parser accepts and its legacy builder refuses only when it reaches the step
# (in the build's stream, after the steps before it ran): see REFUSED_AT_DISPATCH in executor.
DISPATCH_REFUSED_FLAGS: dict[str, set[str]] = {
    "RUN": {"mount", "network", "security"},
    "COPY": {"chmod"},
    "ADD": {"chmod"},
}

STAGE_NAME_RE = re.compile(r"^[a-z][a-z0-9\-_.]*$")
ESCAPE_DIRECTIVE_RE = re.compile(r"^#\s*escape\s*=\s*(\S)\s*$", re.IGNORECASE)
DIRECTIVE_RE = re.compile(r"^#\s*[a-zA-Z][a-zA-Z0-9]*\s*=")


@dataclass
class Instruction:
    cmd: str                      # upper case: "RUN"
    original: str                 # the line as the "Step i/n : ..." message shows it
    args: list[str]               # values as the parser split them (quotes still in place)
    flags: dict[str, str | None] = field(default_factory=dict)
    json: bool = False            # exec (JSON) form
    line: int = 0
    trigger: str = ""             # ONBUILD: the trigger instruction's text

    def flag(self, name: str) -> str | None:
        return self.flags.get(name)


@dataclass
class Stage:
    index: int
    base: str                     # unexpanded image reference (may contain $ARGs)
    name: str | None
    platform: str | None
    origin: Instruction           # the FROM itself
    instructions: list[Instruction] = field(default_factory=list)


@dataclass
class Dockerfile:
    meta_args: list[Instruction]  # the ARGs before the first FROM
    stages: list[Stage]
    escape: str = "\\"

    def stage_index(self, ref: str) -> int | None:
        """A stage by name (case-insensitive) or by index, as COPY --from and FROM use them."""
        low = ref.lower()
        for s in self.stages:
            if s.name == low:
                return s.index
        if ref.isdigit() and int(ref) < len(self.stages):
            return int(ref)
        return None

    def until_target(self, target: str | None) -> list[Stage]:
        if not target:
            return self.stages
        idx = next((s.index for s in self.stages if s.name == target.lower()), None)
        if idx is None:
            raise InvalidParameter(f"failed to reach build target {target} in Dockerfile")
        return self.stages[: idx + 1]


def _error(line: int, msg: str) -> InvalidParameter:
    return InvalidParameter(f"dockerfile parse error line {line}: {msg}")


def escape_token(text: str) -> str:
    """The `# escape=` parser directive (only in the leading comment block)."""
    for raw in text.splitlines():
        line = raw.strip()
        if not line.startswith("#"):
            break
        m = ESCAPE_DIRECTIVE_RE.match(line)
        if m:
            if m.group(1) not in ("\\", "`"):
                raise InvalidParameter(f"invalid escape token '{m.group(1)}' does not match ` or \\")
            return m.group(1)
        if not DIRECTIVE_RE.match(line):
            break
    return "\\"


def _parse_flags(cmd: str, raw: tuple[str, ...], line: int) -> dict[str, str | None]:
    allowed = FLAGS.get(cmd, set()) | DISPATCH_REFUSED_FLAGS.get(cmd, set())
    out: dict[str, str | None] = {}
    for f in raw:
        if not f.startswith("--"):
            raise _error(line, f"Invalid flag format: {f}")
        name, eq, value = f[2:].partition("=")
        if name not in allowed:
            if name in BUILDKIT_ONLY_FLAGS:
                raise _error(line, f"the --{name} option requires BuildKit. Refer to "
                                   "https://docs.docker.com/go/buildkit/ to learn how to build images with "
                                   "BuildKit enabled")
            raise _error(line, f"Unknown flag: {name}")
        if name in out:
            raise _error(line, f"Duplicate flag specified: {name}")
        out[name] = value if eq else None
    return out


def _check(ins: Instruction) -> None:
    """dockerd's argument checks, per instruction."""
    cmd, args, line = ins.cmd, ins.args, ins.line
    nargs = len(args)
    if cmd in ("RUN", "CMD", "ENTRYPOINT", "SHELL"):
        if cmd == "SHELL" and not ins.json:
            raise _error(line, "SHELL requires the arguments to be in JSON form")
        if nargs == 0 and not (ins.json and cmd in ("CMD", "ENTRYPOINT")):
            raise _error(line, f"{cmd} requires at least one argument")
    elif cmd in ("COPY", "ADD"):
        if nargs < 2:
            raise _error(line, f"{cmd} requires at least two arguments, but only {nargs} provided")
    elif cmd in ("ENV", "LABEL"):
        if nargs == 0:
            raise _error(line, f"{cmd} requires at least one argument")
        if nargs % 2:
            raise _error(line, f"{cmd} must have two arguments")
        if any(not args[i] for i in range(0, nargs, 2)):
            raise _error(line, f"{cmd} names can not be blank")
    elif cmd == "ARG":
        if nargs == 0:
            raise _error(line, "ARG requires at least one argument")
        for a in args:
            if not a.partition("=")[0]:
                raise _error(line, "ARG names can not be blank")
    elif cmd in ("WORKDIR", "USER", "STOPSIGNAL", "MAINTAINER"):
        if nargs != 1:
            raise _error(line, f"{cmd} requires exactly one argument")
    elif cmd in ("EXPOSE", "VOLUME"):
        if nargs == 0:
            raise _error(line, f"{cmd} requires at least one argument")
    elif cmd == "HEALTHCHECK":
        if nargs == 0:
            raise _error(line, "HEALTHCHECK requires at least one argument")
        kind = args[0].upper()
        if kind == "NONE":
            if nargs > 1:
                raise _error(line, "HEALTHCHECK NONE takes no arguments")
            if ins.flags:
                raise _error(line, "HEALTHCHECK NONE takes no flags")
        elif kind == "CMD":
            if nargs < 2:
                raise _error(line, "Missing command after HEALTHCHECK CMD")
        else:
            raise _error(line, f"Unknown type \"{kind}\" in HEALTHCHECK (try CMD)")
    elif cmd == "ONBUILD":
        if not ins.trigger:
            raise _error(line, "ONBUILD requires at least one argument")
        trig = ins.trigger.split(None, 1)[0].upper()
        if trig in ("ONBUILD", "FROM", "MAINTAINER"):
            raise _error(line, f"{trig} isn't allowed as an ONBUILD trigger")
        if trig not in KNOWN:
            raise _error(line, f"unknown instruction: {trig}")


def _instruction(c) -> Instruction:
    cmd = c.cmd.upper()
    line = c.start_line
    if cmd not in KNOWN:
        raise _error(line, f"unknown instruction: {cmd}")
    if c.heredocs:
        raise _error(line, "heredocs require BuildKit; the legacy builder does not support them")
    ins = Instruction(cmd=cmd, original=c.original.strip(), args=list(c.value), json=bool(c.json),
                      line=line, flags=_parse_flags(cmd, c.flags, line))
    if cmd == "ONBUILD":
        ins.trigger = re.sub(r"^\s*ONBUILD\s+", "", c.original, flags=re.IGNORECASE).strip() \
            if c.sub_cmd else ""
    _check(ins)
    return ins


def parse(text: str) -> Dockerfile:
    """A Dockerfile's text -> stages; InvalidParameter with dockerd's message when it is bad."""
    if not text.strip():
        raise InvalidParameter("the Dockerfile cannot be empty")
    escape = escape_token(text)
    try:
        commands = _parser.parse_string(text)
    except _parser.GoParseError as exc:
        msg = str(exc)
        if msg == "file with no instructions":
            raise InvalidParameter("the Dockerfile cannot be empty") from None
        raise InvalidParameter(f"dockerfile parse error: {msg}") from None
    meta: list[Instruction] = []
    stages: list[Stage] = []
    for c in commands:
        ins = _instruction(c)
        if ins.cmd == "FROM":
            args = ins.args
            if len(args) not in (1, 3) or (len(args) == 3 and args[1].lower() != "as"):
                raise _error(ins.line, "FROM requires either one or three arguments")
            name = None
            if len(args) == 3:
                name = args[2].lower()
                if not STAGE_NAME_RE.match(name):
                    raise _error(ins.line, f"invalid name for build stage: \"{args[2]}\", name can't start "
                                           "with a number or contain symbols")
                if any(s.name == name for s in stages):
                    raise _error(ins.line, f"duplicate name {name}")
            stages.append(Stage(index=len(stages), base=args[0], name=name,
                                platform=ins.flag("platform"), origin=ins))
        elif not stages:
            if ins.cmd != "ARG":
                raise _error(ins.line, "no build stage in current context")
            meta.append(ins)
        else:
            stages[-1].instructions.append(ins)
    if not stages:
        raise InvalidParameter("dockerfile parse error: no build stage in current context")
    return Dockerfile(meta_args=meta, stages=stages, escape=escape)


def parse_trigger(trigger: str) -> Instruction:
    """One ONBUILD trigger, parsed as the instruction it is."""
    try:
        commands = _parser.parse_string(trigger + "\n")
    except _parser.GoParseError as exc:
        raise InvalidParameter(f"invalid ONBUILD trigger {trigger!r}: {exc}") from None
    if len(commands) != 1:
        raise InvalidParameter(f"invalid ONBUILD trigger {trigger!r}")
    ins = _instruction(commands[0])
    if ins.cmd in ("ONBUILD", "FROM", "MAINTAINER"):
        raise InvalidParameter(f"{ins.cmd} isn't allowed as an ONBUILD trigger")
    return ins


def pairs(args: list[str]) -> list[tuple[str, str]]:
    """ENV/LABEL arguments (the parser gives key, value, key, value...)."""
    return [(args[i], args[i + 1]) for i in range(0, len(args) - 1, 2)]
