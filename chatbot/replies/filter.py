"""The reply filter: words, phrases and patterns a bot must never say.

Text is normalised (NFKC, then casefold, zero-width characters dropped) before
matching, so fullwidth and odd-case spellings are caught. Words and phrases
match whole words only ("ass" does not block "class"), and the words of a phrase
match across any run of spaces or punctuation ("kill... you"). Nothing else is
guessed: inflections, spaced-out letters and repeated letters are not, so list
each form to block. Patterns are regexes searched case-insensitively in the
normalised text.
"""

from __future__ import annotations

import difflib
import functools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from chatbot import yamlio
from chatbot.errors import ConfigError, YamlError

SCHEMA_VERSION = 1
FILE_KEYS = ("version", "words", "patterns")
PATTERN_KEYS = ("name", "regex")
DEFAULT_PATH = Path(__file__).with_name("blocked.yml")
_TOKEN = re.compile(r"\w+")
_INVISIBLE = re.compile("[\u00ad\u200b-\u200f\u2060\ufeff]")

Entries = dict[str, tuple[Node, Node]]
"""A mapping's entries: key -> (key node, value node)."""


def normalize(text: str) -> str:
    """The form of `text` that words and patterns are matched against."""
    return _INVISIBLE.sub("", unicodedata.normalize("NFKC", text).casefold())


def word_key(word: str) -> str:
    """A blocked word or phrase as its normalised words joined by single spaces."""
    return " ".join(_TOKEN.findall(normalize(word)))


CACHE_SIZE = 100_000


@dataclass(frozen=True)
class ReplyFilter:
    """Words, phrases and regexes that a reply must not contain.

    `pattern_names` name `patterns` one for one in the reasons `blocked` gives;
    when it is empty, a pattern is named by its regex.
    """

    words: tuple[str, ...] = ()
    patterns: tuple[re.Pattern[str], ...] = ()
    pattern_names: tuple[str, ...] = ()
    _by_key: dict[str, str] = field(init=False, repr=False, compare=False)
    _alternation: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.pattern_names and len(self.pattern_names) != len(self.patterns):
            message = f"{len(self.pattern_names)} pattern names for {len(self.patterns)} patterns"
            raise ConfigError(message)
        by_key: dict[str, str] = {}
        for word in self.words:
            key = word_key(word)
            if not key:
                raise ConfigError(f"blocked word {word!r} has no letters or digits to match")
            by_key.setdefault(key, word)
        object.__setattr__(self, "_by_key", by_key)
        object.__setattr__(self, "_alternation", _alternation(by_key))
        # Retrieved replies recur from turn to turn: each text is checked once.
        object.__setattr__(self, "blocked", functools.lru_cache(maxsize=CACHE_SIZE)(self._blocked))

    def blocked(self, text: str) -> str | None:
        """The reason a text may not be said (e.g. "word 'damn'" or "pattern 'url'"), or None."""
        return self._blocked(text)  # replaced per instance by a cached copy

    def _blocked(self, text: str) -> str | None:
        normal = normalize(text)
        if self._alternation is not None:
            found = self._alternation.search(normal)
            if found is not None:
                return f"word {self._by_key[' '.join(_TOKEN.findall(found.group()))]!r}"
        for index, pattern in enumerate(self.patterns):
            if pattern.search(normal):
                name = self.pattern_names[index] if self.pattern_names else pattern.pattern
                return f"pattern {name!r}"
        return None

    @classmethod
    def default(cls) -> ReplyFilter:
        """The packaged list, `blocked.yml` next to this module (parsed once)."""
        return _default()

    @classmethod
    def load(cls, path: str | Path) -> ReplyFilter:
        """Reads a blocked-list file (schema version 1).

        Raises:
            YamlError: at the first problem, as `file:line:col: message`.
        """
        return _read(path)

    @classmethod
    def empty(cls) -> ReplyFilter:
        """A filter that blocks nothing."""
        return cls()


def _alternation(by_key: dict[str, str]) -> re.Pattern[str] | None:
    """One regex for every word, longest first, each word bounded by `\\b`."""
    if not by_key:
        return None
    keys = sorted(by_key, key=lambda key: (-len(key), key))
    choices = (r"\W+".join(re.escape(token) for token in key.split(" ")) for key in keys)
    return re.compile(r"\b(?:" + "|".join(choices) + r")\b")


@functools.cache
def _default() -> ReplyFilter:
    return _read(DEFAULT_PATH)


def _read(path: str | Path) -> ReplyFilter:
    source = str(Path(path))
    root = yamlio.compose_file(path)
    if root is None:
        raise YamlError(source, 0, 0, "file is empty (expected 'version: 1')")
    top = _mapping(source, root, what="the reply filter", keys=FILE_KEYS, required=("version",))
    _read_version(source, top["version"][1])
    words = _read_words(source, top["words"][1]) if "words" in top else ()
    names: tuple[str, ...] = ()
    patterns: tuple[re.Pattern[str], ...] = ()
    if "patterns" in top:
        names, patterns = _read_patterns(source, top["patterns"][1])
    return ReplyFilter(words, patterns, names)


