"""Dockerfile word processing (quotes, escapes, $VAR expansion) as Docker's builder does it."""

from __future__ import annotations

import pytest

from dockyard.engine.build.shellwords import env_dict, process_word
from dockyard.errors import InvalidParameter

ENV = {"A": "a", "EMPTY": "", "SP": "x y"}


@pytest.mark.parametrize("word, expected", [
    ("plain", "plain"),
    ("$A", "a"),
    ("${A}b", "ab"),
    ("$Ab", ""),                      # the name is Ab, unset
    ("pre-$A-post", "pre-a-post"),
    ("$UNSET", ""),
    ("${UNSET:-dflt}", "dflt"),
    ("${EMPTY:-dflt}", "dflt"),
    ("${EMPTY-dflt}", ""),            # set (if empty): no default without the colon
    ("${A:+alt}", "alt"),
    ("${UNSET:+alt}", ""),
    ("${UNSET:-$A}", "a"),            # the word is expanded too
    ("'$A'", "$A"),                   # single quotes are literal
    ('"$A b"', "a b"),
    ('"${SP}"', "x y"),
    ("\\$A", "$A"),                   # escaped dollar
    ('"\\$A"', "$A"),
    ('"a\\b"', "a\\b"),               # other escapes stay inside double quotes
    ("a\\ b", "a b"),
    ("$", "$"),
    ("$1", ""),
    ("100%", "100%"),
])
def test_process_word(word, expected):
    assert process_word(word, ENV) == expected


def test_backtick_escape_directive():
    assert process_word("`$A", ENV, escape="`") == "$A"
    assert process_word("C:\\dir", ENV, escape="`") == "C:\\dir"


@pytest.mark.parametrize("word", ["'open", '"open', "${A", "${}", "${A:x}"])
def test_bad_words(word):
    with pytest.raises(InvalidParameter):
        process_word(word, ENV)


def test_required_variable():
    with pytest.raises(InvalidParameter, match="UNSET: must be set"):
        process_word("${UNSET:?must be set}", ENV)
    assert process_word("${A:?x}", ENV) == "a"


def test_env_dict_later_wins():
    assert env_dict(["A=1", "B=x=y", "A=2"]) == {"A": "2", "B": "x=y"}
