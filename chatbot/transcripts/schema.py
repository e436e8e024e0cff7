"""The transcript file schema (version 1) as typed dataclasses.

    version: 1
    name: greeting and name
    seed: 0
    turns:
      - user: hello
        bot: {intent: greet}
      - user: my name is Ana
        bot: {contains: Ana}
        state: {slots: {name: Ana}}
        save: named
      - reset: true
      - restore: named
        user: what is my name?
        bot: {contains: Ana}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatbot.transcripts.matchers import Matcher

SCHEMA_VERSION = 1


def replay_session_id(name: str, seed: int) -> str:
    """The id of the session a transcript is replayed in.

    The dialogue manager seeds a turn's random choices (which response of an
    intent, sampling) from the session id, so a transcript's `name` and `seed`
    fix them. Recording a conversation under this id lets it replay exactly.
    """
    return f"transcript:{name}:{seed}"


@dataclass(frozen=True)
class TextSpan:
    """Where a turn's `text` expectation sits in its file, so `--update` can rewrite it.

    Attributes:
        start: offset of the scalar's first character in the file's text.
        end: offset just past its last character.
        raw: the file's text between them, to detect a file changed since loading.
        style: the scalar's YAML style: "" (plain), "'", '"', "|" or ">".
        expected: the expected text.
    """

    start: int
    end: int
    raw: str
    style: str
    expected: str


@dataclass(frozen=True)
class Turn:
    """One step of a transcript, done in this order: reset, restore, user, checks, save.

    Attributes:
        index: 1-based position in the transcript.
        line: the line where the turn starts.
        user: what the user says, or None for a turn that only resets, restores or saves.
        bot: the expectation on the reply.
        state: the expectation on the session after the turn.
        reset: start the conversation over first.
        restore: continue from the session an earlier turn saved under this name.
        restore_file: continue from a session file (`session.to_dict()` as JSON).
        save: remember the session after this turn under this name.
        text: the `text` expectation of `bot`, for `--update`.
    """

    index: int
    line: int
    user: str | None = None
    bot: Matcher | None = None
    state: Matcher | None = None
    reset: bool = False
    restore: str | None = None
    restore_file: Path | None = None
    save: str | None = None
    text: TextSpan | None = None


@dataclass(frozen=True)
class Transcript:
    """A recorded conversation and what each reply must satisfy.

    Attributes:
        path: the file.
        name: the transcript's name (default: the file's stem).
        seed: seeds the turn's random choices (see `replay_session_id`).
        turns: the steps, in order.
        decode: decoding settings; replay decodes greedily unless these say otherwise.
        description: free text.
    """

    path: Path
    name: str
    seed: int
    turns: tuple[Turn, ...]
    decode: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    @property
    def session_id(self) -> str:
        return replay_session_id(self.name, self.seed)
