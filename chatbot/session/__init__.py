"""Per-conversation state (a fold over events) and the stores that persist it."""

from __future__ import annotations

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
from chatbot.session.state import (
    SESSION_VERSION,
    Checkpoint,
    NeuralStateLike,
    Responder,
    Session,
    SessionLock,
)
from chatbot.session.store import (
    MemoryStore,
    SessionStore,
    SQLiteStore,
    StoredTail,
    default_store_path,
)

__all__ = [
    "SESSION_VERSION",
    "BotSaid",
    "Checkpoint",
    "ContextSet",
    "Event",
    "FormSet",
    "MemoryStore",
    "NeuralStateLike",
    "Reset",
    "Responder",
    "SQLiteStore",
    "Session",
    "SessionLock",
    "SessionStore",
    "SlotSet",
    "StoredTail",
    "UserSaid",
    "default_store_path",
    "event_from_dict",
    "event_to_dict",
]
