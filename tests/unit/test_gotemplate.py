"""The tag template and regexp checks against dockerd's own answers, case by case.

data/dockerd_log_opt_errors.tsv holds what a reference dockerd 20.10 said for each `tag`
(hand-written cases and random ones made of template pieces) and `labels-regex` value.
Not modelled, so left out there: the types of function arguments
(`{{.Name | upper | truncate 3}}`: dockerd "expected string; found 3").
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from dockyard.engine.logdrivers.startchecks import check_start_options
from dockyard.errors import DockyardError, InvalidParameter

DATA = Path(__file__).parent / "data" / "dockerd_log_opt_errors.tsv"


def _cases() -> list[tuple[str, str, str]]:
    rows = []
    for line in DATA.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            continue
        key, value, message = line.split("\t")
        rows.append((key, value, message))
    return rows


CASES = _cases()


def answer(key: str, value: str) -> str:
    try:
        check_start_options("json-file", {key: value})
    except InvalidParameter as exc:
        return exc.message
    return ""


@pytest.mark.parametrize("key,value,message", CASES, ids=[f"{k}={v}" for k, v, _ in CASES])
def test_same_answer_as_dockerd(key, value, message):
    assert answer(key, value) == message


def test_there_are_cases_of_every_kind():
    messages = [m for _, _, m in CASES]
    assert len(CASES) > 300 and sum(1 for m in messages if not m) > 50
    for kind in ("unclosed action", "not defined", "can't evaluate field", "bad character",
                 "unexpected EOF", "error parsing regexp"):
        assert any(kind in m for m in messages), kind


def test_multiline_template_reports_the_line():
    # both are dockerd 20.10's answers
    assert answer("tag", "l1\n{{.Name") == "template: log-tag:2: unclosed action"
    assert answer("tag", "l1\n x{{.Nope}}") == ('template: log-tag:2:4: executing "log-tag" at <.Nope>: '
                                                "can't evaluate field Nope in type *logger.Info")


def test_syslog_checks_the_tag_but_not_the_regexes():
    with pytest.raises(InvalidParameter):
        check_start_options("syslog", {"tag": "{{.Name"})
    check_start_options("syslog", {"labels-regex": "[a"})  # dockerd's syslog never compiles it
    check_start_options("local", {"tag": "{{.Name"})  # refused before, as an unknown option


def test_random_input_never_crashes():
    pieces = ["{{", "}}", "{{-", " -}}", ".", "Name", " ", "(", ")", "|", '"', "'", "`", "$x", ":=", "=",
              "if", "end", "else", "range", "with", "define", "template", "block", "break", "nil", "3",
              "/*", "*/", "\n", "x", ",", "}", "{", "printf", "-", "+", "1e", ".Config", "0x", "\\", "[", "?"]
    rnd = random.Random(5)
    for _ in range(20000):
        value = "".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 12)))
        for key in ("tag", "labels-regex"):
            try:
                check_start_options("json-file", {key: value})
            except DockyardError:
                pass
