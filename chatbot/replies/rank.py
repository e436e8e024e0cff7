"""Scoring candidate replies against conversations with the model itself.

Every candidate of every conversation goes through one batched pass:

- `log_p`: log p(reply | conversation), the decoder teacher-forced on the reply;
- `log_prior`: log p(reply | an empty conversation), for mutual information
  (Li et al. 2016: log p(T|S) - lambda log p(T));
- `match`: the ranking head's scaled cosine between the conversation and the reply;
- `consensus`: the reply's mean cosine to the other candidates of its turn in the
  ranking head's reply space (what most candidates agree on is a safer reply).

`RankerWeights` combines them (and the retrieval similarity) into one score and
maps the winner's score to a calibrated confidence.
"""

from __future__ import annotations

import array
import collections
import contextlib
import itertools
import json
import math
import os
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch
import torch.nn.functional as F

from chatbot import jsonio
from chatbot.errors import FormatError
from chatbot.jsonio import JsonError
from chatbot.model import HRED

RANKER_FILE = "ranker.json"
VECTORS_FORMAT = "chatbot-reply-vectors-1"
"""The `format` a saved table of reply embeddings names in its metadata."""
TABLE_DTYPE = torch.float16

FEATURES = ("match", "log_p", "pmi", "similarity", "generated", "consensus", "unsupported")


@dataclass(frozen=True)
class Scores:
    """Per candidate row: (R,) float tensors, and (R,) reply token counts (with `<eos>`)."""

    log_p: torch.Tensor
    log_prior: torch.Tensor
    match: torch.Tensor
    tokens: torch.Tensor
    consensus: torch.Tensor


@torch.inference_mode()
def score_replies(
    model: HRED,
    *,
    state: torch.Tensor,
    outputs: torch.Tensor,
    mask: torch.Tensor,
    vectors: torch.Tensor,
    owner: torch.Tensor,
    replies: torch.Tensor,
    bos_id: int,
    eos_id: int,
    likelihood: bool = True,
    cache: ReplyEmbeddings | None = None,
) -> Scores:
    """Scores R candidate replies of N conversations in one pass.

    Without `likelihood`, only `match` is computed (the decoder does not run;
    `log_p` and `log_prior` are zeros): enough for a ranker that weighs neither.
    With `cache`, the ranking head's reply embeddings are looked up there first,
    and only replies it lacks (each distinct one once) go through the encoder.

    Args:
        state: (N, C) each conversation's state after the user's utterance.
        outputs: (N, S, H) the user utterances' encoder outputs; mask (N, S).
        vectors: (N, H) the user utterances' vectors.
        owner: (R,) int64, the conversation each candidate answers.
        replies: (R, T) int64 reply tokens + `<eos>`, pad after.
    """
    real = replies != model.pad_id
    lengths = real.sum(1)
    log_p = log_prior = torch.zeros(len(replies), device=replies.device)
    if likelihood:
        inputs = _shifted(replies, model.pad_id, bos_id=bos_id, eos_id=eos_id)
        log_p = _log_likelihood(model, state.index_select(0, owner),
                                outputs.index_select(0, owner), mask.index_select(0, owner),
                                inputs, replies, real, lengths)
        e_state, e_out, e_mask = _empty_turn(model, eos_id, len(replies), replies.device)
        log_prior = _log_likelihood(model, e_state, e_out, e_mask, inputs, replies, real, lengths)
    match = consensus = torch.zeros(len(replies), device=replies.device)
    if model.ranker is not None:
        contexts = model.ranker.embed_context(state, vectors).index_select(0, owner)
        embedded = (cache or ReplyEmbeddings(0)).embed(model, replies, lengths)
        match = model.ranker.score(contexts, embedded)
        consensus = _consensus(embedded, owner)
    return Scores(log_p, log_prior, match, lengths, consensus)


