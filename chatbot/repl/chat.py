"""A chat: the loaded bot, the session being held, and what `/why` and `/record` need."""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatbot.bot import Chatbot, definition_actions
from chatbot.botdir import BotDefinition
from chatbot.dialogue import Reply
from chatbot.repl.options import ChatOptions
from chatbot.session import Session, SessionStore, SQLiteStore
from chatbot.transcripts import TranscriptWriter


class RecordingGenerator:
    """A generator that keeps its latest generations, for the `/why` heatmap.

    Everything else is the wrapped generator's (`chatbot.generator.Generator`).
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.state_size: int = inner.state_size
        self.last: Sequence[Any] = ()

    @property
    def decode(self) -> Any:
        return self.inner.decode

    @property
    def index(self) -> Any:
        """The wrapped generator's reply index (taught replies join it)."""
        return getattr(self.inner, "index", None)

    def initial_state(self) -> Any:
        return self.inner.initial_state()

    def respond(
        self, items: Sequence[tuple[Any, str, str | None]], *, decode: Any = None,
        seed: int | Sequence[int] | None = None,
    ) -> Sequence[tuple[Any, Any]]:
        results: Sequence[tuple[Any, Any]] = self.inner.respond(items, decode=decode, seed=seed)
        self.last = [generation for generation, _ in results]
        return results

    def observe(self, states: Sequence[Any], texts: Sequence[str]) -> Sequence[Any]:
        observed: Sequence[Any] = self.inner.observe(states, texts)
        return observed


@dataclass
class Chat:
    """A loaded bot and the conversation being held with it.

    Attributes:
        bot: the bot.
        session: the session being held (commands may switch it).
        generations: the bot's generator, recording its generations (None: intents only).
        base_decode: the bot's own decoding settings (bot.yml over the model's).
        writer: the transcript being recorded, if any.
    """

    bot: Chatbot
    session: Session
    generations: RecordingGenerator | None = None
    base_decode: Any = None
    writer: TranscriptWriter | None = None

    @property
    def decode(self) -> Any:
        """The decoding settings in force (a `DecodeConfig`; None for an intents-only bot)."""
        if self.generations is None:
            return None
        return self.bot.dialogue.decode or self.base_decode

    @property
    def ranked(self) -> bool:
        """Whether the model has a fitted ranker (`decode.ranker="model"` uses it)."""
        inner = None if self.generations is None else self.generations.inner
        return getattr(inner, "weights", None) is not None

    def set_decode(self, decode: Any) -> None:
        """Uses `decode` from the next turn on (and records it, when recording)."""
        self.bot.dialogue.decode = decode
        if self.writer is not None:
            self.writer.decode = self.decode_changes()

    def send(self, text: str) -> tuple[Reply, Any]:
        """The reply to `text`, and the generation behind its neural candidate (or None)."""
        if self.generations is not None:
            self.generations.last = ()
        reply = self.session.send(text)
        last = self.generations.last if self.generations is not None else ()
        return reply, (last[0] if last else None)

    def add_to_recording(self, text: str, reply: Reply) -> None:
        """Writes the turn to the recording, if one is on.

        Raises:
            OSError: the transcript cannot be written (the recording stops).
        """
        if self.writer is None:
            return
        try:
            self.writer.add(text, reply)
        except OSError:
            self.writer = None
            raise

    def record(self, path: Path, *, seed: int) -> None:
        """Starts recording to `path`, in a new session: the one replay will use."""
        writer = TranscriptWriter(path, name=time.strftime("recorded %Y-%m-%d %H:%M:%S"),
                                  seed=seed, decode=self.decode_changes())
        store = self.bot.store
        if store.load(writer.session_id) is not None:
            store.delete(writer.session_id)
        self.session = self.bot.session(writer.session_id)
        self.writer = writer

    def stop_recording(self) -> Path | None:
        """Ends the recording (the file holds every turn); its path, or None if none."""
        if self.writer is None:
            return None
        writer, self.writer = self.writer, None
        writer.close()
        return writer.path

    def decode_changes(self) -> dict[str, Any]:
        """The settings in force that differ from the bot's made greedy (as replay decodes)."""
        if self.decode is None or self.base_decode is None:
            return {}
        base = dataclasses.asdict(self.base_decode.replace(strategy="greedy"))
        now = dataclasses.asdict(self.decode)
        return {key: value for key, value in now.items() if base[key] != value}


def open_chat(definition: BotDefinition, options: ChatOptions) -> Chat:
    """Loads the bot's model and opens the session (resumed if `options.session` is stored).

    Raises:
        CheckpointError: the model is missing or corrupt.
        ConfigError: a decoding setting is invalid.
        SessionError: the stored session does not load.
    """
    generations, base, decode = None, None, None
    if definition.model is not None:
        from chatbot.generator import Generator

        generations = RecordingGenerator(Generator.load(definition.model))
        base = generations.decode.replace(**definition.decode)
        decode = base.replace(**options.decode)
    if options.seed is not None:
        _seed(options.seed, torch_too=generations is not None)
    store = options.store
    if not isinstance(store, SessionStore):
        store = SQLiteStore(store)
    bot = Chatbot(definition.intents, generator=generations, store=store, decode=decode,
                  name=definition.name, actions=definition_actions(definition),
                  root=definition.root)
    bot.index_teachings()
    chat = Chat(bot, bot.session(options.session or new_session_id(store)), generations, base)
    if options.record is not None:
        chat.record(options.record, seed=options.seed or 0)
    return chat


def new_session_id(store: SessionStore, *, now: float | None = None) -> str:
    """`chat-YYYYmmdd-HHMMSS`, with a suffix if the store holds that name already."""
    base = time.strftime("chat-%Y%m%d-%H%M%S", time.localtime(now))
    name, n = base, 1
    while store.load(name) is not None:
        n += 1
        name = f"{base}-{n}"
    return name


def _seed(seed: int, *, torch_too: bool) -> None:
    random.seed(seed)
    if torch_too:
        import torch

        torch.manual_seed(seed)
