"""Search strategies over the decoder's step API: greedy, beam search, sampling.

Every strategy is one function with the signature of `Strategy`: it decodes a
batch of B replies, one per conversation, and returns each row's hypotheses.
Rows never influence each other, so a batch decodes as its rows would alone.

    results = decode(step, search, config=DecodeConfig(strategy="beam"))
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from chatbot.errors import ConfigError
from chatbot.model.decoder import Memory

Strategy = Literal["greedy", "beam", "sample"]
StepFn = Callable[
    [torch.Tensor, torch.Tensor, Memory], tuple[torch.Tensor, torch.Tensor, torch.Tensor]
]
"""`decoder.step`: token (B,), hidden (L, B, H), memory -> logits (B, V), hidden, attention (B, S)."""

MAX_BEAM_SIZE = 64
MAX_LENGTH = 512
_NEG_INF = float("-inf")


@dataclass(frozen=True)
class DecodeConfig:
    """How replies are searched. Invalid values raise `ConfigError` on construction.

    Attributes:
        strategy: `greedy`, `beam` or `sample`.
        beam_size: beams per reply (`beam` only).
        length_penalty: beam hypotheses rank by log-prob / length ** length_penalty.
        min_length: `<eos>` is suppressed until this many reply tokens exist.
        max_length: the most reply tokens; a reply that reaches it stops without `<eos>`.
        no_repeat_ngram: no n-gram of this size occurs twice in a reply (0 = off).
        block_user_ngrams: no n-gram of this size is copied from the user's utterance (0 = off).
        temperature: `sample` divides logits by it; 0 means argmax.
        top_k: `sample` keeps the k likeliest tokens (0 = all).
        top_p: `sample` keeps the smallest set of tokens holding this much probability.
        repetition_penalty: logits of tokens already in the reply are divided by it
            (multiplied when negative), CTRL-style; 1 = off. Applies to every strategy.
        n_best: hypotheses returned per reply (`beam`; at most `beam_size`).
    """

    strategy: Strategy = "greedy"
    beam_size: int = 5
    length_penalty: float = 1.0
    min_length: int = 1
    max_length: int = 32
    no_repeat_ngram: int = 3
    block_user_ngrams: int = 0
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    n_best: int = 1

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raises `ConfigError` naming the first invalid setting."""
        hints = typing.get_type_hints(DecodeConfig)
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            expected = hints[f.name]
            if expected is int and (isinstance(value, bool) or not isinstance(value, int)):
                raise ConfigError(f"decode.{f.name} must be an integer (got {value!r})")
            if expected is float and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise ConfigError(f"decode.{f.name} must be a number (got {value!r})")
            if expected is float and not math.isfinite(value):
                raise ConfigError(f"decode.{f.name} must be finite (got {value!r})")
        if self.strategy not in typing.get_args(Strategy):
            raise ConfigError(
                f"decode.strategy must be one of greedy, beam, sample (got {self.strategy!r})"
            )
        _check(1 <= self.beam_size <= MAX_BEAM_SIZE, "beam_size", f"in [1, {MAX_BEAM_SIZE}]",
               self.beam_size)
        _check(1 <= self.max_length <= MAX_LENGTH, "max_length", f"in [1, {MAX_LENGTH}]",
               self.max_length)
        _check(0 <= self.min_length <= self.max_length, "min_length",
               f"in [0, max_length={self.max_length}]", self.min_length)
        _check(self.no_repeat_ngram >= 0, "no_repeat_ngram", ">= 0 (0 = off)",
               self.no_repeat_ngram)
        _check(self.block_user_ngrams >= 0, "block_user_ngrams", ">= 0 (0 = off)",
               self.block_user_ngrams)
        _check(self.temperature >= 0, "temperature", ">= 0 (0 = argmax)", self.temperature)
        _check(self.top_k >= 0, "top_k", ">= 0 (0 = off)", self.top_k)
        _check(0 < self.top_p <= 1, "top_p", "in (0, 1]", self.top_p)
        _check(self.repetition_penalty > 0, "repetition_penalty", "positive (1 = off)",
               self.repetition_penalty)
        _check(1 <= self.n_best <= self.beam_size, "n_best",
               f"in [1, beam_size={self.beam_size}]", self.n_best)

    def replace(self, **changes: Any) -> DecodeConfig:
        """A validated copy with `changes`; string values (`temperature="0.7"`) are parsed."""
        hints = typing.get_type_hints(DecodeConfig)
        parsed = {}
        for name, raw in changes.items():
            if name not in hints:
                hint = difflib.get_close_matches(name, list(hints), n=1)
                suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise ConfigError(
                    f"unknown decode setting {name!r}{suggestion}; settings: {', '.join(hints)}"
                )
            parsed[name] = _parse(name, raw, hints[name])
        return dataclasses.replace(self, **parsed)


