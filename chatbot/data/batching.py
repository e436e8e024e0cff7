"""Conversation windows -> length-bucketed tensor batches.

A window is K consecutive utterances of one conversation. Windows overlap by one
utterance, so each (utterance -> next utterance) pair is a target exactly once.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from chatbot.data.corpora import Conversation
from chatbot.text.tokenizer import Tokenizer

EncodedConversation = list[list[int]]


@dataclass
class Batch:
    """One batch of B windows of at most K turns.

    Attributes:
        utterances: (B, K, S) int64 encoder input, each utterance ending in `<eos>`.
        lengths: (B, K) int64 utterance lengths; 1 for a turn past the window's end.
        turn_mask: (B, K) bool, True for real turns.
        dec_in: (B, K-1, T) int64 `<bos>` + reply tokens, reply i answers turn i.
        dec_out: (B, K-1, T) int64 reply tokens + `<eos>`, pad where there is no target.
        negatives: (B, K-1, M, T') int64 other replies (+ `<eos>`) retrieved for each
            turn, all pad where there is none; None when the batcher has no negatives.
    """

    utterances: torch.Tensor
    lengths: torch.Tensor
    turn_mask: torch.Tensor
    dec_in: torch.Tensor
    dec_out: torch.Tensor
    negatives: torch.Tensor | None = None

    @property
    def target_tokens(self) -> int:
        return int((self.dec_out != 0).sum())

    def to(self, device: torch.device | str) -> Batch:
        negatives = None if self.negatives is None else self.negatives.to(device)
        return Batch(
            self.utterances.to(device), self.lengths.to(device), self.turn_mask.to(device),
            self.dec_in.to(device), self.dec_out.to(device), negatives,
        )


@dataclass(frozen=True)
class BatchStats:
    batches: int
    windows: int
    target_tokens: int
    padding_fraction: float


def encode_conversations(
    conversations: Sequence[Conversation], tokenizer: Tokenizer, *, max_tokens: int
) -> list[EncodedConversation]:
    """Token ids of every utterance, truncated to `max_tokens` (before `<eos>`)."""
    flat = [turn for conv in conversations for turn in conv.turns]
    ids = tokenizer.encode_batch(flat)
    encoded, start = [], 0
    for conv in conversations:
        end = start + len(conv.turns)
        encoded.append([utterance[:max_tokens] for utterance in ids[start:end]])
        start = end
    return encoded


def make_windows(
    conversations: Sequence[EncodedConversation], window_turns: int
) -> list[EncodedConversation]:
    """Windows of `window_turns` consecutive utterances; each starts on the last of the previous."""
    return [conversations[c][start:end] for c, start, end in window_spans(
        conversations, window_turns
    )]


def window_spans(
    conversations: Sequence[Sequence[object]], window_turns: int
) -> list[tuple[int, int, int]]:
    """(conversation, start, end) of each window `make_windows` makes, in its order."""
    if window_turns < 2:
        raise ValueError(f"window_turns must be at least 2 (got {window_turns})")
    step = window_turns - 1
    spans = []
    for index, conv in enumerate(conversations):
        for start in range(0, max(len(conv) - 1, 0), step):
            end = min(start + window_turns, len(conv))
            if end - start >= 2:
                spans.append((index, start, end))
    return spans


class WindowBatcher:
    """Batches windows of similar shape together, in a seeded order per epoch.

    With `world_size` > 1 each rank takes every `world_size`-th batch, so ranks
    see disjoint data and the same number of steps.
    """

    def __init__(
        self,
        conversations: Sequence[EncodedConversation],
        *,
        window_turns: int,
        batch_size: int,
        pad_id: int,
        bos_id: int,
        eos_id: int,
        bucket_batches: int = 50,
        negatives: Sequence[Sequence[Sequence[Sequence[int]]]] | None = None,
    ) -> None:
        """`negatives[c][j]`: token ids of other replies retrieved for turn j of
        conversation c (each window then collates them into `Batch.negatives`)."""
        spans = window_spans(conversations, window_turns)
        self.windows = [conversations[c][a:b] for c, a, b in spans]
        self.negatives = (
            None if negatives is None else [negatives[c][a:b] for c, a, b in spans]
        )
        self.window_turns = window_turns
        self.batch_size = batch_size
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id
        self.bucket_batches = bucket_batches

    def plan(self, epoch: int, *, seed: int, shuffle: bool = True) -> list[list[int]]:
        """Window indices of each batch of an epoch; a pure function of (seed, epoch)."""
        order = list(range(len(self.windows)))
        rng = random.Random(seed * 1_000_003 + epoch)
        if shuffle:
            rng.shuffle(order)
        pool = self.batch_size * self.bucket_batches
        batches: list[list[int]] = []
        for start in range(0, len(order), pool):
            chunk = sorted(order[start : start + pool], key=self._shape_key)
            size = self.batch_size
            batches += [chunk[i : i + size] for i in range(0, len(chunk), size)]
        if shuffle:
            rng.shuffle(batches)
        return batches

    def batches(
        self, epoch: int, *, seed: int, shuffle: bool = True, rank: int = 0, world_size: int = 1,
        start: int = 0,
    ) -> Iterator[Batch]:
        plan = self.plan(epoch, seed=seed, shuffle=shuffle)
        usable = len(plan) - len(plan) % world_size if world_size > 1 else len(plan)
        for index in range(start, usable // world_size):
            chosen = plan[index * world_size + rank]
            batch = self.collate([self.windows[i] for i in chosen])
            if self.negatives is not None:
                batch.negatives = self.collate_negatives([self.negatives[i] for i in chosen])
            yield batch

    def steps_per_epoch(self, world_size: int = 1) -> int:
        return len(self.plan(0, seed=0, shuffle=False)) // world_size

    def stats(self) -> BatchStats:
        """Padding fraction of decoder targets over one epoch's batches.

        Computed from the plan and the utterance lengths, without collating:
        the model decodes a batch's replies (every turn after a window's first)
        side by side, each padded to the batch's longest reply + 1 (`<eos>`).
        """
        real = padded = windows = 0
        plan = self.plan(0, seed=0)
        for indices in plan:
            replies = [len(u) + 1 for i in indices for u in self.windows[i][1:]]
            padded += len(replies) * max(replies)
            real += sum(replies)
            windows += len(indices)
        fraction = 1.0 - real / padded if padded else 0.0
        return BatchStats(len(plan), windows, real, fraction)

    def _shape_key(self, index: int) -> tuple[int, int, int]:
        """Turns, longest reply, longest answered turn: replies (the decoder's
        rows, the costlier side) of a batch come out nearly the same length.
        """
        window = self.windows[index]
        return len(window), max(len(u) for u in window[1:]), max(len(u) for u in window[:-1])

    def collate_negatives(
        self, windows: Sequence[Sequence[Sequence[Sequence[int]]]]
    ) -> torch.Tensor:
        """(B, K-1, M, T) retrieved replies + `<eos>` for turns 1.. of each window."""
        k = max(len(w) for w in windows)
        m = max((len(n) for w in windows for n in w), default=0)
        t = max((len(r) for w in windows for n in w for r in n), default=0) + 1
        out = torch.full((len(windows), k - 1, m, t), self.pad_id, dtype=torch.long)
        for i, window in enumerate(windows):
            for j, replies in enumerate(window[1:]):
                for r, ids in enumerate(replies):
                    out[i, j, r, : len(ids)] = torch.tensor(ids, dtype=torch.long)
                    out[i, j, r, len(ids)] = self.eos_id
        return out

    def collate(self, windows: Sequence[EncodedConversation]) -> Batch:
        b = len(windows)
        k = max(len(w) for w in windows)
        s = max(len(u) for w in windows for u in w) + 1
        utterances = torch.full((b, k, s), self.pad_id, dtype=torch.long)
        utterances[:, :, 0] = self.eos_id
        lengths = torch.ones(b, k, dtype=torch.long)
        turn_mask = torch.zeros(b, k, dtype=torch.bool)
        dec_in = torch.full((b, k - 1, s), self.pad_id, dtype=torch.long)
        dec_out = torch.full((b, k - 1, s), self.pad_id, dtype=torch.long)
        for i, window in enumerate(windows):
            for j, ids in enumerate(window):
                n = len(ids)
                utterances[i, j, :n] = torch.tensor(ids, dtype=torch.long)
                utterances[i, j, n] = self.eos_id
                lengths[i, j] = n + 1
                turn_mask[i, j] = True
                if j > 0:
                    dec_in[i, j - 1, 0] = self.bos_id
                    dec_in[i, j - 1, 1 : n + 1] = utterances[i, j, :n]
                    dec_out[i, j - 1, : n + 1] = utterances[i, j, : n + 1]
        return Batch(utterances, lengths, turn_mask, dec_in, dec_out)
