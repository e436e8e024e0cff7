"""Search strategies over the decoder's step API: greedy, beam search, sampling.

Every strategy is one function with the signature `SearchFn`: it decodes a
batch of B replies, one per conversation, and returns each row's hypotheses.
Rows never influence each other, so a batch decodes as its rows would alone.

    results = decode(step, search, config=DecodeConfig(strategy="beam"))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import torch

# DecodeConfig lives with the other configs (no torch import, so bot files can be
# read without torch); these names stay importable from here.
from chatbot.config import MAX_BEAM_SIZE as MAX_BEAM_SIZE
from chatbot.config import MAX_LENGTH as MAX_LENGTH
from chatbot.config import DecodeConfig as DecodeConfig
from chatbot.config import Strategy as Strategy
from chatbot.model.decoder import Memory

StepFn = Callable[
    [torch.Tensor, torch.Tensor, Memory], tuple[torch.Tensor, torch.Tensor, torch.Tensor]
]
"""`decoder.step`: token (B,), hidden (L, B, H), memory -> logits (B, V), hidden, weights (B, S)."""

COMPACT_FRACTION = 0.25
"""Finished rows leave a batch once they are this fraction of it: each removal
copies the attention memory of every row that stays."""
_NEG_INF = float("-inf")


# Inputs and outputs ----------------------------------------------------------


@dataclass(frozen=True)
class Search:
    """What one batched decode starts from.

    Attributes:
        hidden: (L, B, H) initial decoder hidden.
        memory: attention memory of the B user utterances.
        user: (B, S) int64 user token ids (no `<eos>`), padded with `pad_id`;
            used by `block_user_ngrams`.
        bos_id, eos_id, pad_id: special ids.
        banned: ids that are never generated (padding, `<bos>`, separators).
    """

    hidden: torch.Tensor
    memory: Memory
    user: torch.Tensor
    bos_id: int
    eos_id: int
    pad_id: int
    banned: tuple[int, ...]

    @property
    def batch_size(self) -> int:
        return int(self.hidden.shape[1])

    @cached_property
    def ban(self) -> torch.Tensor:
        """(K,) int64 ids that are never generated."""
        return torch.tensor(self.banned, dtype=torch.long, device=self.hidden.device)

    @cached_property
    def ban_early(self) -> torch.Tensor:
        """`ban` and `<eos>`: what is banned before `min_length`."""
        return torch.tensor((*self.banned, self.eos_id), device=self.hidden.device)


@dataclass(frozen=True)
class Hypothesis:
    """One decoded reply.

    Attributes:
        tokens: reply ids, without `<eos>`.
        ended: whether the reply ended with `<eos>` (not cut at `max_length`).
        logprobs: the model's log-probability of each token, then of `<eos>` when
            `ended` (raw logits: no blocking, penalty or temperature).
        score: sum(logprobs) / len(logprobs) ** length_penalty; beam search ranks
            its finished hypotheses by it (with penalty 1, log of `confidence`).
        attention: (len(tokens), S) attention weights over the user utterance.
    """

    tokens: tuple[int, ...]
    ended: bool
    logprobs: tuple[float, ...]
    score: float
    attention: torch.Tensor

    @property
    def confidence(self) -> float:
        """Geometric-mean token probability under the model, in [0, 1]."""
        if not self.logprobs:
            return 0.0
        return math.exp(sum(self.logprobs) / len(self.logprobs))


SearchFn = Callable[
    [StepFn, Search, DecodeConfig, "Sequence[torch.Generator] | None"], list[list[Hypothesis]]
]


def decode(
    step: StepFn,
    search: Search,
    *,
    config: DecodeConfig,
    generators: Sequence[torch.Generator] | None = None,
) -> list[list[Hypothesis]]:
    """Decodes B replies with `config.strategy`; per row, its best hypotheses first.

    Args:
        step: the decoder step (`model.decoder.step`).
        search: the batch's start.
        generators: `sample` only: one per row, so each row's draws depend only on
            its own generator (a batch samples what its rows would alone). None
            draws from torch's global generator.
    """
    strategies: dict[str, SearchFn] = {"greedy": greedy, "beam": beam, "sample": sample}
    return strategies[config.strategy](step, search, config, generators)


# Logit constraints -------------------------------------------------------------


def constrain(
    logits: torch.Tensor,
    history: torch.Tensor,
    search: Search,
    config: DecodeConfig,
    user: torch.Tensor,
) -> torch.Tensor:
    """Applies the settings that hold for every strategy.

    Args:
        logits: (B, V) logits (or log-probs) of the next token.
        history: (B, t) reply tokens so far.
        user: (B, S) the rows' user tokens.

    Returns:
        (B, V) new logits, banned tokens at -inf. Blocking never bans `<eos>`, so
        a row can only be left with nothing before `min_length`: then it may end.
    """
    return constrain_(logits.float().clone(), history, search, config, user)


def constrain_(
    scores: torch.Tensor,
    history: torch.Tensor,
    search: Search,
    config: DecodeConfig,
    user: torch.Tensor,
    bans: NgramBans | None = None,
    rows: Sequence[int] = (),
) -> torch.Tensor:
    """`constrain` in place: changes and returns `scores` (B, V) float32.

    With `bans` (kept for the batch's original rows; `rows` names each row of
    `scores`), n-gram blocking looks the banned tokens up instead of scanning
    `history` and `user`.
    """
    t = history.shape[1]
    early = t < config.min_length
    sizes = ((config.no_repeat_ngram, history), (config.block_user_ngrams, user))
    blocking = [(n, source) for n, source in sizes if n and t >= n - 1]
    eos = scores[:, search.eos_id].clone() if early and blocking else None
    scores.index_fill_(1, search.ban_early if early else search.ban, _NEG_INF)
    if config.repetition_penalty != 1.0 and t:
        seen = scores.gather(1, history)
        penalty = config.repetition_penalty
        scores.scatter_(1, history, torch.where(seen > 0, seen / penalty, seen * penalty))
    if bans is not None:
        at, tokens = bans.banned(rows)
        if at:
            index = torch.tensor([at, tokens], device=scores.device)
            scores.index_put_((index[0], index[1]), scores.new_tensor(_NEG_INF))
    else:
        for n, source in blocking:
            block_ngrams_(scores, source, history[:, t - n + 1 :])
    if eos is not None:
        stuck = torch.isneginf(scores).all(dim=1)
        if bool(stuck.any()):
            scores[stuck, search.eos_id] = eos[stuck]
    return scores


class NgramBans:
    """The n-gram blocking of `constrain_` kept incrementally on the host, for
    strategies that extend each row by one token a step (greedy, sampling).

    Per row, a dict from each (n - 1)-token prefix to the tokens that followed
    it, in the reply so far (`no_repeat_ngram`) and in the user's utterance
    (`block_user_ngrams`), and the reply's last n - 1 tokens as a key for each:
    a step's bans are one lookup per table, where scanning every n-gram costs a
    dozen tensor operations per step.
    """

    def __init__(self, user: torch.Tensor, search: Search, config: DecodeConfig) -> None:
        self.repeat, self.copy = config.no_repeat_ngram, config.block_user_ngrams
        b = user.shape[0]
        self.seen: list[dict[tuple[int, ...], set[int]]] = [{} for _ in range(b)]
        self.user: list[dict[tuple[int, ...], set[int]]] = []
        for row in user.tolist():
            tokens = [token for token in row if token != search.pad_id]
            self.user.append(_followers(tokens, self.copy) if self.copy else {})
        # Each row's last n - 1 reply tokens (fewer, early on), for n = no_repeat_ngram
        # and block_user_ngrams.
        self.repeat_keys: list[tuple[int, ...]] = [()] * b
        self.copy_keys: list[tuple[int, ...]] = [()] * b

    def banned(self, rows: Sequence[int]) -> tuple[list[int], list[int]]:
        """(positions in `rows`, tokens): what each row may not emit next."""
        at: list[int] = []
        tokens: list[int] = []
        sizes = (self.repeat, self.seen, self.repeat_keys), (self.copy, self.user, self.copy_keys)
        for n, tables, keys in sizes:
            if not n:
                continue
            for i, row in enumerate(rows):
                table, key = tables[row], keys[row]
                if table and len(key) == n - 1:
                    ban = table.get(key)
                    if ban:
                        at.extend([i] * len(ban))
                        tokens.extend(ban)
        return at, tokens

    def push(self, rows: Sequence[int], tokens: Sequence[int]) -> None:
        """Appends `tokens[i]` to row `rows[i]`'s reply."""
        repeat, copy = self.repeat, self.copy
        for row, token in zip(rows, tokens, strict=True):
            if repeat:
                key = self.repeat_keys[row]
                if len(key) == repeat - 1:
                    # `key` holds the n - 1 tokens before this one: a new n-gram.
                    self.seen[row].setdefault(key, set()).add(token)
                self.repeat_keys[row] = _shift(key, token, repeat - 1)
            if copy:
                self.copy_keys[row] = _shift(self.copy_keys[row], token, copy - 1)


