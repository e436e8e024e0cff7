"""JSON read with limits: every file and request body the project parses goes through `loads`.

Python's `json` accepts any nesting (deep input raises `RecursionError`
wherever it is walked) and numbers of any length (a 5,000-digit integer
raises `ValueError` on conversion, and a huge one takes quadratic time).
`loads` bounds both, and NaN and Infinity are refused, so a bad file or body
is one `JsonError` that says what and where, never a traceback.
"""

from __future__ import annotations

import json
import re
from typing import Any

from chatbot.errors import ChatbotError

MAX_DEPTH = 64
MAX_DIGITS = 64
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


class JsonError(ChatbotError, ValueError):
    """Text that is not JSON, or JSON past a limit. `line` and `col` are 1-based."""

    def __init__(self, message: str, line: int = 1, col: int = 1) -> None:
        super().__init__(message)
        self.message, self.line, self.col = message, line, col


def loads(raw: str | bytes, *, max_depth: int | None = MAX_DEPTH) -> Any:
    """The JSON value of `raw`.

    Raises:
        JsonError: not UTF-8, not JSON, nested deeper than `max_depth`, a number
            longer than `MAX_DIGITS` characters, or NaN/Infinity. With
            `max_depth=None` (large files whose readers check every value's
            type) depth is bounded by the interpreter's recursion limit only.
    """
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JsonError(f"not UTF-8 (byte {exc.start})") from None
    if max_depth is not None:
        _check_depth(raw, max_depth)
    try:
        return json.loads(raw, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise JsonError(f"invalid JSON: {exc.msg}", exc.lineno, exc.colno) from None
    except RecursionError:
        raise JsonError("nested too deeply") from None


def _check_depth(text: str, max_depth: int) -> None:
    if text.count("[") + text.count("{") <= max_depth:
        return
    depth = 0
    for bracket in _BRACKETS.findall(_STRING.sub('""', text)):
        depth += 1 if bracket in "[{" else -1
        if depth > max_depth:
            raise JsonError(f"nested more than {max_depth} levels deep")


def _int(text: str) -> int:
    if len(text) > MAX_DIGITS:
        raise JsonError(f"a number of {len(text)} digits (at most {MAX_DIGITS})")
    return int(text)


def _float(text: str) -> float:
    if len(text) > MAX_DIGITS:
        raise JsonError(f"a number of {len(text)} characters (at most {MAX_DIGITS})")
    return float(text)


def _constant(text: str) -> float:
    raise JsonError(f"{text} is not a JSON number")
