"""Candidates for one turn and the choice among them.

The generator's hypotheses and the replies the index retrieves for the user's
utterance become `ReplyCandidate`s. Duplicates, degenerate replies (empty, a
loop, an echo of the user, the bot's previous reply) and replies the filter
blocks are kept for the trace with the reason they cannot win; the others are
scored by the model (`rank.score_replies`) and the best one is said.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from chatbot.replies.filter import ReplyFilter
from chatbot.replies.index import Hit, ReplyIndex

CandidateSource = Literal["generated", "retrieved"]


@dataclass(frozen=True)
class ReplyCandidate:
    """One reply the bot could say this turn.

    Attributes:
        text: the reply.
        source: `generated` (the model's search) or `retrieved` (a human reply
            from the index).
        score: the ranker's score, None when the candidate was dropped.
        features: the ranker's features (`rank.FEATURES` order), () when dropped.
        similarity: retrieved: cosine similarity of the utterance it answered
            in the corpus to the user's; generated: 0.
        origin: retrieved: `conversation ID, turn T` of the corpus.
        answered: retrieved: the corpus utterance it answered.
        dropped: why it cannot win (`duplicate`, `degenerate: echo`,
            `blocked: word 'x'`), or None.
    """

    text: str
    source: CandidateSource
    score: float | None = None
    features: tuple[float, ...] = ()
    similarity: float = 0.0
    origin: str | None = None
    answered: str | None = None
    dropped: str | None = None


def gather(
    generated: Sequence[str],
    hits: Sequence[Hit],
    index: ReplyIndex | None,
    *,
    flags: Callable[[str], tuple[str, ...]],
    reply_filter: ReplyFilter,
) -> list[ReplyCandidate]:
    """Generated texts first, then retrieved hits, each marked `dropped` where it
    repeats an earlier candidate, has degenerate `flags`, or is blocked."""
    found = [ReplyCandidate(text.strip(), "generated") for text in generated]
    if index is not None:
        for hit in hits:
            cid, turn = index.source(hit.entry)
            found.append(ReplyCandidate(
                index.reply(hit.entry), "retrieved", similarity=hit.similarity,
                origin=f"conversation {cid}, turn {turn}", answered=index.key(hit.entry),
            ))
    seen: set[str] = set()
    out = []
    for candidate in found:
        key = " ".join(candidate.text.casefold().split())
        reason = None
        if key in seen:
            reason = "duplicate"
        elif bad := flags(candidate.text):
            reason = f"degenerate: {', '.join(bad)}"
        elif blocked := reply_filter.blocked(candidate.text):
            reason = f"blocked: {blocked}"
        seen.add(key)
        out.append(replace(candidate, dropped=reason) if reason else candidate)
    return out


def best(candidates: Sequence[ReplyCandidate]) -> ReplyCandidate | None:
    """The highest-scoring candidate that was not dropped (the first on ties)."""
    scored = [c for c in candidates if c.dropped is None and c.score is not None]
    return max(scored, key=lambda c: c.score or 0.0) if scored else None