def _shift(key: tuple[int, ...], token: int, size: int) -> tuple[int, ...]:
    """The last `size` of `key` + `token` (`key` holds at most `size`)."""
    return (*key, token)[1:] if len(key) == size else (*key, token)


def _followers(tokens: Sequence[int], n: int) -> dict[tuple[int, ...], set[int]]:
    """Each (n - 1)-token prefix in `tokens` -> the tokens that follow it."""
    followers: dict[tuple[int, ...], set[int]] = {}
    for i in range(len(tokens) - n + 1):
        followers.setdefault(tuple(tokens[i : i + n - 1]), set()).add(tokens[i + n - 1])
    return followers


def block_ngrams(logits: torch.Tensor, source: torch.Tensor, prefix: torch.Tensor) -> torch.Tensor:
    """Bans each token that would make `prefix` + token an n-gram already in `source`.

    Args:
        logits: (B, V).
        source: (B, L) int64 token rows.
        prefix: (B, n - 1) the last n - 1 reply tokens (n = 1: empty).

    Returns:
        (B, V) new logits, banned tokens at -inf.
    """
    return block_ngrams_(logits.clone(), source, prefix)


def block_ngrams_(logits: torch.Tensor, source: torch.Tensor, prefix: torch.Tensor) -> torch.Tensor:
    """`block_ngrams` in place."""
    n = prefix.shape[1] + 1
    if source.shape[1] < n:
        return logits
    windows = source.unfold(1, n, 1)
    match = (windows[:, :, :-1] == prefix.unsqueeze(1)).all(dim=2)
    ban = torch.where(match, _NEG_INF, math.inf)
    return logits.scatter_reduce_(1, windows[:, :, -1], ban, reduce="amin")


