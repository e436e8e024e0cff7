"""A plain re-implementation of the PyTorch chatbot tutorial's training algorithm.

The algorithm of pytorch/tutorials `beginner_source/chatbot_tutorial.py`, written
afresh as the baseline of `bench_train.py`. It stays faithful on purpose, quirks
included, because the benchmark measures that algorithm:

- the encoder is embedding -> bidirectional GRU (time-major, packed, sorted by
  length), the two directions' outputs summed;
- the decoder is fed one token per time step in a Python loop; each step runs
  the GRU, `dot` attention over every encoder position (padding included),
  `concat` -> tanh -> Linear -> softmax over the whole vocabulary (padded rows too);
- the decoder starts from `encoder_hidden[:decoder_layers]`;
- the loss is `maskNLLLoss`: -log(gather(softmax)) masked, the mean of each time
  step summed over the steps;
- two Adam optimizers (encoder `lr`, decoder `lr * decoder_lr_ratio`); the
  shared embedding belongs to both, and each side is clipped separately.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

Pair = tuple[list[int], list[int]]


@dataclass(frozen=True)
class ReferenceConfig:
    """The tutorial's settings (hidden 500, 2+2 layers, dropout 0.1, clip 50, Adam 1e-4 / 5e-4)."""

    hidden_size: int = 500
    encoder_layers: int = 2
    decoder_layers: int = 2
    dropout: float = 0.1
    lr: float = 1e-4
    decoder_lr_ratio: float = 5.0
    clip: float = 50.0
    teacher_forcing: float = 1.0
    batch_size: int = 64


@dataclass(frozen=True)
class ReferenceBatch:
    """Time-major tensors, rows sorted by source length, longest first.

    Attributes:
        inputs: (S, B) int64 source ids + `<eos>`, padded.
        lengths: (B,) int64 on the CPU.
        target: (T, B) int64 reply ids + `<eos>`, padded.
        mask: (T, B) bool, True at real target positions.
    """

    inputs: torch.Tensor
    lengths: torch.Tensor
    target: torch.Tensor
    mask: torch.Tensor

    @property
    def max_target_len(self) -> int:
        return int(self.target.shape[0])

    def to(self, device: torch.device) -> ReferenceBatch:
        return ReferenceBatch(
            self.inputs.to(device), self.lengths, self.target.to(device), self.mask.to(device)
        )


class EncoderRNN(nn.Module):
    """Embedding -> bidirectional GRU; the outputs of both directions are summed."""

    def __init__(self, embedding: nn.Embedding, *, hidden_size: int, layers: int,
                 dropout: float) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.embedding = embedding
        self.gru = nn.GRU(hidden_size, hidden_size, layers,
                          dropout=0.0 if layers == 1 else dropout, bidirectional=True)

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(S, B) ids, (B,) lengths -> outputs (S, B, H) and hidden (2 * layers, B, H)."""
        packed = nn.utils.rnn.pack_padded_sequence(self.embedding(inputs), lengths)
        outputs, hidden = self.gru(packed)
        outputs, _ = nn.utils.rnn.pad_packed_sequence(outputs)
        return outputs[:, :, : self.hidden_size] + outputs[:, :, self.hidden_size :], hidden


class LuongAttnDecoderRNN(nn.Module):
    """One decoding step: GRU, dot attention, concat -> tanh -> Linear -> softmax."""

    def __init__(self, embedding: nn.Embedding, *, hidden_size: int, vocab_size: int,
                 layers: int, dropout: float) -> None:
        super().__init__()
        self.layers = layers
        self.embedding = embedding
        self.embedding_dropout = nn.Dropout(dropout)
        self.gru = nn.GRU(hidden_size, hidden_size, layers,
                          dropout=0.0 if layers == 1 else dropout)
        self.concat = nn.Linear(2 * hidden_size, hidden_size)
        self.out = nn.Linear(hidden_size, vocab_size)

    def forward(self, step: torch.Tensor, hidden: torch.Tensor, encoder_outputs: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(1, B) ids, (L, B, H) hidden, (S, B, H) memory -> probabilities (B, V), hidden."""
        embedded = self.embedding_dropout(self.embedding(step))
        rnn_output, hidden = self.gru(embedded, hidden)
        scores = torch.sum(rnn_output * encoder_outputs, dim=2).t()
        weights = F.softmax(scores, dim=1).unsqueeze(1)
        context = weights.bmm(encoder_outputs.transpose(0, 1)).squeeze(1)
        mixed = torch.tanh(self.concat(torch.cat((rnn_output.squeeze(0), context), 1)))
        return F.softmax(self.out(mixed), dim=1), hidden


