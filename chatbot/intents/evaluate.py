"""How well an intent set recognises held-out utterances.

A case file (YAML, version 1) lists utterances by the intent they mean, and
utterances no intent should take:

    version: 1
    intents:
      greet: [hello!!, hiya there]
    out_of_scope: [do you like pizza?]

In-scope cases are decided with every context active and every slot set, so
intents that require them compete; out-of-scope cases with none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from chatbot import yamlio
from chatbot.errors import ConfigError
from chatbot.intents.decide import decide
from chatbot.intents.matcher import IntentMatcher
from chatbot.intents.schema import IntentSet

Case = tuple[str, str | None]
"""(utterance, the intent it means or None)."""


@dataclass(frozen=True)
class MatchReport:
    """Accuracy over cases; `errors` are (utterance, expected, chosen)."""

    total: int
    correct: int
    in_scope: tuple[int, int]
    out_of_scope: tuple[int, int]
    errors: tuple[tuple[str, str | None, str | None], ...]

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0


def load_cases(path: str | Path) -> list[Case]:
    """Reads a case file (see the module docstring)."""
    data = yamlio.load(path)
    if not isinstance(data, dict) or data.get("version") != 1:
        raise ConfigError(f"{path}: expected a mapping with 'version: 1'")
    cases: list[Case] = []
    for intent, texts in (data.get("intents") or {}).items():
        cases += [(str(text), str(intent)) for text in texts]
    cases += [(str(text), None) for text in data.get("out_of_scope") or []]
    return cases


def evaluate_intents(intents: IntentSet, cases: Sequence[Case]) -> MatchReport:
    """Decides each case as the dialogue manager would, and counts the right ones."""
    matcher = IntentMatcher(intents.intents)
    by_name = {intent.name: intent for intent in intents.intents}
    contexts = {name for i in intents.intents for name, _ in i.sets.context}
    slots = {name for i in intents.intents for name in (*i.pattern_slots, *dict(i.sets.slots))}
    errors = []
    hits = {True: 0, False: 0}
    counts = {True: 0, False: 0}
    for text, expected in cases:
        scope = expected is not None
        decision = decide(
            matcher.rank(text), by_name, intents.policy,
            contexts=contexts if scope else (), slots=slots if scope else (),
        )
        chosen = decision.best.intent if decision.best else None
        counts[scope] += 1
        if chosen == expected:
            hits[scope] += 1
        else:
            errors.append((text, expected, chosen))
    return MatchReport(
        total=len(cases),
        correct=hits[True] + hits[False],
        in_scope=(hits[True], counts[True]),
        out_of_scope=(hits[False], counts[False]),
        errors=tuple(errors),
    )
