"""Grounding: does a reply's rare vocabulary come from the conversation?

A retrieved reply was said in another conversation, and often names that
conversation's particulars ("Was driving in Tokyo hard?", "Falling asleep at
the dentist is impressive") that the user never mentioned. `unsupported`
counts such words: words of the reply that are rare among the index's
replies (fewer than `RARE_DF` of them use it) and share no five-letter stem
with the user's utterance or the bot's previous line. The ranker weighs the
count (`RankerWeights.unsupported`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

_WORD = re.compile(r"[a-z][a-z']+")
STEM = 5
RARE_DF = 15
"""A word is rare when fewer of the index's replies than this use it."""
MAX_COUNT = 3


def stems(texts: Iterable[str]) -> set[str]:
    return {w[:STEM] for text in texts for w in _WORD.findall(text.lower())}


def document_frequency(replies: Iterable[str]) -> Counter[str]:
    """How many of `replies` use each word."""
    counts: Counter[str] = Counter()
    for reply in replies:
        counts.update(set(_WORD.findall(reply.lower())))
    return counts


def unsupported(reply: str, context: Iterable[str], df: Counter[str]) -> int:
    """How many rare words of `reply` (at most `MAX_COUNT`) `context` does not support.

    Args:
        df: `document_frequency` of the index's replies.
    """
    known = stems(context)
    words = {w for w in _WORD.findall(reply.lower()) if len(w) > 3}
    count = sum(1 for w in words if df[w] < RARE_DF and w[:STEM] not in known)
    return min(count, MAX_COUNT)
