"""Byte-level BPE tokenizer: any string is representable and `decode(encode(s)) == s`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Tokenizer as _HFTokenizer
from tokenizers import decoders, models, pre_tokenizers, trainers

from chatbot.errors import FormatError, MissingFileError

PAD, BOS, EOS, SEP = "<pad>", "<bos>", "<eos>", "<sep>"
SPECIAL_TOKENS = (PAD, BOS, EOS, SEP)
MAX_FILE_BYTES = 10_000_000
_SURROGATE = re.compile("[\ud800-\udfff]")


class Tokenizer:
    """Wraps a `tokenizers` byte-level BPE model with fixed special-token ids.

    Ids 0-3 are `<pad>`, `<bos>`, `<eos>`, `<sep>`; `encode` never emits them.
    """

    def __init__(self, backend: _HFTokenizer, *, path: str = "tokenizer.json") -> None:
        # Text such as "<eos>" is encoded as ordinary characters, never as a special id.
        backend.encode_special_tokens = True
        self._backend = backend
        self._pieces: dict[int, str] = {}
        ids = [backend.token_to_id(token) for token in SPECIAL_TOKENS]
        if ids != [0, 1, 2, 3]:
            raise FormatError(path, f"special tokens must be ids 0-3, got {ids}")
        self.pad_id, self.bos_id, self.eos_id, self.sep_id = 0, 1, 2, 3

    @classmethod
    def train(
        cls, texts: Iterable[str], *, vocab_size: int, min_frequency: int = 2
    ) -> Tokenizer:
        """Learns BPE merges from `texts`; the vocabulary holds all 256 bytes."""
        backend = _HFTokenizer(models.BPE())
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        backend.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=list(SPECIAL_TOKENS),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        backend.train_from_iterator((_clean(t) for t in texts), trainer=trainer)
        return cls(backend)

    @classmethod
    def from_json(cls, text: str, *, path: str = "tokenizer.json") -> Tokenizer:
        try:
            backend = _HFTokenizer.from_str(text)
        except Exception as exc:
            raise FormatError(path, f"not a tokenizer file: {exc}") from None
        return cls(backend, path=path)

    @classmethod
    def load(cls, path: str | Path) -> Tokenizer:
        """Reads a `tokenizer.json`.

        Raises:
            MissingFileError: there is no such file.
            FormatError: the file is not a tokenizer with ids 0-3 special, or is
                larger than `MAX_FILE_BYTES`.
        """
        file = Path(path)
        try:
            if file.stat().st_size > MAX_FILE_BYTES:
                raise FormatError(file, f"larger than {MAX_FILE_BYTES} bytes")
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise MissingFileError(file, "no such file") from None
        except UnicodeDecodeError as exc:
            raise FormatError(file, f"not UTF-8 text (byte {exc.start})") from None
        return cls.from_json(text, path=str(file))

    def to_json(self) -> str:
        return str(self._backend.to_str())

    @property
    def vocab_size(self) -> int:
        return int(self._backend.get_vocab_size())

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, without special tokens. Lone surrogates become U+FFFD."""
        return list(self._backend.encode(_clean(text), add_special_tokens=False).ids)

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        encodings = self._backend.encode_batch([_clean(t) for t in texts], add_special_tokens=False)
        return [list(e.ids) for e in encodings]

    def decode(self, ids: Sequence[int]) -> str:
        """Text of `ids`; special tokens are dropped, broken UTF-8 becomes U+FFFD."""
        return str(self._backend.decode([int(i) for i in ids if i > self.sep_id]))

    def token_strings(self, ids: Sequence[int]) -> list[str]:
        """Readable text of each token separately (for attention displays)."""
        pieces = self._pieces
        strings = []
        for i in ids:
            piece = pieces.get(i)
            if piece is None:
                piece = pieces[i] = self.decode([i]) if i > self.sep_id else ""
            strings.append(piece)
        return strings


def _clean(text: str) -> str:
    return _SURROGATE.sub("\ufffd", text)
