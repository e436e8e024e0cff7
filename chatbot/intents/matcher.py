"""Scores an utterance against every intent: regex patterns, then example similarity.

A pattern that matches scores 1.0 and fills slots from its named groups. Otherwise
an intent scores the cosine similarity between the utterance and its nearest
example, over TF-IDF weighted character n-grams of the normalised words. Character
n-grams make the score survive typos, case and punctuation in longer words; a
short word the examples never use is first read as the example word it is one
keyboard slip from, or as the chat abbreviation it is (`spelling.Speller`:
"helo" as "hello", "thnx" as "thanks"). An intent whose nearest negative
example is at least as close as its nearest example is vetoed: it is ranked
with its score but names that negative example, and `decide` never chooses it
("how old are you" as a negative example of an intent whose example is "how are
you").
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from chatbot.intents.schema import Intent
from chatbot.intents.spelling import Speller
from chatbot.intents.text import clean, normalize

NGRAM_SIZES = (2, 3, 4)
MAX_SLOT_CHARS = 60


@dataclass(frozen=True)
class Match:
    """One intent's score for an utterance.

    Attributes:
        intent: the intent's name.
        score: 1.0 for a pattern match, else the cosine to the nearest example.
        via: `pattern` or `examples`.
        slots: slot values from the pattern's named groups.
        example: the nearest example (for `via == "examples"`).
        negative: the negative example that vetoes this match, if one is at
            least as close as `example`.
    """

    intent: str
    score: float
    via: Literal["pattern", "examples"]
    slots: tuple[tuple[str, str], ...] = ()
    example: str | None = None
    negative: str | None = None


def features(text: str) -> Counter[str]:
    """Character n-grams of each normalised word padded with spaces, and the words."""
    counts: Counter[str] = Counter()
    for word in normalize(text).split():
        padded = f" {word} "
        counts[word] += 1
        for n in NGRAM_SIZES:
            for i in range(len(padded) - n + 1):
                counts[padded[i : i + n]] += 1
    return counts


class IntentMatcher:
    """Ranks intents for an utterance. Build once per intent set; `rank` is read-only."""

    def __init__(self, intents: Sequence[Intent]) -> None:
        self.intents = tuple(intents)
        self._patterned = [i for i in self.intents if i.patterns]
        examples = [(i.name, e) for i in self.intents for e in i.examples]
        self._examples = [e for _, e in examples]
        self._owners = [name for name, _ in examples]
        negatives = [(i.name, e) for i in self.intents if i.examples for e in i.negative_examples]
        self._negatives = [e for _, e in negatives]
        # Rows: every example, then every negative example (each block grouped by intent).
        self._build_index([features(e) for _, e in examples + negatives])
        self.speller = Speller(w for _, e in examples + negatives for w in normalize(e).split())
        self._negative_starts, self._negative_groups = self._negative_blocks(
            [name for name, _ in negatives]
        )

    def _build_index(self, docs: list[Counter[str]]) -> None:
        """An inverted index: feature -> (example rows, weights), as flat CSC arrays."""
        n_docs = len(docs)
        df: Counter[str] = Counter(f for doc in docs for f in doc)
        self._idf = {f: math.log((1 + n_docs) / (1 + d)) + 1.0 for f, d in df.items()}
        self._unseen_idf = math.log(1 + n_docs) + 1.0
        self._column = {f: c for c, f in enumerate(df)}
        entries = sorted(
            (self._column[f], row, w)
            for row, doc in enumerate(docs)
            for f, w in self._weights(doc).items()
        )
        counts = np.bincount([c for c, _, _ in entries], minlength=len(df))
        self._indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.intp)
        self._rows = np.array([r for _, r, _ in entries], dtype=np.intp)
        self._values = np.array([w for _, _, w in entries], dtype=np.float64)
        runs = _runs(self._owners)
        self._group_starts = np.array([row for row, _ in runs], dtype=np.intp)
        self._group_names = [owner for _, owner in runs]

    def _negative_blocks(
        self, owners: list[str]
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """Where each intent's negative examples start (rows after the examples)
        and that intent's index among the example groups."""
        group = {name: index for index, name in enumerate(self._group_names)}
        runs = _runs(owners)
        starts = [len(self._examples) + row for row, _ in runs]
        return np.array(starts, dtype=np.intp), np.array([group[o] for _, o in runs], dtype=np.intp)

    def _vetoes(
        self, scores: npt.NDArray[Any], per_intent: npt.NDArray[Any]
    ) -> dict[int, str]:
        """Intent group -> its nearest negative example, where that is at least as
        close as the intent's nearest example (`scores` of every row)."""
        if not len(self._negative_starts):
            return {}
        nearest = np.maximum.reduceat(scores, self._negative_starts)
        vetoes = {}
        for block in np.flatnonzero(nearest >= per_intent[self._negative_groups]):
            start = int(self._negative_starts[block])
            stop = _group_stop(self._negative_starts, int(block), len(scores))
            row = start + int(np.argmax(scores[start:stop])) - len(self._examples)
            vetoes[int(self._negative_groups[block])] = self._negatives[row]
        return vetoes

    def _weights(self, counts: Counter[str]) -> dict[str, float]:
        """L2-normalised sublinear TF-IDF weights."""
        raw = {
            f: (1.0 + math.log(c)) * self._idf.get(f, self._unseen_idf) for f, c in counts.items()
        }
        norm = math.sqrt(sum(w * w for w in raw.values())) or 1.0
        return {f: w / norm for f, w in raw.items()}

    def rank(self, text: str, *, limit: int = 10) -> list[Match]:
        """The best `limit` intents with a positive score, best first (ties by name)."""
        best: dict[str, Match] = {m.intent: m for m in self._example_matches(text, limit)}
        for match in self._pattern_matches(text):
            best[match.intent] = match
        return sorted(best.values(), key=lambda m: (-m.score, m.intent))[:limit]

    def _pattern_matches(self, text: str) -> list[Match]:
        cleaned = clean(text)
        found = []
        for intent in self._patterned:
            for pattern in intent.patterns:
                hit = pattern.search(cleaned)
                if hit is None:
                    continue
                values = ((k, _slot_value(v)) for k, v in hit.groupdict().items() if v)
                slots = tuple((k, v) for k, v in values if v)
                found.append(Match(intent.name, 1.0, "pattern", slots))
                break
        return found

    def _example_matches(self, text: str, limit: int) -> list[Match]:
        if not self._examples:
            return []
        query = self._weights(features(self.speller.read(normalize(text))))
        known = [(self._column[f], w) for f, w in query.items() if f in self._column]
        if not known:
            return []
        columns = np.array([c for c, _ in known], dtype=np.intp)
        starts = self._indptr[columns]
        lengths = self._indptr[columns + 1] - starts
        # The postings of every query feature, gathered in one vectorised step.
        offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
        positions = offsets + np.arange(int(lengths.sum()))
        values = self._values[positions] * np.repeat([w for _, w in known], lengths)
        rows = len(self._examples)
        everything = np.bincount(
            self._rows[positions], weights=values, minlength=rows + len(self._negatives)
        )
        scores = everything[:rows]
        per_intent = np.maximum.reduceat(scores, self._group_starts)
        vetoes = self._vetoes(everything, per_intent)
        top = np.argsort(-per_intent, kind="stable")[:limit]
        found = []
        for index in (int(i) for i in top if per_intent[i] > 0):
            start = int(self._group_starts[index])
            stop = _group_stop(self._group_starts, index, len(scores))
            nearest = start + int(np.argmax(scores[start:stop]))
            score = round(min(1.0, float(per_intent[index])), 6)
            name, example = self._group_names[index], self._examples[nearest]
            veto = vetoes.get(index)
            found.append(Match(name, score, "examples", example=example, negative=veto))
        return found


def _runs(owners: Sequence[str]) -> list[tuple[int, str]]:
    """(first row, owner) of each run of rows with the same owner."""
    return [(row, owner) for row, owner in enumerate(owners) if not row or owners[row - 1] != owner]


def _group_stop(starts: npt.NDArray[np.intp], index: int, total: int) -> int:
    return int(starts[index + 1]) if index + 1 < len(starts) else total


def _slot_value(raw: str) -> str:
    """A captured slot value, trimmed of spaces and edge punctuation."""
    value = clean(raw, limit=MAX_SLOT_CHARS)
    return value.strip(" .,;:!?\"'()[]{}")