class TutorialSeq2Seq(nn.Module):
    """The tutorial's embedding, encoder and decoder, with its two optimizers."""

    def __init__(self, config: ReferenceConfig, *, vocab_size: int, bos_id: int) -> None:
        super().__init__()
        self.config = config
        self.bos_id = bos_id
        self.embedding = nn.Embedding(vocab_size, config.hidden_size)
        self.encoder = EncoderRNN(self.embedding, hidden_size=config.hidden_size,
                                  layers=config.encoder_layers, dropout=config.dropout)
        self.decoder = LuongAttnDecoderRNN(self.embedding, hidden_size=config.hidden_size,
                                           vocab_size=vocab_size, layers=config.decoder_layers,
                                           dropout=config.dropout)

    def optimizers(self) -> tuple[torch.optim.Adam, torch.optim.Adam]:
        lr = self.config.lr
        return (torch.optim.Adam(self.encoder.parameters(), lr=lr),
                torch.optim.Adam(self.decoder.parameters(), lr=lr * self.config.decoder_lr_ratio))


def mask_nll_loss(probs: torch.Tensor, target: torch.Tensor, mask: torch.Tensor
                  ) -> tuple[torch.Tensor, int]:
    """The tutorial's maskNLLLoss: mean of -log p(target) over the masked rows of one step."""
    nll = -torch.log(torch.gather(probs, 1, target.view(-1, 1)).squeeze(1))
    return nll.masked_select(mask).mean(), int(mask.sum())


def decode_loss(model: TutorialSeq2Seq, batch: ReferenceBatch, *, teacher_forcing: bool
                ) -> tuple[torch.Tensor, float, int]:
    """Runs the decoder step by step.

    Returns:
        the tutorial's loss (sum over steps of each step's mean), the summed
        token NLL as a float, and the number of target tokens.
    """
    outputs, hidden = model.encoder(batch.inputs, batch.lengths)
    hidden = hidden[: model.decoder.layers]
    step = torch.full((1, batch.inputs.shape[1]), model.bos_id, dtype=torch.long,
                      device=batch.inputs.device)
    loss = torch.zeros((), device=batch.inputs.device)
    nll, tokens = 0.0, 0
    for t in range(batch.max_target_len):
        probs, hidden = model.decoder(step, hidden, outputs)
        if teacher_forcing:
            step = batch.target[t].view(1, -1)
        else:
            step = probs.topk(1)[1].view(1, -1).detach()
        step_loss, count = mask_nll_loss(probs, batch.target[t], batch.mask[t])
        loss = loss + step_loss
        nll += step_loss.item() * count
        tokens += count
    return loss, nll, tokens


def train_step(model: TutorialSeq2Seq, optimizers: Sequence[torch.optim.Optimizer],
               batch: ReferenceBatch, rng: random.Random, *,
               lap: Callable[[str], None] = lambda phase: None) -> tuple[float, int]:
    """One tutorial `train()` iteration; returns the summed token NLL and the token count.

    `lap` is called after the forward, backward and optimizer phases (for timing).
    """
    for optimizer in optimizers:
        optimizer.zero_grad()
    teacher_forcing = rng.random() < model.config.teacher_forcing
    loss, nll, tokens = decode_loss(model, batch, teacher_forcing=teacher_forcing)
    lap("forward")
    torch.autograd.backward(loss)
    lap("backward")
    nn.utils.clip_grad_norm_(model.encoder.parameters(), model.config.clip)
    nn.utils.clip_grad_norm_(model.decoder.parameters(), model.config.clip)
    for optimizer in optimizers:
        optimizer.step()
    lap("optimizer")
    return nll, tokens


@torch.no_grad()
def perplexity(model: TutorialSeq2Seq, batches: Sequence[ReferenceBatch],
               device: torch.device) -> float:
    """Teacher-forced token perplexity, dropout off."""
    was_training = model.training
    model.eval()
    total, tokens = 0.0, 0
    for batch in batches:
        _, nll, count = decode_loss(model, batch.to(device), teacher_forcing=True)
        total += nll
        tokens += count
    model.train(was_training)
    return math.exp(total / max(tokens, 1))


def make_batch(pairs: Sequence[Pair], *, pad_id: int, eos_id: int) -> ReferenceBatch:
    """The tutorial's batch2TrainData on token ids: sort, append `<eos>`, pad time-major."""
    ordered = sorted(pairs, key=lambda pair: len(pair[0]), reverse=True)
    sources = [source + [eos_id] for source, _ in ordered]
    targets = [target + [eos_id] for _, target in ordered]
    target = _time_major(targets, pad_id)
    return ReferenceBatch(
        inputs=_time_major(sources, pad_id),
        lengths=torch.tensor([len(s) for s in sources]),
        target=target,
        mask=target != pad_id,
    )


def epoch_batches(pairs: Sequence[Pair], *, batch_size: int, seed: int, pad_id: int,
                  eos_id: int) -> Iterator[ReferenceBatch]:
    """Every pair once, in a seeded random order, unbucketed, padded to the batch maximum.

    The tutorial samples pairs with replacement; an epoch of a permutation sees
    the same target tokens as the trainer's epoch.
    """
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    for start in range(0, len(order), batch_size):
        chosen = [pairs[i] for i in order[start : start + batch_size]]
        yield make_batch(chosen, pad_id=pad_id, eos_id=eos_id)


def _time_major(sequences: Sequence[list[int]], pad_id: int) -> torch.Tensor:
    return torch.tensor(list(itertools.zip_longest(*sequences, fillvalue=pad_id)),
                        dtype=torch.long)
