"""The reply filter: whole-word matching, the default patterns, located load errors."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from chatbot.errors import ConfigError, YamlError
from chatbot.replies.filter import ReplyFilter

SMALL = ReplyFilter(("ass", "damn", "kill you", "cunt", "sex"))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "blocked.yml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> str:
    with pytest.raises(YamlError) as caught:
        ReplyFilter.load(write(tmp_path, text))
    return str(caught.value).removeprefix(f"{tmp_path}/")


def test_reasons_name_the_listed_word_or_the_pattern() -> None:
    rf = ReplyFilter(("Damn",), (re.compile(r"\d{3}-\d{4}"),), ("phone number",))
    assert rf.blocked("well, damn it") == "word 'Damn'"
    assert rf.blocked("call 555-1234") == "pattern 'phone number'"
    assert rf.blocked("all good") is None


def test_an_unnamed_pattern_is_named_by_its_regex() -> None:
    assert ReplyFilter((), (re.compile("x+y"),)).blocked("xxy") == "pattern 'x+y'"


@pytest.mark.parametrize(
    "text",
    ["a class act", "I assume so", "bass guitar", "Scunthorpe United", "Essex", "Middlesex",
     "passion", "a damnable lie", "skill yourself up", "kill your darlings"],
)
def test_words_match_on_word_boundaries_only(text: str) -> None:
    assert SMALL.blocked(text) is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("you ass", "word 'ass'"),
        ("ass.", "word 'ass'"),
        ("(damn)", "word 'damn'"),
        ("I'll kill you", "word 'kill you'"),
        ("kill... you", "word 'kill you'"),
        ("KILL-YOU", "word 'kill you'"),
        ("kill\n\tyou", "word 'kill you'"),
    ],
)
def test_words_and_phrases_match_across_punctuation(text: str, reason: str) -> None:
    assert SMALL.blocked(text) == reason


@pytest.mark.parametrize("text", ["DAMN", "DaMn", "\uff24\uff21\uff2d\uff2e", "d\u200bamn"])
def test_case_fullwidth_and_zero_width_spellings_are_caught(text: str) -> None:
    assert SMALL.blocked(text) == "word 'damn'"


def test_the_longest_phrase_wins() -> None:
    rf = ReplyFilter(("kill", "kill you"))
    assert rf.blocked("I will kill you") == "word 'kill you'"
    assert rf.blocked("kill time") == "word 'kill'"


def test_words_are_escaped_not_read_as_regex() -> None:
    rf = ReplyFilter(("a.b",))
    assert rf.blocked("a-b") == "word 'a.b'"
    assert rf.blocked("axb") is None


def test_a_word_without_letters_is_refused() -> None:
    with pytest.raises(ConfigError, match="blocked word '!!' has no letters or digits to match"):
        ReplyFilter(("!!",))


def test_empty_blocks_nothing() -> None:
    rf = ReplyFilter.empty()
    assert rf.words == () and rf.patterns == ()
    for text in ("damn", "kill you", "bob@example.com", "555-123-4567", ""):
        assert rf.blocked(text) is None


def test_default_loads_once_and_is_not_empty() -> None:
    rf = ReplyFilter.default()
    assert rf is ReplyFilter.default()
    assert 60 <= len(rf.words) <= 120
    assert rf.pattern_names == (
        "email address", "phone number", "url", "street address", "social handle"
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Fuck that", "word 'fuck'"),
        ("what a piece of SHIT", "word 'shit'"),
        ("you should kill yourself", "word 'kill yourself'"),
        ("kys", "word 'kys'"),
        ("or I kill you.", "word 'kill you'"),
        ("I will kill him", "word 'i will kill'"),
        ("let's have sex", "word 'sex'"),
    ],
)
def test_default_blocks_listed_words(text: str, reason: str) -> None:
    assert ReplyFilter.default().blocked(text) == reason


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("write to bob.smith@example.com", "email address"),
        ("MAIL ME: Jo+chat@mail.co.uk", "email address"),
        ("call 555-123-4567", "phone number"),
        ("call (555) 123-4567 now", "phone number"),
        ("ring +44 20 7946 0958", "phone number"),
        ("my number is 555.123.4567", "phone number"),
        ("text 5551234567", "phone number"),
        ("see https://example.org/page", "url"),
        ("go to www.chat.example", "url"),
        ("visit example.com today", "url"),
        ("I live at 123 main street", "street address"),
        ("come to 42 elm st", "street address"),
        ("1600 Pennsylvania Avenue", "street address"),
        ("221b baker street", "street address"),
        ("follow me @chatty_bot", "social handle"),
        ("\uff20chatty", "social handle"),
    ],
)
def test_default_patterns_catch_personal_details(text: str, name: str) -> None:
    assert ReplyFilter.default().blocked(text) == f"pattern {name!r}"


@pytest.mark.parametrize(
    "text",
    [
        "I have 2 dogs",
        "I'm 25 years old",
        "see you at 5:30",
        "I work 9 to 5",
        "I live on a farm",
        "I was born in 1990",
        "it was 2024-01-15",
        "my birthday is 12/25/1990",
        "we won 3-2",
        "a class act, I assume",
        "Scunthorpe is in England",
        "I love Dickens and cocktails",
        "pi is 3.14159",
        "I scored 100 points in 1999 and 2000",
        "I walked 3 miles down the road",
        "it's a 2 hour drive",
        "it is 10 minutes that way",
        "see you @ 5",
        "see you @5pm",
        "hello. world",
        "I don't know, maybe.",
    ],
)
def test_default_leaves_ordinary_chit_chat_alone(text: str) -> None:
    assert ReplyFilter.default().blocked(text) is None


def test_load_reads_words_and_named_patterns(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        version: 1
        words: [darn, heck it]
        patterns:
          - name: digits
            regex: '\\d{4}'
        """,
    )
    rf = ReplyFilter.load(path)
    assert rf.words == ("darn", "heck it")
    assert [p.pattern for p in rf.patterns] == ["\\d{4}"]
    assert rf.pattern_names == ("digits",)
    assert rf.blocked("Heck, it's 1234") == "word 'heck it'"
    assert rf.blocked("PIN 1234") == "pattern 'digits'"


