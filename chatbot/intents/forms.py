"""Reading and checking the values a form asks for (the dialogue manager runs forms)."""

from __future__ import annotations

import datetime as dt
import functools
import re

from chatbot.intents.entities import Entity, EntityExtractor, number, when
from chatbot.intents.schema import FormSlot
from chatbot.intents.text import normalize

DEFAULT_INVALID = "Sorry, that doesn't look right."
_CANCEL = re.compile(
    r"^((actually|ok|okay|oh|no|please|um|hmm|just|wait|i want to|lets) )*"
    r"(cancel|stop|never ?mind|forget (it|about it)|quit|abort|no thanks)"
    r"( it| that| this| the order| my order| everything)?( please)?$")


def cancels(text: str) -> bool:
    """Whether `text` is one of the built-in ways to leave a form ("cancel", "stop",
    "never mind", "forget it", "quit")."""
    return bool(_CANCEL.match(normalize(text)))


@functools.cache
def _choices(choices: tuple[str, ...]) -> EntityExtractor:
    return EntityExtractor([Entity("choice", "lookup", tuple((c, ()) for c in choices))])


def read_value(slot: FormSlot, text: str, *, now: dt.datetime | None = None) -> str | None:
    """The value `text` gives for `slot` when it is the question being answered:
    `text` the whole answer; `number` the first number; `choice` the first choice
    said (case and one slip forgiven); `date` the first date; `entity` None (an
    entity of the slot's name fills it)."""
    if slot.type == "text":
        return " ".join(text.split()) or None
    if slot.type == "number":
        return number(text)
    if slot.type == "choice":
        return _choices(slot.choices).extract(text).get("choice")
    if slot.type == "date":
        return when(text, "date", now=now)
    return None


def problem(slot: FormSlot, value: str) -> bool:
    """Whether `value` breaks one of `slot`'s declared rules (choices, pattern, range);
    its `validate` action is the dialogue manager's to run."""
    if slot.choices and value not in slot.choices:
        return True
    if slot.pattern is not None and not slot.pattern.search(value):
        return True
    if slot.minimum is not None or slot.maximum is not None:
        try:
            amount = float(value)
        except ValueError:
            return True
        if slot.minimum is not None and amount < slot.minimum:
            return True
        if slot.maximum is not None and amount > slot.maximum:
            return True
    return False
