"""Utterance encoder: embedding -> bidirectional GRU over variable-length utterances."""

from __future__ import annotations

import torch
from torch import nn

from chatbot.model.dropout import Dropout
from chatbot.model.gru import run_gru


class UtteranceEncoder(nn.Module):
    """Encodes a batch of utterances into per-token outputs and one vector each.

    Each direction has `hidden_size // 2` units, so outputs are `hidden_size` wide.
    """

    def __init__(
        self, embedding: nn.Embedding, *, hidden_size: int, num_layers: int, dropout: float
    ) -> None:
        super().__init__()
        self.embedding = embedding
        self.dropout = Dropout(dropout)
        self.gru = nn.GRU(
            embedding.embedding_dim,
            hidden_size // 2,
            num_layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.project = nn.Linear(hidden_size, hidden_size)

    def forward(
        self, tokens: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Args:
            tokens: (N, S) int64, padded after each utterance's end.
            lengths: (N,) int64, each at least 1.

        Returns:
            outputs (N, S, H), zero past each length, and vectors (N, H).
        """
        embedded = self.dropout(self.embedding(tokens))
        outputs, final = run_gru(self.gru, embedded, lengths=lengths)
        both = torch.cat([final[-2], final[-1]], dim=-1)
        return outputs, torch.tanh(self.project(both))
