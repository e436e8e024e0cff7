"""Fitting the ranker's weights and the gate's calibration on held-out data.

The weights of `match`, `log_p`, `pmi` and `generated` maximise the listwise
likelihood of the true next turn among 19 retrieved replies, 19 random other
replies and the model's own greedy reply (a softmax over each list). The gate
is a logistic regression of judged acceptability on the winner's score,
retrieval similarity and source.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from chatbot import jsonio
from chatbot.data.corpora import Conversation
from chatbot.errors import DataError
from chatbot.generator import Generator
from chatbot.replies.evaluation import (
    DISTRACTORS,
    answer,
    distractor_sets,
    held_out,
    rank_features,
)
from chatbot.replies.rank import RankerWeights
from chatbot.replies.select import best

RANK_COLUMNS = (0, 1, 2, 4)
GateRow = tuple[float, float, float, float]
"""The winner's score, similarity and generated flag, and the input's log p per token."""
L2 = 1e-3


def fit_ranker(
    generator: Generator, conversations: Sequence[Conversation], *, limit: int,
    base: RankerWeights | None = None,
) -> RankerWeights:
    """`base` (default: mutual information with lambda 1) with fitted rank weights."""
    base = base or RankerWeights(mmi_lambda=1.0)
    turns = held_out(generator, conversations, limit=limit)
    randoms, retrieved = distractor_sets(generator, turns, conversations, seed=1)
    greedy = generator.decode.replace(ranker="none")
    own = answer(generator, turns, greedy)
    lists = [[*r, *d, g] for r, d, g in zip(retrieved, randoms, own, strict=True)]
    flags = [[False] * (1 + 2 * DISTRACTORS) + [True] for _ in turns]
    features = rank_features(generator, turns, lists, generated=flags)
    x = torch.stack([f[:, list(RANK_COLUMNS)] for f in features]).double()
    w = fit_listwise(x)
    return dataclasses.replace(
        base, match=round(w[0], 6), log_p=round(w[1], 6), pmi=round(w[2], 6),
        generated=round(w[3], 6),
        fitted_on=f"{len(turns)} held-out turns, true reply vs 19 retrieved + 19 random "
        "+ the greedy reply",
    )


def fit_listwise(x: torch.Tensor) -> list[float]:
    """Weights w maximising sum_i log softmax(x_i @ w)[0] - L2 |w|^2.

    Args:
        x: (N, L, F) features of N lists, the true item first in each.
    """

    def loss(w: torch.Tensor) -> torch.Tensor:
        return -torch.log_softmax(x @ w, dim=1)[:, 0].mean() + L2 * (w * w).sum()

    return _minimize(loss, x.shape[-1])


def fit_gate(
    weights: RankerWeights, rows: Sequence[GateRow], labels: Sequence[bool],
    *, use_input: bool = True,
) -> RankerWeights:
    """`weights` with the gate fitted: rows are `GateRow`s of judged winners,
    labels whether each was judged acceptable. Without `use_input` the input's
    log p is left out (`gate_input` = 0), and replies need not compute it."""
    x = torch.tensor(rows, dtype=torch.float64)
    if not use_input:
        x[:, 3] = 0.0
    y = torch.tensor([float(v) for v in labels], dtype=torch.float64)

    def loss(w: torch.Tensor) -> torch.Tensor:
        logits = x @ w[:4] + w[4]
        bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
        return bce + L2 * (w[:4] * w[:4]).sum()

    a, b, c, d, e = (round(v, 6) for v in _minimize(loss, 5))
    return dataclasses.replace(weights, gate_score=a, gate_similarity=b, gate_generated=c,
                               gate_input=d, gate_bias=e)


def _minimize(loss: Callable[[torch.Tensor], torch.Tensor], size: int) -> list[float]:
    """The float64 vector of `size` minimising `loss`, from zeros, by L-BFGS."""
    w = torch.zeros(size, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([w], max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        value = loss(w)
        value.backward()  # type: ignore[no-untyped-call]
        return value

    optimizer.step(closure)  # type: ignore[no-untyped-call]
    return [float(v) for v in w.detach()]


def read_judged(generator: Generator, path: str | Path) -> tuple[list[GateRow], list[bool]]:
    """The `GateRow` of the selector's winner for each judged line of `path`
    whose winner is still the judged reply, and its label.

    A line is a JSON object: `turns` (the conversation, the user's turn last),
    `reply` (what the selector said) and `acceptable` (the judgment).
    """
    file = Path(path)
    rows: list[GateRow] = []
    labels: list[bool] = []
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = jsonio.loads(line)
            turns, reply, label = record["turns"], record["reply"], record["acceptable"]
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{file}:{number}:1: not a judged reply: {exc!r}") from None
        if not (isinstance(turns, list) and turns and all(isinstance(t, str) for t in turns)
                and isinstance(reply, str) and isinstance(label, bool)):
            raise DataError(f"{file}:{number}:1: needs turns (strings), reply and acceptable")
        state = generator.initial_state()
        if turns[:-1]:
            for text in turns[:-1]:
                [state] = generator.observe([state], [text])
        previous = turns[-2] if len(turns) > 1 else None
        [(generation, _)] = generator.respond([(state, turns[-1], previous)],
                                              decode=generator.decode.replace(ranker="model"))
        winner = best(generation.candidates)
        if winner is None or winner.text != reply or winner.score is None:
            continue
        understood = generator.understood(turns[-1])
        rows.append((winner.score, winner.similarity, float(winner.source == "generated"),
                     understood))
        labels.append(label)
    return rows, labels