# Token choice (greedy and sampling) ---------------------------------------------


def argmax_tokens(
    logits: torch.Tensor, uniforms: torch.Tensor | None, config: DecodeConfig
) -> torch.Tensor:
    """(B, V) constrained logits -> (B,) likeliest tokens; `uniforms` is unused."""
    return logits.max(dim=1).indices


def sample_tokens(
    logits: torch.Tensor, uniforms: torch.Tensor | None, config: DecodeConfig
) -> torch.Tensor:
    """Draws (B,) tokens with temperature, top-k and top-p, by inverse CDF.

    Args:
        logits: (B, V) constrained logits.
        uniforms: (B,) draws in [0, 1), one per row, so rows stay independent.
    """
    if config.temperature == 0 or uniforms is None:
        return logits.max(dim=1).indices
    ordered, order = (logits / config.temperature).sort(dim=1, descending=True)
    if config.top_k:
        ordered[:, config.top_k :] = _NEG_INF
    probs = torch.softmax(ordered, dim=1)
    if config.top_p < 1.0:
        probs = probs.masked_fill(probs.cumsum(dim=1) - probs >= config.top_p, 0.0)
    cdf = probs.cumsum(dim=1)
    target = (uniforms.to(cdf) * cdf[:, -1]).unsqueeze(1)
    pick = torch.searchsorted(cdf, target, right=True).squeeze(1)
    pick = torch.minimum(pick, (probs > 0).sum(dim=1) - 1)
    return order.gather(1, pick.unsqueeze(1)).squeeze(1)


TokenChoice = Callable[[torch.Tensor, "torch.Tensor | None", DecodeConfig], torch.Tensor]


# Strategies -------------------------------------------------------------------


def greedy(
    step: StepFn,
    search: Search,
    config: DecodeConfig,
    generators: Sequence[torch.Generator] | None = None,
) -> list[list[Hypothesis]]:
    """The likeliest token at each step, until `<eos>` or `max_length`."""
    return _token_by_token(step, search, config, argmax_tokens, None)


def sample(
    step: StepFn,
    search: Search,
    config: DecodeConfig,
    generators: Sequence[torch.Generator] | None = None,
) -> list[list[Hypothesis]]:
    """A token drawn at each step (`temperature`, `top_k`, `top_p`).

    Row i draws its `max_length` uniforms from `generators[i]` up front.
    """
    b, steps = search.batch_size, config.max_length
    if generators is None:
        uniforms = torch.rand(b, steps)
    else:
        if len(generators) != b:
            raise ValueError(f"sample needs one generator per row: {b} rows, {len(generators)}")
        uniforms = torch.stack([torch.rand(steps, generator=g) for g in generators])
    return _token_by_token(step, search, config, sample_tokens, uniforms.to(search.hidden.device))


