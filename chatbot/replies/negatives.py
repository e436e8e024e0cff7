"""Near-miss negatives for training the ranker: other replies retrieved for a turn."""

from __future__ import annotations

import random
from collections.abc import Sequence

from chatbot.data.corpora import Conversation
from chatbot.replies.index import ReplyIndex

CHUNK = 512


def retrieved_negatives(
    index: ReplyIndex,
    conversations: Sequence[Conversation],
    *,
    count: int,
    pool: int = 10,
    seed: int = 0,
) -> list[list[list[str]]]:
    """`out[c][t]`: `count` replies drawn from the `pool` best retrieved for turn t-1
    of conversation c (none for t = 0), never from conversation c itself and never
    the true reply's text."""
    own = {conv.id: i for i, conv in enumerate(index.conversations)}
    queries: list[tuple[int, int]] = [
        (c, t) for c, conv in enumerate(conversations) for t in range(1, len(conv.turns))
    ]
    out: list[list[list[str]]] = [[[] for _ in conv.turns] for conv in conversations]
    rng = random.Random(seed)
    for start in range(0, len(queries), CHUNK):
        chunk = queries[start : start + CHUNK]
        texts = [conversations[c].turns[t - 1] for c, t in chunk]
        exclude = [own.get(conversations[c].id, -1) for c, _ in chunk]
        for (c, t), hits in zip(chunk, index.search(texts, k=pool, exclude=exclude), strict=True):
            truth = conversations[c].turns[t].casefold()
            replies = [index.reply(h.entry) for h in hits]
            replies = [r for r in replies if r.casefold() != truth]
            out[c][t] = rng.sample(replies, min(count, len(replies)))
    return out
