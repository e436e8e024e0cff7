"""Safe YAML reading: the safe loader only, bounded, duplicate keys rejected.

Every problem is a `YamlError` that prints as `file:line:col: message`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from chatbot.errors import YamlError

MAX_BYTES = 1_000_000
MAX_ALIASES = 100
MAX_DEPTH = 100
MAX_NODES = 1_000_000
_MERGE_TAG = "tag:yaml.org,2002:merge"
_BOOL_TAG = "tag:yaml.org,2002:bool"


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that counts aliases, bounds nesting and rejects duplicate keys."""

    # YAML 1.2 booleans: only true/false. A reply "yes" or "no" stays a string.
    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def __init__(self, stream: str, path: str) -> None:
        super().__init__(stream)
        self.path = path
        self.alias_count = 0
        self.depth = 0

    def compose_node(self, parent: Node | None, index: object) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            self.alias_count += 1
            if self.alias_count > MAX_ALIASES:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise _error(self.path, mark, f"more than {MAX_ALIASES} aliases")
        # Checked while composing, so a deep document fails before Python's recursion limit.
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise _error(self.path, mark, f"nesting deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)  # type: ignore[arg-type]
        finally:
            self.depth -= 1

    def fetch_flow_collection_start(self, token_class: Any) -> None:
        # The scanner's cost per token grows with the flow depth; stop it early.
        if self.flow_level >= MAX_DEPTH:
            raise _error(self.path, self.get_mark(), f"nesting deeper than {MAX_DEPTH} levels")
        super().fetch_flow_collection_start(token_class)

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:
                raise _error(self.path, key_node.start_mark, "unhashable mapping key") from None
            if duplicate:
                first = seen[key].start_mark
                raise _error(
                    self.path,
                    key_node.start_mark,
                    f"duplicate key {key!r} (first defined at line {first.line + 1})",
                )
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


_BoundedLoader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _error(path: str, mark: yaml.Mark | None, message: str) -> YamlError:
    if mark is None:
        return YamlError(path, 0, 0, message)
    return YamlError(path, mark.line + 1, mark.column + 1, message)


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [child for pair in node.value for child in pair]
    return []


def _check_expansion(root: Node, path: str) -> None:
    """Rejects recursive aliases, and documents whose aliases expand past the limits.

    Shared nodes are measured once, so the cost is linear in the text, not in the
    expansion (a "billion laughs" document is refused without being expanded).
    """
    sizes: dict[int, tuple[int, int]] = {}  # id -> (expanded node count, depth)
    open_nodes: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            open_nodes.discard(key)
            below = [sizes[id(child)] for child in _children(node)]
            count = 1 + sum(c for c, _ in below)
            depth = 1 + max((d for _, d in below), default=0)
            if count > MAX_NODES:
                message = f"aliases expand to more than {MAX_NODES} nodes"
                raise _error(path, node.start_mark, message)
            if depth > MAX_DEPTH:
                raise _error(path, node.start_mark, f"nesting deeper than {MAX_DEPTH} levels")
            sizes[key] = (count, depth)
        elif key in open_nodes:
            raise _error(path, node.start_mark, "recursive alias")
        elif key not in sizes:
            open_nodes.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in _children(node))


def loads(text: str, *, path: str = "<string>") -> Any:
    """Parses one YAML document safely.

    Raises:
        YamlError: on a syntax error, an unsafe tag, a duplicate key, too many
            aliases, too deep nesting or text over `MAX_BYTES`.
    """
    return _parse(text, path, construct=True)


def _parse(text: str, path: str, *, construct: bool) -> Any:
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise YamlError(path, 0, 0, f"file is larger than {MAX_BYTES} bytes")
    try:
        loader = _BoundedLoader(text, path)
    except yaml.reader.ReaderError as exc:
        raise _reader_error(path, text, exc) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, path)
        return loader.construct_document(node) if construct else node
    except YamlError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = exc.problem or exc.context or "invalid YAML"
        raise _error(path, mark, message) from None
    except yaml.reader.ReaderError as exc:
        raise _reader_error(path, text, exc) from None
    except yaml.YAMLError as exc:
        raise YamlError(path, 0, 0, str(exc)) from None
    except RecursionError:
        raise YamlError(path, 0, 0, f"nesting deeper than {MAX_DEPTH} levels") from None
    finally:
        loader.dispose()


def _reader_error(path: str, text: str, exc: yaml.reader.ReaderError) -> YamlError:
    line, col = _line_col(text, exc.position)
    return YamlError(path, line, col, f"unacceptable character #x{exc.character:04x}: {exc.reason}")


def _line_col(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of the character at `index`."""
    line_start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - line_start + 1


def load(path: str | Path) -> Any:
    """Reads and parses a YAML file safely; see `loads`."""
    return loads(_read(path), path=str(Path(path)))


def _read(path: str | Path) -> str:
    file = Path(path)
    try:
        size = file.stat().st_size
        if size > MAX_BYTES:
            raise YamlError(file, 0, 0, f"file is {size} bytes, over the {MAX_BYTES} limit")
        data = file.read_bytes()
    except OSError as exc:
        raise YamlError(file, 0, 0, f"cannot read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start].decode("utf-8")
        line, col = _line_col(before, len(before))
        raise YamlError(file, line, col, f"not UTF-8 text ({exc.reason})") from None
    return text


def compose(text: str, *, path: str = "<string>") -> Node | None:
    """Parses one YAML document into its node tree, for callers that report by position.

    Each node's `start_mark` locates it. The limits of `loads` apply; nothing is
    constructed, so duplicate keys are left to the caller (values via `scalar`).
    """
    node: Node | None = _parse(text, path, construct=False)
    return node


def compose_file(path: str | Path) -> Node | None:
    """Reads a YAML file and composes it; see `compose`."""
    return compose(_read(path), path=str(Path(path)))


def scalar(node: ScalarNode) -> Any:
    """The safe loader's value for a scalar node (a string, number, bool, null...).

    Raises:
        YamlError: when the scalar's tag has no safe constructor.
    """
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise _error("<yaml>", mark, exc.problem or "invalid value") from None
    finally:
        loader.dispose()
