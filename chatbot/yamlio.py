"""Safe YAML reading: the safe loader only, bounded, duplicate keys rejected.

Every problem is a `YamlError` that prints as `file:line:col: message`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from chatbot.errors import YamlError

MAX_BYTES = 1_000_000
MAX_ALIASES = 100
MAX_DEPTH = 100


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that counts aliases and rejects duplicate keys."""

    def __init__(self, stream: str, path: str) -> None:
        super().__init__(stream)
        self.path = path
        self.alias_count = 0

    def compose_node(self, parent: Node | None, index: object) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            self.alias_count += 1
            if self.alias_count > MAX_ALIASES:
                mark = self.peek_event().start_mark
                raise _error(self.path, mark, f"more than {MAX_ALIASES} aliases")
        return super().compose_node(parent, index)  # type: ignore[no-untyped-call,no-any-return]

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, Node] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
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


def _error(path: str, mark: yaml.Mark | None, message: str) -> YamlError:
    if mark is None:
        return YamlError(path, 0, 0, message)
    return YamlError(path, mark.line + 1, mark.column + 1, message)


def _check_depth(node: Node, path: str) -> None:
    stack: list[tuple[Node, int]] = [(node, 1)]
    seen: set[int] = set()
    while stack:
        current, depth = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if depth > MAX_DEPTH:
            raise _error(path, current.start_mark, f"nesting deeper than {MAX_DEPTH} levels")
        if isinstance(current, SequenceNode):
            stack.extend((child, depth + 1) for child in current.value)
        elif isinstance(current, MappingNode):
            for key, value in current.value:
                stack.append((key, depth + 1))
                stack.append((value, depth + 1))


def loads(text: str, *, path: str = "<string>") -> Any:
    """Parses one YAML document safely.

    Raises:
        YamlError: on a syntax error, an unsafe tag, a duplicate key, too many
            aliases, too deep nesting or text over `MAX_BYTES`.
    """
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise YamlError(path, 0, 0, f"file is larger than {MAX_BYTES} bytes")
    loader = _BoundedLoader(text, path)
    try:
        node = loader.get_single_node()  # type: ignore[no-untyped-call]
        if node is None:
            return None
        _check_depth(node, path)
        return loader.construct_document(node)  # type: ignore[no-untyped-call]
    except YamlError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = exc.problem or exc.context or "invalid YAML"
        raise _error(path, mark, message) from None
    except yaml.YAMLError as exc:
        raise YamlError(path, 0, 0, str(exc)) from None
    except RecursionError:
        raise YamlError(path, 0, 0, f"nesting deeper than {MAX_DEPTH} levels") from None
    finally:
        loader.dispose()  # type: ignore[no-untyped-call]


def load(path: str | Path) -> Any:
    """Reads and parses a YAML file safely; see `loads`."""
    file = Path(path)
    try:
        size = file.stat().st_size
        if size > MAX_BYTES:
            raise YamlError(file, 0, 0, f"file is {size} bytes, over the {MAX_BYTES} limit")
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise YamlError(file, 0, 0, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise YamlError(file, 0, 0, f"cannot read: {exc.strerror}") from None
    return loads(text, path=str(file))
