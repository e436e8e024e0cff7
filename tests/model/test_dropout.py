"""Dropout with 16-bit masks: the rate, the scale, the gradient, seeding."""

from __future__ import annotations

import pytest
import torch

from chatbot.model.dropout import Dropout, dropout


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_drops_p_of_the_elements_and_scales_the_rest(p: float) -> None:
    torch.manual_seed(0)
    x = torch.ones(1000, 1001)
    y = dropout(x, p, training=True)
    dropped = (y == 0).float().mean().item()
    assert abs(dropped - p) < 3e-3
    kept = y[y != 0]
    expected = 65536 / (65536 - round(p * 65536))
    assert torch.equal(kept, torch.full_like(kept, expected))
    assert abs(expected - 1 / (1 - p)) < 1e-4


def test_gradient_is_the_mask_and_a_seed_reproduces_it() -> None:
    x = torch.randn(7, 13, requires_grad=True)
    torch.manual_seed(3)
    y = dropout(x, 0.25, training=True)
    y.sum().backward()
    assert x.grad is not None
    torch.testing.assert_close(x.grad * x.detach(), y.detach())
    torch.manual_seed(3)
    assert torch.equal(dropout(x, 0.25, training=True), y)
    assert not torch.equal(dropout(x, 0.25, training=True), y)


def test_identity_when_evaluating_or_zero_and_a_module_that_follows_train_mode() -> None:
    x = torch.randn(5, 3)
    assert dropout(x, 0.5, training=False) is x
    assert dropout(x, 0.0, training=True) is x
    assert torch.equal(dropout(x, 1.0, training=True), torch.zeros_like(x))
    module = Dropout(0.5).eval()
    assert module(x) is x
    assert "p=0.5" in repr(module)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Dropout(1.5)
