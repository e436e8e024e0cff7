"""Model + tokenizer + decoding as one reply generator over carried conversation states.

    gen = Generator.load("default")
    state = gen.initial_state()
    [(reply, state)] = gen.respond([(state, "hi there", None)])
    [state] = gen.observe([state], [reply.text])    # the bot's reply joins the state too

User input keeps its first `max_input_tokens` tokens (the model's training limit;
training truncates the same way), so a long message is answered from its start.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import re
import struct
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from chatbot import decoding, fsutil
from chatbot.checkpoint import LoadedModel, load_model, resolve_model_dir
from chatbot.decoding import DecodeConfig, Hypothesis, Search
from chatbot.errors import ChatbotError, FormatError
from chatbot.model import HRED
from chatbot.replies.filter import ReplyFilter
from chatbot.replies.grounding import document_frequency, unsupported
from chatbot.replies.index import INDEX_FILE, ReplyIndex
from chatbot.replies.rank import (
    RANKER_FILE,
    RankerWeights,
    ReplyEmbeddings,
    input_log_likelihood,
    score_replies,
)
from chatbot.replies.select import ReplyCandidate, best, gather
from chatbot.text import Tokenizer

Flag = str
"""One of `FLAGS`."""
FLAGS = ("empty", "loop", "echo", "repeat", "blocked")
MAX_CHARS_PER_TOKEN = 64
LOOP_NGRAM = 3
LOOP_RUN = 3
LOOP_MAX_DISTINCT = 0.8
ECHO_MIN_WORDS = 3
EOS_TEXT = "<eos>"

log = logging.getLogger(__name__)

MAX_SCORED_TOKENS = 128
"""A candidate reply is scored on its first this many tokens (retrieved replies
are at most `replies.index.MAX_REPLY_CHARS` characters, far fewer tokens)."""
_WORD = re.compile(r"[\w']+")


class StateError(ChatbotError, ValueError):
    """A neural state of the wrong size or encoding."""


@dataclass(frozen=True, eq=False)
class NeuralState:
    """A conversation's hidden state; opaque outside this module.

    Attributes:
        tensor: (C,) float32 on the CPU.
    """

    tensor: torch.Tensor

    def to_bytes(self) -> bytes:
        """The values as little-endian float32 (4 * C bytes)."""
        values = self.tensor.detach().to("cpu", torch.float32).reshape(-1).tolist()
        return struct.pack(f"<{len(values)}f", *values)

    @classmethod
    def from_bytes(cls, data: bytes, size: int) -> NeuralState:
        """The state `to_bytes` wrote, for a model whose state has `size` values."""
        if len(data) != 4 * size:
            raise StateError(
                f"a neural state of {size} values needs {4 * size} bytes, got {len(data)}"
            )
        return cls(torch.tensor(struct.unpack(f"<{size}f", data), dtype=torch.float32))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NeuralState):
            return NotImplemented
        return torch.equal(self.tensor, other.tensor)

    def __hash__(self) -> int:
        return hash(self.to_bytes())


@dataclass(frozen=True)
class Generation:
    """A generated reply and what the dialogue layer needs to judge it.

    Attributes:
        text: the reply.
        confidence: geometric-mean probability of the reply's tokens (and its
            `<eos>`, when it ended) under the model, in [0, 1].
        flags: subset of `FLAGS`: no words; a repeated n-gram loop; an echo of the
            user's utterance; the same words as the bot's previous reply.
        tokens: the reply's token strings.
        user_tokens: the user's token strings as the model saw them, `<eos>` last.
        attention: (len(tokens) x len(user_tokens)) attention weights.
        n_best: (text, score) alternatives, the chosen first (`beam` gives several).
        token_ids: the reply's token ids.
        source: `generated`, or `retrieved` when a ranker chose a human reply.
        candidates: every candidate of the turn with its scores (empty under
            pure generation); the chosen one has the highest score.
        ranker: the ranker that chose (`model`, `mmi` or `none`).
        input_log_p: per-token log p of the user's utterance at the start of a
            conversation, when the gate weighs it (`RankerWeights.gate_input`).
    """

    text: str
    confidence: float
    flags: tuple[Flag, ...]
    tokens: tuple[str, ...]
    user_tokens: tuple[str, ...]
    attention: tuple[tuple[float, ...], ...]
    n_best: tuple[tuple[str, float], ...]
    token_ids: tuple[int, ...] = ()
    source: str = "generated"
    candidates: tuple[ReplyCandidate, ...] = ()
    ranker: str = "none"
    input_log_p: float | None = None


class Generator:
    """Replies to N conversations in one batched decode; never changes the weights.

    Thread-safe: calls share no mutable state, and model calls run under a lock.
    The model is put in eval mode.
    """

    def __init__(
        self,
        model: HRED,
        tokenizer: Tokenizer,
        *,
        decode: DecodeConfig | None = None,
        max_input_tokens: int = 32,
        index: ReplyIndex | None = None,
        weights: RankerWeights | None = None,
        reply_filter: ReplyFilter | None = None,
    ) -> None:
        """`index`: the reply index retrieval draws on; `weights`: the fitted
        ranker (`decode.ranker="model"` needs it); `reply_filter`: what no reply
        may say (default: the packaged list)."""
        if max_input_tokens < 1:
            raise ValueError(f"max_input_tokens must be positive (got {max_input_tokens})")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.decode = decode or DecodeConfig()
        self.max_input_tokens = max_input_tokens
        self.state_size = model.config.context_size
        self._device = model.bridge.weight.device
        self._banned = tuple(sorted({tokenizer.pad_id, tokenizer.bos_id, tokenizer.sep_id}))
        self._lock = threading.Lock()
        self._reply_embeddings = ReplyEmbeddings()
        self._df: tuple[ReplyIndex | None, Counter[str]] | None = None
        self._reply_tokens = functools.lru_cache(maxsize=65536)(self._tokens_of)
        self.index = index
        self.weights = weights
        self.fingerprint: str | None = None
        """The sha256 of the model's weights file, when loaded from a model directory."""
        self._sources: dict[str, str] = {}
        """The sha256 of the files a table of reply embeddings is computed from."""
        self.reply_filter = reply_filter if reply_filter is not None else ReplyFilter.default()
        if index is not None and not index.warmed:
            # The key matrices take a few seconds to build: off the caller's path.
            threading.Thread(target=index.warm, name="reply-index", daemon=True).start()

    @classmethod
    def load(
        cls, path: str | Path, *, decode: DecodeConfig | None = None,
        reply_filter: ReplyFilter | None = None,
    ) -> Generator:
        """From `default`, a model directory or a run folder."""
        return cls.from_loaded(load_model(resolve_model_dir(path)), decode=decode,
                               reply_filter=reply_filter)

    @classmethod
    def from_loaded(
        cls,
        loaded: LoadedModel,
        *,
        decode: DecodeConfig | None = None,
        reply_filter: ReplyFilter | None = None,
    ) -> Generator:
        """For a model already loaded (with its reply index and fitted ranker, where
        its manifest lists them); input is cut at the model's training limit."""
        files = loaded.info.get("manifest", {}).get("files", {})
        index = None
        if INDEX_FILE in files:
            index = _shared_index(str(loaded.path / INDEX_FILE), files[INDEX_FILE]["sha256"])
        weights = None
        if RANKER_FILE in files:
            path = loaded.path / RANKER_FILE
            weights = RankerWeights.from_json(path.read_text(encoding="utf-8"), str(path))
        generator = cls(
            loaded.model,
            loaded.tokenizer,
            decode=decode,
            max_input_tokens=loaded.config.data.max_utterance_tokens,
            index=index,
            weights=weights,
            reply_filter=reply_filter,
        )
        generator._sources = {name: files.get(name, {}).get("sha256", "")
                              for name in ("model.safetensors", "tokenizer.json", INDEX_FILE)}
        generator.fingerprint = generator._sources["model.safetensors"] or None
        return generator

    def clear_caches(self, *, keep_table: bool = False) -> None:
        """Forgets the cached reply embeddings and token ids (benchmarks time cold
        lookups); `keep_table` keeps the table `warm_reply_embeddings` filled."""
        if keep_table:
            self._reply_embeddings.forget_recent()
        else:
            self._reply_embeddings = ReplyEmbeddings(self._reply_embeddings.size)
        self._reply_tokens.cache_clear()

    def _tokens_of(self, text: str) -> tuple[int, ...]:
        return tuple(self.tokenizer.encode(text)[:MAX_SCORED_TOKENS])

    def warm_reply_embeddings(self, cache: str | Path | None = None, *,
                              stop: threading.Event | None = None) -> int:
        """Encodes every reply of the index for the ranking head ahead of time (about
        100 MB and 15-20 s of CPU for the default model, in chunks, so replies go on
        meanwhile); a selected reply then encodes only the model's own candidates.
        Returns how many replies the table holds (0 without a ranker or an index).

        Args:
            cache: a folder for the table: it is read from there when a file
                computed from this model's weights, tokenizer and index is there
                (a fraction of a second), else computed and written there.
                None: computed, not kept. An unreadable file is computed again.
            stop: set it to stop the computation between chunks; then nothing
                is written, and 0 is returned.
        """
        if self.index is None or self.model.ranker is None:
            return 0
        path = self._vectors_file(Path(cache)) if cache is not None else None
        if path is not None and path.exists():
            try:
                self._reply_embeddings.load_table(path, self._vectors_meta())
                return self._reply_embeddings.filled
            except FormatError as error:
                log.warning("computing the reply embeddings again: %s", error)
        replies = [[*self._reply_tokens(self.index.reply(e)), self.tokenizer.eos_id]
                   for e in range(len(self.index))]
        if not self._reply_embeddings.fill(self.model, replies, pad_id=self.tokenizer.pad_id,
                                           lock=self._lock, stop=stop):
            return 0
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            fsutil.write_bytes(path, self._reply_embeddings.to_bytes(self._vectors_meta()))
            # The same values, mapped from the file rather than held in memory.
            self._reply_embeddings.load_table(path, self._vectors_meta())
        return self._reply_embeddings.filled

    def _vectors_meta(self) -> dict[str, str]:
        return {**self._sources, "max_tokens": str(MAX_SCORED_TOKENS)}

    def _vectors_file(self, folder: Path) -> Path:
        """One file per model weights, tokenizer and index (a digest of their sha256)."""
        digest = hashlib.sha256(json.dumps(self._vectors_meta(), sort_keys=True).encode())
        return folder / f"reply-vectors-{digest.hexdigest()[:24]}.safetensors"

    def initial_state(self) -> NeuralState:
        """The state of a conversation before its first utterance."""
        return NeuralState(torch.zeros(self.state_size))

    def respond(
        self,
        items: Sequence[tuple[NeuralState, str, str | None]],
        *,
        decode: DecodeConfig | None = None,
        seed: int | Sequence[int] | None = None,
    ) -> list[tuple[Generation, NeuralState]]:
        """Replies to each (state, user text, bot's previous reply or None).

        The user's utterance updates each state first; the reply is decoded from
        there. The returned state has absorbed the user's utterance, not the
        reply: pass the reply that is finally used to `observe`.

        Args:
            decode: settings for this call (default: `self.decode`).
            seed: `sample` only: item i draws from its own generator, seeded
                `seed[i]` (a sequence: the dialogue manager seeds each session's
                turn) or `seed + i` (an int), so an item samples the same reply
                alone or in any batch. None draws the seed from torch's global
                generator.
        """
        if not items:
            return []
        config = decode or self.decode
        users = self._encode_many([text for _, text, _ in items])
        generators = None
        if config.strategy == "sample":
            if seed is None or isinstance(seed, int):
                base = int(torch.randint(0, 2**62, ()).item()) if seed is None else seed
                seeds = [base + i for i in range(len(items))]
            else:
                seeds = list(seed)
            generators = [torch.Generator().manual_seed(s) for s in seeds]
        with self._lock, torch.inference_mode():
            tokens, lengths = self._pad(users)
            outputs, mask, vectors = self.model.encode(tokens, lengths)
            after = self.model.update_state(vectors, self._stack([s for s, _, _ in items]))
            hidden, memory = self.model.start_reply(after, outputs, mask)
            search = Search(
                hidden=hidden,
                memory=memory,
                user=tokens.masked_fill(tokens == self.tokenizer.eos_id, self.tokenizer.pad_id),
                bos_id=self.tokenizer.bos_id,
                eos_id=self.tokenizer.eos_id,
                pad_id=self.tokenizer.pad_id,
                banned=self._banned,
            )
            results = decoding.decode(
                self.model.decoder.step, search, config=config, generators=generators
            )
            generations = [
                self._generation(hyps, ids, previous)
                for hyps, ids, (_, _, previous) in zip(results, users, items, strict=True)
            ]
            weights = self._weights(config)
            if weights is not None:
                texts = [text for _, text, _ in items]
                generations = self._select(
                    generations, texts, [p for _, _, p in items], config, weights,
                    state=after, outputs=outputs, mask=mask, vectors=vectors, tokens=tokens,
                )
        states = after.cpu()
        return [(g, NeuralState(states[i].clone())) for i, g in enumerate(generations)]

    def _weights(self, config: DecodeConfig) -> RankerWeights | None:
        """The ranker's weights for `config`, or None for pure generation."""
        if config.ranker == "mmi":
            # Uncalibrated: its confidence is sigmoid(score) (see `RankerWeights`).
            return RankerWeights(mmi_lambda=config.mmi_lambda, fitted_on="mutual information")
        if config.ranker == "model":
            return self.weights
        return None

    def _select(
        self,
        generations: list[Generation],
        users: list[str],
        previous: list[str | None],
        config: DecodeConfig,
        weights: RankerWeights,
        *,
        state: torch.Tensor,
        outputs: torch.Tensor,
        mask: torch.Tensor,
        vectors: torch.Tensor,
        tokens: torch.Tensor,
    ) -> list[Generation]:
        """Each generation replaced by the best of its candidates, all scored in one pass
        (`tokens`: the users' utterances, as encoded)."""
        k = config.retrieve if self.index is not None else 0
        hits = (
            self.index.search(users, k=k, contexts=previous)
            if k and self.index is not None else [[]] * len(users)
        )
        pools = [
            gather(
                [text for text, _ in g.n_best], found, self.index,
                flags=functools.partial(degenerate_flags, user=user, previous=prev),
                reply_filter=self.reply_filter,
            )
            for g, found, user, prev in zip(generations, hits, users, previous, strict=True)
        ]
        rows = [(i, c) for i, pool in enumerate(pools) for c in pool if c.dropped is None]
        if rows:
            features = self._features(
                [i for i, _ in rows], [c.text for _, c in rows], weights,
                state=state, outputs=outputs, mask=mask, vectors=vectors,
                similarity=[c.similarity for _, c in rows],
                generated=[c.source == "generated" for _, c in rows],
                likelihood=weights.uses_likelihood,
                unsupported=[self._unsupported(c.text, users[i], previous[i]) for i, c in rows]
                if weights.unsupported else None,
            )
            totals = weights.score(features).tolist()
            scored = iter(zip(features.tolist(), totals, strict=True))
            pools = [[_with_score(c, scored) for c in pool] for pool in pools]
        understood: list[float | None] = [None] * len(users)
        if weights.gate_input:
            understood = list(input_log_likelihood(
                self.model, tokens, bos_id=self.tokenizer.bos_id, eos_id=self.tokenizer.eos_id
            ).tolist())
        return [
            self._chosen(g, pool, weights, config.ranker, lp)
            for g, pool, lp in zip(generations, pools, understood, strict=True)
        ]

    def _features(
        self,
        owner: list[int],
        texts: list[str],
        weights: RankerWeights,
        *,
        state: torch.Tensor,
        outputs: torch.Tensor,
        mask: torch.Tensor,
        vectors: torch.Tensor,
        similarity: Sequence[float],
        generated: Sequence[bool],
        likelihood: bool = True,
        unsupported: Sequence[int] | None = None,
    ) -> torch.Tensor:
        """(R, F) ranker features of reply `texts[r]` answering conversation `owner[r]`
        (`log_p` and `pmi` are 0 without `likelihood`)."""
        tokens, _ = self._pad([self._reply_tokens(text) for text in texts])
        scores = score_replies(
            self.model, state=state, outputs=outputs, mask=mask, vectors=vectors,
            owner=torch.tensor(owner, device=self._device), replies=tokens,
            bos_id=self.tokenizer.bos_id, eos_id=self.tokenizer.eos_id, likelihood=likelihood,
            cache=self._reply_embeddings,
        )
        return weights.features(
            scores, torch.tensor(similarity, dtype=torch.float32),
            torch.tensor([float(g) for g in generated]),
            None if unsupported is None else torch.tensor(unsupported, dtype=torch.float32),
        ).cpu()

    def _unsupported(self, reply: str, user: str, previous: str | None) -> int:
        """`grounding.unsupported` of `reply` after `user` (and the bot's `previous` line),
        rarity judged among the index's replies (every word is rare without an index)."""
        index, cached = self.index, self._df  # called under self._lock
        if cached is None or cached[0] is not index:
            replies = (index.reply(e) for e in range(len(index))) if index else ()
            cached = self._df = (index, document_frequency(replies))
        return unsupported(reply, [user, previous or ""], cached[1])

    def rank(
        self,
        items: Sequence[tuple[NeuralState, str, Sequence[str]]],
        *,
        weights: RankerWeights | None = None,
        similarity: Sequence[Sequence[float]] | None = None,
        generated: Sequence[Sequence[bool]] | None = None,
    ) -> list[torch.Tensor]:
        """Ranker features (R_i, F) of each item's replies, in one batched pass.

        Args:
            items: (state before the user's utterance, user text, candidate replies).
            weights: where `mmi_lambda` comes from (default: the model's, else 0.5).
            similarity, generated: per item and reply (default 0 and False).
        """
        weights = weights or self.weights or RankerWeights()
        owner = [i for i, (_, _, replies) in enumerate(items) for _ in replies]
        texts = [r for _, _, replies in items for r in replies]
        sims = [x for row in similarity for x in row] if similarity else [0.0] * len(texts)
        gens = [x for row in generated for x in row] if generated else [False] * len(texts)
        users = self._encode_many([text for _, text, _ in items])
        with self._lock, torch.inference_mode():
            tokens, lengths = self._pad(users)
            outputs, mask, vectors = self.model.encode(tokens, lengths)
            after = self.model.update_state(vectors, self._stack([s for s, _, _ in items]))
            features = self._features(owner, texts, weights, state=after, outputs=outputs,
                                      mask=mask, vectors=vectors, similarity=sims,
                                      generated=gens)
        sizes = [len(replies) for _, _, replies in items]
        return list(torch.split(features, sizes))

    def understood(self, text: str) -> float:
        """Per-token log p of `text` said at the start of a conversation, after an
        empty turn (the gate's `input_log_p`)."""
        with self._lock, torch.inference_mode():
            tokens, _ = self._pad(self._encode_many([text]))
            return float(input_log_likelihood(
                self.model, tokens, bos_id=self.tokenizer.bos_id, eos_id=self.tokenizer.eos_id
            )[0])

    def _chosen(
        self, generation: Generation, pool: list[ReplyCandidate], weights: RankerWeights,
        ranker: str, input_log_p: float | None,
    ) -> Generation:
        winner = best(pool)
        if winner is None:
            flags = generation.flags or ("blocked",)
            return dataclasses.replace(generation, flags=flags, confidence=0.0,
                                       candidates=tuple(pool), ranker=ranker,
                                       input_log_p=input_log_p)
        confidence = weights.confidence(winner.score or 0.0, winner.features, input_log_p or 0.0)
        if winner.source == "generated" and winner.text == generation.text:
            return dataclasses.replace(generation, confidence=confidence,
                                       candidates=tuple(pool), ranker=ranker,
                                       input_log_p=input_log_p)
        ids = self.tokenizer.encode(winner.text)
        return dataclasses.replace(
            generation, text=winner.text, confidence=confidence, flags=(),
            tokens=tuple(self.tokenizer.token_strings(ids)), attention=(), token_ids=tuple(ids),
            source=winner.source, candidates=tuple(pool), ranker=ranker,
            input_log_p=input_log_p,
        )

    def observe(self, states: Sequence[NeuralState], texts: Sequence[str]) -> list[NeuralState]:
        """The state after each utterance (e.g. the bot's reply) joins its conversation."""
        if len(states) != len(texts):
            raise ValueError(f"{len(states)} states but {len(texts)} texts")
        if not texts:
            return []
        users = self._encode_many(texts)
        with self._lock, torch.inference_mode():
            tokens, lengths = self._pad(users)
            _, _, vectors = self.model.encode(tokens, lengths)
            after = self.model.update_state(vectors, self._stack(states)).cpu()
        return [NeuralState(row.clone()) for row in after]

    def score(self, state: NeuralState, user: str, reply: str) -> float:
        """Log-probability of `reply` and its `<eos>` answering `user` from `state`,
        by the one-call teacher-forced decoder. The reply is not truncated.
        """
        [ids] = self._encode_many([user])
        target = self.tokenizer.encode(reply) + [self.tokenizer.eos_id]
        with self._lock, torch.inference_mode():
            tokens, lengths = self._pad([ids])
            outputs, mask, vectors = self.model.encode(tokens, lengths)
            after = self.model.update_state(vectors, self._stack([state]))
            hidden, memory = self.model.start_reply(after, outputs, mask)
            targets = torch.tensor([target], device=self._device)
            inputs = torch.cat(
                [torch.full((1, 1), self.tokenizer.bos_id, device=self._device), targets[:, :-1]],
                dim=1,
            )
            loss = self.model.reply_loss(inputs, targets, hidden, memory)
        return -float(loss.total)

    def _encode_many(self, texts: Sequence[str]) -> list[list[int]]:
        """Each text's first `max_input_tokens` token ids.

        A text is cut to `MAX_CHARS_PER_TOKEN` characters per token first, so a
        1 MB message costs no tokenizing. Texts are encoded one by one: the
        tokenizer's batch call starts a thread pool that competes with torch.
        """
        limit = self.max_input_tokens
        cut = [text[: limit * MAX_CHARS_PER_TOKEN] for text in texts]
        return [self.tokenizer.encode(text)[:limit] for text in cut]

    def _pad(self, sequences: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids + `<eos>` as (N, S) int64 padded rows and (N,) lengths."""
        lengths = torch.tensor([len(s) + 1 for s in sequences])
        positions = torch.arange(int(lengths.max()))
        tokens = torch.full((len(sequences), len(positions)), self.tokenizer.pad_id)
        flat = [i for s in sequences for i in (*s, self.tokenizer.eos_id)]
        tokens[positions < lengths.unsqueeze(1)] = torch.tensor(flat, dtype=torch.long)
        return tokens.to(self._device), lengths.to(self._device)

    def _stack(self, states: Sequence[NeuralState]) -> torch.Tensor:
        for state in states:
            if tuple(state.tensor.shape) != (self.state_size,):
                raise StateError(
                    f"neural state of shape {tuple(state.tensor.shape)}, "
                    f"expected ({self.state_size},)"
                )
        return torch.stack([s.tensor for s in states]).to(self._device, torch.float32)

    def _generation(
        self, hyps: list[Hypothesis], user_ids: list[int], previous: str | None
    ) -> Generation:
        best = hyps[0]
        text = self.tokenizer.decode(best.tokens).strip()
        user_text = self.tokenizer.decode(user_ids)
        columns = len(user_ids) + 1
        return Generation(
            text=text,
            confidence=best.confidence,
            flags=degenerate_flags(text, user_text, previous),
            tokens=tuple(self.tokenizer.token_strings(best.tokens)),
            user_tokens=(*self.tokenizer.token_strings(user_ids), EOS_TEXT),
            attention=tuple(map(tuple, best.attention[:, :columns].tolist())),
            n_best=(
                (text, best.score),
                *((self.tokenizer.decode(h.tokens).strip(), h.score) for h in hyps[1:]),
            ),
            token_ids=best.tokens,
        )


@functools.lru_cache(maxsize=4)
def _shared_index(path: str, sha256: str) -> ReplyIndex:
    """One index per verified file and process: loading a bot again (another
    `Chatbot.load`, a test) reuses its key matrices. `sha256` keys the cache."""
    return ReplyIndex.load(path)


def _with_score(
    candidate: ReplyCandidate, scored: Iterator[tuple[list[float], float]]
) -> ReplyCandidate:
    """`candidate` with the next (features, score), unless it was dropped."""
    if candidate.dropped is not None:
        return candidate
    features, score = next(scored)
    return dataclasses.replace(candidate, features=tuple(features), score=score)


def words(text: str) -> list[str]:
    """Case-folded words (letters, digits, apostrophes), for comparing replies."""
    return _WORD.findall(text.casefold())


def degenerate_flags(reply: str, user: str, previous: str | None) -> tuple[Flag, ...]:
    """Which of `FLAGS` describe `reply`.

    - empty: the reply has no words.
    - loop: a word `LOOP_RUN` times in a row, or repeated word `LOOP_NGRAM`-grams
      making up so much of the reply that under `LOOP_MAX_DISTINCT` of them are
      distinct ("i am fine, i am fine"); one phrase said twice in a long reply
      ("I like to play piano, but I like to cook") is not a loop.
    - echo: the reply's words are the user's; or a run of at least `ECHO_MIN_WORDS`
      of the user's words is the whole reply, or most (3/4) of it.
    - repeat: the reply's words are those of the bot's previous reply.
    """
    said = words(reply)
    if not said:
        return ("empty",)
    flags: list[Flag] = []
    if is_loop(said):
        flags.append("loop")
    if is_echo(said, words(user)):
        flags.append("echo")
    if previous is not None and said == words(previous):
        flags.append("repeat")
    return tuple(flags)


def is_loop(said: Sequence[str]) -> bool:
    grams = list(zip(*(said[i:] for i in range(LOOP_NGRAM)), strict=False))
    if grams and len(set(grams)) < LOOP_MAX_DISTINCT * len(grams):
        return True
    streak = 1
    for before, word in zip(said, said[1:], strict=False):
        streak = streak + 1 if word == before else 1
        if streak >= LOOP_RUN:
            return True
    return False


def is_echo(said: Sequence[str], user: Sequence[str]) -> bool:
    if list(said) == list(user):
        return True
    if len(said) >= ECHO_MIN_WORDS and _contains(user, said):
        return True
    return len(user) >= ECHO_MIN_WORDS and 4 * len(user) >= 3 * len(said) and _contains(said, user)


def _contains(outer: Sequence[str], inner: Sequence[str]) -> bool:
    """Whether `inner` is a run of consecutive words of `outer` (words have no spaces)."""
    return not inner or f" {' '.join(inner)} " in f" {' '.join(outer)} "
