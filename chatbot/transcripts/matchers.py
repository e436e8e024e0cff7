"""Expectations on a reply and on the session after it.

A matcher says whether an `Observation` (the reply plus the session's slots and
contexts after the turn) satisfies it, and describes the expectation and the
actual value for the report, side by side.
"""

from __future__ import annotations

import difflib
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

_SPACES = re.compile(r"\s+")
_END_PUNCTUATION = re.compile(r"[\s.!?…,;:]+$")
_WORD = re.compile(r"[\w']+")


def normalize(text: str) -> str:
    """`text` compared loosely: case folded, whitespace collapsed, end punctuation dropped."""
    collapsed = _SPACES.sub(" ", text).strip().casefold()
    return _END_PUNCTUATION.sub("", collapsed)


def words(text: str) -> list[str]:
    """The words of `text` (runs of letters, digits, `_` and `'`)."""
    return _WORD.findall(text)


@dataclass(frozen=True)
class Observation:
    """What a turn produced: the reply, and the session's state after it."""

    text: str
    source: str
    intent: str | None
    confidence: float
    slots: Mapping[str, str]
    contexts: Mapping[str, int]
    action: str | None = None
    form: str | None = None


@dataclass(frozen=True)
class Mismatch:
    """One expectation that did not hold: what was expected, what happened, and where."""

    expected: str
    actual: str
    line: int


class Matcher(ABC):
    """One expectation, at `line` of its transcript file."""

    line: int

    @abstractmethod
    def matches(self, seen: Observation) -> bool:
        """Whether the expectation holds."""

    @abstractmethod
    def describe(self) -> str:
        """The expectation, for the report's "expected" column."""

    def actual(self, seen: Observation) -> str:
        """What the expectation looked at, for the report's "actual" column."""
        return repr(seen.text)

    def mismatches(self, seen: Observation) -> list[Mismatch]:
        """[] when the expectation holds, else what failed."""
        if self.matches(seen):
            return []
        return [Mismatch(self.describe(), self.actual(seen), self.line)]


@dataclass(frozen=True)
class Text(Matcher):
    """The reply equals `expected` up to case, whitespace and end punctuation."""

    expected: str
    line: int = 0

    def matches(self, seen: Observation) -> bool:
        return normalize(seen.text) == normalize(self.expected)

    def describe(self) -> str:
        return f"text {self.expected!r}"


@dataclass(frozen=True)
class Contains(Matcher):
    """The reply contains `value` (case and whitespace ignored)."""

    value: str
    line: int = 0

    def matches(self, seen: Observation) -> bool:
        return _loose(self.value) in _loose(seen.text)

    def describe(self) -> str:
        return f"contains {self.value!r}"


@dataclass(frozen=True)
class Regex(Matcher):
    """`re.search(pattern, reply)` finds a match."""

    pattern: re.Pattern[str]
    line: int = 0

    def matches(self, seen: Observation) -> bool:
        return self.pattern.search(seen.text) is not None

    def describe(self) -> str:
        return f"regex {self.pattern.pattern!r}"


@dataclass(frozen=True)
class OneOf(Matcher):
    """The reply equals one of `options`, compared as `Text` does."""

    options: tuple[str, ...]
    line: int = 0

    def matches(self, seen: Observation) -> bool:
        return normalize(seen.text) in {normalize(option) for option in self.options}

    def describe(self) -> str:
        return "one of " + ", ".join(repr(option) for option in self.options)


@dataclass(frozen=True)
class Similar(Matcher):
    """The reply's similarity ratio to `to` (difflib, on normalised text) is at least `minimum`."""

    to: str
    minimum: float
    line: int = 0

    def ratio(self, text: str) -> float:
        return difflib.SequenceMatcher(None, normalize(self.to), normalize(text)).ratio()

    def matches(self, seen: Observation) -> bool:
        return self.ratio(seen.text) >= self.minimum

    def describe(self) -> str:
        return f"similar to {self.to!r} (ratio >= {self.minimum:g})"

    def actual(self, seen: Observation) -> str:
        return f"ratio {self.ratio(seen.text):.2f}: {seen.text!r}"


@dataclass(frozen=True)
class WordCount(Matcher):
    """The reply has at least `minimum` and at most `maximum` words (None: no bound)."""

    minimum: int | None = None
    maximum: int | None = None
    line: int = 0

    def matches(self, seen: Observation) -> bool:
        count = len(words(seen.text))
        low = self.minimum is None or count >= self.minimum
        return low and (self.maximum is None or count <= self.maximum)

    def describe(self) -> str:
        if self.maximum is None:
            return f"at least {_words(self.minimum or 0)}"
        if self.minimum is None:
            return f"at most {_words(self.maximum)}"
        return f"{self.minimum} to {_words(self.maximum)}"

    def actual(self, seen: Observation) -> str:
        return f"{_words(len(words(seen.text)))}: {seen.text!r}"


@dataclass(frozen=True)
class IntentIs(Matcher):
    """The reply came from intent `name` (None: from no intent)."""

    name: str | None
    line: int = 0

    def matches(self, seen: Observation) -> bool:
        return seen.intent == self.name

    def describe(self) -> str:
        return "no intent" if self.name is None else f"intent {self.name}"

    def actual(self, seen: Observation) -> str:
        if seen.intent is None:
            return f"no intent (source {seen.source})"
        return f"intent {seen.intent}"


