"""Conversation windows -> padded tensor batches: layout, order, sharding, padding."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch

from chatbot.data import BatchStats, WindowBatcher, encode_conversations, load_corpus
from chatbot.data.batching import EncodedConversation, make_windows
from chatbot.text import Tokenizer

PAD, BOS, EOS = 0, 1, 2


def _batcher(
    conversations: Sequence[EncodedConversation], *, window_turns: int = 3, batch_size: int = 4,
    bucket_batches: int = 50,
) -> WindowBatcher:
    return WindowBatcher(
        conversations, window_turns=window_turns, batch_size=batch_size, pad_id=PAD,
        bos_id=BOS, eos_id=EOS, bucket_batches=bucket_batches,
    )


def _unique_conversations(
    count: int, *, seed: int, max_turns: int = 9, max_len: int = 6
) -> list[EncodedConversation]:
    """Conversations whose utterances all start with a distinct id, so each is recognisable."""
    rng = random.Random(seed)
    conversations, next_id = [], 4
    for _ in range(count):
        conversation = []
        for _ in range(rng.randint(2, max_turns)):
            conversation.append([next_id] + [4] * rng.randint(0, max_len - 1))
            next_id += 1
        conversations.append(conversation)
    return conversations


def _pairs(conversations: Sequence[EncodedConversation]) -> Counter[tuple[int, int]]:
    return Counter(
        (conv[i][0], conv[i + 1][0]) for conv in conversations for i in range(len(conv) - 1)
    )


def test_windows_overlap_by_one_turn() -> None:
    conversation = [[10 + i] for i in range(8)]
    windows = make_windows([conversation], 3)
    assert windows == [
        [[10], [11], [12]], [[12], [13], [14]], [[14], [15], [16]], [[16], [17]]
    ]
    assert make_windows([conversation[:7]], 3) == windows[:3]
    assert make_windows([conversation[:1], []], 3) == []
    with pytest.raises(ValueError, match=r"^window_turns must be at least 2 \(got 1\)$"):
        make_windows([conversation], 1)


@pytest.mark.parametrize("window_turns", [2, 3, 4, 8])
def test_each_pair_is_a_target_exactly_once(window_turns: int) -> None:
    conversations = _unique_conversations(40, seed=window_turns, max_turns=12)
    windows = make_windows(conversations, window_turns)
    assert all(2 <= len(w) <= window_turns for w in windows)
    assert _pairs(windows) == _pairs(conversations)
    assert max(_pairs(windows).values()) == 1


def test_each_pair_is_a_target_exactly_once_in_the_batches() -> None:
    conversations = _unique_conversations(30, seed=5)
    batcher = _batcher(conversations, window_turns=4, batch_size=3)
    targets: Counter[tuple[int, int]] = Counter()
    for batch in batcher.batches(0, seed=0):
        b, k = batch.turn_mask.shape
        for i in range(b):
            for j in range(k - 1):
                if batch.turn_mask[i, j + 1]:
                    targets[(int(batch.utterances[i, j, 0]), int(batch.dec_out[i, j, 0]))] += 1
    assert targets == _pairs(conversations)


def test_collate_layout() -> None:
    batcher = _batcher([])
    batch = batcher.collate([[[5, 6], [7]], [[8], [9, 10, 11], [12]]])
    assert batch.utterances.tolist() == [
        [[5, 6, EOS, PAD], [7, EOS, PAD, PAD], [EOS, PAD, PAD, PAD]],
        [[8, EOS, PAD, PAD], [9, 10, 11, EOS], [12, EOS, PAD, PAD]],
    ]
    assert batch.lengths.tolist() == [[3, 2, 1], [2, 4, 2]]
    assert batch.turn_mask.tolist() == [[True, True, False], [True, True, True]]
    assert batch.dec_in.tolist() == [
        [[BOS, 7, PAD, PAD], [PAD, PAD, PAD, PAD]],
        [[BOS, 9, 10, 11], [BOS, 12, PAD, PAD]],
    ]
    assert batch.dec_out.tolist() == [
        [[7, EOS, PAD, PAD], [PAD, PAD, PAD, PAD]],
        [[9, 10, 11, EOS], [12, EOS, PAD, PAD]],
    ]
    assert batch.target_tokens == 8
    for tensor in (batch.utterances, batch.lengths, batch.dec_in, batch.dec_out):
        assert tensor.dtype == torch.int64
    moved = batch.to("cpu")
    assert torch.equal(moved.dec_out, batch.dec_out)
    assert torch.equal(moved.turn_mask, batch.turn_mask)


def test_stats_golden() -> None:
    batcher = _batcher([[[5, 6], [7]], [[8], [9, 10, 11], [12]]], batch_size=2)
    expected = BatchStats(batches=1, windows=2, target_tokens=8, padding_fraction=1 - 8 / 12)
    assert batcher.stats() == expected


def _hand_padding(batcher: WindowBatcher, plan: list[list[int]]) -> float:
    """1 - real / padded decoder targets, from the collated batches: the
    answered rows of `dec_out`, cut to their longest reply (what `HRED` decodes).
    """
    real = padded = 0
    for indices in plan:
        batch = batcher.collate([batcher.windows[i] for i in indices])
        answered = batch.turn_mask[:, 1:].reshape(-1)
        rows = batch.dec_out.reshape(-1, batch.dec_out.shape[-1])[answered]
        lengths = (rows != PAD).sum(1)
        padded += len(rows) * int(lengths.max())
        real += int(lengths.sum())
    return 1 - real / padded


def test_stats_padding_fraction_equals_hand_computation() -> None:
    batcher = _batcher(_unique_conversations(60, seed=2), window_turns=4, batch_size=5)
    stats = batcher.stats()
    plan = batcher.plan(0, seed=0)
    assert stats.batches == len(plan)
    assert stats.windows == len(batcher.windows)
    assert stats.target_tokens == sum(len(u) + 1 for w in batcher.windows for u in w[1:])
    assert stats.padding_fraction == pytest.approx(_hand_padding(batcher, plan), abs=1e-12)


def test_bucketing_lowers_padding() -> None:
    conversations = _unique_conversations(300, seed=4, max_len=30)
    bucketed = _batcher(conversations, window_turns=4, batch_size=8)
    unsorted = _batcher(conversations, window_turns=4, batch_size=8, bucket_batches=1)
    bucketed_padding = _hand_padding(bucketed, bucketed.plan(0, seed=0))
    unsorted_padding = _hand_padding(unsorted, unsorted.plan(0, seed=0))
    assert bucketed.stats().padding_fraction == pytest.approx(bucketed_padding, abs=1e-12)
    assert unsorted.stats().padding_fraction == pytest.approx(unsorted_padding, abs=1e-12)
    assert bucketed_padding < unsorted_padding - 0.1
    assert (round(bucketed_padding, 3), round(unsorted_padding, 3)) == (0.312, 0.442)


def test_plan_is_a_pure_function_of_seed_and_epoch() -> None:
    conversations = _unique_conversations(50, seed=1)
    first, second = _batcher(conversations), _batcher(conversations)
    random.seed(123)
    assert first.plan(3, seed=9) == second.plan(3, seed=9)
    assert first.plan(3, seed=9) == first.plan(3, seed=9)
    epochs = [first.plan(epoch, seed=9) for epoch in range(4)]
    assert len({str(plan) for plan in epochs}) == 4, "each epoch has its own order"
    assert first.plan(0, seed=10) != epochs[0], "each seed has its own order"
    for plan in [*epochs, first.plan(0, seed=0, shuffle=False)]:
        assert sorted(i for batch in plan for i in batch) == list(range(len(first.windows)))
        assert all(1 <= len(batch) <= 4 for batch in plan)


def test_batches_follow_the_plan() -> None:
    batcher = _batcher(_unique_conversations(20, seed=6), batch_size=3)
    plan = batcher.plan(2, seed=5)
    firsts = [batch.utterances[:, 0, 0].tolist() for batch in batcher.batches(2, seed=5)]
    assert firsts == [[batcher.windows[i][0][0] for i in batch] for batch in plan]
    resumed = [batch.utterances[:, 0, 0].tolist() for batch in batcher.batches(2, seed=5, start=4)]
    assert resumed == firsts[4:]


def test_two_ranks_get_disjoint_batches_of_the_same_count() -> None:
    conversations = _unique_conversations(42, seed=3)
    batcher = _batcher(conversations, window_turns=3, batch_size=4)
    plan = batcher.plan(1, seed=2)
    assert len(plan) % 2 == 1, "an odd number of batches: the last one is dropped"
    ranks = [
        [tuple(b.utterances[:, 0, 0].tolist())
         for b in batcher.batches(1, seed=2, rank=rank, world_size=2)]
        for rank in (0, 1)
    ]
    assert len(ranks[0]) == len(ranks[1]) == batcher.steps_per_epoch(2) == len(plan) // 2
    windows = [{w for batch in rank for w in batch} for rank in ranks]
    assert not windows[0] & windows[1]
    assert all(len(batch) == len(set(batch)) for rank in ranks for batch in rank)
    whole = {batcher.windows[i][0][0] for batch in plan[: 2 * len(ranks[0])] for i in batch}
    assert windows[0] | windows[1] == whole


def test_encode_conversations_truncates(corpus_file: Path) -> None:
    conversations = load_corpus(f"jsonl:{corpus_file}")[:10]
    texts = [t for c in conversations for t in c.turns]
    tokenizer = Tokenizer.train(texts, vocab_size=300, min_frequency=1)
    encoded = encode_conversations(conversations, tokenizer, max_tokens=5)
    assert [len(e) for e in encoded] == [len(c.turns) for c in conversations]
    for conversation, ids in zip(conversations, encoded, strict=True):
        assert ids == [tokenizer.encode(t)[:5] for t in conversation.turns]
    full = encode_conversations(conversations, tokenizer, max_tokens=1000)
    assert [tokenizer.decode(u) for u in full[0]] == list(conversations[0].turns)
    assert encode_conversations([], tokenizer, max_tokens=5) == []
