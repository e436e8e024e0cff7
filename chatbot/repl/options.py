"""What `chatbot chat` was asked for."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatbot.session import SessionStore


@dataclass(frozen=True, kw_only=True)
class ChatOptions:
    """The options of `chatbot chat`.

    Attributes:
        bot: the bot directory (None: the packaged default bot).
        session: resume (or start) the session with this name.
        decode: decoding settings over the bot's own (`{"strategy": "beam"}`).
        seed: seeds Python's and torch's global generators, and names the
            session a recording is held in (the transcript's `seed`).
        record: record a new conversation to this transcript file.
        json: print one JSON object per reply (line mode).
        history: the prompt's history file (None: under the user's data directory).
        store: a session store, or an SQLite file (None: the default file).
    """

    bot: str | None = None
    session: str | None = None
    decode: Mapping[str, Any] = field(default_factory=dict)
    seed: int | None = None
    record: Path | None = None
    json: bool = False
    history: Path | None = None
    store: SessionStore | Path | None = None
