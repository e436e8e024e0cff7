"""A conversation's state as a fold over its events (`chatbot.session.events`).

Applying the events in order rebuilds the slots, the active contexts and the
last reply. The session also caches the generator's neural conversation state, so resuming
costs nothing; `to_dict()` / `Session.from_dict()` round-trip exactly.

Contexts live a number of user turns: one set by a reply with lifetime 3 is
active for the next 3 turns (each `BotSaid` counts a turn down).
"""

from __future__ import annotations

import base64
import binascii
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from chatbot.errors import SessionError
from chatbot.session.events import (
    BotSaid,
    ContextSet,
    Event,
    FormSet,
    Reset,
    SlotSet,
    UserSaid,
    event_from_dict,
    event_to_dict,
)

if TYPE_CHECKING:
    from chatbot.config import DecodeConfig
    from chatbot.dialogue import Reply

SESSION_VERSION = 1


class NeuralStateLike(Protocol):
    """The generator's conversation state, opaque here (a `chatbot.generator.NeuralState`)."""

    def to_bytes(self) -> bytes: ...


StateDecoder = Callable[[bytes], NeuralStateLike]


class SessionLock:
    """A re-entrant lock for one session id, shared by every object of that id."""

    __slots__ = ("__weakref__", "_lock")

    def __init__(self) -> None:
        self._lock = threading.RLock()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> bool:
        return self._lock.acquire()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._lock.release()


class Responder(Protocol):
    """What a session bound to a bot delegates its turns to (the `Chatbot`)."""

    def send_batch(
        self, items: Iterable[tuple[Session, str]], *, decode: DecodeConfig | None = None
    ) -> list[Reply]: ...

    def reset_session(self, session: Session) -> None: ...

    def refresh(self, session: Session) -> None: ...

    def set_slot(self, session: Session, name: str, value: str | None) -> None: ...


@dataclass(frozen=True)
class Checkpoint:
    """A session's fold state at one moment (`Session.checkpoint`)."""

    events: int
    slots: dict[str, str]
    contexts: dict[str, int]
    last_reply: str | None
    history: list[str]
    turn: int
    neural_state: NeuralStateLike | None
    saved: int
    form: str | None = None