def _token_by_token(
    step: StepFn,
    search: Search,
    config: DecodeConfig,
    choose: TokenChoice,
    uniforms: torch.Tensor | None,
) -> list[list[Hypothesis]]:
    """One token per row per step, until every row has emitted `<eos>`.

    Finished rows leave the batch in groups (`COMPACT_FRACTION`); what a row
    decodes after its `<eos>` is dropped. Each step's results are kept as they
    come and placed once at the end.
    """
    hidden, memory, user = search.hidden, search.memory, search.user
    b, device = search.batch_size, hidden.device
    active = torch.arange(b, device=device)
    rows = list(range(b))
    token = torch.full((b,), search.bos_id, dtype=torch.long, device=device)
    replies = torch.zeros(b, config.max_length, dtype=torch.long, device=device)
    finished = [False] * b
    blocking = config.no_repeat_ngram or config.block_user_ngrams
    bans = NgramBans(user, search, config) if blocking else None
    # Argmax over log-probs that were only banned (-inf), never rescaled: the
    # chosen value is the token's raw log-prob, so the max gives both.
    exact_max = choose is argmax_tokens and config.repetition_penalty == 1.0
    steps: list[Step] = []
    for t in range(config.max_length):
        logits, hidden, weights = step(token, hidden, memory)
        logprobs = logits.float().log_softmax(dim=1)
        history = replies[:, :t]
        allowed = constrain_(
            _penalisable(logits, logprobs, config), history, search, config, user, bans, rows
        )
        if exact_max:
            raw, token = allowed.max(dim=1)
        else:
            token = choose(allowed, None if uniforms is None else uniforms[active, t], config)
            raw = logprobs.gather(1, token.unsqueeze(1)).squeeze(1)
        replies[:, t] = token
        chosen = token.tolist()
        steps.append(Step(rows, chosen, raw, weights))
        if bans is not None:
            bans.push(rows, chosen)
        finished = [
            ended or c == search.eos_id for ended, c in zip(finished, chosen, strict=True)
        ]
        done = sum(finished)
        if done == len(finished):
            break
        if done and done >= COMPACT_FRACTION * len(finished):
            left = [i for i, ended in enumerate(finished) if not ended]
            keep = torch.tensor(left, device=device)
            active, token = active.index_select(0, keep), token.index_select(0, keep)
            replies, user = replies.index_select(0, keep), user.index_select(0, keep)
            hidden, memory = hidden.index_select(1, keep), memory.select(keep)
            rows, finished = [rows[i] for i in left], [False] * len(left)
    return _hypotheses(steps, search, config)


class Step(NamedTuple):
    """What one step of `_token_by_token` chose: for the batch's original `rows`
    (host lists), their `tokens`, the raw log-probs (m,) and attention (m, S)."""

    rows: list[int]
    tokens: list[int]
    raw: torch.Tensor
    weights: torch.Tensor


def _hypotheses(steps: list[Step], search: Search, config: DecodeConfig) -> list[list[Hypothesis]]:
    """Each row's hypothesis: its tokens up to its first `<eos>`, with their
    log-probs (and `<eos>`'s) and attention rows. Placed on the host: one pass
    over the chosen tokens, two tensor operations for all rows.
    """
    b, eos = search.batch_size, search.eos_id
    raw = torch.cat([step.raw for step in steps]).tolist()
    tokens: list[list[int]] = [[] for _ in range(b)]
    logprobs: list[list[float]] = [[] for _ in range(b)]
    picks: list[list[int]] = [[] for _ in range(b)]
    ended = [False] * b
    n = 0
    for step in steps:
        for row, token in zip(step.rows, step.tokens, strict=True):
            if not ended[row]:
                logprobs[row].append(raw[n])
                if token == eos:
                    ended[row] = True
                else:
                    tokens[row].append(token)
                    picks[row].append(n)
            n += 1
    weights = torch.cat([step.weights for step in steps])
    index = torch.tensor([i for row in picks for i in row], dtype=torch.long)
    attention = weights.index_select(0, index.to(weights.device))
    return [
        [
            Hypothesis(
                tokens=tuple(tokens[i]),
                ended=ended[i],
                logprobs=tuple(logprobs[i]),
                score=math.fsum(logprobs[i]) / max(len(logprobs[i]), 1) ** config.length_penalty,
                attention=part,
            )
        ]
        for i, part in enumerate(torch.split(attention, [len(row) for row in picks]))
    ]


