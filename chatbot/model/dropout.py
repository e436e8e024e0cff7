"""Dropout whose mask costs less to draw on CPU.

`F.dropout` draws one Bernoulli sample per element, which on CPU takes longer
than the rest of the dropout several times over. Here each element gets 16
random bits, four from each 64-bit draw of torch's generator (so `torch.manual_seed`
reproduces it): the drop probability is `p` rounded to a multiple of 1/65536.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_LEVELS = 1 << 16


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Zeroes each element of `x` with probability `p` and scales the rest by 1 / (1 - p)."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or p >= 1.0:
        return F.dropout(x, p, training=True)
    threshold = round(p * _LEVELS)
    words = torch.randint(-(2**63), 2**63 - 1, ((x.numel() + 3) // 4,), dtype=torch.int64)
    bits = words.view(torch.int16)[: x.numel()].view(x.shape)
    keep = (bits >= threshold - _LEVELS // 2) * (_LEVELS / (_LEVELS - threshold))
    return x * keep.to(x.dtype)


class Dropout(nn.Module):
    """`nn.Dropout` with `dropout`'s mask."""

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