@dataclass(frozen=True)
class _NamedIs(Matcher):
    """The observation's `FIELD` is `name` (None: unset); `LABEL` says it."""

    FIELD: ClassVar[str]
    NONE: ClassVar[str]
    LABEL: ClassVar[str]
    name: str | None
    line: int = 0

    def matches(self, seen: Observation) -> bool:
        return bool(getattr(seen, self.FIELD) == self.name)

    def describe(self) -> str:
        return self._say(self.name)

    def actual(self, seen: Observation) -> str:
        return self._say(getattr(seen, self.FIELD))

    def _say(self, value: str | None) -> str:
        return self.NONE if value is None else self.LABEL.format(value)


@dataclass(frozen=True)
class ActionIs(_NamedIs):
    """The Python action `name` answered (None: no action did)."""

    FIELD = "action"
    NONE = "no action"
    LABEL = "action {}"


@dataclass(frozen=True)
class FormIs(_NamedIs):
    """Form `name` is active after the turn (None: no form is)."""

    FIELD = "form"
    NONE = "no active form"
    LABEL = "form {} active"


@dataclass(frozen=True)
class SourceIs(Matcher):
    """The rule kind that answered: `intent`, `neural`, `fallback` or `form`."""

    source: str
    line: int = 0

    def matches(self, seen: Observation) -> bool:
        return seen.source == self.source

    def describe(self) -> str:
        return f"source {self.source}"

    def actual(self, seen: Observation) -> str:
        return f"source {seen.source}"


@dataclass(frozen=True)
class Confidence(Matcher):
    """The reply's confidence lies within [`gte`, `lte`] (None: no bound)."""

    gte: float | None = None
    lte: float | None = None
    line: int = 0

    def matches(self, seen: Observation) -> bool:
        low = self.gte is None or seen.confidence >= self.gte
        return low and (self.lte is None or seen.confidence <= self.lte)

    def describe(self) -> str:
        bounds = []
        if self.gte is not None:
            bounds.append(f">= {self.gte:g}")
        if self.lte is not None:
            bounds.append(f"<= {self.lte:g}")
        return "confidence " + " and ".join(bounds)

    def actual(self, seen: Observation) -> str:
        return f"confidence {seen.confidence:.3f}"


@dataclass(frozen=True)
class Slot(Matcher):
    """Slot `name` holds `value` after the turn (None: the slot is unset)."""

    name: str
    value: str | None
    line: int = 0

    def matches(self, seen: Observation) -> bool:
        return seen.slots.get(self.name) == self.value

    def describe(self) -> str:
        return _slot(self.name, self.value)

    def actual(self, seen: Observation) -> str:
        return _slot(self.name, seen.slots.get(self.name))


@dataclass(frozen=True)
class Context(Matcher):
    """Context `name` is active (`active`), with exactly `turns` turns left when given."""

    name: str
    active: bool = True
    turns: int | None = None
    line: int = 0

    def matches(self, seen: Observation) -> bool:
        left = seen.contexts.get(self.name)
        if not self.active:
            return left is None
        return left is not None and (self.turns is None or left == self.turns)

    def describe(self) -> str:
        return _context(self.name, self.active, self.turns)

    def actual(self, seen: Observation) -> str:
        left = seen.contexts.get(self.name)
        return _context(self.name, left is not None, left)


@dataclass(frozen=True)
class Not(Matcher):
    """The inner expectation does not hold."""

    inner: Matcher
    line: int = 0

    def matches(self, seen: Observation) -> bool:
        return not self.inner.matches(seen)

    def describe(self) -> str:
        return f"not {self.inner.describe()}"

    def actual(self, seen: Observation) -> str:
        return self.inner.actual(seen)


@dataclass(frozen=True)
class All(Matcher):
    """Every inner expectation holds; each failing one is reported on its own."""

    items: tuple[Matcher, ...]
    line: int = 0

    def matches(self, seen: Observation) -> bool:
        return all(item.matches(seen) for item in self.items)

    def describe(self) -> str:
        return "all of: " + "; ".join(item.describe() for item in self.items)

    def mismatches(self, seen: Observation) -> list[Mismatch]:
        return [m for item in self.items for m in item.mismatches(seen)]


@dataclass(frozen=True)
class AnyOf(Matcher):
    """At least one inner expectation holds."""

    items: tuple[Matcher, ...]
    line: int = 0

    def matches(self, seen: Observation) -> bool:
        return any(item.matches(seen) for item in self.items)

    def describe(self) -> str:
        return "any of: " + "; ".join(item.describe() for item in self.items)

    def actual(self, seen: Observation) -> str:
        found = dict.fromkeys(item.actual(seen) for item in self.items)
        return "; ".join(found)


def _loose(text: str) -> str:
    return _SPACES.sub(" ", text).strip().casefold()


def _words(count: int) -> str:
    return f"{count} word{'s' * (count != 1)}"


def _slot(name: str, value: str | None) -> str:
    return f"slot {name} unset" if value is None else f"slot {name} = {value!r}"


def _context(name: str, active: bool, turns: int | None) -> str:
    if not active:
        return f"context {name} inactive"
    if turns is None:
        return f"context {name} active"
    return f"context {name} active, {turns} turn{'s' * (turns != 1)} left"
