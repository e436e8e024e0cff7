"""The CPU GRU with a hand-written backward agrees with `nn.GRU` (packed) exactly."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from chatbot.model.gru import flat_weights, reverse_within, run_gru

LENGTHS = torch.tensor([6, 3, 1, 5])


def _packed(
    gru: nn.GRU, x: torch.Tensor, hidden: torch.Tensor, lengths: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """`nn.GRU` itself, over a packed sequence when `lengths` are given."""
    if lengths is None:
        result: tuple[torch.Tensor, torch.Tensor] = gru(x, hidden)
        return result
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    outputs, final = gru(packed, hidden)
    outputs, _ = nn.utils.rnn.pad_packed_sequence(outputs, batch_first=True, total_length=6)
    return outputs, final


@pytest.mark.parametrize(
    ("bidirectional", "layers", "ragged"), list(itertools.product([True, False], [1, 2], [0, 1]))
)
def test_outputs_and_every_gradient_equal_nn_gru(
    bidirectional: bool, layers: int, ragged: int
) -> None:
    torch.manual_seed(0)
    gru = nn.GRU(7, 5, layers, batch_first=True, bidirectional=bidirectional).double()
    directions = 2 if bidirectional else 1
    x = torch.randn(4, 6, 7, dtype=torch.double, requires_grad=True)
    hidden = torch.randn(layers * directions, 4, 5, dtype=torch.double, requires_grad=True)
    lengths = LENGTHS if ragged else None
    ours = run_gru(gru, x, hidden, lengths)
    theirs = _packed(gru, x, hidden, lengths)
    weights = [torch.randn_like(t) for t in ours]
    inputs = [x, hidden, *gru.parameters()]

    def grads(pair: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        loss = sum((t * w).sum() for t, w in zip(pair, weights, strict=True))
        return torch.autograd.grad(loss, inputs)

    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)
    for a, b in zip(grads(ours), grads(theirs), strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)
    if ragged:
        assert ours[0][2, 1:].abs().sum().item() == 0.0


def test_reverse_within_reverses_each_real_prefix_only() -> None:
    x = torch.arange(6).unsqueeze(1).expand(6, 4) + 10 * torch.arange(4)
    out = reverse_within(x, LENGTHS)
    assert out.t().tolist() == [
        [5, 4, 3, 2, 1, 0],
        [12, 11, 10, 13, 14, 15],
        [20, 21, 22, 23, 24, 25],
        [34, 33, 32, 31, 30, 35],
    ]
    assert torch.equal(reverse_within(out, LENGTHS), x)


def test_dropout_between_layers_only_while_training() -> None:
    torch.manual_seed(0)
    gru = nn.GRU(7, 5, 2, batch_first=True, dropout=0.5)
    x = torch.randn(4, 6, 7)
    gru.eval()
    plain, _ = run_gru(gru, x)
    torch.testing.assert_close(plain, gru(x)[0], atol=1e-6, rtol=0)
    gru.train()
    dropped, _ = run_gru(gru, x)
    assert (dropped - plain).abs().max().item() > 1e-2


def test_bf16_autocast_stays_close_to_float32() -> None:
    """Under CPU autocast the matmuls run in bfloat16; the gates and the state stay float32."""
    torch.manual_seed(0)
    gru = nn.GRU(16, 12, 2, batch_first=True, bidirectional=True)
    x = torch.randn(8, 10, 16, requires_grad=True)
    lengths = torch.tensor([10, 9, 8, 7, 6, 5, 4, 3])
    exact, final = run_gru(gru, x, lengths=lengths)
    (exact.sum() + final.sum()).backward()
    exact_grad = x.grad.clone()
    x.grad = None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fast, fast_final = run_gru(gru, x, lengths=lengths)
    assert fast.dtype == torch.float32
    (fast.sum() + fast_final.sum()).backward()
    torch.testing.assert_close(fast, exact, atol=3e-2, rtol=0)
    cosine = torch.cosine_similarity(x.grad.flatten(), exact_grad.flatten(), dim=0)
    assert cosine.item() > 0.999


@pytest.mark.parametrize("lengths", [[6, 0, 1, 5], [7, 3, 1, 5], [6, 3, 1]])
def test_lengths_out_of_range_are_refused(lengths: list[int]) -> None:
    gru = nn.GRU(7, 5, 1, batch_first=True)
    with pytest.raises(ValueError, match=r"lengths must be 4 values in \[1, 6\]"):
        run_gru(gru, torch.randn(4, 6, 7), lengths=torch.tensor(lengths))


def test_flat_weights_are_the_parameters_in_nn_gru_order() -> None:
    gru = nn.GRU(7, 5, 2, batch_first=True, bidirectional=True)
    names = [name for name, _ in gru.named_parameters()]
    assert names[:4] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    assert [t is p for t, p in zip(flat_weights(gru), gru.parameters(), strict=True)] == [True] * 16
    del gru._flat_weights  # a torch without the private list: parameters() instead
    assert [t is p for t, p in zip(flat_weights(gru), gru.parameters(), strict=True)] == [True] * 16
