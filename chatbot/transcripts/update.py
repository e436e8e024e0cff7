"""`--update`: rewrite the `text` expectations replies no longer match, for review in a diff.

Only the expected text's own characters change; comments, layout and every
other line of the file stay as they were.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from chatbot import fsutil
from chatbot.errors import ConfigError
from chatbot.transcripts.matchers import normalize
from chatbot.transcripts.quoting import yaml_string
from chatbot.transcripts.results import ReplayReport
from chatbot.transcripts.schema import TextSpan


@dataclass(frozen=True)
class TextUpdate:
    """One rewritten expectation: the file, the turn's line, the old and the new text."""

    path: Path
    line: int
    old: str
    new: str


def update_texts(report: ReplayReport) -> list[TextUpdate]:
    """Rewrites, in place, every `text` expectation whose reply differed; returns them.

    Raises:
        ConfigError: a file changed since it was read (nothing in it is rewritten).
    """
    edits: dict[Path, list[tuple[TextSpan, TextUpdate]]] = {}
    for result in report.results:
        turns = result.transcript.turns
        for played in result.turns:
            span = turns[played.index - 1].text
            if span is None or played.reply is None:
                continue
            new = played.reply.text
            changes = edits.setdefault(result.transcript.path, [])
            # An expectation shared through a YAML alias is rewritten once, to the first reply.
            if normalize(new) != normalize(span.expected) and span not in {s for s, _ in changes}:
                update = TextUpdate(result.transcript.path, played.line, span.expected, new)
                changes.append((span, update))
    for path, changes in edits.items():
        if changes:
            _rewrite(path, [(span, update.new) for span, update in changes])
    return [update for changes in edits.values() for _, update in changes]


def _rewrite(path: Path, changes: list[tuple[TextSpan, str]]) -> None:
    text = path.read_bytes().decode("utf-8")
    for span, _ in changes:
        if text[span.start : span.end] != span.raw:
            raise ConfigError(f"{path}: changed since it was read; not updated")
    for span, new in sorted(changes, key=lambda change: change[0].start, reverse=True):
        text = text[: span.start] + _replacement(span, new) + text[span.end :]
    fsutil.write_text(path, text)


def _replacement(span: TextSpan, new: str) -> str:
    """`new` as a scalar in the old one's style where that style can hold it."""
    if span.style == "'" and "\n" not in new:
        return "'" + new.replace("'", "''") + "'"
    if span.style == '"':
        return yaml_string(new) if yaml_string(new).startswith('"') else json.dumps(new)
    if span.style in ("|", ">"):
        trailing = span.raw[len(span.raw.rstrip()) :]
        return yaml_string(new) + trailing
    return yaml_string(new)