class ReplyEmbeddings:
    """The ranking head's reply embeddings, by reply token ids: a table filled
    ahead of time (`fill`, e.g. with every reply of the index, for a server),
    then a cache of others with the least recently used dropped past `size`
    (0: keep nothing, just encode each distinct reply once).

    An embedding depends only on the reply's tokens and the model's weights, so
    one cache serves every conversation of one model: retrieved replies recur.
    """

    def __init__(self, size: int = 16384) -> None:
        self.size = size
        self._rows: collections.OrderedDict[tuple[int, ...], torch.Tensor] = (
            collections.OrderedDict())
        # Table keys are the token ids as int32 bytes: a tenth of a tuple's memory.
        self._table: dict[bytes, int] = {}
        self._matrix: torch.Tensor | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._rows) + len(self._table)

    def fill(self, model: HRED, replies: Sequence[Sequence[int]], *, pad_id: int,
             chunk: int = 512, lock: AbstractContextManager[Any] | None = None,
             stop: threading.Event | None = None) -> bool:
        """Encodes `replies` (token ids + `<eos>`) into the table, `chunk` at a time,
        each chunk under `lock` (the generator's), so replies go on meanwhile.
        Returns False, leaving the table as it was, if `stop` is set between
        chunks (a program that exits stops it at once, rather than tearing down
        torch's threads mid-computation)."""
        assert model.ranker is not None
        keys = list(dict.fromkeys(tuple(r) for r in replies if r))
        device = next(model.parameters()).device
        blocks = []
        for start in range(0, len(keys), chunk):
            if stop is not None and stop.is_set():
                return False
            part = keys[start : start + chunk]
            tokens = torch.full((len(part), max(map(len, part))), pad_id, dtype=torch.long)
            for i, key in enumerate(part):
                tokens[i, : len(key)] = torch.tensor(key)
            lengths = torch.tensor([len(k) for k in part])
            with lock or contextlib.nullcontext(), torch.inference_mode():
                _, vectors = model.encoder(tokens.to(device), lengths.to(device))
                blocks.append(model.ranker.embed_reply(vectors))
        with self._lock:
            # Half precision halves the table (about 50 MB for the default model);
            # a score moves by about 1e-3 of the head's scale.
            self._matrix = torch.cat(blocks).to(TABLE_DTYPE) if blocks else None
            self._table = {_packed(key): i for i, key in enumerate(keys)} if blocks else {}
        return True

    @property
    def filled(self) -> int:
        """How many replies the table filled ahead of time holds."""
        return len(self._table)

    def forget_recent(self) -> None:
        """Drops the cache of replies encoded on the way; the table stays."""
        with self._lock:
            self._rows.clear()

    def to_bytes(self, meta: dict[str, str]) -> bytes:
        """The table as safetensors: the embeddings and each reply's token ids (flat,
        with offsets), and `meta` (what the table was computed from)."""
        with self._lock:
            matrix, table = self._matrix, self._table
        if matrix is None:
            raise ValueError("the table is empty: nothing to save")
        keys = sorted(table, key=table.__getitem__)
        offsets = torch.tensor([0, *itertools.accumulate(len(k) // 4 for k in keys)],
                               dtype=torch.int64)
        tokens = torch.frombuffer(bytearray(b"".join(keys)), dtype=torch.int32)
        return safetensors.torch.save(
            {"vectors": matrix.contiguous(), "tokens": tokens, "offsets": offsets},
            metadata={"format": VECTORS_FORMAT, **meta},
        )

    def load_table(self, path: str | Path, meta: dict[str, str]) -> None:
        """Fills the table from a file `to_bytes` wrote for the same `meta`; raises
        `FormatError` (the file named) for anything else, leaving the table as it was.

        The embeddings stay in the file, memory-mapped (copy on write): a page is
        read, and counts in the process's memory, when a reply on it is ranked."""
        try:
            header, tensors = _mapped(Path(path))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise FormatError(path, f"not a reply-vector table ({error!r})") from error
        expected = {"format": VECTORS_FORMAT, **meta}
        if {k: header.get(k) for k in expected} != expected:
            raise FormatError(path, f"computed for {header}, not for {expected}")
        vectors, tokens, offsets = (tensors.get(n) for n in ("vectors", "tokens", "offsets"))
        if (vectors is None or tokens is None or offsets is None or vectors.dim() != 2
                or vectors.dtype != TABLE_DTYPE or tokens.dtype != torch.int32
                or offsets.numel() != vectors.shape[0] + 1
                or int(offsets[-1]) != tokens.numel()):
            raise FormatError(path, "inconsistent reply-vector table")
        flat, bounds = tokens.numpy().data.cast("B"), offsets.tolist()
        keys = [flat[4 * a : 4 * b].tobytes() for a, b in itertools.pairwise(bounds)]
        with self._lock:
            self._matrix = vectors
            self._table = {key: i for i, key in enumerate(keys)}

    def embed(self, model: HRED, replies: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(R, D) unit embeddings of reply tokens `replies` (R, T), `lengths` (R,)."""
        assert model.ranker is not None
        keys = [tuple(row[:n]) for row, n in zip(replies.tolist(), lengths.tolist(), strict=True)]
        known: dict[tuple[int, ...], torch.Tensor] = {}
        with self._lock:
            matrix, table = self._matrix, self._table
            tabled = {key: table.get(_packed(key)) for key in keys} if table else {}
            for key in set(keys):
                if tabled.get(key) is not None:
                    continue
                if key in self._rows:
                    self._rows.move_to_end(key)
                    known[key] = self._rows[key]
        missing = list(dict.fromkeys(
            k for k in keys if k not in known and tabled.get(k) is None))
        if missing:
            first = {k: i for i, k in reversed(list(enumerate(keys)))}
            rows = torch.tensor([first[k] for k in missing], device=replies.device)
            _, vectors = model.encoder(replies.index_select(0, rows), lengths.index_select(0, rows))
            fresh = model.ranker.embed_reply(vectors)
            known.update(zip(missing, fresh, strict=True))
            if self.size:
                with self._lock:
                    for key, row in zip(missing, fresh, strict=True):
                        self._rows[key] = row.clone()
                    while len(self._rows) > self.size:
                        self._rows.popitem(last=False)
        return torch.stack([known[k] if k in known
                            else matrix[tabled[k]].float()  # type: ignore[index]
                            for k in keys])


MAX_TABLE_HEADER = 1 << 20


def _packed(key: Sequence[int]) -> bytes:
    return array.array("i", key).tobytes()


def _mapped(path: Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """The metadata and tensors of a safetensors file, the tensors memory-mapped
    (copy on write) rather than read. A file whose length is not exactly the
    header's is refused before anything is mapped (a page past the end of a
    truncated file would fault when read)."""
    with open(path, "rb") as handle:
        length = os.fstat(handle.fileno()).st_size
        size = int.from_bytes(handle.read(8), "little")
        if not 2 <= size <= min(MAX_TABLE_HEADER, length - 8):
            raise ValueError(f"a header of {size} bytes in a file of {length}")
        header = jsonio.loads(handle.read(size))
    if not isinstance(header, dict):
        raise ValueError("the header is not a JSON object")
    ends = [entry["data_offsets"][1] for name, entry in header.items() if name != "__metadata__"]
    described = 8 + size + max(ends, default=0)
    if described != length:
        raise ValueError(f"{length} bytes, but the header describes {described}")
    metadata = header.pop("__metadata__", None) or {}
    dtypes = {"F16": np.float16, "F32": np.float32, "I32": np.int32, "I64": np.int64}
    tensors = {}
    for name, entry in header.items():
        if entry["dtype"] not in dtypes:
            raise ValueError(f"{name}: dtype {entry['dtype']}")
        start, end = entry["data_offsets"]
        shape = tuple(entry["shape"])
        dtype = np.dtype(dtypes[entry["dtype"]])
        if end - start != dtype.itemsize * math.prod(shape):
            raise ValueError(f"{name}: {end - start} bytes for shape {shape}")
        tensors[name] = torch.from_numpy(
            np.memmap(path, dtype=dtype, mode="c", offset=8 + size + start, shape=shape))
    return metadata, tensors


def _consensus(embedded: torch.Tensor, owner: torch.Tensor) -> torch.Tensor:
    """(R,) mean cosine of each unit row of `embedded` (R, D) to the other rows
    with the same owner (0 for a row alone)."""
    same = owner.unsqueeze(0) == owner.unsqueeze(1)
    cosine = (embedded @ embedded.T).masked_fill(~same, 0.0)
    others = same.sum(1) - 1
    total = cosine.sum(1) - cosine.diagonal()
    return torch.where(others > 0, total / others.clamp(min=1), torch.zeros_like(total))


@torch.inference_mode()
def input_log_likelihood(
    model: HRED, tokens: torch.Tensor, *, bos_id: int, eos_id: int
) -> torch.Tensor:
    """(N,) per-token log p of N utterances `tokens` (N, S) (each ending in `<eos>`,
    pad after) said at the start of a conversation, after an empty turn: how
    much the user's words look like the language the model learned (keyboard
    mashing and symbols score far lower than chit-chat)."""
    real = tokens != model.pad_id
    lengths = real.sum(1)
    inputs = _shifted(tokens, model.pad_id, bos_id=bos_id, eos_id=eos_id)
    state, outputs, mask = _empty_turn(model, eos_id, len(tokens), tokens.device)
    total = _log_likelihood(model, state, outputs, mask, inputs, tokens, real, lengths)
    return total / lengths.clamp(min=1)


def _shifted(targets: torch.Tensor, pad_id: int, *, bos_id: int, eos_id: int) -> torch.Tensor:
    """Decoder inputs for `targets` (R, T): `<bos>` then the targets, `<eos>` as padding."""
    inputs = torch.cat([torch.full_like(targets[:, :1], bos_id), targets[:, :-1]], dim=1)
    return inputs.masked_fill(inputs == eos_id, pad_id)


def _empty_turn(
    model: HRED, eos_id: int, rows: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """State (rows, C), encoder outputs and mask of a conversation whose only
    turn was empty, repeated `rows` times: what log p(reply) is conditioned on."""
    empty = torch.tensor([[eos_id]], device=device)
    outputs, mask, vectors = model.encode(empty, torch.ones(1, dtype=torch.long, device=device))
    state = model.update_state(vectors, model.initial_state(1))
    index = torch.zeros(rows, dtype=torch.long, device=device)
    return state.index_select(0, index), outputs.index_select(0, index), mask.index_select(0, index)


def _log_likelihood(
    model: HRED,
    state: torch.Tensor,
    outputs: torch.Tensor,
    mask: torch.Tensor,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    real: torch.Tensor,
    lengths: torch.Tensor,
) -> torch.Tensor:
    hidden, memory = model.start_reply(state, outputs, mask)
    features, _, _ = model.decoder(inputs, hidden, memory, lengths, at=real)
    token_lp = -F.cross_entropy(model.decoder.logits(features), targets[real], reduction="none")
    rows = real.nonzero()[:, 0]
    return torch.zeros(len(targets), device=targets.device).index_add_(0, rows, token_lp)


@dataclass(frozen=True)
class RankerWeights:
    """The ranker's linear score and the gate's calibration.

    score = w_match * match + w_log_p * log_p / tokens + w_pmi * pmi / tokens
    + w_similarity * similarity + w_generated * generated
    + w_consensus * consensus + w_unsupported * unsupported, where
    pmi = log_p - mmi_lambda * log_prior, similarity is a retrieved reply's
    key similarity to the user's utterance (0 for generated ones) and generated
    is 1 for the model's own hypotheses, and unsupported counts the reply's rare
    words the conversation does not support (`grounding.unsupported`). The candidate with the best
    score is said; its confidence, the probability that it is an acceptable
    reply, is sigmoid(gate_score * score + gate_similarity * similarity
    + gate_generated * generated + gate_input * input_log_p + gate_bias),
    fitted to judged replies, where input_log_p is the per-token log p of the
    user's utterance (`input_log_likelihood`).
    """

    match: float = 0.0
    log_p: float = 0.0
    pmi: float = 1.0
    similarity: float = 0.0
    generated: float = 0.0
    consensus: float = 0.0
    unsupported: float = 0.0
    mmi_lambda: float = 0.5
    gate_score: float = 1.0
    gate_similarity: float = 0.0
    gate_generated: float = 0.0
    gate_input: float = 0.0
    gate_bias: float = 0.0
    fitted_on: str = "not fitted: mutual information with lambda 0.5"

    def features(self, scores: Scores, similarity: torch.Tensor,
                 generated: torch.Tensor, unsupported: torch.Tensor | None = None
                 ) -> torch.Tensor:
        """(R, len(FEATURES)) feature rows in `FEATURES` order."""
        tokens = scores.tokens.float()
        pmi = scores.log_p - self.mmi_lambda * scores.log_prior
        if unsupported is None:
            unsupported = torch.zeros_like(tokens)
        return torch.stack(
            [scores.match, scores.log_p / tokens, pmi / tokens, similarity.to(tokens.device),
             generated.to(tokens.device), scores.consensus, unsupported.to(tokens.device)],
            dim=1,
        )

    def score(self, features: torch.Tensor) -> torch.Tensor:
        """(R, F) features -> (R,) scores."""
        weights = torch.tensor([self.match, self.log_p, self.pmi, self.similarity,
                                self.generated, self.consensus, self.unsupported],
                               dtype=features.dtype)
        return features @ weights

    @property
    def uses_likelihood(self) -> bool:
        """Whether the score needs the decoder's log-likelihoods."""
        return bool(self.log_p or self.pmi)

    def confidence(
        self, score: float, features: tuple[float, ...], input_log_p: float = 0.0
    ) -> float:
        """The gate's probability that the winner (its score and features) is an
        acceptable reply to an utterance whose per-token log p is `input_log_p`."""
        z = (self.gate_score * score + self.gate_similarity * features[3]
             + self.gate_generated * features[4] + self.gate_input * input_log_p
             + self.gate_bias)
        return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0

    def to_json(self) -> str:
        return json.dumps({"version": 1, **asdict(self)}, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, path: str = RANKER_FILE) -> RankerWeights:
        try:
            data = jsonio.loads(text)
        except JsonError as exc:
            raise FormatError(path, exc.message) from None
        if not isinstance(data, dict) or data.pop("version", None) != 1:
            raise FormatError(path, "not a version 1 ranker file")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise FormatError(path, f"unknown ranker keys: {', '.join(unknown)}")
        for key, value in data.items():
            if key == "fitted_on":
                if not isinstance(value, str):
                    raise FormatError(path, "fitted_on must be a string")
            elif isinstance(value, bool) or not isinstance(value, int | float) or not \
                    math.isfinite(value):
                raise FormatError(path, f"{key} must be a finite number (got {value!r})")
        return cls(**data)
