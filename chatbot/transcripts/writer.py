"""Recording: a live conversation written as a transcript that replays it.

    writer = TranscriptWriter("transcripts/pizza.yml", name="pizza", seed=0)
    session = bot.session(writer.session_id)     # a fresh session, as replay uses
    writer.add("hello", session.send("hello"))
    writer.close()

Each turn pins what happened: the exact text, the source and the intent, and
the slots the turn changed. Every `add` rewrites the whole file atomically, so
a crash loses nothing already said. For the recording to replay exactly, hold
the conversation in a new session under `writer.session_id` with greedy
decoding (or pass the decoding settings used as `decode`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chatbot import fsutil
from chatbot.dialogue import Reply
from chatbot.transcripts.quoting import yaml_string
from chatbot.transcripts.schema import SCHEMA_VERSION, replay_session_id


def record_turn(user: str, reply: Reply) -> dict[str, Any]:
    """The turn that pins `reply`: `{"user": ..., "bot": {"text", "source", "intent"}}`."""
    bot: dict[str, Any] = {"text": reply.text, "source": reply.source}
    if reply.intent is not None:
        bot["intent"] = reply.intent
    return {"user": user, "bot": bot}


class TranscriptWriter:
    """Writes a conversation to `path` as a version 1 transcript, turn by turn.

    Args:
        path: the transcript file to (re)write.
        name: the transcript's name.
        seed: the transcript's seed (with `name`, it fixes the replay's random choices).
        decode: decoding settings to record, when they are not greedy.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        name: str,
        seed: int = 0,
        decode: Mapping[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self.name = name
        self.seed = seed
        self.decode = dict(decode or {})
        self.turns: list[str] = []
        self.closed = False
        self._slots: dict[str, str] = {}

    @property
    def session_id(self) -> str:
        """The session id replay uses for this transcript; record in a new session with it."""
        return replay_session_id(self.name, self.seed)

    def add(self, user: str, reply: Reply) -> None:
        """Appends a turn pinning `reply` and rewrites the file."""
        turn = record_turn(user, reply)
        lines = [f"  - user: {yaml_string(user)}", f"    bot: {_flow(turn['bot'])}"]
        slots = dict(reply.trace.slots)
        changed = {k: slots.get(k) for k in sorted(set(slots) | set(self._slots))
                   if slots.get(k) != self._slots.get(k)}
        if changed:
            lines.append(f"    state: {{slots: {_flow(changed)}}}")
        self._slots = slots
        self._append("\n".join(lines))

    def reset(self) -> None:
        """Appends a turn that starts the conversation over, and rewrites the file."""
        self._slots = {}
        self._append("  - reset: true")

    def close(self) -> None:
        """Writes the file a last time (if any turn was recorded); later adds are errors."""
        if self.turns and not self.closed:
            self._write()
        self.closed = True

    def text(self) -> str:
        """The transcript file's text."""
        head = [
            "# Recorded with chatbot: each reply is pinned exactly; loosen what may vary.",
            f"version: {SCHEMA_VERSION}",
            f"name: {yaml_string(self.name)}",
            f"seed: {self.seed}",
        ]
        if self.decode:
            head.append(f"decode: {_flow(self.decode)}")
        return "\n".join([*head, "turns:", *self.turns]) + "\n"

    def _append(self, turn: str) -> None:
        if self.closed:
            raise ValueError(f"{self.path}: the transcript writer is closed")
        self.turns.append(turn)
        self._write()

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fsutil.write_text(self.path, self.text())

    def __enter__(self) -> TranscriptWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _flow(mapping: Mapping[str, Any]) -> str:
    """A one-line YAML flow mapping."""
    items = ", ".join(f"{key}: {_scalar(value)}" for key, value in mapping.items())
    return "{" + items + "}"


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return yaml_string(str(value))
