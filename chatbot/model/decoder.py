"""Attention decoder: a GRU over the reply, Luong attention, output tied to the embedding."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from chatbot.config import Attention
from chatbot.model.attention import LuongAttention
from chatbot.model.dropout import Dropout
from chatbot.model.gru import run_gru


class Memory(NamedTuple):
    """What the decoder conditions on, one user utterance per batch row.

    outputs: (B, S, H) encoder outputs; keys: (B, S, H); mask: (B, S) bool;
    state: (B, H) the conversation state's contribution to every output step.
    """

    outputs: torch.Tensor
    keys: torch.Tensor
    mask: torch.Tensor
    state: torch.Tensor

    def select(self, index: torch.Tensor) -> Memory:
        """Rows `index` (e.g. to expand for beam search or to drop finished rows)."""
        return Memory(self.outputs[index], self.keys[index], self.mask[index], self.state[index])


class Decoder(nn.Module):
    """No input feeding: the GRU never sees attention output, so teacher forcing
    runs the whole target in one GRU call and attention in two batched matmuls.
    """

    def __init__(
        self,
        embedding: nn.Embedding,
        *,
        hidden_size: int,
        num_layers: int,
        context_size: int,
        attention: Attention,
        dropout: float,
    ) -> None:
        super().__init__()
        self.embedding = embedding
        self.dropout = Dropout(dropout)
        self.gru = nn.GRU(
            embedding.embedding_dim,
            hidden_size,
            num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.attention = LuongAttention(attention, hidden_size)
        self.combine = nn.Linear(2 * hidden_size, hidden_size)
        self.state_proj = nn.Linear(context_size, hidden_size, bias=False)
        self.out_proj = nn.Linear(hidden_size, embedding.embedding_dim)

    def prepare(self, outputs: torch.Tensor, mask: torch.Tensor, state: torch.Tensor) -> Memory:
        """Memory for encoder `outputs` (B, S, H), `mask` (B, S) and conversation `state` (B, C)."""
        return Memory(outputs, self.attention.prepare(outputs), mask, self.state_proj(state))

    def forward(
        self,
        tokens: torch.Tensor,
        hidden: torch.Tensor,
        memory: Memory,
        lengths: torch.Tensor | None = None,
        *,
        at: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Runs the decoder over given input tokens (teacher forcing).

        Args:
            tokens: (B, T) int64 inputs, `<bos>` first.
            hidden: (L, B, H) initial state.
            memory: attention memory of B utterances.
            lengths: (B,) int64 real lengths; when given, the GRU skips padding
                and `hidden` is each row's state at its own last real token.
            at: (B, T) bool; when given, features are computed at these
                positions only (training needs none at padding).

        Returns:
            features (B, T, H) for `logits`, or (N, H) at the N positions `at`
            in row-major order; the final hidden (L, B, H); attention weights (B, T, S).
        """
        embedded = self.dropout(self.embedding(tokens))
        states, hidden = run_gru(self.gru, embedded, hidden, lengths)
        context, weights = self.attention(states, memory.keys, memory.outputs, memory.mask)
        state = memory.state.unsqueeze(1)
        if at is not None:
            states, context = states[at], context[at]
            state = state.expand(-1, at.shape[1], -1)[at]
        mixed = self.combine(torch.cat([states, context], dim=-1)) + state
        features = torch.tanh(mixed)
        return self.dropout(features), hidden, weights

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """(..., H) features -> (..., V) logits through the tied embedding."""
        return F.linear(self.out_proj(features), self.embedding.weight)

    def step(
        self, token: torch.Tensor, hidden: torch.Tensor, memory: Memory
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One decoding step.

        Args:
            token: (B,) int64 previous token.
            hidden: (L, B, H).
            memory: attention memory of B utterances.

        Returns:
            logits (B, V), new hidden (L, B, H), attention weights (B, S).
        """
        if self.training:
            features, hidden, weights = self.forward(token.unsqueeze(1), hidden, memory)
            return self.logits(features.squeeze(1)), hidden, weights.squeeze(1)
        # Inference: the same computation as `forward` for one token, with GRU
        # cells and functional calls, which cost less per step than `nn.GRU` over
        # a sequence of one and the module machinery (search runs this per token).
        state = F.embedding(token, self.embedding.weight)
        layers = []
        for layer in range(self.gru.num_layers):
            state = torch.gru_cell(
                state,
                hidden[layer],
                getattr(self.gru, f"weight_ih_l{layer}"),
                getattr(self.gru, f"weight_hh_l{layer}"),
                getattr(self.gru, f"bias_ih_l{layer}"),
                getattr(self.gru, f"bias_hh_l{layer}"),
            )
            layers.append(state)
        context, weights = self.attention(
            state.unsqueeze(1), memory.keys, memory.outputs, memory.mask
        )
        mixed = F.linear(
            torch.cat([state, context.squeeze(1)], dim=-1), self.combine.weight, self.combine.bias
        )
        features = torch.tanh(mixed + memory.state)
        projected = F.linear(features, self.out_proj.weight, self.out_proj.bias)
        logits = F.linear(projected, self.embedding.weight)
        return logits, torch.stack(layers), weights.squeeze(1)
