"""Reply-quality figures: distinct-n, the generic-reply rate, sample exchanges."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from chatbot.data.corpora import Conversation
from chatbot.decoding import DecodeConfig
from chatbot.generator import Generator, NeuralState

_WORD = re.compile(r"[\w']+|[^\w\s]")


@dataclass(frozen=True)
class ReplyQuality:
    replies: int
    distinct_1: float
    distinct_2: float
    generic_rate: float
    top_replies: tuple[tuple[str, int], ...]


def tokens(text: str) -> list[str]:
    """Lower-cased words and punctuation marks, the unit distinct-n counts."""
    return _WORD.findall(text.lower())


def distinct_n(replies: Sequence[str], n: int) -> float:
    """Distinct n-grams over all n-grams across `replies` (0.0 when there are none)."""
    grams: list[tuple[str, ...]] = []
    for reply in replies:
        words = tokens(reply)
        grams += [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def generic_rate(replies: Sequence[str], *, top: int = 10) -> tuple[float, list[tuple[str, int]]]:
    """Share of replies that are one of the `top` most frequent replies (exact text)."""
    counts = Counter(replies)
    common = counts.most_common(top)
    share = sum(c for _, c in common) / len(replies) if replies else 0.0
    return share, common


def held_out_turns(
    generator: Generator, conversations: Sequence[Conversation], *, limit: int
) -> list[tuple[NeuralState, str]]:
    """Up to `limit` (state, user turn) pairs: every other turn of each conversation
    that has a real reply, the state carried over the real turns before it."""
    turns: list[tuple[NeuralState, str]] = []
    for conv in conversations:
        state = generator.initial_state()
        for index, utterance in enumerate(conv.turns[:-1]):
            if index % 2 == 0:
                turns.append((state, utterance))
                if len(turns) == limit:
                    return turns
            [state] = generator.observe([state], [utterance])
    return turns


def reply_quality(
    generator: Generator,
    conversations: Sequence[Conversation],
    *,
    limit: int = 500,
    decode: DecodeConfig | None = None,
) -> ReplyQuality:
    """Decodes replies to held-out user turns, each after its real history, and scores them."""
    items = held_out_turns(generator, conversations, limit=limit)
    replies: list[str] = []
    for start in range(0, len(items), 64):
        chunk = [(state, user, None) for state, user in items[start : start + 64]]
        replies += [g.text for g, _ in generator.respond(chunk, decode=decode)]
    rate, common = generic_rate(replies)
    return ReplyQuality(
        replies=len(replies),
        distinct_1=distinct_n(replies, 1),
        distinct_2=distinct_n(replies, 2),
        generic_rate=rate,
        top_replies=tuple(common),
    )