def _check(ok: bool, name: str, expected: str, value: object) -> None:
    if not ok:
        raise ConfigError(f"decode.{name} must be {expected} (got {value!r})")


def _parse(name: str, raw: Any, kind: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    text = raw.strip()
    try:
        if kind is int:
            return int(text.replace("_", ""))
        if kind is float:
            return float(text)
    except ValueError:
        raise ConfigError(
            f"decode.{name} expects {'an integer' if kind is int else 'a number'}, got {raw!r}"
        ) from None
    return text


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


@dataclass(frozen=True)
class Hypothesis:
    """One decoded reply.

    Attributes:
        tokens: reply ids, without `<eos>`.
        ended: whether the reply ended with `<eos>` (not cut at `max_length`).
        logprobs: the model's log-probability of each token, then of `<eos>` when
            `ended` (raw logits: no blocking, penalty or temperature).
        score: the search's ranking score, sum of the constrained log-probs of the
            same tokens over length ** length_penalty.
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
        logits: (B, V) raw logits of the next token.
        history: (B, t) reply tokens so far.
        user: (B, S) the rows' user tokens.

    Returns:
        (B, V) logits with banned tokens at -inf. A row left with nothing may end:
        its `<eos>` keeps its raw logit.
    """
    raw_eos = logits[:, search.eos_id]
    out = logits.float()
    t = history.shape[1]
    if config.repetition_penalty != 1.0 and t:
        seen = out.gather(1, history)
        penalty = config.repetition_penalty
        out = out.scatter(1, history, torch.where(seen > 0, seen / penalty, seen * penalty))
    out = out.index_fill(1, torch.tensor(search.banned, device=out.device), _NEG_INF)
    if t < config.min_length:
        out[:, search.eos_id] = _NEG_INF
    n = config.no_repeat_ngram
    if n and t >= n:
        out = block_ngrams(out, history, history[:, t - n + 1 :])
    n = config.block_user_ngrams
    if n and t >= n - 1:
        out = block_ngrams(out, user, history[:, t - n + 1 :])
    stuck = torch.isneginf(out).all(dim=1)
    if bool(stuck.any()):
        out[stuck, search.eos_id] = raw_eos[stuck].float()
    return out


def block_ngrams(logits: torch.Tensor, source: torch.Tensor, prefix: torch.Tensor) -> torch.Tensor:
    """Bans each token that would make `prefix` + token an n-gram already in `source`.

    Args:
        logits: (B, V).
        source: (B, L) int64 token rows.
        prefix: (B, n - 1) the last n - 1 reply tokens (n = 1: empty).

    Returns:
        (B, V) logits, banned tokens at -inf.
    """
    n = prefix.shape[1] + 1
    if source.shape[1] < n:
        return logits
    windows = source.unfold(1, n, 1)
    match = (windows[:, :, :-1] == prefix.unsqueeze(1)).all(dim=2)
    hits = torch.zeros_like(logits).scatter_add_(1, windows[:, :, -1], match.to(logits.dtype))
    return logits.masked_fill(hits > 0, _NEG_INF)


# Token choice (greedy and sampling) ---------------------------------------------


def argmax_tokens(logits: torch.Tensor, uniforms: torch.Tensor, config: DecodeConfig) -> torch.Tensor:
    """(B, V) constrained logits -> (B,) likeliest tokens; `uniforms` is unused."""
    return logits.argmax(dim=1)


def sample_tokens(logits: torch.Tensor, uniforms: torch.Tensor, config: DecodeConfig) -> torch.Tensor:
    """Draws (B,) tokens with temperature, top-k and top-p, by inverse CDF.

    Args:
        logits: (B, V) constrained logits.
        uniforms: (B,) draws in [0, 1), one per row, so rows stay independent.
    """
    if config.temperature == 0:
        return logits.argmax(dim=1)
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


TokenChoice = Callable[[torch.Tensor, torch.Tensor, DecodeConfig], torch.Tensor]


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
    return _token_by_token(step, search, config, sample_tokens, uniforms)


def _token_by_token(
    step: StepFn,
    search: Search,
    config: DecodeConfig,
    choose: TokenChoice,
    uniforms: torch.Tensor | None,
) -> list[list[Hypothesis]]:
    """One token per row per step; a row leaves the batch once it emits `<eos>`."""
    hidden, memory, user = search.hidden, search.memory, search.user
    b, device = search.batch_size, hidden.device
    length = config.max_length
    tokens = torch.full((b, length), search.pad_id, dtype=torch.long, device=device)
    raw = torch.zeros(b, length, device=device)
    scored = torch.zeros(b, length, device=device)
    attention = torch.zeros(b, length, search.memory.mask.shape[1], device=device)
    ended = torch.zeros(b, dtype=torch.bool, device=device)
    active = torch.arange(b, device=device)
    token = torch.full((b,), search.bos_id, dtype=torch.long, device=device)
    history = tokens[:, :0]
    for t in range(length):
        logits, hidden, weights = step(token, hidden, memory)
        logits = logits.float()
        allowed = constrain(logits, history, search, config, user)
        draws = uniforms[active, t].to(device) if uniforms is not None else active
        token = choose(allowed, draws, config)
        pick = token.unsqueeze(1)
        tokens[active, t] = token
        raw[active, t] = (logits.gather(1, pick) - logits.logsumexp(dim=1, keepdim=True)).squeeze(1)
        scored[active, t] = (allowed.gather(1, pick) - allowed.logsumexp(1, keepdim=True)).squeeze(1)
        attention[active, t] = weights
        done = token == search.eos_id
        if bool(done.any()):
            ended[active[done]] = True
            keep = (~done).nonzero().squeeze(1)
            active, token = active[keep], token[keep]
            hidden, memory, user = hidden[:, keep], memory.select(keep), user[keep]
            if not len(active):
                break
        history = tokens[active, : t + 1]
    lengths = ((tokens != search.eos_id) & (tokens != search.pad_id)).sum(dim=1)
    return [
        [_hypothesis(tokens[i], raw[i], scored[i], attention[i], int(lengths[i]),
                     bool(ended[i]), config.length_penalty)]
        for i in range(b)
    ]


def beam(
    step: StepFn,
    search: Search,
    config: DecodeConfig,
    generators: Sequence[torch.Generator] | None = None,
) -> list[list[Hypothesis]]:
    """Beam search; a row's best `n_best` hypotheses by length-penalised score.

    A beam that emits `<eos>` stays in the beam with a fixed score, so the
    search stops once every row's `beam_size` best are all finished.
    """
    k, b, v = config.beam_size, search.batch_size, None
    n = b * k
    rows = torch.arange(b, device=search.hidden.device).repeat_interleave(k)
    hidden, memory, user = search.hidden[:, rows], search.memory.select(rows), search.user[rows]
    device = hidden.device
    scores = torch.full((b, k), _NEG_INF, device=device)
    scores[:, 0] = 0.0
    finished = torch.zeros(n, dtype=torch.bool, device=device)
    lengths = torch.zeros(n, dtype=torch.long, device=device)
    history = torch.zeros(n, 0, dtype=torch.long, device=device)
    raw = torch.zeros(n, 0, device=device)
    attention = torch.zeros(n, 0, memory.mask.shape[1], device=device)
    token = torch.full((n,), search.bos_id, dtype=torch.long, device=device)
    base = (torch.arange(b, device=device) * k).unsqueeze(1)
    for _ in range(config.max_length):
        logits, hidden, weights = step(token, hidden, memory)
        logits = logits.float()
        v = logits.shape[1]
        allowed = constrain(logits, history, search, config, user).log_softmax(dim=1)
        allowed[finished] = _NEG_INF
        allowed[finished, search.eos_id] = 0.0
        top, index = (scores.view(b, k, 1) + allowed.view(b, k, v)).view(b, k * v).topk(k, dim=1)
        source = (base + index // v).view(n)
        token = (index % v).view(n)
        raw_next = logits.gather(1, token.view(n, 1)[:0].new_zeros(0, 1)) if False else None
        was_finished = finished[source]
        picked = (logits[source].gather(1, token.unsqueeze(1))
                  - logits[source].logsumexp(dim=1, keepdim=True))
        del raw_next
        lengths = lengths[source] + (~was_finished & (token != search.eos_id)).long()
        finished = was_finished | (token == search.eos_id) | torch.isneginf(top.view(n))
        hidden = hidden[:, source]
        history = torch.cat([history[source], token.unsqueeze(1)], dim=1)
        raw = torch.cat([raw[source], picked], dim=1)
        attention = torch.cat([attention[source], weights[source].unsqueeze(1)], dim=1)
        scores = top
        if bool(finished.all()):
            break
    return _beam_results(history, raw, attention, scores, lengths, search.eos_id, config)
