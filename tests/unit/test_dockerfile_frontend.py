"""The Dockerfile front end: stages, instructions and dockerd's parse errors."""

from __future__ import annotations

import pytest

from dockyard.engine.build.frontend import escape_token, pairs, parse, parse_trigger
from dockyard.errors import InvalidParameter


def test_stages_and_meta_args():
    df = parse("ARG V=1\nFROM --platform=linux/amd64 busybox:${V} AS Builder\nRUN echo \\\n  hi\n"
               "FROM scratch\nCOPY --from=builder /a /b\n")
    assert [a.original for a in df.meta_args] == ["ARG V=1"]
    assert [(s.index, s.base, s.name, s.platform) for s in df.stages] == [
        (0, "busybox:${V}", "builder", "linux/amd64"), (1, "scratch", None, None)]
    run = df.stages[0].instructions[0]
    assert run.cmd == "RUN" and not run.json and run.args[0].split() == ["echo", "hi"]
    copy = df.stages[1].instructions[0]
    assert copy.flag("from") == "builder" and copy.args == ["/a", "/b"]
    assert df.stage_index("BUILDER") == 0 and df.stage_index("1") == 1 and df.stage_index("x") is None


def test_exec_form_and_pairs():
    df = parse('FROM busybox\nCMD ["echo", "a b"]\nENV A=1 B="2 3"\nENV C 4 5\nLABEL "k k"=v\n')
    cmd, env1, env2, label = df.stages[0].instructions
    assert cmd.json and cmd.args == ["echo", "a b"]
    assert pairs(env1.args) == [("A", "1"), ("B", '"2 3"')]   # quotes go at expansion time
    assert pairs(env2.args) == [("C", "4 5")]
    assert pairs(label.args) == [('"k k"', "v")]


def test_target():
    df = parse("FROM busybox AS a\nFROM busybox AS b\nFROM busybox\n")
    assert [s.name for s in df.until_target("a")] == ["a"]
    assert len(df.until_target(None)) == 3
    with pytest.raises(InvalidParameter, match="failed to reach build target nope"):
        df.until_target("nope")


@pytest.mark.parametrize("text, message", [
    ("", "cannot be empty"),
    ("# just a comment\n", "cannot be empty"),
    ("FROM busybox\nFOO bar\n", "line 2: unknown instruction: FOO"),
    ("RUN true\n", "line 1: no build stage in current context"),
    ("ARG A\nENV B=1\nFROM busybox\n", "line 2: no build stage in current context"),
    ("FROM a b\n", "FROM requires either one or three arguments"),
    ("FROM a AS 1x\n", "invalid name for build stage"),
    ("FROM a AS x\nFROM b AS x\n", "duplicate name x"),
    ("FROM busybox\nCOPY onlyone\n", "COPY requires at least two arguments"),
    ("FROM busybox\nRUN\n", "RUN requires at least one argument"),
    ("FROM busybox\nWORKDIR\n", "WORKDIR requires exactly one argument"),
    ("FROM busybox\nSHELL /bin/bash -c\n", "SHELL requires the arguments to be in JSON form"),
    ("FROM busybox\nCOPY --link a b\n", "requires BuildKit"),
    ("FROM busybox\nRUN --bogus=1 true\n", "Unknown flag: bogus"),
    ("FROM busybox\nCOPY --bogus=1 a b\n", "Unknown flag: bogus"),
    ("FROM busybox\nHEALTHCHECK WHAT\n", 'Unknown type "WHAT" in HEALTHCHECK'),
    ("FROM busybox\nHEALTHCHECK NONE extra\n", "HEALTHCHECK NONE takes no arguments"),
    ("FROM busybox\nONBUILD FROM x\n", "FROM isn't allowed as an ONBUILD trigger"),
    ("FROM busybox\nENV A\n", "ENV must have two arguments"),
    ("FROM busybox\nRUN <<EOF\nx\nEOF\n", "heredocs require BuildKit"),
])
def test_parse_errors(text, message):
    with pytest.raises(InvalidParameter) as e:
        parse(text)
    assert message in e.value.message


def test_flags_refused_only_when_the_step_runs_parse():
    """dockerd's parser takes RUN --mount/--network/--security and COPY/ADD --chmod; its legacy
    builder refuses them at the step (in the stream), so parsing must not fail."""
    df = parse("FROM busybox\nRUN --mount=type=cache,target=/x --network=none true\nCOPY --chmod=755 a b\n")
    run, cp = df.stages[0].instructions
    assert list(run.flags) == ["mount", "network"] and cp.flags == {"chmod": "755"}


def test_onbuild_trigger_text():
    df = parse("FROM busybox\nONBUILD   RUN echo hi\n")
    ins = df.stages[0].instructions[0]
    assert ins.trigger == "RUN echo hi"
    t = parse_trigger(ins.trigger)
    assert t.cmd == "RUN" and t.args == ["echo hi"]


def test_escape_directive():
    assert escape_token("# escape=`\nFROM x\n") == "`"
    assert escape_token("# syntax=foo\n# escape=`\nFROM x\n") == "`"
    assert escape_token("FROM x\n# escape=`\n") == "\\"   # only in the leading comments
    df = parse("# escape=`\nFROM busybox\nRUN echo a `\n  b\n")
    assert df.escape == "`" and df.stages[0].instructions[0].args[0].split() == ["echo", "a", "b"]
