"""Text hygiene for the dialogue layer: cleaning what comes in and goes out, and the
normal form the matcher compares.

`clean` makes any string safe to store, match and print: escape sequences,
control and format characters (bidi overrides, zero-width), lone surrogates
are removed, whitespace is collapsed, and the result is cut to `MAX_INPUT_CHARS`.
"""

from __future__ import annotations

import re
import unicodedata

MAX_INPUT_CHARS = 1000
"""Longest user utterance the bot reads; the rest of a longer input is ignored."""

_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI, e.g. colours and cursor moves
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC, e.g. window titles, hyperlinks
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"  # DCS, SOS, PM, APC strings
    r"|\x1b[ -/]*[0-~]?"  # any other escape
    r"|\x9b[0-?]*[ -/]*[@-~]"  # 8-bit CSI
)
_SPACES = re.compile(r"\s+")
_DROPPED = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_APOSTROPHES = re.compile(r"['\u2018\u2019\u02bc`]")
_NON_WORD = re.compile(r"[^\w]+|_")


def clean(text: str, *, limit: int = MAX_INPUT_CHARS) -> str:
    """Returns `text` without escape sequences or invisible characters, at most `limit` long."""
    text = text[: 4 * limit]
    if text.isascii() and text.isprintable():
        # Nothing to drop (escapes start with a control character) and NFC changes
        # no ASCII: the common case, without the per-character pass.
        return _SPACES.sub(" ", text).strip()[:limit].rstrip()
    text = _ESCAPES.sub("", text)
    kept = [
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace() or unicodedata.category(ch) not in _DROPPED
    ]
    text = unicodedata.normalize("NFC", "".join(kept))
    return _SPACES.sub(" ", text).strip()[:limit].rstrip()


def normalize(text: str) -> str:
    """The matcher's view of a text: compatibility-folded, case-folded, words only.

    >>> normalize("What's UP?!")
    'whats up'
    """
    text = unicodedata.normalize("NFKC", clean(text)).casefold()
    text = _APOSTROPHES.sub("", text)
    return _SPACES.sub(" ", _NON_WORD.sub(" ", text)).strip()
