"""Held-out splits are made by conversation, deterministically under a seed."""

from __future__ import annotations

import pytest

from chatbot.data import Conversation, Split, split_conversations


def _corpus(n: int) -> list[Conversation]:
    return [Conversation(f"c{i}", (f"hello {i}", f"hi {i}", f"bye {i}")) for i in range(n)]


def _ids(conversations: list[Conversation]) -> list[str]:
    return [c.id for c in conversations]


def test_deterministic_under_a_seed() -> None:
    corpus = _corpus(200)
    first = split_conversations(corpus, seed=7, valid_fraction=0.1, test_fraction=0.1)
    again = split_conversations(list(corpus), seed=7, valid_fraction=0.1, test_fraction=0.1)
    assert first == again


def test_golden_small_split() -> None:
    split = split_conversations(_corpus(10), seed=0, valid_fraction=0.2, test_fraction=0.2)
    assert (_ids(split.test), _ids(split.valid)) == (["c7", "c8"], ["c1", "c5"])
    assert _ids(split.train) == ["c3", "c4", "c2", "c0", "c9", "c6"]


def test_different_seeds_differ() -> None:
    corpus = _corpus(200)
    splits = [split_conversations(corpus, seed=seed) for seed in range(5)]
    assert len({tuple(_ids(s.test)) for s in splits}) == 5
    assert len({tuple(_ids(s.valid)) for s in splits}) == 5


@pytest.mark.parametrize("n", [3, 10, 101, 1000])
def test_disjoint_and_covering(n: int) -> None:
    corpus = _corpus(n)
    split = split_conversations(corpus, seed=3)
    train, valid, test = set(_ids(split.train)), set(_ids(split.valid)), set(_ids(split.test))
    assert not train & valid and not train & test and not valid & test
    assert train | valid | test == {c.id for c in corpus}
    assert len(split.train) + len(split.valid) + len(split.test) == n
    assert sorted(split.get("all"), key=lambda c: int(c.id[1:])) == corpus


def test_split_is_by_conversation_never_by_turn() -> None:
    corpus = _corpus(50)
    split = split_conversations(corpus, seed=1, valid_fraction=0.2, test_fraction=0.2)
    for part in (split.train, split.valid, split.test):
        for conversation in part:
            assert conversation in corpus, "conversations are kept whole"
    turns = [{t for c in part for t in c.turns} for part in (split.train, split.valid, split.test)]
    assert not turns[0] & turns[1] and not turns[0] & turns[2] and not turns[1] & turns[2]


@pytest.mark.parametrize(
    ("n", "valid_fraction", "test_fraction", "sizes"),
    [
        (1000, 0.05, 0.05, (902, 48, 50)),
        (1000, 0.1, 0.2, (720, 80, 200)),
        (200, 0.05, 0.05, (180, 10, 10)),
        (10, 0.05, 0.05, (8, 1, 1)),
        (3, 0.05, 0.05, (1, 1, 1)),
        (3, 0.0, 0.05, (2, 0, 1)),
        (4, 0.49, 0.49, (1, 1, 2)),
        (2, 0.05, 0.05, (2, 0, 0)),
        (100, 0.0, 0.1, (90, 0, 10)),
        (100, 0.0, 0.0, (100, 0, 0)),
    ],
)
def test_fractions(
    n: int, valid_fraction: float, test_fraction: float, sizes: tuple[int, int, int]
) -> None:
    """Test takes its fraction of all, valid its fraction of the rest; a non-zero
    fraction gets at least one conversation when there are three or more."""
    split = split_conversations(
        _corpus(n), seed=0, valid_fraction=valid_fraction, test_fraction=test_fraction
    )
    assert (len(split.train), len(split.valid), len(split.test)) == sizes
    assert len(split.test) == max(round(n * test_fraction), 1 if test_fraction and n >= 3 else 0)
    assert abs(len(split.valid) - n * valid_fraction) <= max(1, n * valid_fraction * test_fraction)


def test_get() -> None:
    split = split_conversations(_corpus(20), seed=0)
    assert split.get("train") is split.train
    assert split.get("valid") == split.valid and split.get("test") == split.test
    assert isinstance(split, Split)
    with pytest.raises(ValueError, match=r"^unknown split 'dev'; use train, valid, test or all$"):
        split.get("dev")


def test_split_for_applies_max_conversations_then_the_configured_split() -> None:
    from chatbot.config import DataConfig
    from chatbot.data import split_for

    conversations = [Conversation(str(i), ("a", "b")) for i in range(40)]
    data = DataConfig(split_seed=3, valid_fraction=0.1, test_fraction=0.2, max_conversations=30)
    expected = split_conversations(
        conversations[:30], seed=3, valid_fraction=0.1, test_fraction=0.2
    )
    assert split_for(conversations, data) == expected
