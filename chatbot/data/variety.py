"""Variety statistics of a conversation corpus: openers, distinct-n, repeats, near-duplicates.

The bot side is every odd turn (the user speaks first). Words are lower-cased
runs of letters, digits and apostrophes. The figures follow
`shared/tools/corpus_check.py`, so the two can be compared.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

_WORD = re.compile(r"[a-z0-9']+")
MIN_SHARED_WORDS = 4
"""Turns shorter than this ("yeah", "thanks a lot") are not evidence of a duplicate."""


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _norm(text: str) -> str:
    return " ".join(words(text))


@dataclass(frozen=True)
class Variety:
    conversations: int
    turns: int
    bot_turns: int
    user_words_median: int
    bot_words_median: int
    top_openers: tuple[tuple[str, float], ...]
    distinct_1: float
    distinct_2: float
    repeated_rate: float
    question_rate: float
    near_duplicates: int

    @property
    def top_opener_share(self) -> float:
        return self.top_openers[0][1] if self.top_openers else 0.0


def opener(text: str) -> str:
    """A turn's first three words."""
    return " ".join(words(text)[:3])


def near_duplicates(conversations: Sequence[Sequence[str]]) -> list[int]:
    """Indexes of conversations most of whose turns (of 4+ words) occur in another one."""
    seen = Counter(
        _norm(t) for c in conversations for t in set(c) if len(words(t)) >= MIN_SHARED_WORDS
    )
    return [
        i for i, c in enumerate(conversations)
        if len(c) >= 4
        and sum(seen[_norm(t)] > 1 for t in c if len(words(t)) >= MIN_SHARED_WORDS) > len(c) / 2
    ]


def variety(conversations: Sequence[Sequence[str]]) -> Variety:
    """The statistics of `conversations` (each a sequence of turns, the user first)."""
    user = [t for c in conversations for t in c[0::2]]
    bot = [t for c in conversations for t in c[1::2]]
    uni: Counter[str] = Counter()
    bi: Counter[tuple[str, str]] = Counter()
    for turn in bot:
        w = words(turn)
        uni.update(w)
        bi.update(zip(w, w[1:], strict=False))
    openers = Counter(opener(t) for t in bot)
    lines = Counter(_norm(t) for t in bot if len(words(t)) >= MIN_SHARED_WORDS)
    n_bot = max(1, len(bot))
    return Variety(
        conversations=len(conversations),
        turns=sum(len(c) for c in conversations),
        bot_turns=len(bot),
        user_words_median=_median([len(words(t)) for t in user]),
        bot_words_median=_median([len(words(t)) for t in bot]),
        top_openers=tuple((o, k / n_bot) for o, k in openers.most_common(10)),
        distinct_1=len(uni) / max(1, sum(uni.values())),
        distinct_2=len(bi) / max(1, sum(bi.values())),
        repeated_rate=sum(k for k in lines.values() if k > 3) / n_bot,
        question_rate=sum(t.rstrip().endswith("?") for t in bot) / n_bot,
        near_duplicates=len(near_duplicates(conversations)),
    )


def _median(values: list[int]) -> int:
    return sorted(values)[len(values) // 2] if values else 0
