"""The intent file schema (version 1) as typed, validated dataclasses."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from chatbot.intents.entities import Entity

Rule = Literal["override", "neural", "intents", "fallback", "form"]
"""`form` is not a policy rule: an active form answers before all of them."""
RULES: tuple[Rule, ...] = ("override", "neural", "intents", "fallback")
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Response:
    """One response variant: a template over slots, e.g. `"Hi {name}!"`.

    The variant is skipped while a slot it names is unset, or while a slot in
    `unless_slots` is set.
    """

    text: str
    slots: tuple[str, ...] = ()
    unless_slots: tuple[str, ...] = ()


@dataclass(frozen=True)
class Requires:
    """Conditions an intent needs to be a candidate at all."""

    context: tuple[str, ...] = ()
    slots: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sets:
    """What answering with an intent changes: contexts (lifetime in turns) and slots.

    A slot value of `None` clears the slot; a lifetime of 0 ends the context.
    """

    context: tuple[tuple[str, int], ...] = ()
    slots: tuple[tuple[str, str | None], ...] = ()


@dataclass(frozen=True)
class Intent:
    """One intent: how to recognise it and how to answer it."""

    name: str
    examples: tuple[str, ...] = ()
    patterns: tuple[re.Pattern[str], ...] = ()
    negative_examples: tuple[str, ...] = ()
    responses: tuple[Response, ...] = ()
    override: bool = False
    priority: int = 0
    requires: Requires = field(default_factory=Requires)
    sets: Sets = field(default_factory=Sets)
    action: str | None = None
    """The Python action that answers (`chatbot.actions`); its text, else a response."""
    form: str | None = None
    """The form this intent starts."""
    action_at: tuple[str, int, int] | None = None
    """Where the intent file names `action` (file, line, column)."""

    @property
    def pattern_slots(self) -> tuple[str, ...]:
        """Slots filled by the named groups of the patterns."""
        names = dict.fromkeys(name for p in self.patterns for name in p.groupindex)
        return tuple(names)


FormSlotType = Literal["text", "number", "choice", "entity", "date"]
FORM_SLOT_TYPES: tuple[FormSlotType, ...] = ("text", "number", "choice", "entity", "date")


@dataclass(frozen=True)
class FormSlot:
    """One slot a form needs: how to ask for it and what is a valid value.

    Attributes:
        name: the slot.
        ask: the question (response variants).
        type: `text` (the whole answer), `number`, `choice` (one of `choices`,
            forgiving case and one slip), `entity` (only the entity of the slot's
            name fills it) or `date`.
        invalid: what to say before asking again when a value is not valid.
        choices: `choice`: the values allowed.
        pattern: a regex the value must match (`re.search`, case-insensitive).
        minimum, maximum: `number`: the range allowed.
        validate: an action that accepts (returns None) or rejects (returns the
            message to say) the value, given as `turn.entities[name]`.
        remember: whether a value known from before the form started counts
            (False: each run of the form asks again, unless the utterance that
            starts it gives the value).
    """

    name: str
    ask: tuple[Response, ...]
    type: FormSlotType = "text"
    invalid: tuple[Response, ...] = ()
    choices: tuple[str, ...] = ()
    pattern: re.Pattern[str] | None = None
    minimum: float | None = None
    maximum: float | None = None
    validate: str | None = None
    remember: bool = True


DEFAULT_CANCELLED = (Response("OK, I've cancelled that."),)


@dataclass(frozen=True)
class Form:
    """Slot filling: the slots an intent's request needs, asked for in order.

    Attributes:
        name: the form's name (`Session.form` while it is active).
        slots: the slots, in the order they are asked for.
        done: what to say when every slot is filled (templates over the slots).
        action: an action to run on completion; its text, else `done`, is said.
        cancel_intent: the intent that leaves the form (default: the built-in
            phrases "cancel", "stop", "never mind", "forget it", "quit").
        cancelled: what to say when the user leaves the form.
    """

    name: str
    slots: tuple[FormSlot, ...]
    done: tuple[Response, ...] = ()
    action: str | None = None
    cancel_intent: str | None = None
    cancelled: tuple[Response, ...] = DEFAULT_CANCELLED


@dataclass(frozen=True)
class Policy:
    """How the dialogue manager picks a reply.

    Attributes:
        order: the rules, tried in turn; `fallback` always answers last.
        intent_threshold: lowest matcher score (0-1) an intent answers with.
        ambiguity_margin: how far the best intent must lead the runner-up.
        neural_min_confidence: lowest generator confidence a neural reply is used with.
    """

    order: tuple[Rule, ...] = RULES
    # The packaged bot's values: the threshold chosen on held-out paraphrases
    # (benchmarks/bench_intents.py), the neural minimum on judged replies
    # (docs/replies.md). `chatbot init` writes the same.
    intent_threshold: float = 0.6
    ambiguity_margin: float = 0.1
    neural_min_confidence: float = 0.2


DEFAULT_FALLBACK = (Response("Sorry, I didn't catch that. Could you say it another way?"),)


NORMALIZERS = ("title", "lower", "upper", "strip")
"""How a slot's captured value may be normalised (`str.title`, ...; all strip)."""


def normalize_slot(value: str, how: str | None) -> str:
    """`value` with surrounding whitespace removed, then cased as `how` says."""
    value = " ".join(value.split())
    if how == "title":
        return " ".join(word[:1].upper() + word[1:].lower() for word in value.split(" "))
    if how == "lower":
        return value.lower()
    if how == "upper":
        return value.upper()
    return value


@dataclass(frozen=True)
class IntentSet:
    """Everything a bot's `intents/` folder defines.

    `slots` maps a slot to its normaliser (one of `NORMALIZERS`), from the
    files' top-level `slots:` section.
    """

    intents: tuple[Intent, ...] = ()
    fallback: tuple[Response, ...] = DEFAULT_FALLBACK
    policy: Policy = field(default_factory=Policy)
    slots: tuple[tuple[str, str], ...] = ()
    entities: tuple[Entity, ...] = ()
    forms: tuple[Form, ...] = ()
    action_refs: tuple[tuple[str, str, tuple[str, int, int]], ...] = ()
    """(who, action, (file, line, column)) for each action a form or slot names."""

    def normalize(self, slot: str, value: str | None) -> str | None:
        """A captured `value` of `slot` as its normaliser makes it (None stays None)."""
        if value is None:
            return None
        return normalize_slot(value, dict(self.slots).get(slot))

    def get(self, name: str) -> Intent:
        """The intent called `name`; raises KeyError when there is none."""
        for intent in self.intents:
            if intent.name == name:
                return intent
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(intent.name for intent in self.intents)