class Session:
    """One conversation: its events, the state folded from them, and the neural state.

    Attributes:
        id: the session's key in a `SessionStore`.
        slots: slot values (`{"name": "Ann"}`).
        contexts: active contexts and the user turns each has left.
        last_reply: the bot's previous reply since the last reset, if any.
        history: the utterances since the last reset, user's and bot's, in order.
        turn: user turns so far (resets included); seeds the turn's choices.
        form: the active form's name, or None.
        neural_state: the generator's state after `history`; None means "rebuild
            it from `history`" (the initial state when the history is empty).
        lock: held while a turn is answered, so one session's turns never interleave;
            a bot gives every object of one session id the same lock.
        saved: how many of the events its bot has written to the session store
            (the stored version this object has caught up with).
        recorded_bot: the bot `to_dict()` named when this session was restored from
            it (`{"name", "fingerprint"}`), or None.
    """

    def __init__(self, session_id: str | None = None) -> None:
        self.id = session_id if session_id is not None else uuid.uuid4().hex
        self.slots: dict[str, str] = {}
        self.contexts: dict[str, int] = {}
        self.last_reply: str | None = None
        self.history: list[str] = []
        self.turn = 0
        self.form: str | None = None
        self.neural_state: NeuralStateLike | None = None
        self.lock = SessionLock()
        self.saved = 0
        self._events: list[Event] = []
        self._responder: Responder | None = None
        self.recorded_bot: dict[str, str] | None = None

    @property
    def events(self) -> tuple[Event, ...]:
        return tuple(self._events)

    def events_since(self, index: int) -> list[Event]:
        """The events from number `index` on (e.g. those not yet stored)."""
        return self._events[index:]

    @classmethod
    def from_events(
        cls,
        events: Iterable[Event],
        *,
        session_id: str | None = None,
        neural_state: NeuralStateLike | None = None,
    ) -> Session:
        """Folds `events` into a new session; `neural_state` is the cached state after them."""
        session = cls(session_id)
        for event in events:
            session.apply(event)
        session.neural_state = neural_state
        return session

    def apply(self, event: Event) -> None:
        """One step of the fold. The neural state is the caller's to update."""
        match event:
            case UserSaid(text):
                self.turn += 1
                if text:
                    self.history.append(text)
            case BotSaid(text):
                self.contexts = {k: v - 1 for k, v in self.contexts.items() if v > 1}
                self.last_reply = text
                self.history.append(text)
            case SlotSet(name, value):
                if value is None:
                    self.slots.pop(name, None)
                else:
                    self.slots[name] = value
            case ContextSet(name, turns):
                if turns > 0:
                    self.contexts[name] = turns
                else:
                    self.contexts.pop(name, None)
            case FormSet(name):
                self.form = name
            case Reset():
                self.slots, self.contexts, self.history = {}, {}, []
                self.last_reply, self.form = None, None
                self.neural_state = None
        self._events.append(event)

    def checkpoint(self) -> Checkpoint:
        """Everything a turn may change, to put back with `rollback`."""
        return Checkpoint(len(self._events), dict(self.slots), dict(self.contexts),
                          self.last_reply, list(self.history), self.turn, self.neural_state,
                          self.saved, self.form)

    def rollback(self, checkpoint: Checkpoint) -> None:
        """Puts the session back as it was at `checkpoint` (a failed turn leaves no trace)."""
        del self._events[checkpoint.events:]
        self.slots, self.contexts = checkpoint.slots, checkpoint.contexts
        self.last_reply, self.history = checkpoint.last_reply, checkpoint.history
        self.turn, self.neural_state = checkpoint.turn, checkpoint.neural_state
        self.saved = checkpoint.saved
        self.form = checkpoint.form

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: version, id, events, the cached neural state (base64)
        and, for a session attached to a bot, which bot (`{"name", "fingerprint"}`).

        Taken under the session's lock, so the events and the state are of the
        same turn even while another thread answers one."""
        with self.lock:
            data: dict[str, Any] = {
                "version": SESSION_VERSION,
                "id": self.id,
                "events": [event_to_dict(e) for e in self._events],
                "state": self.encoded_state(),
            }
        identity = getattr(self._responder, "identity", None)
        if identity is not None:
            data["bot"] = dict(identity)
        return data

    def encoded_state(self) -> str | None:
        """The cached neural state as base64 text, as `to_dict()` stores it."""
        state = self.neural_state
        return None if state is None else base64.b64encode(state.to_bytes()).decode("ascii")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, decode_state: StateDecoder) -> Session:
        """Rebuilds a session from `to_dict()` output.

        Args:
            data: the dict.
            decode_state: turns the cached state's bytes back into a neural state.

        Raises:
            SessionError: when `data` is not a valid session dict.
        """
        if not isinstance(data, Mapping):
            raise SessionError(f"a session must be a mapping, got {type(data).__name__}")
        extra = sorted(set(data) - {"version", "id", "events", "state", "bot"})
        if extra:
            raise SessionError(f"session: unexpected keys {extra}")
        version = data.get("version")
        if type(version) is not int or version != SESSION_VERSION:
            raise SessionError(f"session: unsupported version {version!r}")
        session_id, events = data.get("id"), data.get("events")
        if not isinstance(session_id, str) or not session_id:
            raise SessionError("session: 'id' must be a non-empty string")
        if not isinstance(events, list):
            raise SessionError("session: 'events' must be a list")
        parsed = [event_from_dict(e, where=f"events[{i}]") for i, e in enumerate(events)]
        state = decode_state_text(data.get("state"), decode_state)
        session = cls.from_events(parsed, session_id=session_id, neural_state=state)
        session.recorded_bot = _bot_identity(data.get("bot"))
        return session

    def bind(self, responder: Responder) -> None:
        """Attaches the bot that answers `send` and `reset`."""
        self._responder = responder

    @property
    def responder(self) -> Responder | None:
        """The bot this session is attached to."""
        return self._responder

    def send(self, text: str, *, decode: DecodeConfig | None = None) -> Reply:
        """The bot's reply to `text` (any string); `decode` (a `DecodeConfig`)
        replaces the bot's decoding settings for this turn."""
        return self._bound().send_batch([(self, text)], decode=decode)[0]

    def reset(self) -> None:
        """Starts the conversation over (a `Reset` event)."""
        self._bound().reset_session(self)

    def refresh(self) -> None:
        """Catches up with the store now: applies the turns other objects or
        processes stored for this session (`send` does this by itself)."""
        self._bound().refresh(self)

    def set_slot(self, name: str, value: str | None) -> None:
        """Sets a slot (None clears it) as a `SlotSet` event, stored at once; the
        slots, like `contexts`, `turn` and `history`, are otherwise read-only."""
        self._bound().set_slot(self, name, value)

    def _bound(self) -> Responder:
        if self._responder is None:
            raise SessionError(f"session {self.id!r} is not attached to a bot; use bot.restore()")
        return self._responder

    def __repr__(self) -> str:
        return f"Session(id={self.id!r}, events={len(self._events)}, slots={self.slots!r})"


def _bot_identity(raw: object) -> dict[str, str] | None:
    if raw is None:
        return None
    if not (isinstance(raw, Mapping) and set(raw) == {"name", "fingerprint"}
            and all(isinstance(v, str) for v in raw.values())):
        raise SessionError("session: 'bot' must be {name, fingerprint} strings")
    return {"name": raw["name"], "fingerprint": raw["fingerprint"]}


def decode_state_text(raw: object, decode: StateDecoder) -> NeuralStateLike | None:
    """A state from its base64 text (`encoded_state()`); None stays None.

    Raises:
        SessionError: the text is not base64 or does not decode to a state.
    """
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise SessionError("session: 'state' must be a base64 string or null")
    try:
        data = base64.b64decode(raw.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise SessionError("session: 'state' is not valid base64") from None
    try:
        return decode(data)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise SessionError(f"session: 'state' does not decode: {exc}") from None
