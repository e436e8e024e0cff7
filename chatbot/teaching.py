"""Corrections taught from the chat, kept in the bot directory.

`/teach REPLY` (or `bot.teach(session, reply=...)`) says what the bot should have
answered to the last user turn; `/teach intent NAME` that the turn meant intent
NAME. Each teaching is recorded in `taught.json` beside `bot.yml` (the log, in
order, so the last one can be taken back) and rendered into
`intents/taught.yml`: a taught reply is an override intent `taught_N` whose
example is the utterance, a taught intent adds the utterance to that intent's
examples (the file's top-level `examples:`). The author's own files are never
rewritten; every file is written atomically. Each teaching is also a transcript
under `transcripts/taught/`, so the correction becomes a regression test.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from chatbot import fsutil, jsonio
from chatbot.botdir import INTENTS_DIR
from chatbot.errors import ConfigError

LOG_FILE = "taught.json"
TAUGHT_FILE = "taught.yml"
TRANSCRIPTS = Path("transcripts") / "taught"
_HEADER = ("# Written by chatbot's /teach (Chatbot.teach) from taught.json; do not edit:\n"
           "# /untaught takes the last teaching back. Your own intent files are untouched.\n")


@dataclass(frozen=True)
class Teaching:
    """One correction: the user's utterance, and the reply or intent it should get.

    Attributes:
        kind: `reply` or `intent`.
        utterance: the user's turn it corrects.
        reply: `reply`: what the bot should have said.
        intent: `intent`: the intent the turn meant.
        transcript: the transcript it wrote, relative to the bot directory.
    """

    kind: Literal["reply", "intent"]
    utterance: str
    reply: str | None = None
    intent: str | None = None
    transcript: str = ""


def read_log(root: Path) -> list[Teaching]:
    """The bot directory's teachings, oldest first ([] when none)."""
    path = root / LOG_FILE
    if not path.is_file():
        return []
    try:
        data = jsonio.loads(path.read_bytes())
        return [Teaching(**item) for item in data["teachings"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: not a teachings file: {exc}") from None


def intent_name(index: int) -> str:
    """The intent of the `index`-th (0-based) taught reply."""
    return f"taught_{index + 1}"


def render(log: list[Teaching]) -> str:
    """`intents/taught.yml` for `log`."""
    examples: dict[str, list[str]] = {}
    intents: list[dict[str, Any]] = []
    replies = 0
    for teaching in log:
        if teaching.kind == "intent":
            assert teaching.intent is not None
            examples.setdefault(teaching.intent, []).append(teaching.utterance)
        else:
            intents.append({"name": intent_name(replies), "override": True,
                            "examples": [teaching.utterance], "responses": [teaching.reply]})
            replies += 1
    data: dict[str, Any] = {"version": 1}
    if examples:
        data["examples"] = examples
    if intents:
        data["intents"] = intents
    return _HEADER + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def inside(root: Path, path: Path) -> Path:
    """`path`, refused with a `ConfigError` when it (or a link on the way to it)
    leads outside the bot directory `root`: teaching never writes through a link
    to elsewhere."""
    resolved = path.resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise ConfigError(f"{path}: leads outside the bot directory (to {resolved}); "
                          "teaching writes only inside it")
    return path


def save(root: Path, log: list[Teaching]) -> None:
    """Writes the log and `intents/taught.yml` (removed when the log is empty)."""
    taught = inside(root, root / INTENTS_DIR / TAUGHT_FILE)
    inside(root, root / LOG_FILE)
    if log:
        fsutil.write_text(taught, render(log))
    elif taught.exists():
        taught.unlink()
    payload = {"version": 1, "teachings": [asdict(t) for t in log]}
    fsutil.write_text(root / LOG_FILE, json.dumps(payload, indent=2, ensure_ascii=False) + "\n")


def write_transcript(root: Path, teaching: Teaching, number: int) -> str:
    """The teaching as a replayable transcript; returns its path relative to `root`."""
    slug = "-".join(re.findall(r"[a-z0-9]+", teaching.utterance.casefold())[:6]) or "turn"
    relative = TRANSCRIPTS / f"{number:03d}-{slug}.yml"
    expect: dict[str, Any] = ({"text": teaching.reply} if teaching.kind == "reply"
                              else {"intent": teaching.intent})
    data = {"version": 1, "name": f"taught {number}: {teaching.utterance}",
            "turns": [{"user": teaching.utterance, "bot": expect}]}
    text = ("# Taught from the chat (/teach); /untaught removes it.\n"
            + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100))
    inside(root, root / relative)
    (root / relative).parent.mkdir(parents=True, exist_ok=True)
    fsutil.write_text(inside(root, root / relative), text)
    return relative.as_posix()
