"""The ranking head and its InfoNCE loss, alone and inside the HRED's forward pass."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest
import torch
import torch.nn.functional as F

from chatbot.config import ModelConfig
from chatbot.data import Batch, WindowBatcher
from chatbot.data.batching import window_spans
from chatbot.model import HRED, Loss
from chatbot.model.ranker import INITIAL_SCALE, MAX_SCALE, RankingHead, ranking_loss

N, M, D = 5, 3, 8
PAD, BOS, EOS, VOCAB = 0, 1, 2, 40


def unit(*shape: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=g, dtype=torch.float64), dim=-1)


def head() -> RankingHead:
    return RankingHead(context_size=6, hidden_size=4, size=D).double()


def hand_loss(
    scale: float,
    contexts: list[torch.Tensor],
    replies: list[torch.Tensor],
    negatives: list[list[torch.Tensor]],
    *,
    same: list[list[bool]] | None = None,
) -> float:
    """Mean of -log softmax of the true reply among the others kept, one context at a time."""
    total = 0.0
    for i, context in enumerate(contexts):
        kept = [r for j, r in enumerate(replies) if j == i or not (same and same[i][j])]
        logits = [scale * float(context @ r) for r in [*kept, *negatives[i]]]
        top = max(logits)
        log_sum = top + math.log(sum(math.exp(x - top) for x in logits))
        total += log_sum - scale * float(context @ replies[i])
    return total / len(contexts)


@torch.no_grad()
def test_head_score_is_scale_times_cosine() -> None:
    h = head()
    state, user, vectors = unit(N, 6, seed=1), unit(N, 4, seed=2), unit(N, 4, seed=3)
    contexts, replies = h.embed_context(state, user), h.embed_reply(vectors)
    assert contexts.norm(dim=-1).tolist() == pytest.approx([1.0] * N, abs=1e-12)
    assert replies.norm(dim=-1).tolist() == pytest.approx([1.0] * N, abs=1e-12)
    cosine = F.cosine_similarity(h.context(torch.cat([state, user], dim=-1)), h.reply(vectors))
    assert float(h.scale) == pytest.approx(INITIAL_SCALE, rel=1e-7)
    assert h.score(contexts, replies).tolist() == pytest.approx(
        (h.scale * cosine).tolist(), abs=1e-10
    )
    with torch.no_grad():
        h.log_scale.fill_(math.log(500.0))
    assert float(h.scale) == MAX_SCALE


@pytest.mark.parametrize("with_negatives", [False, True])
@torch.no_grad()
def test_ranking_loss_equals_log_softmax_by_hand(with_negatives: bool) -> None:
    h = head()
    contexts, replies, negatives = unit(N, D, seed=1), unit(N, D, seed=2), unit(N, M, D, seed=3)
    loss = ranking_loss(h, contexts, replies, negatives if with_negatives else None)
    hard = [list(negatives[i]) if with_negatives else [] for i in range(N)]
    expected = hand_loss(INITIAL_SCALE, list(contexts), list(replies), hard)
    assert loss.shape == ()
    assert float(loss) == pytest.approx(expected, rel=1e-6)


@torch.no_grad()
def test_no_negative_columns_is_no_negatives() -> None:
    h = head()
    contexts, replies = unit(N, D, seed=1), unit(N, D, seed=2)
    none = ranking_loss(h, contexts, replies)
    assert float(ranking_loss(h, contexts, replies, torch.zeros(N, 0, D))) == float(none)


@torch.no_grad()
def test_same_masks_duplicates_as_if_their_columns_were_removed() -> None:
    h = head()
    contexts, replies, negatives = unit(N, D, seed=1), unit(N, D, seed=2), unit(N, M, D, seed=3)
    replies[3] = replies[1]
    same = (replies.unsqueeze(1) == replies.unsqueeze(0)).all(-1)
    assert same.sum() == N + 2
    masked = ranking_loss(h, contexts, replies, negatives, same=same)
    expected = hand_loss(INITIAL_SCALE, list(contexts), list(replies), [list(n) for n in negatives],
                         same=same.tolist())
    assert float(masked) == pytest.approx(expected, rel=1e-6)
    unmasked = ranking_loss(h, contexts, replies, negatives)
    assert float(unmasked) > float(masked) + 1e-3


@torch.no_grad()
def test_missing_negatives_are_as_if_removed() -> None:
    h = head()
    contexts, replies, negatives = unit(N, D, seed=1), unit(N, D, seed=2), unit(N, M, D, seed=3)
    missing = torch.zeros(N, M, dtype=torch.bool)
    missing[:, 1] = True
    without = ranking_loss(h, contexts, replies, negatives[:, [0, 2]])
    assert float(ranking_loss(h, contexts, replies, negatives, missing=missing)) == pytest.approx(
        float(without), rel=1e-6
    )
    missing[0] = True
    missing[2, 0] = True
    kept = [[n for n, gone in zip(negatives[i], missing[i], strict=True) if not gone]
            for i in range(N)]
    expected = hand_loss(INITIAL_SCALE, list(contexts), list(replies), kept)
    loss = ranking_loss(h, contexts, replies, negatives, missing=missing)
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    everything = torch.ones(N, M, dtype=torch.bool)
    assert float(ranking_loss(h, contexts, replies, negatives, missing=everything)) == (
        pytest.approx(float(ranking_loss(h, contexts, replies)), rel=1e-6)
    )


# Encoded conversations: conversation 2's second turn repeats conversation 0's.
CONVERSATIONS = [
    [[5, 6], [7, 8, 9], [10], [11, 12]],
    [[13], [14, 15]],
    [[16, 17, 18], [7, 8, 9]],
]
NEGATIVES: list[list[list[list[int]]]] = [
    [[[30]], [[20, 21]], [[22], [23, 24, 25]], [[28, 29]]],
    [[], []],
    [[], [[26, 27]]],
]
"""NEGATIVES[c][j]: other replies retrieved for turn j of conversation c."""


def batcher(negatives: list[list[list[list[int]]]] | None = NEGATIVES) -> WindowBatcher:
    return WindowBatcher(CONVERSATIONS, window_turns=3, batch_size=8, pad_id=PAD, bos_id=BOS,
                         eos_id=EOS, negatives=negatives)


def model(ranker_size: int = 16) -> HRED:
    config = ModelConfig(embedding_size=12, hidden_size=16, context_size=10, dropout=0.0,
                         ranker_size=ranker_size)
    return HRED(config, vocab_size=VOCAB, pad_id=PAD)


def full_batch() -> Batch:
    """Every window in `batcher().windows` order, with its negatives."""
    b = batcher()
    assert b.negatives is not None
    batch = b.collate(b.windows)
    batch.negatives = b.collate_negatives(b.negatives)
    return batch


def forward(net: HRED, batch: Batch, **kwargs: object) -> Loss:
    return net(  # type: ignore[no-any-return]
        batch.utterances, batch.lengths, batch.turn_mask, batch.dec_in, batch.dec_out, **kwargs
    )


def test_collate_negatives_places_ids_eos_then_pad() -> None:
    windows = [NEGATIVES[0][:3], NEGATIVES[1]]
    out = batcher().collate_negatives(windows)
    assert out.tolist() == [
        [[[20, 21, EOS, PAD], [PAD] * 4], [[22, EOS, PAD, PAD], [23, 24, 25, EOS]]],
        [[[PAD] * 4, [PAD] * 4], [[PAD] * 4, [PAD] * 4]],
    ]


def test_batch_negatives_follow_the_windows_of_each_batch() -> None:
    """negatives[c][j] lands at [row of the window, j - window start - 1, r]."""
    b = batcher()
    spans = window_spans(CONVERSATIONS, 3)
    assert spans == [(0, 0, 3), (0, 2, 4), (1, 0, 2), (2, 0, 2)]
    [plan] = b.plan(0, seed=0, shuffle=False)
    [batch] = list(b.batches(0, seed=0, shuffle=False))
    assert batch.negatives is not None
    assert batch.negatives.shape == (4, 2, 2, 4)
    expected = torch.full((4, 2, 2, 4), PAD)
    for row, window in enumerate(plan):
        c, start, end = spans[window]
        for j in range(start + 1, end):
            for r, ids in enumerate(NEGATIVES[c][j]):
                expected[row, j - start - 1, r, : len(ids) + 1] = torch.tensor([*ids, EOS])
    assert torch.equal(batch.negatives, expected)
    # Turn 2 ends window 0 and starts window 1: its negatives are window 0's only.
    assert batch.negatives[plan.index(0)].tolist() == [
        [[20, 21, EOS, PAD], [PAD] * 4], [[22, EOS, PAD, PAD], [23, 24, 25, EOS]],
    ]
    assert batch.negatives[plan.index(1)].tolist() == [
        [[28, 29, EOS, PAD], [PAD] * 4], [[PAD] * 4, [PAD] * 4],
    ]


def test_batches_without_negatives_have_none() -> None:
    [batch] = list(batcher(None).batches(0, seed=0, shuffle=False))
    assert batch.negatives is None


def reply_vector(net: HRED, ids: Sequence[int]) -> torch.Tensor:
    assert net.ranker is not None
    _, vectors = net.encoder(torch.tensor([[*ids, EOS]]), torch.tensor([len(ids) + 1]))
    return net.ranker.embed_reply(vectors)[0]


def hand_rank_loss(net: HRED, b: WindowBatcher) -> float:
    """The ranking loss of every reply of `b`'s windows, turn by turn, one utterance at a time."""
    assert net.ranker is not None and b.negatives is not None
    contexts, replies, texts, negatives = [], [], [], []
    for window, window_negatives in zip(b.windows, b.negatives, strict=True):
        state = net.initial_state(1)
        for i, (turn, reply) in enumerate(zip(window, window[1:], strict=False)):
            _, _, user = net.encode(torch.tensor([[*turn, EOS]]), torch.tensor([len(turn) + 1]))
            state = net.update_state(user, state)
            contexts.append(net.ranker.embed_context(state, user)[0])
            replies.append(reply_vector(net, reply))
            texts.append(reply)
            negatives.append([reply_vector(net, ids) for ids in window_negatives[i + 1]])
    same = [[a == b for b in texts] for a in texts]
    return hand_loss(float(net.ranker.scale), contexts, replies, negatives, same=same)


