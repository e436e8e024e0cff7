"""The public facade: a bot (intents + model + policy) serving many sessions.

    from chatbot import Chatbot
    bot = Chatbot.load()                 # the packaged default bot
    session = bot.session()
    reply = session.send("hello")        # Reply(text, source, intent, confidence, trace)
    data = session.to_dict(); again = bot.restore(data)
    replies = bot.send_batch([(session_a, "hi"), (session_b, "hey")])  # one batched decode

One `Chatbot` is safe to share between threads and processes. A turn is a
transaction over the stored session: under the session id's lock (one per id in
a process, shared by every object of that id) the session first catches up with
the store (events another object or process added since), is answered, and is
saved at the version it started from. If another process saved that version
first, the turn is undone and answered again on the new version, so no turn is
lost and none is stored twice. Different sessions proceed in parallel.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import functools
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from chatbot import teaching
from chatbot.actions import Action, ActionRegistry, load_actions
from chatbot.botdir import BotDefinition, default_bot_dir, load_bot
from chatbot.config import DecodeConfig
from chatbot.dialogue import DialogueManager, Reply, ReplyGenerator
from chatbot.errors import (
    BatchError,
    BotMismatchError,
    BotValidationError,
    ConfigError,
    SessionConflictError,
    SessionDeletedError,
    SessionError,
    TurnMismatchError,
)
from chatbot.intents import IntentSet
from chatbot.intents.text import clean
from chatbot.session import (
    Event,
    MemoryStore,
    Reset,
    Session,
    SessionStore,
    SlotSet,
    SQLiteStore,
    UserSaid,
)
from chatbot.session.events import event_from_dict, event_to_dict
from chatbot.session.state import NeuralStateLike, decode_state_text
from chatbot.teaching import Teaching

ATTEMPTS = 20
"""How many times a turn is answered again after losing a race for its session's
version to another process before `SessionConflictError` reaches the caller."""


def definition_actions(definition: BotDefinition) -> ActionRegistry:
    """The actions of a bot directory's `actions.py` (none without one).

    Raises:
        ActionError: the file raises while it runs, or does not load.
    """
    actions = ActionRegistry()
    if definition.actions_file is not None:
        for name, fn, timeout in load_actions(definition.actions_file):
            actions.register(name, fn, timeout=timeout)
    return actions


class Chatbot:
    """Answers sessions' turns with one intent set, one generator and one session store.

    Args:
        intents: the intents, fallback responses and policy.
        generator: the neural generator, or None for an intents-only bot.
        store: where sessions persist (default: a `MemoryStore`; `load` defaults to SQLite).
        decode: decoding settings passed to the generator (None: the generator's own).
        name: the bot's name.
    """

    def __init__(
        self,
        intents: IntentSet,
        *,
        generator: ReplyGenerator | None = None,
        store: SessionStore | None = None,
        decode: DecodeConfig | None = None,
        name: str = "chatbot",
        actions: ActionRegistry | None = None,
        root: Path | None = None,
    ) -> None:
        self.name = name
        self.root = root
        """The bot directory, where `teach` saves corrections (None: none)."""
        self.generator = generator
        self.store = store if store is not None else MemoryStore()
        self.actions = actions if actions is not None else ActionRegistry()
        self.dialogue = DialogueManager(intents, generator=generator, decode=decode,
                                        actions=self.actions)
        self._state_type = type(generator.initial_state()) if generator is not None else None

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        *,
        store: SessionStore | str | Path | None = None,
        decode: DecodeConfig | None = None,
    ) -> Chatbot:
        """Loads a bot directory (default: the packaged default bot) and its model.

        Args:
            path: a bot directory (`intents/`, optional `bot.yml` and `model/`).
            store: a `SessionStore`, or a path for an SQLite store (default: the
                SQLite file under the user's data directory, opened on first use).
            decode: a `DecodeConfig` overriding the bot's decoding settings.

        Raises:
            BotValidationError: the bot's files have problems.
            CheckpointError: the model directory is missing or corrupt.
        """
        definition = load_bot(path)
        return cls.from_definition(definition, store=store, decode=decode)

    @classmethod
    def from_definition(
        cls,
        definition: BotDefinition,
        *,
        store: SessionStore | str | Path | None = None,
        decode: DecodeConfig | None = None,
    ) -> Chatbot:
        """A bot from a loaded definition; loads its model, if it has one."""
        generator = None
        if definition.model is not None:
            from chatbot.generator import Generator

            generator = Generator.load(definition.model, reply_filter=definition.reply_filter)
            if decode is None and definition.decode:
                decode = generator.decode.replace(**definition.decode)
        actions = definition_actions(definition)
        if not isinstance(store, SessionStore):
            store = SQLiteStore(store)
        bot = cls(
            definition.intents,
            generator=generator,
            store=store,
            decode=decode,
            name=definition.name,
            actions=actions,
            root=definition.root,
        )
        bot.index_teachings()
        return bot

    def teach(self, session: Session, reply: str | None = None, *,
              intent: str | None = None) -> Teaching:
        """Corrects the bot on `session`'s last user turn, at once and for good: it
        should have answered `reply`, or the turn meant `intent` (exactly one).

        The teaching is saved in the bot directory (`taught.json`,
        `intents/taught.yml`, and a transcript under `transcripts/taught/`) and
        the intents are reloaded, so every session answers by it from the next
        turn. `untaught` takes the last teaching back.

        Raises:
            ConfigError: no bot directory (or the packaged bot), no user turn yet,
                an unknown intent, or a teaching the intent files cannot hold.
        """
        if (reply is None) == (intent is None):
            raise ConfigError("teach either a reply or an intent")
        root = self._teachable()
        said = [e.text for e in session.events if isinstance(e, UserSaid) and e.text]
        if not said:
            raise ConfigError("nothing to teach about yet: say something first")
        if intent is not None and intent not in self.intents.names:
            close = difflib.get_close_matches(intent, self.intents.names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"no intent {intent!r}{hint}")
        text = clean(reply).strip() if reply is not None else None
        if reply is not None and not text:
            raise ConfigError("a taught reply needs some text")
        log = teaching.read_log(root)
        new = teaching.Teaching("reply" if text else "intent", said[-1], text, intent)
        new = dataclasses.replace(new, transcript=teaching.write_transcript(
            root, new, len(log) + 1))
        self._save_teachings(root, [*log, new], undo=log, drop=new)
        return new

    def untaught(self) -> Teaching | None:
        """Takes the last teaching back (its transcript too); None when there is none."""
        root = self._teachable()
        log = teaching.read_log(root)
        if not log:
            return None
        self._save_teachings(root, log[:-1], undo=log)
        (root / log[-1].transcript).unlink(missing_ok=True)
        return log[-1]

    def _teachable(self) -> Path:
        if self.root is None:
            raise ConfigError("this bot was not loaded from a bot directory, so it has "
                              "nowhere to save what it is taught")
        if self.root.resolve() == default_bot_dir().resolve():
            raise ConfigError("the packaged bot cannot be taught; `chatbot init mybot` "
                              "makes a bot directory that can")
        return self.root

    def _save_teachings(self, root: Path, log: list[Teaching], *, undo: list[Teaching],
                        drop: Teaching | None = None) -> None:
        teaching.save(root, log)
        try:
            intents = load_bot(root).intents
        except BotValidationError as exc:
            teaching.save(root, undo)
            if drop is not None:
                (root / drop.transcript).unlink(missing_ok=True)
            raise ConfigError(f"cannot teach that: {exc.problems[0].message}") from None
        self.dialogue.use_intents(intents)
        self.index_teachings()

    def index_teachings(self) -> int:
        """Puts the bot directory's taught replies into the model's reply index,
        where there is one, so the neural side can also retrieve them for
        utterances the intents miss; returns how many."""
        index = getattr(self.generator, "index", None)
        if self.root is None or index is None or not hasattr(index, "set_taught"):
            return 0
        pairs = [(t.utterance, t.reply) for t in teaching.read_log(self.root)
                 if t.kind == "reply" and t.reply]
        index.set_taught(pairs)
        return len(pairs)

    def action(
        self, name: str | None = None, *, timeout: float | None = None
    ) -> Callable[[Action], Action]:
        """Registers a function as the action `name` (default: the function's name),
        replacing one of that name; `timeout` overrides the default 5 seconds.

            @bot.action("order_status")
            def order_status(turn: TurnView) -> str:
                return f"Order {turn.slots['order']} has shipped."
        """
        def register(fn: Action) -> Action:
            self.actions.register(name or str(getattr(fn, "__name__", "")), fn, timeout=timeout)
            return fn

        return register

    @property
    def intents(self) -> IntentSet:
        return self.dialogue.intents

    def session(self, session_id: str | None = None) -> Session:
        """A session: the stored one with this id, else a new one (a fresh id by default)."""
        found = self.find(session_id) if session_id is not None else None
        return found if found is not None else self._attach(Session(session_id), saved=0)

    def find(self, session_id: str) -> Session | None:
        """The stored session with this id, or None when the store has none."""
        stored = self.store.load(session_id)
        if stored is None:
            return None
        return self._attach(self._from_dict(stored), saved=len(stored["events"]))

    @functools.cached_property
    def identity(self) -> dict[str, str]:
        """The bot's name and a fingerprint of its intents, policy and model, as
        `session.to_dict()` records them (computed once: none of them changes)."""
        digest = hashlib.sha256(repr(self.dialogue.intents).encode("utf-8"))
        digest.update(str(getattr(self.generator, "fingerprint", None)).encode("utf-8"))
        return {"name": self.name, "fingerprint": digest.hexdigest()[:16]}

    def restore(self, data: Mapping[str, Any], *, force: bool = False) -> Session:
        """A session rebuilt from `session.to_dict()`; it continues where that one was.

        The store then holds the restored history: a session it already holds must
        be a prefix of `data`. A session recorded with another bot (its `bot`
        entry names other intents or another model) is refused unless `force`,
        for migrations.

        Raises:
            BotMismatchError: `data` was recorded with another bot.
            SessionError: `data` is malformed, or conflicts with the stored session.
        """
        session = self._from_dict(data)
        recorded, mine = session.recorded_bot, self.identity
        if recorded is not None and recorded != mine and not force:
            raise BotMismatchError(
                f"session {session.id!r} was recorded with bot {recorded['name']!r} "
                f"(fingerprint {recorded['fingerprint']}), not this bot {mine['name']!r} "
                f"({mine['fingerprint']}); restore(data, force=True) loads it anyway"
            )
        stored = self.store.load(session.id)
        events = [event_to_dict(e) for e in session.events]
        saved = 0
        if stored is not None:
            saved = len(stored["events"])
            if stored["events"] != events[:saved]:
                raise SessionError(
                    f"session {session.id!r} is in the store with a different history"
                )
        self._attach(session, saved=saved)
        with session.lock, self.store.hold([session.id]):
            self._save(session)
        return session

    def send(self, session: Session, text: str, *, decode: DecodeConfig | None = None) -> Reply:
        """The reply to `text` in `session` (`decode`: this turn's decoding settings)."""
        return self.send_batch([(session, text)], decode=decode)[0]

    def send_batch(
        self,
        items: Iterable[tuple[Session, str]],
        *,
        decode: DecodeConfig | None = None,
        turns: Sequence[int | None] | None = None,
    ) -> list[Reply]:
        """Replies for many (session, text) pairs, decoded together.

        Each round of distinct sessions is one batched decode; a session that appears
        again goes to the next round, so its turns stay in order. `decode` replaces
        the bot's decoding settings for these turns only. `turns`, one per item,
        makes a turn conditional: item i is answered only if its session, caught up
        with the store, is at turn `turns[i]` (None: any), else it fails with a
        `TurnMismatchError`. A client that retries a turn whose answer it never
        received (a dropped connection) gets the error, not a second answer.

        Raises:
            SessionError: the one item's error, for a batch of one.
            BatchError: some turns failed (their sessions are as they were before);
                its `replies` hold the others' replies, which are stored.
        """
        pairs = list(items)
        for session, _ in pairs:
            self._check_owned(session)
        expected = list(turns) if turns is not None else [None] * len(pairs)
        if len(expected) != len(pairs):
            raise ValueError(f"{len(pairs)} items but {len(expected)} expected turns")
        replies: dict[int, Reply] = {}
        errors: dict[int, SessionError] = {}
        attempts = [0] * len(pairs)
        waiting = list(range(len(pairs)))
        while waiting:
            now: list[int] = []
            seen: set[str] = set()
            for index in waiting:
                if pairs[index][0].id not in seen:
                    now.append(index)
                    seen.add(pairs[index][0].id)
            answered = self._round([pairs[index] for index in now], decode,
                                   [expected[index] for index in now])
            for index, result in zip(now, answered, strict=True):
                if isinstance(result, Reply):
                    replies[index] = result
                    continue
                attempts[index] += 1
                if isinstance(result, SessionConflictError) and attempts[index] < ATTEMPTS:
                    continue  # answered again next round, on the stored version
                failed = pairs[index][0].id
                for later in waiting:  # this session's later turns in the batch go too
                    if later >= index and pairs[later][0].id == failed:
                        errors[later] = result
            waiting = [index for index in waiting if index not in replies and index not in errors]
        if errors:
            if len(pairs) == 1:
                raise errors[0]
            raise BatchError([replies.get(i) for i in range(len(pairs))], errors)
        return [replies[index] for index in range(len(pairs))]

    def reset_session(self, session: Session) -> None:
        """Starts `session` over (keeps its id)."""
        self._check_owned(session)
        self._commit(session, [Reset()])

    def refresh(self, session: Session) -> None:
        """Brings `session` up to date with the store (turns others stored for it)."""
        self._check_owned(session)
        with session.lock, self.store.hold([session.id]):
            self._catch_up(session)

    def set_slot(self, session: Session, name: str, value: str | None) -> None:
        """Sets (or, with None, clears) a slot of `session` as a `SlotSet` event,
        saved at once, so restore and replay see it."""
        if not isinstance(name, str) or not name.strip():
            raise SessionError(f"a slot name must be a non-empty string (got {name!r})")
        if value is not None and not isinstance(value, str):
            raise SessionError(f"slot {name!r}: a value must be a string or None (got {value!r})")
        self._check_owned(session)
        self._commit(session, [SlotSet(name, value)])

    def _commit(self, session: Session, events: list[Event]) -> None:
        """Applies `events` after the stored version and saves them, retrying on a race."""
        for attempt in range(1, ATTEMPTS + 1):
            with session.lock, self.store.hold([session.id]):
                self._catch_up(session)
                checkpoint = session.checkpoint()
                for event in events:
                    session.apply(event)
                try:
                    self._save(session)
                    return
                except SessionError as exc:
                    session.rollback(checkpoint)
                    if not isinstance(exc, SessionConflictError) or attempt == ATTEMPTS:
                        raise

    def _round(
        self, items: list[tuple[Session, str]], decode: DecodeConfig | None,
        turns: list[int | None],
    ) -> list[Reply | SessionError]:
        """One batched turn of distinct sessions. Each session's turn is saved on
        its own: a session whose save fails is rolled back and gets its error in
        place of a reply; the others keep theirs."""
        sessions = sorted((s for s, _ in items), key=lambda s: s.id)
        with contextlib.ExitStack() as held:
            for session in sessions:
                held.enter_context(session.lock)
            held.enter_context(self.store.hold([s.id for s in sessions]))
            return self._answer(items, decode, turns)

    def _answer(
        self, items: list[tuple[Session, str]], decode: DecodeConfig | None,
        turns: list[int | None],
    ) -> list[Reply | SessionError]:
        """`_round` with the sessions held."""
        caught_up: list[tuple[Session, str]] = []
        failed: dict[str, SessionError] = {}
        for (session, text), turn in zip(items, turns, strict=True):
            try:
                self._catch_up(session)
                if turn is not None and session.turn != turn:
                    raise TurnMismatchError(session.id, turn, session.turn)
                caught_up.append((session, text))
            except SessionError as exc:
                failed[session.id] = exc
        checkpoints = {s.id: s.checkpoint() for s, _ in caught_up}
        try:
            replies = iter(self.dialogue.handle_batch(caught_up, decode=decode))
        except BaseException:
            for session, _ in caught_up:
                session.rollback(checkpoints[session.id])
            raise
        results: list[Reply | SessionError] = []
        for session, _ in items:
            if session.id in failed:
                results.append(failed[session.id])
                continue
            reply = next(replies)
            try:
                self._save(session)
                results.append(reply)
            except SessionError as exc:
                session.rollback(checkpoints[session.id])
                results.append(exc)
        return results

    def _catch_up(self, session: Session) -> None:
        """Applies the events the store holds past `session.saved` (another object
        or process answered the session meanwhile) and takes the stored state."""
        tail = self.store.load_since(session.id, session.saved)
        count = 0 if tail is None else tail.count
        if count == session.saved:
            return
        if tail is None or count < session.saved:
            raise SessionDeletedError(
                f"session {session.id!r}: the store holds {count} events but this object "
                f"saved {session.saved}: it was deleted from the store; load it again"
            )
        events = [event_from_dict(e, where=f"stored event {session.saved + i}")
                  for i, e in enumerate(tail.events)]
        state = None if self.generator is None else decode_state_text(
            tail.state, self._decode_state)
        for event in events:
            session.apply(event)
        session.neural_state = state
        session.saved = count

    def _save(self, session: Session) -> None:
        events = session.events_since(session.saved)
        self.store.save(
            session.id,
            start=session.saved,
            events=[event_to_dict(e) for e in events],
            state=session.encoded_state(),
        )
        session.saved += len(events)

    def _attach(self, session: Session, *, saved: int) -> Session:
        session.bind(self)
        session.saved = saved
        session.lock = self.store.lock(session.id)
        return session

    def _check_owned(self, session: Session) -> None:
        if session.responder is not self:
            raise SessionError(f"session {session.id!r} belongs to another bot; restore it here")

    def _from_dict(self, data: Mapping[str, Any]) -> Session:
        return Session.from_dict(data, decode_state=self._decode_state)

    def _decode_state(self, data: bytes) -> NeuralStateLike:
        if self.generator is None or self._state_type is None:
            raise ValueError("this bot has no model to hold a neural state")
        state: NeuralStateLike = self._state_type.from_bytes(data, self.generator.state_size)
        return state