def _penalisable(
    logits: torch.Tensor, logprobs: torch.Tensor, config: DecodeConfig
) -> torch.Tensor:
    """What `constrain_` may change in place: `logprobs` themselves (they rank and
    sample as the logits do, and a chosen token is never banned, so its log-prob
    stays), or a copy of the logits, on which the repetition penalty is defined.
    """
    return logits.float().clone() if config.repetition_penalty != 1.0 else logprobs


def beam(
    step: StepFn,
    search: Search,
    config: DecodeConfig,
    generators: Sequence[torch.Generator] | None = None,
) -> list[list[Hypothesis]]:
    """Beam search over the constrained log-probs; per row, the `n_best` hypotheses
    with the best `score`.

    A beam that emits `<eos>` stays in the beam with its search score fixed, so
    the search stops once each row's `beam_size` best hypotheses have all ended.
    """
    k, b = config.beam_size, search.batch_size
    n = b * k
    device = search.hidden.device
    rows = torch.arange(b, device=device).repeat_interleave(k)
    hidden, memory, user = search.hidden[:, rows], search.memory.select(rows), search.user[rows]
    scores = torch.full((b, k), _NEG_INF, device=device)
    scores[:, 0] = 0.0
    finished = torch.zeros(n, dtype=torch.bool, device=device)
    ended = torch.zeros(n, dtype=torch.bool, device=device)
    lengths = torch.zeros(n, dtype=torch.long, device=device)
    history = torch.zeros(n, 0, dtype=torch.long, device=device)
    raw = torch.zeros(n, 0, device=device)
    attention = torch.zeros(n, 0, memory.mask.shape[1], device=device)
    token = torch.full((n,), search.bos_id, dtype=torch.long, device=device)
    offsets = (torch.arange(b, device=device) * k).unsqueeze(1)
    penalised = config.repetition_penalty != 1.0
    ended_row: torch.Tensor | None = None
    for _ in range(config.max_length):
        logits, hidden, weights = step(token, hidden, memory)
        logprobs = logits.float().log_softmax(dim=1)
        allowed = constrain(logits if penalised else logprobs, history, search, config, user)
        allowed = allowed.log_softmax(dim=1)
        v = allowed.shape[1]
        if ended_row is None:
            ended_row = torch.full((v,), _NEG_INF, device=device)
            ended_row[search.eos_id] = 0.0
        allowed = torch.where(finished.unsqueeze(1), ended_row, allowed)
        candidates = (scores.view(b, k, 1) + allowed.view(b, k, v)).view(b, k * v)
        scores, index = candidates.topk(k, dim=1)
        source = (offsets + index // v).view(n)
        token = (index % v).view(n)
        was_finished = finished[source]
        live_eos = ~was_finished & (token == search.eos_id)
        lengths = lengths[source] + (~was_finished & ~live_eos).long()
        ended = ended[source] | live_eos
        finished = was_finished | live_eos | torch.isneginf(scores.view(n))
        hidden = hidden[:, source]
        history = torch.cat([history[source], token.unsqueeze(1)], dim=1)
        raw = torch.cat([raw[source], logprobs[source, token].unsqueeze(1)], dim=1)
        attention = torch.cat([attention[source], weights[source].unsqueeze(1)], dim=1)
        if bool(finished.all()):
            break
    alive = torch.isfinite(scores.view(n))
    return _best_beams(history, raw, attention, alive, lengths, ended, config)


def _best_beams(
    history: torch.Tensor,
    raw: torch.Tensor,
    attention: torch.Tensor,
    alive: torch.Tensor,
    lengths: torch.Tensor,
    ended: torch.Tensor,
    config: DecodeConfig,
) -> list[list[Hypothesis]]:
    k = config.beam_size
    counts = lengths + ended.long()
    positions = torch.arange(raw.shape[1], device=raw.device)
    sums = (raw * (positions < counts.unsqueeze(1))).sum(dim=1)
    ranked = (sums / counts.clamp(min=1).float() ** config.length_penalty).tolist()
    tokens, logprobs, live = history.tolist(), raw.tolist(), alive.tolist()
    size, count, final = lengths.tolist(), counts.tolist(), ended.tolist()
    results = []
    for row in range(len(ranked) // k):
        beams = sorted(
            (i for i in range(row * k, row * k + k) if live[i]), key=lambda i: -ranked[i]
        )
        results.append(
            [
                Hypothesis(
                    tokens=tuple(tokens[i][: size[i]]),
                    ended=final[i],
                    logprobs=tuple(logprobs[i][: count[i]]),
                    score=ranked[i],
                    attention=attention[i, : size[i]],
                )
                for i in beams[: config.n_best]
            ]
        )
    return results
