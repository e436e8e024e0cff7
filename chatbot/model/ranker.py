"""The ranking head: how well a reply fits a conversation, as a scaled cosine.

A dual encoder over the HRED's own representations. The context side is the
conversation state after the user's turn with that turn's utterance vector; the
reply side is the reply's utterance vector from the same encoder. Trained with
the generator by `ranking_loss` (InfoNCE over in-batch and retrieved replies).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

INITIAL_SCALE = 20.0
MAX_SCALE = 100.0


class RankingHead(nn.Module):
    """Projects contexts and replies into one space of `size` dimensions."""

    def __init__(self, *, context_size: int, hidden_size: int, size: int) -> None:
        super().__init__()
        self.context = nn.Linear(context_size + hidden_size, size)
        self.reply = nn.Linear(hidden_size, size)
        self.log_scale = nn.Parameter(torch.tensor(math.log(INITIAL_SCALE)))

    def embed_context(self, state: torch.Tensor, user: torch.Tensor) -> torch.Tensor:
        """(N, C) state after the user's turn, (N, H) its utterance vector -> (N, D) unit rows."""
        return F.normalize(self.context(torch.cat([state, user], dim=-1)), dim=-1)

    def embed_reply(self, vectors: torch.Tensor) -> torch.Tensor:
        """(N, H) reply utterance vectors -> (N, D) unit rows."""
        return F.normalize(self.reply(vectors), dim=-1)

    @property
    def scale(self) -> torch.Tensor:
        return self.log_scale.exp().clamp(max=MAX_SCALE)

    def score(self, contexts: torch.Tensor, replies: torch.Tensor) -> torch.Tensor:
        """(N, D) contexts and (N, D) replies, row by row -> (N,) scaled cosines."""
        return self.scale * (contexts * replies).sum(-1)


def ranking_loss(
    head: RankingHead,
    contexts: torch.Tensor,
    replies: torch.Tensor,
    negatives: torch.Tensor | None = None,
    *,
    same: torch.Tensor | None = None,
    missing: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean InfoNCE: each context's true reply against every other reply of the batch
    and its own retrieved negatives.

    Args:
        contexts: (N, D) unit rows, context i answered by reply i.
        replies: (N, D) unit rows.
        negatives: (N, M, D) unit rows, or None.
        same: (N, N) bool, True where replies i and j are the same text; such
            pairs are not counted as negatives of each other.
        missing: (N, M) bool, True where a context has no such negative.
    """
    logits = head.scale * contexts @ replies.T
    if same is not None:
        logits = logits.masked_fill(same & ~torch.eye(len(same), dtype=torch.bool,
                                                      device=same.device), -torch.inf)
    if negatives is not None and negatives.shape[1]:
        hard = head.scale * torch.einsum("nd,nmd->nm", contexts, negatives)
        if missing is not None:
            hard = hard.masked_fill(missing, -torch.inf)
        logits = torch.cat([logits, hard], dim=1)
    target = torch.arange(len(contexts), device=contexts.device)
    return F.cross_entropy(logits.float(), target)