def test_load_without_words_or_patterns_blocks_nothing(tmp_path: Path) -> None:
    assert ReplyFilter.load(write(tmp_path, "version: 1\n")).blocked("damn") is None


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "blocked.yml: file is empty (expected 'version: 1')"),
        ("- a\n", "blocked.yml:1:1: the reply filter must be a mapping, not a list"),
        ("words: [a]\n", "blocked.yml:1:1: the reply filter is missing the key 'version'"),
        (
            "version: 1\nword: [a]\n",
            "blocked.yml:2:1: unknown key 'word' (did you mean 'words'?)",
        ),
        (
            "version: 1\nversion: 1\n",
            "blocked.yml:2:1: duplicate key 'version' in the reply filter "
            "(first at {tmp}/blocked.yml:1:1)",
        ),
        ("version: 2\n", "blocked.yml:1:10: unsupported version 2 (this chatbot reads version 1)"),
        ("version: '1'\n", "blocked.yml:1:10: 'version' must be an integer, not a string"),
        ("version: 1\nwords: darn\n", "blocked.yml:2:8: 'words' must be a list, not a string"),
        (
            "version: 1\nwords: [darn, 3]\n",
            "blocked.yml:2:15: each of 'words' must be a string, not an integer",
        ),
        (
            "version: 1\nwords: [darn, '  ']\n",
            "blocked.yml:2:15: each of 'words' must not be empty",
        ),
        (
            "version: 1\nwords: [darn, '!?']\n",
            "blocked.yml:2:15: word '!?' has no letters or digits to match",
        ),
        (
            "version: 1\nwords: [darn, DARN]\n",
            "blocked.yml:2:15: duplicate word 'DARN' (first at {tmp}/blocked.yml:2:9)",
        ),
        (
            "version: 1\npatterns: [x]\n",
            "blocked.yml:2:12: a pattern must be a mapping, not a string",
        ),
        (
            "version: 1\npatterns:\n  - name: n\n",
            "blocked.yml:3:5: a pattern is missing the key 'regex'",
        ),
        (
            "version: 1\npatterns:\n  - regex: x\n",
            "blocked.yml:3:5: a pattern is missing the key 'name'",
        ),
        (
            "version: 1\npatterns:\n  - name: n\n    regx: x\n",
            "blocked.yml:4:5: unknown key 'regx' (did you mean 'regex'?)",
        ),
        (
            "version: 1\npatterns:\n  - name: n\n    regex: '(ab'\n",
            "blocked.yml:4:12: invalid regex '(ab': missing ), unterminated subpattern "
            "at position 0",
        ),
        (
            "version: 1\npatterns:\n  - name: n\n    regex: 'a*'\n",
            "blocked.yml:4:12: regex 'a*' matches empty text, so it blocks every reply",
        ),
        (
            "version: 1\npatterns:\n  - name: [n]\n    regex: x\n",
            "blocked.yml:3:11: 'name' must be a string, not a list",
        ),
        (
            "version: 1\npatterns:\n  - {name: n, regex: x}\n  - {name: n, regex: y}\n",
            "blocked.yml:4:12: duplicate pattern name 'n' (first at {tmp}/blocked.yml:3:12)",
        ),
        ("version: 1\nwords: [a\n", "blocked.yml:3:1: expected ',' or ']', but got '<stream end>'"),
    ],
)
def test_load_errors_say_where(tmp_path: Path, text: str, error: str) -> None:
    assert load_error(tmp_path, text) == error.replace("{tmp}", str(tmp_path))


def test_a_missing_file_is_a_yaml_error(tmp_path: Path) -> None:
    with pytest.raises(YamlError, match="blocked.yml: cannot read: No such file or directory"):
        ReplyFilter.load(tmp_path / "blocked.yml")
