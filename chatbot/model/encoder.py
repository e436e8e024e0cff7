"""Utterance encoder: embedding -> bidirectional GRU over variable-length utterances."""

from __future__ import annotations

import torch
from torch import nn

from chatbot.model.dropout import Dropout
from chatbot.model.gru import run_gru
from chatbot.model.inference import InferenceCache, run_gru_on_tokens


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
        self._inference = InferenceCache()

    def forward(
        self, tokens: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Args:
            tokens: (N, S) int64, padded after each utterance's end.
            lengths: (N,) int64, each at least 1.

        Returns:
            outputs (N, S, H), zero past each length, and vectors (N, H).
        """
        if tokens.device.type == "cpu" and not (self.training or torch.is_grad_enabled()):
            # Inference on CPU: the first layer's input gates are looked up per
            # token, and padding costs nothing (a packed `nn.GRU` projects every
            # step's inputs anew).
            weights = self._inference.get(self.embedding.weight, self.gru)
            outputs, final = run_gru_on_tokens(self.gru, weights, tokens, lengths)
        else:
            embedded = self.dropout(self.embedding(tokens))
            outputs, final = run_gru(self.gru, embedded, lengths=lengths)
        both = torch.cat([final[-2], final[-1]], dim=-1)
        return outputs, torch.tanh(self.project(both))
