"""Reply evaluation on held-out conversations, pure generation beside the selector.

Ranking is measured as ParlAI and ConvAI2 do it: hits@1 of 20, the true next
turn among 19 turns of other held-out conversations (chance 5%), and the harder
hits@1 among the 19 replies the index retrieves for that context. Replies
are compared to the true one by unigram F1 (ParlAI's normalisation: lower-cased,
punctuation and articles removed) and described by distinct-1/2, the generic
rate and the mean length in words.
"""

from __future__ import annotations

import random
import re
import string
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from chatbot.config import DecodeConfig
from chatbot.data.corpora import Conversation
from chatbot.generator import Generator, NeuralState
from chatbot.quality import distinct_n, generic_rate
from chatbot.replies.rank import RankerWeights

DISTRACTORS = 19
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


@dataclass(frozen=True)
class Turn:
    """A held-out user turn: the state before it, its text and the true reply."""

    state: NeuralState
    user: str
    truth: str
    conversation: int


def normalize_answer(text: str) -> str:
    """ParlAI's normalisation: lower case, no punctuation, no articles, single spaces."""
    text = text.lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def unigram_f1(guess: str, answer: str) -> float:
    """F1 of the normalised words of `guess` against `answer` (0 when either is empty)."""
    g, a = normalize_answer(guess).split(), normalize_answer(answer).split()
    common = sum((Counter(g) & Counter(a)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(g), common / len(a)
    return 2 * precision * recall / (precision + recall)


def hits_at_1(scores: Sequence[Sequence[float]]) -> float:
    """Share of rows whose first entry (the true reply) scores strictly above the rest."""
    if not scores:
        return 0.0
    return sum(all(row[0] > x for x in row[1:]) for row in scores) / len(scores)


def held_out(
    generator: Generator, conversations: Sequence[Conversation], *, limit: int
) -> list[Turn]:
    """Up to `limit` turns: each turn with a reply, the state carried over the
    real turns before it (all conversations advance together, one batch a turn)."""
    states = [generator.initial_state() for _ in conversations]
    turns: list[Turn] = []
    depth = max((len(c.turns) for c in conversations), default=0)
    for t in range(depth - 1):
        live = [i for i, c in enumerate(conversations) if t + 1 < len(c.turns)]
        for i in live:
            turns.append(Turn(states[i], conversations[i].turns[t],
                              conversations[i].turns[t + 1], i))
        observed = generator.observe([states[i] for i in live],
                                     [conversations[i].turns[t] for i in live])
        for i, state in zip(live, observed, strict=True):
            states[i] = state
    rng = random.Random(0)
    rng.shuffle(turns)
    return turns[:limit]


def distractor_sets(
    generator: Generator, turns: Sequence[Turn], conversations: Sequence[Conversation],
    *, seed: int = 0,
) -> tuple[list[list[str]], list[list[str]]]:
    """Per turn: 19 random turns of other conversations, and 19 replies the
    index retrieves for the user's utterance (topped up with random ones when
    fewer are found), none equal to the true reply."""
    rng = random.Random(seed)
    pool = [(i, t) for i, c in enumerate(conversations) for t in c.turns]
    randoms = []
    for turn in turns:
        chosen: list[str] = []
        while len(chosen) < DISTRACTORS:
            i, text = rng.choice(pool)
            if i != turn.conversation and text != turn.truth:
                chosen.append(text)
        randoms.append(chosen)
    index = generator.index
    found = (
        index.search([t.user for t in turns], k=DISTRACTORS + 1) if index is not None
        else [[] for _ in turns]
    )
    retrieved = []
    for turn, hits, filler in zip(turns, found, randoms, strict=True):
        texts = [index.reply(h.entry) for h in hits] if index is not None else []
        texts = [x for x in texts if x.casefold() != turn.truth.casefold()][:DISTRACTORS]
        retrieved.append(texts + filler[: DISTRACTORS - len(texts)])
    return randoms, retrieved


def rank_features(
    generator: Generator, turns: Sequence[Turn], candidates: Sequence[Sequence[str]],
    *, batch: int = 16, generated: Sequence[Sequence[bool]] | None = None,
) -> list[torch.Tensor]:
    """(1 + len(candidates[i]), F) features of the true reply and then the candidates
    (`generated[i]`: which of the true reply and the candidates the model generated)."""
    out: list[torch.Tensor] = []
    for start in range(0, len(turns), batch):
        chunk = turns[start : start + batch]
        items = [(t.state, t.user, [t.truth, *candidates[start + j]])
                 for j, t in enumerate(chunk)]
        flags = None if generated is None else generated[start : start + batch]
        out += generator.rank(items, generated=flags)
    return out


def evaluate_replies(
    generator: Generator,
    conversations: Sequence[Conversation],
    *,
    limit: int,
    decode: DecodeConfig | None = None,
    weights: RankerWeights | None = None,
) -> dict[str, Any]:
    """The report `chatbot eval --replies` prints: `generated` and `selected`."""
    weights = weights or generator.weights or RankerWeights()
    decode = decode or generator.decode
    turns = held_out(generator, conversations, limit=limit)
    randoms, retrieved = distractor_sets(generator, turns, conversations)
    systems: dict[str, tuple[DecodeConfig, Callable[[torch.Tensor], torch.Tensor]]] = {
        # Pure generation's own measure of a reply is its per-token log-likelihood
        # (what the search ranks hypotheses by); the selector's is the ranker's score.
        "generated": (decode.replace(ranker="none"), lambda f: f[:, 1]),
        "selected": (decode.replace(ranker="model") if generator.weights else
                     decode.replace(ranker="mmi"), weights.score),
    }
    random_features = rank_features(generator, turns, randoms)
    retrieved_features = rank_features(generator, turns, retrieved)
    report: dict[str, Any] = {"turns": len(turns)}
    for name, (config, scorer) in systems.items():
        replies = answer(generator, turns, config)
        rate, _ = generic_rate(replies)
        report[name] = {
            "hits_at_1": round(hits_at_1([scorer(f).tolist() for f in random_features]), 4),
            "hits_at_1_retrieved": round(
                hits_at_1([scorer(f).tolist() for f in retrieved_features]), 4),
            "f1": round(sum(unigram_f1(r, t.truth) for r, t in zip(replies, turns, strict=True))
                        / max(len(turns), 1), 4),
            "distinct_1": round(distinct_n(replies, 1), 4),
            "distinct_2": round(distinct_n(replies, 2), 4),
            "generic_rate": round(rate, 4),
            "mean_length": round(sum(len(r.split()) for r in replies) / max(len(replies), 1), 2),
        }
    return report


def answer(generator: Generator, turns: Sequence[Turn], config: DecodeConfig) -> list[str]:
    """The generator's reply to each held-out turn under `config`, 32 turns a batch."""
    replies: list[str] = []
    for start in range(0, len(turns), 32):
        chunk = [(t.state, t.user, None) for t in turns[start : start + 32]]
        replies += [g.text for g, _ in generator.respond(chunk, decode=config, seed=0)]
    return replies
