"""Luong attention (`dot`, `general`, `concat`) with padded positions masked."""

from __future__ import annotations

import torch
from torch import nn

from chatbot.config import Attention


class LuongAttention(nn.Module):
    """Scores decoder states against encoder outputs and mixes those outputs.

    `prepare` computes the key side once per utterance; `forward` takes any
    number of queries, so one call serves a whole teacher-forced target.
    """

    def __init__(self, kind: Attention, hidden_size: int) -> None:
        super().__init__()
        self.kind = kind
        if kind == "general":
            self.key = nn.Linear(hidden_size, hidden_size, bias=False)
        elif kind == "concat":
            self.key = nn.Linear(hidden_size, hidden_size, bias=False)
            self.query = nn.Linear(hidden_size, hidden_size)
            self.v = nn.Linear(hidden_size, 1, bias=False)
        elif kind != "dot":
            raise ValueError(f"unknown attention {kind!r}")

    def prepare(self, memory: torch.Tensor) -> torch.Tensor:
        """Keys for `memory`.

        Args:
            memory: (B, S, H) encoder outputs.

        Returns:
            (B, S, H) keys.
        """
        return memory if self.kind == "dot" else self.key(memory)

    def forward(
        self,
        query: torch.Tensor,
        keys: torch.Tensor,
        memory: torch.Tensor,
        mask: torch.Tensor,
        *,
        bias: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attends with each query over the unmasked memory positions.

        Args:
            query: (B, T, H) decoder states.
            keys: (B, S, H) from `prepare`.
            memory: (B, S, H) encoder outputs.
            mask: (B, S) bool, True at real positions.
            bias: `additive_mask(mask)` when the caller keeps it (decoding
                steps reuse one per reply); derived from `mask` when None.

        Returns:
            context (B, T, H) and weights (B, T, S).
        """
        if bias is None:
            bias = additive_mask(mask, query.dtype)
        if self.kind == "concat":
            mixed = torch.tanh(self.query(query).unsqueeze(2) + keys.unsqueeze(1))
            scores = self.v(mixed).squeeze(-1) + bias
        else:
            scores = torch.baddbmm(bias, query, keys.transpose(1, 2))
        weights = torch.softmax(scores, dim=-1)
        return torch.bmm(weights, memory), weights


def additive_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(B, S) bool mask -> (B, 1, S) scores to add: 0 at real positions, -inf at padding."""
    bias = torch.zeros(mask.shape, dtype=dtype, device=mask.device)
    return bias.masked_fill_(~mask, float("-inf")).unsqueeze(1)