def _read_version(source: str, node: Node) -> None:
    version = _value(source, node)
    if isinstance(version, bool) or not isinstance(version, int):
        raise _error(source, node, f"'version' must be an integer, not {_kind(source, node)}")
    if version != SCHEMA_VERSION:
        message = f"unsupported version {version} (this chatbot reads version {SCHEMA_VERSION})"
        raise _error(source, node, message)


def _read_words(source: str, node: Node) -> tuple[str, ...]:
    words: list[str] = []
    seen: dict[str, Node] = {}
    for item in _sequence(source, node, what="'words'"):
        word = _string(source, item, what="each of 'words'")
        key = word_key(word)
        if not key:
            raise _error(source, item, f"word {word!r} has no letters or digits to match")
        if key in seen:
            first = _where(source, seen[key])
            raise _error(source, item, f"duplicate word {word!r} (first at {first})")
        seen[key] = item
        words.append(word)
    return tuple(words)


def _read_patterns(
    source: str, node: Node
) -> tuple[tuple[str, ...], tuple[re.Pattern[str], ...]]:
    names: dict[str, Node] = {}
    patterns: list[re.Pattern[str]] = []
    for item in _sequence(source, node, what="'patterns'"):
        entries = _mapping(source, item, what="a pattern", keys=PATTERN_KEYS, required=PATTERN_KEYS)
        name_node = entries["name"][1]
        name = _string(source, name_node, what="'name'")
        if name in names:
            first = _where(source, names[name])
            raise _error(source, name_node, f"duplicate pattern name {name!r} (first at {first})")
        names[name] = name_node
        patterns.append(_compile(source, entries["regex"][1]))
    return tuple(names), tuple(patterns)


def _compile(source: str, node: Node) -> re.Pattern[str]:
    text = _string(source, node, what="'regex'")
    try:
        pattern = re.compile(text, re.IGNORECASE)
    except re.error as exc:
        where = f" at position {exc.pos}" if exc.pos is not None else ""
        raise _error(source, node, f"invalid regex {text!r}: {exc.msg}{where}") from None
    if pattern.search(""):
        raise _error(source, node, f"regex {text!r} matches empty text, so it blocks every reply")
    return pattern


def _mapping(
    source: str, node: Node, *, what: str, keys: Sequence[str], required: Sequence[str]
) -> Entries:
    if not isinstance(node, MappingNode):
        raise _error(source, node, f"{what} must be a mapping, not {_kind(source, node)}")
    entries: Entries = {}
    for key_node, value_node in node.value:
        key = _string(source, key_node, what=f"a key of {what}")
        if key in entries:
            first = _where(source, entries[key][0])
            raise _error(source, key_node, f"duplicate key {key!r} in {what} (first at {first})")
        if key not in keys:
            raise _error(source, key_node, _unknown(key, keys))
        entries[key] = (key_node, value_node)
    for key in required:
        if key not in entries:
            raise _error(source, node, f"{what} is missing the key {key!r}")
    return entries


def _sequence(source: str, node: Node, *, what: str) -> list[Node]:
    if not isinstance(node, SequenceNode):
        raise _error(source, node, f"{what} must be a list, not {_kind(source, node)}")
    return list(node.value)


def _string(source: str, node: Node, *, what: str) -> str:
    value = _value(source, node)
    if not isinstance(value, str):
        raise _error(source, node, f"{what} must be a string, not {_kind(source, node)}")
    if not value.strip():
        raise _error(source, node, f"{what} must not be empty")
    return value


def _value(source: str, node: Node) -> Any:
    """A scalar's value, or None for a mapping or list."""
    if not isinstance(node, ScalarNode):
        return None
    try:
        return yamlio.scalar(node)
    except YamlError as exc:
        raise _error(source, node, exc.message) from None


def _kind(source: str, node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    value = _value(source, node)
    if value is None:
        return "null"
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    return names.get(type(value), f"a {type(value).__name__}")


def _unknown(key: str, keys: Sequence[str]) -> str:
    hint = difflib.get_close_matches(key, keys, n=1, cutoff=0.6)
    if hint:
        return f"unknown key {key!r} (did you mean {hint[0]!r}?)"
    return f"unknown key {key!r} (expected one of: {', '.join(keys)})"


def _where(source: str, node: Node) -> str:
    return f"{source}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"


def _error(source: str, node: Node, message: str) -> YamlError:
    mark = node.start_mark
    return YamlError(source, mark.line + 1, mark.column + 1, message)
