"""Session events, the facts a conversation is folded from, and their dict form."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chatbot.errors import SessionError


@dataclass(frozen=True)
class UserSaid:
    """The user's utterance (cleaned)."""

    text: str


@dataclass(frozen=True)
class BotSaid:
    """The bot's reply and what produced it."""

    text: str
    source: str
    intent: str | None = None


@dataclass(frozen=True)
class SlotSet:
    """A slot set to a value, or cleared (`None`)."""

    name: str
    value: str | None


@dataclass(frozen=True)
class ContextSet:
    """A context made active for `turns` user turns (0 ends it)."""

    name: str
    turns: int


@dataclass(frozen=True)
class FormSet:
    """A form became the active one (`name`), or the active form ended (`None`)."""

    name: str | None


@dataclass(frozen=True)
class Reset:
    """Forget everything: slots, contexts, history and the neural state."""


Event = UserSaid | BotSaid | SlotSet | ContextSet | FormSet | Reset

_EVENT_TYPES: dict[str, type[Event]] = {
    "user": UserSaid,
    "bot": BotSaid,
    "slot": SlotSet,
    "context": ContextSet,
    "form": FormSet,
    "reset": Reset,
}
_EVENT_NAMES = {cls: name for name, cls in _EVENT_TYPES.items()}
_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "user": {"text": (str,)},
    "bot": {"text": (str,), "source": (str,), "intent": (str, type(None))},
    "slot": {"name": (str,), "value": (str, type(None))},
    "context": {"name": (str,), "turns": (int,)},
    "form": {"name": (str, type(None))},
    "reset": {},
}


def event_to_dict(event: Event) -> dict[str, Any]:
    """`{"type": "user", "text": "hi"}` and the like."""
    return {"type": _EVENT_NAMES[type(event)], **vars(event)}


def event_from_dict(data: object, *, where: str = "event") -> Event:
    """Parses `event_to_dict`'s output; raises `SessionError` naming `where`."""
    if not isinstance(data, dict):
        raise SessionError(f"{where}: expected a mapping, got {type(data).__name__}")
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in _FIELDS:
        raise SessionError(f"{where}: unknown event type {kind!r}")
    fields = _FIELDS[kind]
    extra = sorted(set(data) - set(fields) - {"type"})
    if extra:
        raise SessionError(f"{where}: unexpected keys {extra}")
    for name, types in fields.items():
        if name not in data:
            raise SessionError(f"{where}: missing {name!r}")
        value = data[name]
        if not isinstance(value, types) or isinstance(value, bool):
            raise SessionError(f"{where}: {name!r} has the wrong type {type(value).__name__}")
    return _EVENT_TYPES[kind](**{name: data[name] for name in fields})