def test_hred_rank_loss_equals_turn_by_turn() -> None:
    net = model().eval()
    with torch.no_grad():
        loss = forward(net, full_batch(), rank=True, negatives=full_batch().negatives)
        expected = hand_rank_loss(net, batcher())
    assert loss.rank is not None
    assert loss.rank.shape == ()
    assert math.isfinite(float(loss.rank))
    assert float(loss.rank) == pytest.approx(expected, rel=1e-5)


def test_rank_false_gives_no_rank_and_the_same_reply_loss() -> None:
    net = model().eval()
    batch = full_batch()
    with torch.no_grad():
        ranked = forward(net, batch, rank=True, negatives=batch.negatives)
        plain = forward(net, batch, negatives=batch.negatives)
    assert plain.rank is None
    assert torch.equal(ranked.total, plain.total)
    assert ranked.tokens == plain.tokens == (3 + 1) + (1 + 1) + (2 + 1) + (2 + 1) + (3 + 1)
    assert ranked.rank is not None


def test_all_pad_negatives_are_no_negatives() -> None:
    net = model().eval()
    batch = full_batch()
    assert batch.negatives is not None
    with torch.no_grad():
        none = forward(net, batch, rank=True)
        pad = forward(net, batch, rank=True, negatives=torch.full_like(batch.negatives, PAD))
        hard = forward(net, batch, rank=True, negatives=batch.negatives)
    assert none.rank is not None and pad.rank is not None and hard.rank is not None
    assert float(pad.rank) == pytest.approx(float(none.rank), rel=1e-6)
    assert float(hard.rank) > float(none.rank)


def test_rank_loss_reaches_the_ranker_and_the_encoder() -> None:
    net = model().train()
    batch = full_batch()
    loss = forward(net, batch, rank=True, negatives=batch.negatives)
    assert loss.rank is not None
    loss.rank.backward()  # type: ignore[no-untyped-call]
    assert net.ranker is not None
    for name, parameter in [*net.ranker.named_parameters(), *net.encoder.named_parameters(),
                            *net.context.named_parameters()]:
        assert parameter.grad is not None, name
        assert float(parameter.grad.abs().sum()) > 0, name


def test_a_model_without_a_ranker_has_no_rank_loss() -> None:
    net = model(ranker_size=0).eval()
    assert net.ranker is None
    batch = full_batch()
    with torch.no_grad():
        loss = forward(net, batch, rank=True, negatives=batch.negatives)
    assert loss.rank is None
    assert math.isfinite(float(loss.total))
