"""Entities: values found in every utterance, each filling the slot of its name.

Declared in an intent file's top-level `entities:` section:

    entities:
      size: {small: [s, little], large: [l, big]}   # a lookup: value -> synonyms
      crust: [thin, thick]                           # a lookup without synonyms
      address: {pattern: '\\d+ \\w+ (street|road)'}  # a regex (group `value`, else all)
      count: {type: number}                          # built-in: digits or number words
      day: {type: date}                              # built-in: "tomorrow", "next friday"

Lookups compare the matcher's normal form (case, punctuation and apostrophes do
not matter) and forgive one keyboard slip in a word of 3+ letters ("lareg" is
"large"; `spelling.Speller`). A lookup value is the canonical key ("big" fills
`size` with "large"). `date`, `time` and `datetime` need the optional
`dateparser` package (`pip install 'chatbot[dates]'`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from chatbot.intents.spelling import Speller
from chatbot.intents.text import normalize

EntityType = Literal["lookup", "pattern", "number", "date", "time", "datetime"]
BUILT_IN: tuple[EntityType, ...] = ("number", "date", "time", "datetime")

_UNITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
          "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
          "seventeen", "eighteen", "nineteen")
_TENS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
NUMBER_WORDS: dict[str, int] = {
    **{w: i for i, w in enumerate(_UNITS)},
    **{w: 20 + 10 * i for i, w in enumerate(_TENS)},
    "a dozen": 12, "dozen": 12, "a couple": 2, "a couple of": 2, "hundred": 100,
    "a hundred": 100, "a single": 1, "single": 1,
}
_DIGITS = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w]|\.\d)")
_NUMBER_PATTERNS = [(re.compile(rf"\b{phrase}\b"), phrase, value)
                    for phrase, value in NUMBER_WORDS.items()]
_DETERMINERS = frozenset(("a", "an", "the", "this", "that", "which", "each", "every",
                          "another", "no", "any"))
_TENS_UNITS = re.compile(
    rf"\b({'|'.join(_TENS)})[ -]({'|'.join(_UNITS[1:10])})\b")


@dataclass(frozen=True)
class Entity:
    """One entity: its slot name, its kind and what it matches.

    Attributes:
        name: the entity and the slot it fills.
        kind: `lookup`, `pattern` or a built-in type.
        values: lookup: (canonical value, its synonyms) in file order.
        pattern: pattern: the compiled regex (case-insensitive).
    """

    name: str
    kind: EntityType
    values: tuple[tuple[str, tuple[str, ...]], ...] = ()
    pattern: re.Pattern[str] | None = None


@dataclass
class EntityExtractor:
    """Finds every entity's value in an utterance. Read-only after construction."""

    entities: Sequence[Entity]
    _phrases: dict[str, list[tuple[tuple[str, ...], str]]] = field(init=False)
    _speller: Speller = field(init=False)

    def __post_init__(self) -> None:
        self._phrases = {}
        words: list[str] = []
        for entity in self.entities:
            if entity.kind != "lookup":
                continue
            phrases = []
            for value, synonyms in entity.values:
                for text in (value, *synonyms):
                    key = tuple(normalize(text).split())
                    if key:
                        phrases.append((key, value))
                        words += key
            # Longest phrases first, so "extra large" wins over "large".
            phrases.sort(key=lambda p: -len(p[0]))
            self._phrases[entity.name] = phrases
        self._speller = Speller(words)

    def extract(self, text: str, *, now: dt.datetime | None = None) -> dict[str, str]:
        """Entity name -> the value found first in `text` (entities not found are absent)."""
        found: dict[str, str] = {}
        words: list[str] | None = None
        for entity in self.entities:
            if entity.kind == "lookup":
                if words is None:
                    words = self._speller.read(normalize(text)).split()
                value = _lookup(words, self._phrases[entity.name])
            elif entity.kind == "pattern":
                assert entity.pattern is not None
                hit = entity.pattern.search(text)
                value = None
                if hit is not None:
                    raw = hit.group("value") if "value" in entity.pattern.groupindex \
                        else hit.group(0)
                    value = " ".join(raw.split()) if raw else None
            elif entity.kind == "number":
                value = number(text)
            else:
                value = when(text, entity.kind, now=now)
            if value:
                found[entity.name] = value
        return found


def _lookup(words: list[str], phrases: list[tuple[tuple[str, ...], str]]) -> str | None:
    best: tuple[int, int, str] | None = None
    for key, value in phrases:
        n = len(key)
        for start in range(len(words) - n + 1):
            if tuple(words[start : start + n]) == key:
                if best is None or (start, -n) < (best[0], -best[1]):
                    best = (start, n, value)
                break
    return best[2] if best else None


def number(text: str) -> str | None:
    """The first number in `text`, as digits: "3", "2.5", "twenty one" -> "21",
    "a dozen" -> "12"."""
    lowered = normalize(text)
    candidates: list[tuple[int, str]] = []
    hit = _DIGITS.search(text)
    if hit is not None:
        candidates.append((len(normalize(text[: hit.start()])), hit.group(0)))
    compound = _TENS_UNITS.search(lowered)
    if compound is not None:
        value = NUMBER_WORDS[compound.group(1)] + NUMBER_WORDS[compound.group(2)]
        candidates.append((compound.start(), str(value)))
    for pattern, phrase, value in _NUMBER_PATTERNS:
        for at in pattern.finditer(lowered):
            before = lowered[: at.start()].split()[-3:]
            if phrase == "one" and _DETERMINERS.intersection(before):
                continue  # "a big one", "this one": a pronoun, not a count
            candidates.append((at.start(), str(value)))
            break
    if not candidates:
        return None
    # The earliest; at one place the longest reading ("twenty one" over "twenty").
    first = min(pos for pos, _ in candidates)
    return max((v for pos, v in candidates if pos == first), key=len)


def when(text: str, kind: str, *, now: dt.datetime | None = None) -> str | None:
    """The first date or time in `text`, relative to `now`: `date` "2026-12-01",
    `time` "19:00" (only when a time was said), `datetime` "2026-12-01T19:00".

    Raises:
        ImportError: the optional `dateparser` package is not installed.
    """
    from dateparser.search import search_dates

    settings = {"RELATIVE_BASE": (now or dt.datetime.now()).replace(tzinfo=None),
                "PREFER_DATES_FROM": "future", "RETURN_AS_TIMEZONE_AWARE": False}
    found = search_dates(text, languages=["en"], settings=settings)
    if not found:
        return None
    said, moment = found[0]
    has_time = bool(re.search(r"\d:\d\d|\d\s*(am|pm)\b|\bnoon\b|\bmidnight\b", said, re.I))
    if kind == "date":
        return str(moment.date().isoformat())
    if kind == "time":
        return str(moment.strftime("%H:%M")) if has_time else None
    return str(moment.strftime("%Y-%m-%dT%H:%M"))

