"""Inference over token ids equals packed `nn.GRU`; its weight cache follows the weights."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from chatbot.model.inference import InferenceCache, run_gru_on_tokens

LENGTHS = torch.tensor([6, 3, 1, 5])


def _packed(
    gru: nn.GRU, x: torch.Tensor, hidden: torch.Tensor, lengths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """`nn.GRU` itself over a packed sequence."""
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    outputs, final = gru(packed, hidden)
    outputs, _ = nn.utils.rnn.pad_packed_sequence(outputs, batch_first=True, total_length=6)
    return outputs, final


@pytest.mark.parametrize(
    ("bidirectional", "layers", "lengths"),
    list(itertools.product([True, False], [1, 2], [[6, 3, 1, 5], [6, 6, 6, 6], [2, 2, 1, 1]])),
)
def test_inference_on_tokens_equals_packed_nn_gru(
    bidirectional: bool, layers: int, lengths: list[int]
) -> None:
    torch.manual_seed(0)
    gru = nn.GRU(7, 5, layers, batch_first=True, bidirectional=bidirectional).double()
    embedding = nn.Embedding(11, 7).double()
    tokens = torch.randint(0, 11, (4, 6))
    length = torch.tensor(lengths)
    with torch.no_grad():
        ours = run_gru_on_tokens(gru, InferenceCache().get(embedding.weight, gru), tokens, length)
        theirs = _packed(
            gru,
            embedding(tokens),
            torch.zeros(layers * (1 + bidirectional), 4, 5, dtype=torch.double),
            length,
        )
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)
    past = torch.arange(6) >= length.unsqueeze(1)
    assert ours[0][past].abs().sum().item() == 0.0


def test_a_single_row_on_tokens_equals_its_row_in_a_batch() -> None:
    torch.manual_seed(1)
    gru = nn.GRU(7, 5, 1, batch_first=True, bidirectional=True)
    weights = InferenceCache().get(nn.Embedding(11, 7).weight, gru)
    tokens, lengths = torch.randint(0, 11, (4, 6)), LENGTHS
    with torch.no_grad():
        outputs, final = run_gru_on_tokens(gru, weights, tokens, lengths)
        for row in range(4):
            n = int(lengths[row])
            alone, alone_final = run_gru_on_tokens(
                gru, weights, tokens[row : row + 1, :n], lengths[row : row + 1]
            )
            torch.testing.assert_close(alone[0], outputs[row, :n], atol=1e-6, rtol=0)
            torch.testing.assert_close(alone_final[:, 0], final[:, row], atol=1e-6, rtol=0)


def test_the_inference_cache_follows_its_weights() -> None:
    torch.manual_seed(2)
    gru = nn.GRU(7, 5, 2, batch_first=True, bidirectional=True)
    embedding = nn.Embedding(11, 7)
    cache = InferenceCache()
    first = cache.get(embedding.weight, gru)
    assert cache.get(embedding.weight, gru) is first
    assert first.table.shape == (22, 15)
    assert [tuple(t.shape) for t in first.layers[1]] == [
        (2, 10, 15),
        (2, 5, 15),
        (2, 1, 15),
        (2, 1, 15),
    ]
    with torch.no_grad():
        expected = gru.weight_ih_l0_reverse @ embedding.weight[3] + gru.bias_ih_l0_reverse
        torch.testing.assert_close(first.table[11 + 3], expected)
        torch.testing.assert_close(first.layers[1][1][1], gru.weight_hh_l1_reverse.t())
        gru.bias_ih_l0_reverse.add_(1.0)
    second = cache.get(embedding.weight, gru)
    assert second is not first
    torch.testing.assert_close(second.table[11 + 3], expected + 1.0)
    torch.testing.assert_close(second.table[:11], first.table[:11])
    with torch.no_grad():
        gru.weight_hh_l1.mul_(2.0)
    third = cache.get(embedding.weight, gru)
    torch.testing.assert_close(third.layers[1][1][0], gru.weight_hh_l1.t())
    gru.load_state_dict(nn.GRU(7, 5, 2, batch_first=True, bidirectional=True).state_dict())
    assert cache.get(embedding.weight, gru) is not third


@pytest.mark.parametrize("lengths", [[6, 0, 1, 5], [7, 3, 1, 5], [6, 3, 1]])
def test_lengths_out_of_range_are_refused_on_tokens(lengths: list[int]) -> None:
    gru = nn.GRU(7, 5, 1, batch_first=True)
    weights = InferenceCache().get(nn.Embedding(11, 7).weight, gru)
    with pytest.raises(ValueError, match=r"lengths must be 4 values in \[1, 6\]"):
        run_gru_on_tokens(gru, weights, torch.zeros(4, 6, dtype=torch.long), torch.tensor(lengths))
