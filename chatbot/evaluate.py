"""Perplexity: over whole conversations, with the conversation state carried or reset."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from chatbot.data.batching import EncodedConversation, WindowBatcher
from chatbot.model import HRED


@dataclass(frozen=True)
class Perplexity:
    ppl_with_state: float
    ppl_without_state: float
    target_tokens: int
    conversations: int

    @property
    def state_gain(self) -> float:
        """Relative perplexity reduction from carrying the state (0.05 = 5% lower)."""
        return 1.0 - self.ppl_with_state / self.ppl_without_state


@torch.no_grad()
def window_perplexity(
    model: HRED, batcher: WindowBatcher, *, device: torch.device | str = "cpu"
) -> float:
    """Perplexity over the batcher's windows in a fixed order (validation during training)."""
    was_training = model.training
    model.eval()
    total, tokens = 0.0, 0
    for batch in batcher.batches(0, seed=0, shuffle=False):
        batch = batch.to(device)
        loss = model(batch.utterances, batch.lengths, batch.turn_mask, batch.dec_in, batch.dec_out)
        total += float(loss.total)
        tokens += loss.tokens
    model.train(was_training)
    return math.exp(total / max(tokens, 1))


@torch.no_grad()
def window_objective(
    model: HRED, batcher: WindowBatcher, *, device: torch.device | str = "cpu"
) -> tuple[float, float]:
    """Perplexity and mean ranking loss (in-batch negatives) over the batcher's
    windows in a fixed order; the ranking loss is nan without a ranking head."""
    was_training = model.training
    model.eval()
    total, tokens, rank, batches = 0.0, 0, 0.0, 0
    for batch in batcher.batches(0, seed=0, shuffle=False):
        batch = batch.to(device)
        loss = model(batch.utterances, batch.lengths, batch.turn_mask, batch.dec_in,
                     batch.dec_out, rank=True)
        total += float(loss.total)
        tokens += loss.tokens
        if loss.rank is not None:
            rank += float(loss.rank)
            batches += 1
    model.train(was_training)
    return math.exp(total / max(tokens, 1)), rank / batches if batches else math.nan


@torch.no_grad()
def conversation_nll(
    model: HRED,
    conversations: Sequence[EncodedConversation],
    *,
    stateless: bool,
    bos_id: int,
    eos_id: int,
    batch_size: int = 64,
) -> tuple[float, int]:
    """Summed NLL and token count of every reply in whole conversations.

    Turn i+1 is scored as the reply to turn i, the state carried from turn 0
    (or reset before each turn when `stateless`). Runs on the model's device.
    """
    was_training = model.training
    model.eval()
    try:
        return _conversation_nll(
            model, conversations, stateless=stateless, bos_id=bos_id, eos_id=eos_id,
            batch_size=batch_size,
        )
    finally:
        model.train(was_training)


def _conversation_nll(
    model: HRED,
    conversations: Sequence[EncodedConversation],
    *,
    stateless: bool,
    bos_id: int,
    eos_id: int,
    batch_size: int,
) -> tuple[float, int]:
    pad = model.pad_id
    device = next(model.parameters()).device
    order = sorted(range(len(conversations)), key=lambda i: len(conversations[i]))
    total, tokens = 0.0, 0
    for start in range(0, len(order), batch_size):
        group = [conversations[i] for i in order[start : start + batch_size]]
        state = model.initial_state(len(group))
        for turn in range(max(len(c) for c in group) - 1):
            rows = [i for i, c in enumerate(group) if turn + 1 < len(c)]
            sources = [group[i][turn] + [eos_id] for i in rows]
            targets = [group[i][turn + 1] + [eos_id] for i in rows]
            src, src_len = _pad(sources, pad)
            outputs, mask, vectors = model.encode(src.to(device), src_len.to(device))
            index = torch.tensor(rows, device=device)
            previous = model.initial_state(len(rows)) if stateless else state[index]
            new_state = model.update_state(vectors, previous)
            state[index] = new_state
            tgt, _ = _pad(targets, pad)
            dec_in = torch.cat([torch.full((len(rows), 1), bos_id), tgt[:, :-1]], dim=1)
            dec_in = dec_in.masked_fill(dec_in == eos_id, pad).to(device)
            tgt = tgt.to(device)
            hidden, memory = model.start_reply(new_state, outputs, mask)
            loss = model.reply_loss(dec_in, tgt, hidden, memory)
            total += float(loss.total)
            tokens += loss.tokens
    return total, tokens


def perplexity(
    model: HRED,
    conversations: Sequence[EncodedConversation],
    *,
    bos_id: int,
    eos_id: int,
    batch_size: int = 64,
) -> Perplexity:
    """`ppl_with_state` and `ppl_without_state` over the same replies."""
    with_total, n = conversation_nll(
        model, conversations, stateless=False, bos_id=bos_id, eos_id=eos_id, batch_size=batch_size
    )
    without_total, _ = conversation_nll(
        model, conversations, stateless=True, bos_id=bos_id, eos_id=eos_id, batch_size=batch_size
    )
    return Perplexity(
        ppl_with_state=math.exp(with_total / max(n, 1)),
        ppl_without_state=math.exp(without_total / max(n, 1)),
        target_tokens=n,
        conversations=len(conversations),
    )


def _pad(sequences: Sequence[Sequence[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(s) for s in sequences])
    out = torch.full((len(sequences), int(lengths.max())), pad, dtype=torch.long)
    for i, seq in enumerate(sequences):
        out[i, : len(seq)] = torch.tensor(seq, dtype=torch.long)
    return out, lengths
