"""The reply index: human replies of a corpus, keyed by the utterance each answered.

Retrieval is TF-IDF (scikit-learn, word 1-2 grams, sublinear tf) by cosine
similarity: of the user's utterance to each key, plus `CONTEXT_WEIGHT` times
that of the bot's previous line to the line before the key (so a reply to
"like 6:30" after "what time do you get up?" is found among replies to
answers about getting up). On disk it is one gzipped JSON file in the model
directory (`replies.json.gz`, listed in the manifest): the conversations'
turns, which pairs are entries, and the fitted vocabulary and idf weights. The
key matrix is rebuilt from them on load, so nothing is unpickled.

    index = ReplyIndex.build(conversations)
    [hits] = index.search(["I just adopted a dog"], k=20)
    index.reply(hits[0].entry), index.source(hits[0].entry)
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chatbot import jsonio
from chatbot.data.corpora import Conversation
from chatbot.errors import FormatError
from chatbot.jsonio import JsonError

INDEX_FILE = "replies.json.gz"
FORMAT = "chatbot-reply-index"
VERSION = 1
MAX_REPLY_CHARS = 160
MAX_REPLY_WORDS = 30
MAX_INDEX_BYTES = 200_000_000
TOKEN_PATTERN = r"(?u)\b\w[\w']*\b"
CONTEXT_WEIGHT = 0.5


@dataclass(frozen=True)
class Hit:
    """A retrieved entry and the cosine similarity of its key to the query."""

    entry: int
    similarity: float


class ReplyIndex:
    """Entries are (key, reply) pairs of consecutive turns of one conversation.

    Thread-safe for searching; the key matrix is built once, on first use or
    by `warm()` (for example in a background thread).
    """

    def __init__(
        self,
        conversations: Sequence[Conversation],
        entries: Sequence[tuple[int, int]],
        *,
        vocabulary: dict[str, int],
        idf: Sequence[float],
    ) -> None:
        """`entries[i] = (c, t)`: turn t of conversation c answers turn t-1."""
        self.conversations = list(conversations)
        self.entries = list(entries)
        self.vocabulary = vocabulary
        self.idf = np.asarray(idf, dtype=np.float32)
        self._lock = threading.Lock()
        self._vectorizer: Any = None
        self._keys_t: Any = None
        self._warming = False
        self._base = (len(self.conversations), len(self.entries))
        self._taught: list[tuple[str, str]] = []

    def __len__(self) -> int:
        return len(self.entries)

    @classmethod
    def build(
        cls,
        conversations: Sequence[Conversation],
        *,
        keep: Callable[[str], bool] | None = None,
        bot_side: bool = False,
    ) -> ReplyIndex:
        """Every reply of 1-`MAX_REPLY_WORDS` words and at most `MAX_REPLY_CHARS`
        characters that `keep` accepts (default: all) becomes an entry; with
        `bot_side`, only the second speaker's turns (the bot's, in a corpus where
        the user speaks first)."""
        from sklearn.feature_extraction.text import TfidfVectorizer

        entries = [
            (c, t)
            for c, conv in enumerate(conversations)
            for t in range(1, len(conv.turns), 2 if bot_side else 1)
            if _usable(conv.turns[t]) and (keep is None or keep(conv.turns[t]))
        ]
        keys = [conversations[c].turns[t - 1] for c, t in entries]
        vectorizer = _vectorizer(TfidfVectorizer)
        vectorizer.fit(keys)
        vocabulary = {str(k): int(v) for k, v in vectorizer.vocabulary_.items()}
        index = cls(conversations, entries, vocabulary=vocabulary, idf=vectorizer.idf_.tolist())
        index._vectorizer = vectorizer
        return index

    def key(self, entry: int) -> str:
        c, t = self.entries[entry]
        return self.conversations[c].turns[t - 1]

    def reply(self, entry: int) -> str:
        c, t = self.entries[entry]
        return self.conversations[c].turns[t]

    def context(self, entry: int) -> str:
        """The line before the key ('' when the key opened its conversation)."""
        c, t = self.entries[entry]
        return self.conversations[c].turns[t - 2] if t >= 2 else ""

    def source(self, entry: int) -> tuple[str, int]:
        """(conversation id, turn index) the reply was said at."""
        c, t = self.entries[entry]
        return self.conversations[c].id, t

    def set_taught(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Makes `pairs` (utterance, reply), taught from the chat, entries besides the
        corpus's, replacing those of an earlier call ([] removes them). Their keys
        are searched with the corpus's vocabulary; the key matrix is rebuilt on the
        next search. The same pairs again change nothing (and do not wait for a key
        matrix being built)."""
        pairs = [(str(u), str(r)) for u, r in pairs]
        if pairs == self._taught:
            return
        with self._lock:
            self._taught = pairs
            conversations, entries = self._base
            del self.conversations[conversations:]
            del self.entries[entries:]
            for number, (utterance, reply) in enumerate(pairs, start=1):
                self.conversations.append(Conversation(f"taught-{number}", (utterance, reply)))
                self.entries.append((len(self.conversations) - 1, 1))
            self._keys_t = None

    @property
    def warmed(self) -> bool:
        """Whether the key matrices are built (or being built)."""
        return self._warming

    def warm(self) -> None:
        """Builds the key matrix now (it is otherwise built by the first search)."""
        self._warming = True
        self._ready()

    def search(
        self,
        queries: Sequence[str],
        *,
        k: int,
        exclude: Sequence[int] | None = None,
        contexts: Sequence[str | None] | None = None,
    ) -> list[list[Hit]]:
        """The `k` entries whose keys are most similar to each query, best first,
        with a positive similarity and distinct reply texts.

        Args:
            exclude: per query, a conversation index whose entries are skipped.
            contexts: per query, the line said before it (the bot's previous
                reply), or None; it adds `CONTEXT_WEIGHT` times its similarity
                to the line before each key, for keys that share a word with
                the query (the context alone never retrieves a reply: after
                a retrieved reply, the corpus's next line would match any
                query, keyboard mashing included).
        """
        from scipy import sparse

        vectorizer, keys_t = self._ready()
        matrix = vectorizer.transform(list(queries))
        if contexts is not None and any(contexts):
            lines = vectorizer.transform([c or "" for c in contexts])
        else:
            lines = sparse.csr_matrix(matrix.shape, dtype=matrix.dtype)
        # One product over [query, w * context] x [keys; contexts before keys]:
        # query . key + w * context . line-before-key, without adding two large
        # sparse score matrices.
        stacked = sparse.hstack([matrix, CONTEXT_WEIGHT * lines], format="csr")
        scores = (stacked @ keys_t).tocsr()
        if lines.nnz:
            shared = (matrix @ keys_t[: matrix.shape[1]]) > 0
            scores = scores.multiply(shared).tocsr()
            scores.eliminate_zeros()
        results = []
        for row in range(len(queries)):
            start, end = scores.indptr[row], scores.indptr[row + 1]
            columns, values = scores.indices[start:end], scores.data[start:end]
            skip = None if exclude is None else exclude[row]
            results.append(self._top(columns, values, k, skip))
        return results

    def _top(
        self, columns: np.ndarray, values: np.ndarray, k: int, skip: int | None
    ) -> list[Hit]:
        # Dropped hits (the excluded conversation, repeated replies) are few
        # among the best; a generous margin keeps the selection cheap.
        want = min(len(values), 4 * k + 8) if k > 0 else 0
        if want == 0:
            return []
        best = np.argpartition(-values, want - 1)[:want] if want < len(values) else None
        chosen = best if best is not None else np.arange(len(values))
        chosen = chosen[np.lexsort((columns[chosen], -values[chosen]))]
        hits: list[Hit] = []
        seen: set[str] = set()
        for position in chosen:
            entry = int(columns[position])
            if skip is not None and self.entries[entry][0] == skip:
                continue
            text = self.reply(entry).casefold()
            if text in seen:
                continue
            seen.add(text)
            hits.append(Hit(entry, float(values[position])))
            if len(hits) == k:
                break
        return hits

    def _ready(self) -> tuple[Any, Any]:
        with self._lock:
            if self._vectorizer is None:
                from sklearn.feature_extraction.text import TfidfVectorizer

                vectorizer = _vectorizer(TfidfVectorizer)
                vectorizer.vocabulary_ = self.vocabulary
                vectorizer.idf_ = self.idf
                self._vectorizer = vectorizer
            if self._keys_t is None:
                from scipy import sparse

                keys = [self.key(i) for i in range(len(self.entries))]
                lines = [self.context(i) for i in range(len(self.entries))]
                # (2V, N): each key's terms, then the terms of the line before it.
                self._keys_t = sparse.vstack([
                    self._vectorizer.transform(keys).T, self._vectorizer.transform(lines).T,
                ], format="csr")
            return self._vectorizer, self._keys_t

    def to_bytes(self) -> bytes:
        """The gzipped JSON file `load` reads (deterministic for equal indexes)."""
        data = {
            "format": FORMAT,
            "version": VERSION,
            # Taught entries (`set_taught`) belong to a running bot, not to the file.
            "conversations": [[conv.id, list(conv.turns)]
                              for conv in self.conversations[: self._base[0]]],
            "entries": [list(e) for e in self.entries[: self._base[1]]],
            "vocabulary": sorted(self.vocabulary, key=self.vocabulary.__getitem__),
            "idf": [float(x) for x in self.idf],
        }
        raw = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return gzip.compress(raw, compresslevel=9, mtime=0)

    @classmethod
    def load(cls, path: str | Path) -> ReplyIndex:
        """Reads `to_bytes`'s file (verify it against the model's manifest first)."""
        file = Path(path)
        try:
            with gzip.open(file, "rb") as handle:
                raw = handle.read(MAX_INDEX_BYTES + 1)
            if len(raw) > MAX_INDEX_BYTES:
                raise FormatError(file, f"larger than {MAX_INDEX_BYTES} bytes unpacked")
            data = jsonio.loads(raw, max_depth=None)
        except (OSError, EOFError, JsonError) as exc:
            raise FormatError(file, f"not a reply index: {exc}") from None
        return cls._from_json(data, file)

    @classmethod
    def _from_json(cls, data: Any, file: Path) -> ReplyIndex:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise FormatError(file, f"not a {FORMAT} file")
        if data.get("version") != VERSION:
            raise FormatError(file, f"reply index version {data.get('version')} is not supported")
        try:
            conversations = [
                Conversation(str(cid), tuple(str(t) for t in turns))
                for cid, turns in data["conversations"]
            ]
            entries = [(int(c), int(t)) for c, t in data["entries"]]
            vocabulary = {str(term): i for i, term in enumerate(data["vocabulary"])}
            idf = [float(x) for x in data["idf"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(file, f"invalid reply index: {exc!r}") from None
        if len(idf) != len(vocabulary):
            raise FormatError(file, f"{len(idf)} idf weights for {len(vocabulary)} terms")
        for c, t in entries:
            if not (0 <= c < len(conversations) and 1 <= t < len(conversations[c].turns)):
                raise FormatError(file, f"entry ({c}, {t}) names no reply")
        return cls(conversations, entries, vocabulary=vocabulary, idf=idf)


def _usable(reply: str) -> bool:
    return len(reply) <= MAX_REPLY_CHARS and 1 <= len(reply.split()) <= MAX_REPLY_WORDS


def _vectorizer(factory: Any) -> Any:
    return factory(
        ngram_range=(1, 2),
        sublinear_tf=True,
        min_df=2,
        token_pattern=TOKEN_PATTERN,
        dtype=np.float32,
    )
