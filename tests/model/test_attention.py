"""Luong attention: masking, normalisation, and hand-computed scores."""

from __future__ import annotations

import math

import pytest
import torch

from chatbot.config import Attention
from chatbot.model import LuongAttention

KINDS: list[Attention] = ["dot", "general", "concat"]


def _inputs(b: int = 3, t: int = 4, s: int = 6, h: int = 8) -> tuple[torch.Tensor, ...]:
    query = torch.randn(b, t, h)
    memory = torch.randn(b, s, h)
    lengths = torch.tensor([s, 3, 1])[:b]
    mask = torch.arange(s) < lengths.unsqueeze(1)
    return query, memory, mask


@pytest.mark.parametrize("kind", KINDS)
def test_masked_positions_get_exactly_zero_weight(kind: Attention) -> None:
    attention = LuongAttention(kind, 8).eval()
    query, memory, mask = _inputs()
    context, weights = attention(query, attention.prepare(memory), memory, mask)
    assert context.shape == (3, 4, 8)
    assert weights.shape == (3, 4, 6)
    padded = (~mask).unsqueeze(1).expand_as(weights)
    assert torch.all(weights[padded] == 0.0)
    assert torch.all(weights[~padded] > 0.0)
    # the single real position of the last row takes all the weight
    assert torch.equal(weights[2, :, 0], torch.ones(4))


@pytest.mark.parametrize("kind", KINDS)
def test_weights_sum_to_one(kind: Attention) -> None:
    attention = LuongAttention(kind, 8).eval()
    query, memory, mask = _inputs()
    _, weights = attention(query, attention.prepare(memory), memory, mask)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 4), rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_context_ignores_values_at_masked_positions(kind: Attention) -> None:
    attention = LuongAttention(kind, 8).eval()
    query, memory, mask = _inputs()
    context, weights = attention(query, attention.prepare(memory), memory, mask)
    noisy = memory.masked_fill(~mask.unsqueeze(-1), 1e3)
    context2, weights2 = attention(query, attention.prepare(noisy), noisy, mask)
    assert torch.equal(weights, weights2)
    torch.testing.assert_close(context, context2, rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_wider_padding_changes_nothing(kind: Attention) -> None:
    attention = LuongAttention(kind, 8).eval()
    query, memory, mask = _inputs()
    wide_memory = torch.cat([memory, torch.randn(3, 5, 8)], dim=1)
    wide_mask = torch.cat([mask, torch.zeros(3, 5, dtype=torch.bool)], dim=1)
    context, weights = attention(query, attention.prepare(memory), memory, mask)
    wide_context, wide_weights = attention(
        query, attention.prepare(wide_memory), wide_memory, wide_mask
    )
    assert torch.all(wide_weights[..., 6:] == 0.0)
    torch.testing.assert_close(wide_weights[..., :6], weights, rtol=0, atol=1e-6)
    torch.testing.assert_close(wide_context, context, rtol=0, atol=1e-6)


def test_dot_matches_hand_computation() -> None:
    attention = LuongAttention("dot", 2)
    query = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])  # (1, 2, 2)
    memory = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]])  # (1, 3, 2)
    mask = torch.tensor([[True, True, False]])
    assert attention.prepare(memory) is memory
    context, weights = attention(query, memory, memory, mask)
    e = math.e
    # query 0 scores (1, 0, masked); query 1 scores (0, 2, masked)
    expected_weights = torch.tensor([[[e / (e + 1), 1 / (e + 1), 0.0],
                                      [1 / (1 + e**2), e**2 / (1 + e**2), 0.0]]])
    expected_context = torch.tensor([[[e / (e + 1), 1 / (e + 1)],
                                      [1 / (1 + e**2), e**2 / (1 + e**2)]]])
    torch.testing.assert_close(weights, expected_weights, rtol=0, atol=1e-6)
    torch.testing.assert_close(context, expected_context, rtol=0, atol=1e-6)


def test_general_scores_through_the_key_matrix() -> None:
    attention = LuongAttention("general", 2)
    with torch.no_grad():
        attention.key.weight.copy_(torch.tensor([[0.0, 1.0], [2.0, 0.0]]))
    query = torch.tensor([[[1.0, 1.0]]])
    memory = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    mask = torch.ones(1, 2, dtype=torch.bool)
    keys = attention.prepare(memory)
    torch.testing.assert_close(keys, torch.tensor([[[0.0, 2.0], [1.0, 0.0]]]))
    _, weights = attention(query, keys, memory, mask)
    # scores: q . W m = (2, 1)
    expected = torch.softmax(torch.tensor([2.0, 1.0]), dim=0)
    torch.testing.assert_close(weights[0, 0], expected, rtol=0, atol=1e-6)


def test_concat_scores_match_the_formula() -> None:
    attention = LuongAttention("concat", 4)
    query, memory, mask = _inputs(b=2, t=3, s=5, h=4)
    _, weights = attention(query, attention.prepare(memory), memory, mask)
    for b in range(2):
        for t in range(3):
            mixed = [attention.query(query[b, t]) + attention.key(memory[b, s]) for s in range(5)]
            scores = torch.stack([attention.v(torch.tanh(m))[0] for m in mixed])
            scores = scores.masked_fill(~mask[b], float("-inf"))
            torch.testing.assert_close(weights[b, t], torch.softmax(scores, 0), rtol=0, atol=1e-6)


def test_unknown_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown attention 'additive'"):
        LuongAttention("additive", 4)  # type: ignore[arg-type]


def test_parameters_per_kind() -> None:
    assert [n for n, _ in LuongAttention("dot", 4).named_parameters()] == []
    assert [n for n, _ in LuongAttention("general", 4).named_parameters()] == ["key.weight"]
    assert sorted(n for n, _ in LuongAttention("concat", 4).named_parameters()) == [
        "key.weight", "query.bias", "query.weight", "v.weight"
    ]
