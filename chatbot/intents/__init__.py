"""Intent files (schema, loading, validation), the intent matcher and response templates."""

from __future__ import annotations

from chatbot.intents import templates
from chatbot.intents.loading import intent_files, load_intents, read_intents
from chatbot.intents.matcher import IntentMatcher, Match
from chatbot.intents.schema import (
    DEFAULT_FALLBACK,
    RULES,
    Intent,
    IntentSet,
    Policy,
    Requires,
    Response,
    Sets,
)
from chatbot.intents.text import MAX_INPUT_CHARS, clean, normalize

__all__ = [
    "DEFAULT_FALLBACK",
    "MAX_INPUT_CHARS",
    "RULES",
    "Intent",
    "IntentMatcher",
    "IntentSet",
    "Match",
    "Policy",
    "Requires",
    "Response",
    "Sets",
    "clean",
    "intent_files",
    "load_intents",
    "normalize",
    "read_intents",
    "templates",
]
