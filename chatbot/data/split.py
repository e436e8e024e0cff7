"""Train / validation / test split by conversation, never by turn."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from chatbot.config import DataConfig
from chatbot.data.corpora import Conversation


@dataclass(frozen=True)
class Split:
    train: list[Conversation]
    valid: list[Conversation]
    test: list[Conversation]

    def get(self, name: str) -> list[Conversation]:
        if name == "all":
            return [*self.train, *self.valid, *self.test]
        if name not in ("train", "valid", "test"):
            raise ValueError(f"unknown split {name!r}; use train, valid, test or all")
        conversations: list[Conversation] = getattr(self, name)
        return conversations


def split_conversations(
    conversations: Sequence[Conversation],
    *,
    seed: int,
    valid_fraction: float = 0.05,
    test_fraction: float = 0.05,
) -> Split:
    """Shuffles conversations with `seed` and cuts test, then valid, then train.

    Test takes `test_fraction` of all conversations, valid `valid_fraction` of the rest.
    Every non-empty fraction gets at least one conversation when there are three or more.
    A conversation whose corpus fixes its split (`Conversation.split`) keeps it;
    only the others are shuffled and cut.
    """
    fixed = [c for c in conversations if c.split is not None]
    if fixed:
        rest = split_conversations(
            [c for c in conversations if c.split is None],
            seed=seed, valid_fraction=valid_fraction, test_fraction=test_fraction,
        )
        return Split(
            train=[*rest.train, *(c for c in fixed if c.split == "train")],
            valid=[*rest.valid, *(c for c in fixed if c.split == "valid")],
            test=[*rest.test, *(c for c in fixed if c.split == "test")],
        )
    order = list(range(len(conversations)))
    random.Random(seed).shuffle(order)
    n = len(order)
    n_test = _count(n, test_fraction, total=n)
    n_valid = _count(n - n_test, valid_fraction, total=n)
    test = [conversations[i] for i in order[:n_test]]
    valid = [conversations[i] for i in order[n_test : n_test + n_valid]]
    train = [conversations[i] for i in order[n_test + n_valid :]]
    return Split(train=train, valid=valid, test=test)


def split_for(conversations: Sequence[Conversation], data: DataConfig) -> Split:
    """The split `data` defines: its first `max_conversations` (0: all), cut by
    `split_seed` and the fractions. Training and evaluation both use it, so a
    model is always evaluated on the conversations it held out."""
    if data.max_conversations:
        conversations = conversations[: data.max_conversations]
    return split_conversations(
        conversations,
        seed=data.split_seed,
        valid_fraction=data.valid_fraction,
        test_fraction=data.test_fraction,
    )


def _count(n: int, fraction: float, *, total: int) -> int:
    if fraction <= 0 or total < 3:
        return 0
    return max(1, round(n * fraction))
