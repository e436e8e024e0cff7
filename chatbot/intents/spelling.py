"""Typos and chat abbreviations of short words, read the way the intents spell them.

Character n-grams rescue most typos in longer words, but not in short ones: "helo"
shares too few n-grams with "hello", and "thnx" with "thanks". Before matching,
each normalised word the intents' examples never use is read as

1. the expansion of a common chat abbreviation (`CHAT_ABBREVIATIONS`: "thnx" ->
   "thanks", "hru" -> "how are you"), unless an example uses the abbreviation
   itself; else
2. unless it is a common English word (`common_words`: the 3,569 words said at
   least 30 times in the chitchat corpus, so "fell" is never read as "tell"),
   the example word it is one keyboard slip away from (words of 3+ letters),
   by a weighted edit distance in which the slips people make most cost least:
   a doubled or an undoubled letter 0.5, two neighbouring letters swapped or a
   key next to the right one 0.75, any other letter added, dropped or changed
   1.0. A 3-letter word is only read as a cheaper slip than that, so "cat" is
   never read as "hat". The closest word wins; on a tie the word the examples
   use most, and if that ties too the word is left as typed.
"""

from __future__ import annotations

import functools
import string
from collections import Counter
from collections.abc import Iterable
from importlib import resources

CHAT_ABBREVIATIONS: dict[str, str] = {
    "u": "you", "ya": "you", "yu": "you", "r": "are", "ur": "your", "n": "and",
    "thx": "thanks", "thnx": "thanks", "thnks": "thanks", "thanx": "thanks", "tnx": "thanks",
    "tx": "thanks", "ty": "thank you", "tysm": "thank you so much", "thku": "thank you",
    "pls": "please", "plz": "please", "gd": "good", "gud": "good", "nite": "night",
    "gn": "good night", "gm": "good morning", "cya": "see you", "cu": "see you",
    "wat": "what", "wut": "what", "wht": "what", "hw": "how", "hru": "how are you",
    "hbu": "how about you", "wbu": "what about you", "wyd": "what are you doing",
    "idk": "i dont know", "bc": "because", "cuz": "because", "coz": "because",
    "wanna": "want to", "gonna": "going to", "k": "ok", "kk": "ok", "okie": "ok",
    "nvm": "never mind", "btw": "by the way", "rn": "right now", "sry": "sorry",
    "srry": "sorry", "luv": "love", "abt": "about", "ppl": "people", "tmrw": "tomorrow",
    "tmr": "tomorrow", "2day": "today", "gr8": "great", "b4": "before", "l8r": "later",
    "ttyl": "talk to you later", "brb": "be right back", "gtg": "got to go",
    "g2g": "got to go", "bb": "bye bye", "nm": "not much", "whatcha": "what are you",
}
"""Common chat spellings of short words, each read as the words it stands for."""

_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_NEIGHBOURS: dict[str, frozenset[str]] = {}
for _r, _row in enumerate(_ROWS):
    for _c, _key in enumerate(_row):
        _near = {_row[j] for j in (_c - 1, _c + 1) if 0 <= j < len(_row)}
        for _other in (_r - 1, _r + 1):
            if 0 <= _other < len(_ROWS):
                _near.update(_ROWS[_other][j] for j in (_c - 1, _c, _c + 1)
                             if 0 <= j < len(_ROWS[_other]))
        _NEIGHBOURS[_key] = frozenset(_near)
_LETTERS = string.ascii_lowercase + string.digits
SHORTEST = 3
"""Words shorter than this are never corrected (only expanded as abbreviations)."""


@functools.cache
def common_words() -> frozenset[str]:
    """The words never read as typos (`words.txt`, from `scripts/common_words.py`)."""
    text = resources.files("chatbot.intents").joinpath("words.txt").read_text(encoding="utf-8")
    return frozenset(line for line in text.splitlines() if line and not line.startswith("#"))


def slips(word: str) -> dict[str, float]:
    """Every string one slip away from `word`, with the cheapest cost of that slip
    (as the typed `word` would be read back: the candidate is the intended word)."""
    out: dict[str, float] = {}

    def add(candidate: str, cost: float) -> None:
        if candidate and candidate != word and cost < out.get(candidate, 2.0):
            out[candidate] = cost

    for i in range(len(word)):
        # The typist added word[i]: a doubled letter is the cheap case.
        doubled = (i > 0 and word[i - 1] == word[i]) or (
            i + 1 < len(word) and word[i + 1] == word[i])
        add(word[:i] + word[i + 1 :], 0.5 if doubled else 1.0)
        if i + 1 < len(word) and word[i] != word[i + 1]:
            add(word[:i] + word[i + 1] + word[i] + word[i + 2 :], 0.75)
        for letter in _LETTERS:
            if letter != word[i]:
                near = letter in _NEIGHBOURS.get(word[i], frozenset())
                add(word[:i] + letter + word[i + 1 :], 0.75 if near else 1.0)
    for i in range(len(word) + 1):
        for letter in _LETTERS:
            # The typist dropped `letter`: dropping one of a double is the cheap case.
            undoubled = (i > 0 and word[i - 1] == letter) or (
                i < len(word) and word[i] == letter)
            add(word[:i] + letter + word[i:], 0.5 if undoubled else 1.0)
    return out


class Speller:
    """Reads normalised text in the spelling of a vocabulary (the intents' example
    words and how often they occur). Read-only after construction."""

    def __init__(self, words: Iterable[str]) -> None:
        self.counts: Counter[str] = Counter(words)
        self._memo: dict[str, str] = {}

    def word(self, word: str) -> str:
        """`word` as the vocabulary spells it (one or more words), or unchanged."""
        if word in self.counts or not word:
            return word
        if word not in self._memo:
            if len(self._memo) > 65536:
                self._memo.clear()
            self._memo[word] = self._read(word)
        return self._memo[word]

    def _read(self, word: str) -> str:
        if word in CHAT_ABBREVIATIONS:
            return CHAT_ABBREVIATIONS[word]
        if len(word) < SHORTEST or word in common_words():
            return word
        known = [(cost, -self.counts[w], w) for w, cost in slips(word).items()
                 if w in self.counts and len(w) >= 2]
        if len(word) == SHORTEST:
            known = [k for k in known if k[0] < 1.0]
        if not known:
            return word
        known.sort()
        if len(known) > 1 and known[0][:2] == known[1][:2]:
            return word
        return known[0][2]

    def read(self, normalized: str) -> str:
        """`normalized` (the matcher's `normalize` form) with every word read."""
        return " ".join(self.word(w) for w in normalized.split())
