"""Cleaning hostile input and the matcher's normal form."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from chatbot.intents.text import MAX_INPUT_CHARS, clean, normalize

ESCAPES = ["\x1b", "\x9b", "\x07", "\x00", "\u202e", "\u200b", "\u2028", "\ud800"]


def test_clean_removes_escapes_and_invisible_characters() -> None:
    assert clean("\x1b[31mred\x1b[0m text") == "red text"
    assert clean("\x1b]0;title\x07hi") == "hi"
    assert clean("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\") == "link"
    assert clean("ab\u202ecd\u200b\ufeff") == "abcd"
    assert clean("a\tb\r\nc\x00d") == "a b cd"
    assert clean("lone \ud800 surrogate") == "lone surrogate"
    assert clean("  many   spaces  ") == "many spaces"
    assert clean("cafe\u0301") == "caf\u00e9"
    assert clean("🙂👍") == "🙂👍"


def test_clean_truncates_to_the_documented_limit() -> None:
    assert MAX_INPUT_CHARS == 1000
    assert clean("x" * 1_000_000) == "x" * 1000
    assert clean("ab " * 10, limit=4) == "ab a"


@given(st.text())
def test_clean_leaves_nothing_printable_dangerous(text: str) -> None:
    out = clean(text)
    assert len(out) <= MAX_INPUT_CHARS
    assert out == out.strip()
    for ch in out:
        assert unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Zl", "Zp"), repr(ch)


def test_normalize_folds_case_punctuation_and_width() -> None:
    assert normalize("What's UP?!") == "whats up"
    assert normalize("ＨＥＬＬＯ, World…") == "hello world"
    assert normalize("snake_case-word") == "snake case word"
    assert normalize("!!!") == ""


def _clean_by_characters(text: str, limit: int) -> str:
    """`clean` without its ASCII fast path: every character through the filter."""
    from chatbot.intents.text import _DROPPED, _ESCAPES, _SPACES

    text = _ESCAPES.sub("", text[: 4 * limit])
    kept = [" " if ch.isspace() else ch for ch in text
            if ch.isspace() or unicodedata.category(ch) not in _DROPPED]
    text = unicodedata.normalize("NFC", "".join(kept))
    return _SPACES.sub(" ", text).strip()[:limit].rstrip()


@given(st.text(alphabet=st.characters(max_codepoint=127)), st.integers(1, 40))
def test_the_ascii_fast_path_cleans_as_the_character_filter_does(text: str, limit: int) -> None:
    assert clean(text, limit=limit) == _clean_by_characters(text, limit)
    assert clean(text) == _clean_by_characters(text, MAX_INPUT_CHARS)
