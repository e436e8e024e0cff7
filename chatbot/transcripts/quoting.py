"""YAML scalars for text written into transcripts: plain when that reads back the same."""

from __future__ import annotations

import json
import re
import unicodedata

import yaml

from chatbot import yamlio
from chatbot.errors import YamlError

_PLAIN = re.compile(r"[A-Za-z0-9][\w .'!?-]*")
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def yaml_string(text: str) -> str:
    """`text` as a YAML scalar, safe in block and flow context.

    Plain (`Hi there!`) when every YAML reader reads it back as the same string;
    otherwise double-quoted, JSON style (`"yes"`, `"a: b"`, `"I'm, well"`).
    """
    if _PLAIN.fullmatch(text) and not text.endswith(" ") and _reads_back(text):
        return text
    quoted = json.dumps(text, ensure_ascii=False)
    return "".join(_escape(ch) if unicodedata.category(ch) in _INVISIBLE else ch for ch in quoted)


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _reads_back(text: str) -> bool:
    """Whether `text`, plain, reads back the same, alone and inside a flow mapping."""
    try:
        alone = yamlio.loads(text) == text and yaml.safe_load(text) == text
        return bool(alone and yaml.safe_load(f"{{k: {text}, j: 1}}") == {"k": text, "j": 1})
    except (YamlError, yaml.YAMLError):
        return False
