"""Typed reads of a composed YAML node tree that collect located problems.

A validator asks for a mapping, a string, a list of strings...; a value of the
wrong shape adds a `file:line:col: message` problem and reads as None, so one
pass reports every problem in a file.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from chatbot import yamlio
from chatbot.errors import LocatedError, YamlError

_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_TYPE_NAMES = {
    "tag:yaml.org,2002:str": "a string",
    "tag:yaml.org,2002:int": "an integer",
    "tag:yaml.org,2002:float": "a number",
    "tag:yaml.org,2002:bool": "a boolean",
    "tag:yaml.org,2002:null": "null",
    "tag:yaml.org,2002:map": "a mapping",
    "tag:yaml.org,2002:seq": "a list",
}


class Reader:
    """Reads values out of one file's nodes, recording problems in `problems`."""

    def __init__(self, path: str, problems: list[LocatedError]) -> None:
        self.path = path
        self.problems = problems

    def error(self, node: Node, message: str) -> None:
        mark = node.start_mark
        self.problems.append(LocatedError(self.path, mark.line + 1, mark.column + 1, message))

    def where(self, node: Node) -> str:
        """`file:line:col` of a node, for messages that point elsewhere."""
        return f"{self.path}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"

    def mapping(
        self,
        node: Node,
        *,
        what: str,
        keys: Sequence[str] | None = None,
        required: Sequence[str] = (),
    ) -> Entries | None:
        """A mapping's entries as `key -> (key node, value node)`.

        Reports a non-mapping, non-string or duplicate keys, keys outside `keys`
        (with a suggestion) and missing `required` keys.
        """
        if not isinstance(node, MappingNode):
            self.error(node, f"{what} must be a mapping, not {_type_name(node)}")
            return None
        if node.tag != _MAP:
            self.error(node, f"unsupported tag {node.tag!r} on {what}")
            return None
        entries: Entries = {}
        for key_node, value_node in node.value:
            key = self.string(key_node, what=f"a key of {what}")
            if key is None:
                continue
            if key in entries:
                first = self.where(entries[key][0])
                self.error(key_node, f"duplicate key {key!r} in {what} (first at {first})")
                continue
            entries[key] = (key_node, value_node)
            if keys is not None and key not in keys:
                self.error(key_node, _unknown(key, keys))
        for key in required:
            if key not in entries:
                self.error(node, f"{what} is missing the key {key!r}")
        return entries

    def string(self, node: Node, *, what: str, empty: bool = False) -> str | None:
        """A string scalar; numbers and booleans are not silently turned into text."""
        value = self._scalar(node)
        if not isinstance(value, str):
            self.error(node, f"{what} must be a string, not {_type_name(node)}")
            return None
        if not empty and not value.strip():
            self.error(node, f"{what} must not be empty")
            return None
        return value

    def strings(self, node: Node, *, what: str) -> list[tuple[str, Node]]:
        """A list of strings (a single string reads as a list of one)."""
        items = self.sequence(node, what=what, single=True)
        found = []
        for item in items:
            value = self.string(item, what=f"each of {what}")
            if value is not None:
                found.append((value, item))
        return found

    def sequence(self, node: Node, *, what: str, single: bool = False) -> list[Node]:
        """A list's items; with `single`, a lone scalar counts as a list of one."""
        if isinstance(node, SequenceNode) and node.tag == _SEQ:
            return list(node.value)
        if isinstance(node, SequenceNode):
            self.error(node, f"unsupported tag {node.tag!r} on {what}")
            return []
        if single and isinstance(node, ScalarNode) and node.tag != "tag:yaml.org,2002:null":
            return [node]
        self.error(node, f"{what} must be a list, not {_type_name(node)}")
        return []

    def boolean(self, node: Node, *, what: str) -> bool | None:
        value = self._scalar(node)
        if not isinstance(value, bool):
            hint = ""
            if isinstance(value, str) and value.strip().lower() in YAML11_BOOLEANS:
                hint = f" (YAML 1.1's {value.strip()!r} is text here: use true or false)"
            self.error(node, f"{what} must be true or false, not {_type_name(node)}{hint}")
            return None
        return value

    def integer(self, node: Node, *, what: str, minimum: int | None = None) -> int | None:
        value = self._scalar(node)
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(node, f"{what} must be an integer, not {_type_name(node)}")
            return None
        if minimum is not None and value < minimum:
            self.error(node, f"{what} must be at least {minimum} (got {value})")
            return None
        return value

    def number(
        self, node: Node, *, what: str, low: float | None = None, high: float | None = None
    ) -> float | None:
        """An int or float, optionally within [low, high]."""
        value = self._scalar(node)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error(node, f"{what} must be a number, not {_type_name(node)}")
            return None
        if (low is not None and value < low) or (high is not None and value > high):
            self.error(node, f"{what} must be between {low} and {high} (got {value})")
            return None
        return float(value)

    def value(self, node: Node) -> Any:
        """A scalar's value, or None for a collection."""
        return self._scalar(node)

    def _scalar(self, node: Node) -> Any:
        if not isinstance(node, ScalarNode):
            return None
        try:
            return yamlio.scalar(node)
        except YamlError as exc:
            self.error(node, exc.message)
            return None


Entries = dict[str, tuple[Node, Node]]
"""A mapping's entries: key -> (key node, value node)."""


def read_file(
    path: Path, problems: list[LocatedError], *, what: str, keys: Sequence[str]
) -> tuple[Reader, Entries | None]:
    """Composes a YAML file that must be a mapping with a `version:` key.

    Returns its reader and top-level entries (None when the file is unusable;
    the problem is recorded).
    """
    reader = Reader(str(path), problems)
    try:
        root = yamlio.compose_file(path)
    except YamlError as exc:
        problems.append(exc)
        return reader, None
    if root is None:
        problems.append(LocatedError(path, 0, 0, "file is empty (expected 'version: 1')"))
        return reader, None
    return reader, reader.mapping(root, what=what, keys=keys, required=("version",))


YAML11_BOOLEANS = frozenset({"yes", "no", "on", "off", "y", "n"})
"""Words YAML 1.1 read as booleans; these files follow YAML 1.2, where only
true and false are."""


def _type_name(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return _TYPE_NAMES.get(node.tag, f"a {node.tag.rsplit(':', 1)[-1]}")


def _unknown(key: str, keys: Sequence[str]) -> str:
    hint = difflib.get_close_matches(key, keys, n=1, cutoff=0.6)
    if hint:
        return f"unknown key {key!r} (did you mean {hint[0]!r}?)"
    return f"unknown key {key!r} (expected one of: {', '.join(keys)})"
