"""HRED: utterance encoder, conversation GRU carried across turns, attention decoder."""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from chatbot.config import ModelConfig
from chatbot.model.decoder import Decoder, Memory
from chatbot.model.encoder import UtteranceEncoder
from chatbot.model.gru import run_gru
from chatbot.model.ranker import RankingHead, ranking_loss


@dataclass(frozen=True)
class Loss:
    """Summed token cross-entropy and the count of target tokens it covers, and the
    mean ranking loss of the same replies when it was asked for."""

    total: torch.Tensor
    tokens: int
    rank: torch.Tensor | None = None

    @property
    def mean(self) -> torch.Tensor:
        return self.total / max(self.tokens, 1)


class HRED(nn.Module):
    """The whole network. Ids: `pad_id` is padding and is never a target.

    The conversation state (B, C) is what a session carries between turns;
    every utterance, the user's and the bot's, updates it through `update_state`.
    """

    def __init__(self, config: ModelConfig, *, vocab_size: int, pad_id: int = 0) -> None:
        super().__init__()
        self.config = config
        self.vocab_size = vocab_size
        self.pad_id = pad_id
        self.embedding = nn.Embedding(vocab_size, config.embedding_size, padding_idx=pad_id)
        nn.init.normal_(self.embedding.weight, std=config.embedding_size**-0.5)
        with torch.no_grad():
            self.embedding.weight[pad_id].zero_()
        self.encoder = UtteranceEncoder(
            self.embedding,
            hidden_size=config.hidden_size,
            num_layers=config.num_layers,
            dropout=config.dropout,
        )
        self.context = nn.GRU(config.hidden_size, config.context_size, batch_first=True)
        self.bridge = nn.Linear(config.context_size, config.num_layers * config.hidden_size)
        self.decoder = Decoder(
            self.embedding,
            hidden_size=config.hidden_size,
            num_layers=config.num_layers,
            context_size=config.context_size,
            attention=config.attention,
            dropout=config.dropout,
        )
        self.ranker = (
            RankingHead(
                context_size=config.context_size,
                hidden_size=config.hidden_size,
                size=config.ranker_size,
            )
            if config.ranker_size
            else None
        )

    def initial_state(self, batch_size: int) -> torch.Tensor:
        """(B, C) zeros: the state of a conversation before its first utterance."""
        return self.bridge.weight.new_zeros(batch_size, self.config.context_size)

    def encode(
        self, tokens: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encodes N utterances.

        Args:
            tokens: (N, S) int64, each utterance ending in `<eos>`.
            lengths: (N,) int64.

        Returns:
            outputs (N, S, H), mask (N, S) bool of real positions, vectors (N, H).
        """
        outputs, vectors = self.encoder(tokens, lengths)
        mask = torch.arange(tokens.shape[1], device=tokens.device) < lengths.unsqueeze(1)
        return outputs, mask, vectors

    def start_reply(
        self, state: torch.Tensor, outputs: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, Memory]:
        """Initial decoder hidden (L, N, H) and memory for replying from `state` (N, C)
        to the utterances whose encoder `outputs` (N, S, H) and `mask` (N, S) are given.
        """
        return self.decoder_hidden(state), self.decoder.prepare(outputs, mask, state)

    def update_state(self, vectors: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """(N, H) utterance vectors, (N, C) state -> (N, C) state after them."""
        _, final = run_gru(self.context, vectors.unsqueeze(1), state.unsqueeze(0))
        out: torch.Tensor = final.squeeze(0)
        return out

    def decoder_hidden(self, state: torch.Tensor) -> torch.Tensor:
        """(N, C) conversation state -> (L, N, H) initial decoder hidden."""
        hidden = torch.tanh(self.bridge(state))
        layers, size = self.config.num_layers, self.config.hidden_size
        return hidden.view(-1, layers, size).transpose(0, 1).contiguous()

    def forward(
        self,
        utterances: torch.Tensor,
        lengths: torch.Tensor,
        turn_mask: torch.Tensor,
        dec_in: torch.Tensor,
        dec_out: torch.Tensor,
        *,
        stateless: bool = False,
        teacher_forcing: float = 1.0,
        rng: random.Random | None = None,
        rank: bool = False,
        negatives: torch.Tensor | None = None,
    ) -> Loss:
        """Loss of every reply in a batch of conversation windows (see `data.Batch`).

        Reply i answers turn i from the state after turns 0..i (after turn i
        alone when `stateless`). Below 1.0, `teacher_forcing` is the chance that
        a step is fed the reference token rather than the model's argmax. With
        `rank` (and a ranking head), `Loss.rank` is the ranking loss of the same
        replies against each other and against `negatives` (B, K-1, M, S), other
        replies retrieved for each turn (all pad where there are none).
        """
        b, k, s = utterances.shape
        # Only turns that are answered are encoded: a window's last turn and the
        # padding turns after it feed no target, and the context GRU is causal.
        rows = turn_mask[:, 1:].reshape(-1).nonzero().squeeze(1)
        sources = utterances[:, : k - 1].reshape(b * (k - 1), s)[rows]
        source_lengths = lengths[:, : k - 1].reshape(-1)[rows]
        sources = sources[:, : int(source_lengths.max())]
        outputs, mask, encoded = self.encode(sources, source_lengths)
        vectors = encoded.new_zeros(b * (k - 1), encoded.shape[-1]).index_copy_(0, rows, encoded)
        if stateless:
            state = self.update_state(encoded, self.initial_state(len(rows)))
        else:
            initial = self.initial_state(b).unsqueeze(0)
            states, _ = run_gru(self.context, vectors.view(b, k - 1, -1), initial)
            state = states.reshape(b * (k - 1), -1).index_select(0, rows)
        targets = dec_out.reshape(b * (k - 1), -1)[rows]
        inputs = dec_in.reshape(b * (k - 1), -1)[rows]
        width = int((targets != self.pad_id).sum(1).max())
        targets, inputs = targets[:, :width], inputs[:, :width]
        hidden, memory = self.start_reply(state, outputs, mask)
        loss = self.reply_loss(
            inputs,
            targets,
            hidden,
            memory,
            teacher_forcing=teacher_forcing,
            rng=rng,
        )
        if not rank or self.ranker is None:
            return loss
        hard = None
        if negatives is not None and negatives.shape[2]:
            m, t = negatives.shape[2], negatives.shape[3]
            hard = negatives.reshape(b * (k - 1), m, t)[rows]
        value = self._rank_loss(state, encoded, targets, hard)
        return Loss(loss.total, loss.tokens, value)

    def _rank_loss(
        self,
        state: torch.Tensor,
        user: torch.Tensor,
        targets: torch.Tensor,
        negatives: torch.Tensor | None,
    ) -> torch.Tensor:
        """InfoNCE of N replies `targets` (N, T) (each ending in `<eos>`) answering
        contexts `state` (N, C) after user turns `user` (N, H)."""
        assert self.ranker is not None
        n = len(targets)
        utterances = [targets]
        m = 0
        if negatives is not None:
            m = negatives.shape[1]
            flat = negatives.reshape(n * m, -1)
            width = max(targets.shape[1], flat.shape[1])
            utterances = [F.pad(targets, (0, width - targets.shape[1]), value=self.pad_id),
                          F.pad(flat, (0, width - flat.shape[1]), value=self.pad_id)]
        tokens = torch.cat(utterances)
        lengths = (tokens != self.pad_id).sum(1)
        real = (lengths > 0).nonzero().squeeze(1)
        real_tokens = tokens[real]
        real_tokens = real_tokens[:, : int(lengths[real].max())]
        _, vectors = self.encoder(real_tokens, lengths[real])
        embedded = self.ranker.embed_reply(vectors)
        replies = embedded[:n]
        contexts = self.ranker.embed_context(state, user)
        same = (targets.unsqueeze(1) == targets.unsqueeze(0)).all(-1)
        if not m:
            return ranking_loss(self.ranker, contexts, replies, same=same)
        present = real[real >= n] - n
        hard = embedded.new_zeros(n * m, embedded.shape[1]).index_copy(0, present, embedded[n:])
        missing = torch.ones(n * m, dtype=torch.bool, device=tokens.device)
        missing[present] = False
        return ranking_loss(self.ranker, contexts, replies, hard.view(n, m, -1), same=same,
                            missing=missing.view(n, m))

    def reply_loss(
        self,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        hidden: torch.Tensor,
        memory: Memory,
        *,
        teacher_forcing: float = 1.0,
        rng: random.Random | None = None,
    ) -> Loss:
        """Cross-entropy of `targets` (N, T) given decoder `inputs` (N, T), on non-pad positions."""
        mask = targets != self.pad_id
        if teacher_forcing >= 1.0:
            features, _, _ = self.decoder(inputs, hidden, memory, mask.sum(1), at=mask)
        else:
            features = self._free_running(inputs, hidden, memory, teacher_forcing, rng)[mask]
        logits = self.decoder.logits(features)
        total = F.cross_entropy(
            logits.float(), targets[mask], ignore_index=self.pad_id, reduction="sum"
        )
        return Loss(total, int(mask.sum()))

    def _free_running(
        self,
        inputs: torch.Tensor,
        hidden: torch.Tensor,
        memory: Memory,
        ratio: float,
        rng: random.Random | None,
    ) -> torch.Tensor:
        rng = rng or random.Random(0)
        token = inputs[:, 0]
        steps = []
        for t in range(inputs.shape[1]):
            features, hidden, _ = self.decoder(token.unsqueeze(1), hidden, memory)
            steps.append(features)
            if t + 1 < inputs.shape[1]:
                if rng.random() < ratio:
                    token = inputs[:, t + 1]
                else:
                    token = self.decoder.logits(features.squeeze(1)).argmax(-1).detach()
        return torch.cat(steps, dim=1)

