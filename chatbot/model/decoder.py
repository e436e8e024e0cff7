"""Attention decoder: a GRU over the reply, Luong attention, output tied to the embedding."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from chatbot.config import Attention
from chatbot.model.attention import LuongAttention, additive_mask
from chatbot.model.dropout import Dropout
from chatbot.model.gru import flat_weights, gru_gates, run_gru
from chatbot.model.inference import InferenceCache, version_key

EMPTY = torch.empty(0)
"""Stands for a `Memory.bias` to derive from the mask."""

FOLD_ROWS = 2
"""Up to this many rows, an inference step mixes `Memory.values` (the outputs
already through the combining layer's context half) instead of the outputs:
a step of a few rows is bound by reading weights, and this reads half of that
layer less per step for one projection of the outputs per reply. With more rows
a step is bound by arithmetic, and the projection costs more than it saves
(measured on the default model: 1 row 3% faster per reply, 4 rows 2% slower)."""


@dataclass(frozen=True, eq=False)
class Memory:
    """What the decoder conditions on, one user utterance per batch row.

    outputs: (B, S, H) encoder outputs; keys: (B, S, H); mask: (B, S) bool;
    state: (B, H) what every output step adds before its tanh: the conversation
    state's contribution and the combining layer's bias. `bias` (B, 1, S) is
    derived from `mask`: 0 at real positions, -inf at padding (added to scores).
    `values` (B, S, H), with the combining layer's `version_key` it was
    computed from: see `FOLD_ROWS`; set by the decoder's first such step.
    """

    outputs: torch.Tensor
    keys: torch.Tensor
    mask: torch.Tensor
    state: torch.Tensor
    bias: torch.Tensor = field(default=EMPTY, repr=False)
    values: torch.Tensor = field(default=EMPTY, repr=False)
    values_key: tuple[int, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        if self.bias is EMPTY:
            object.__setattr__(self, "bias", additive_mask(self.mask, self.outputs.dtype))

    def select(self, index: torch.Tensor) -> Memory:
        """Rows `index` (e.g. to expand for beam search or to drop finished rows)."""
        return Memory(
            self.outputs.index_select(0, index),
            self.keys.index_select(0, index),
            self.mask.index_select(0, index),
            self.state.index_select(0, index),
            self.bias.index_select(0, index),
        )


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
        self._inference = InferenceCache()

    def prepare(self, outputs: torch.Tensor, mask: torch.Tensor, state: torch.Tensor) -> Memory:
        """Memory for encoder `outputs` (B, S, H), `mask` (B, S) and conversation `state` (B, C)."""
        offset = self.state_proj(state) + self.combine.bias
        if self.attention.kind == "dot" or bool(mask.all()):
            return Memory(outputs, self.attention.prepare(outputs), mask, offset)
        # Keys of real positions only (padding is masked anyway).
        where = mask.reshape(-1).nonzero().squeeze(1)
        flat = outputs.reshape(-1, outputs.shape[-1])
        keys = self.attention.prepare(flat.index_select(0, where))
        keys = keys.new_zeros(flat.shape[0], keys.shape[-1]).index_copy_(0, where, keys)
        return Memory(outputs, keys.view(*outputs.shape[:2], -1), mask, offset)

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
        context, weights = self.attention(
            states, memory.keys, memory.outputs, memory.mask, bias=memory.bias
        )
        state = memory.state.unsqueeze(1)
        if at is not None:
            # index_select, not boolean indexing: its backward is an index_add,
            # where a mask's is a much slower accumulating index_put.
            where = at.reshape(-1).nonzero().squeeze(1)
            states = states.reshape(-1, states.shape[-1]).index_select(0, where)
            context = context.reshape(-1, context.shape[-1]).index_select(0, where)
            rows = torch.div(where, at.shape[1], rounding_mode="floor")
            state = memory.state.index_select(0, rows)
        mixed = F.linear(torch.cat([states, context], dim=-1), self.combine.weight) + state
        features = torch.tanh(mixed)
        return self.dropout(features), hidden, weights

    def input_gates(self) -> torch.Tensor:
        """(V, 3H) the first GRU layer's input gates of every token,
        `embedding @ W_ih^T + b_ih`, kept until those weights change.
        """
        return self._inference.get(self.embedding.weight, self.gru).table

    def _values(self, memory: Memory) -> torch.Tensor:
        """`memory.outputs` through the combining layer's context half, kept on
        `memory` until that layer changes."""
        combine = self.combine.weight
        key = version_key([combine])
        if memory.values is EMPTY or memory.values_key != key:
            values = F.linear(memory.outputs, combine[:, memory.outputs.shape[-1] :])
            object.__setattr__(memory, "values", values)
            object.__setattr__(memory, "values_key", key)
        return memory.values

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
        # Inference: the same computation as `forward` for one token, with
        # functional calls, which cost less per step than `nn.GRU` over a
        # sequence of one and the module machinery (search runs this per token).
        # The first layer's input gates are looked up per token (`input_gates`),
        # unless gradients are recorded: the cached table carries none.
        # Few module attribute lookups: each costs about a microsecond, a step ~50 µs.
        gru, embedding = self.gru, self.embedding.weight
        recording = torch.is_grad_enabled()
        flat = flat_weights(gru)
        if recording:
            gates = F.linear(F.embedding(token, embedding), flat[0], flat[2])
        else:
            gates = F.embedding(token, self.input_gates())
        layers: list[torch.Tensor] = []
        for layer in range(gru.num_layers):
            w_ih, w_hh, b_ih, b_hh = flat[4 * layer : 4 * layer + 4]
            if layers:
                gates = F.linear(layers[-1], w_ih, b_ih)
            layers.append(gru_gates(gates, F.linear(hidden[layer], w_hh, b_hh), hidden[layer]))
        state = layers[-1]
        query, combine = state.unsqueeze(1), self.combine.weight
        # `forward` itself: the module call's hook machinery costs a step more than the math.
        if memory.outputs.shape[0] <= FOLD_ROWS and not recording:
            # combine([state, weights @ outputs]) = W_state state + weights @ values.
            h = state.shape[-1]
            mixed, weights = self.attention.forward(
                query, memory.keys, self._values(memory), memory.mask, bias=memory.bias
            )
            features = torch.addmm(memory.state, state, combine[:, :h].t())
            features = features.add_(mixed.squeeze(1)).tanh_()
        else:
            context, weights = self.attention.forward(
                query, memory.keys, memory.outputs, memory.mask, bias=memory.bias
            )
            mixed = torch.cat([state, context.squeeze(1)], dim=-1)
            features = torch.addmm(memory.state, mixed, combine.t()).tanh_()
        out = self.out_proj
        logits = F.linear(F.linear(features, out.weight, out.bias), embedding)
        stacked = layers[0].unsqueeze(0) if len(layers) == 1 else torch.stack(layers)
        return logits, stacked, weights.squeeze(1)
