"""Which intent, if any, an utterance means: requirements, threshold, margin, priority.

The best intent is the one whose requirements hold (contexts active, slots set),
that scores at least `intent_threshold`, and that leads every other eligible
intent by `ambiguity_margin`. Within the margin a strictly higher `priority`
wins; otherwise the utterance is ambiguous and no intent is chosen.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from chatbot.intents.matcher import Match
from chatbot.intents.schema import Intent, Policy

_EPSILON = 1e-9


@dataclass(frozen=True)
class Candidate:
    """An intent the matcher scored, and whether its requirements held."""

    intent: str
    score: float
    via: str
    priority: int = 0
    override: bool = False
    eligible: bool = True
    note: str = ""


@dataclass(frozen=True)
class Decision:
    """The scored candidates (best first), the chosen match, and why."""

    candidates: tuple[Candidate, ...]
    best: Match | None
    reason: str


def decide(
    matches: Sequence[Match],
    intents: Mapping[str, Intent],
    policy: Policy,
    *,
    contexts: Collection[str] = (),
    slots: Collection[str] = (),
) -> Decision:
    """Picks the best intent among ranked `matches` (see the module docstring)."""
    candidates = [_candidate(m, intents[m.intent], contexts, slots) for m in matches]
    eligible = [(m, c) for m, c in zip(matches, candidates, strict=True) if c.eligible]
    best, reason = _best(eligible, policy)
    return Decision(tuple(candidates), best, reason)


def _candidate(
    match: Match, intent: Intent, contexts: Collection[str], slots: Collection[str]
) -> Candidate:
    missing = [f"context {c}" for c in intent.requires.context if c not in contexts]
    missing += [f"slot {s}" for s in intent.requires.slots if s not in slots]
    note = f"requires {', '.join(missing)}" if missing else ""
    if match.negative is not None:
        note = f"vetoed: negative example {match.negative!r} is as close as {match.example!r}"
    elif not note and match.example is not None:
        note = f"nearest example {match.example!r}"
    return Candidate(
        match.intent, match.score, match.via, intent.priority, intent.override,
        eligible=not missing and match.negative is None, note=note,
    )


def _best(eligible: list[tuple[Match, Candidate]], policy: Policy) -> tuple[Match | None, str]:
    threshold, margin = policy.intent_threshold, policy.ambiguity_margin
    if not eligible or eligible[0][0].score < threshold - _EPSILON:
        first = eligible[0][0] if eligible else None
        best = f" (best: {first.intent} {first.score:.3f})" if first else ""
        return None, f"no intent reaches the threshold {threshold}{best}"
    top = eligible[0][0].score
    close = eligible[:1] + [(m, c) for m, c in eligible[1:] if top - m.score < margin - _EPSILON]
    if len(close) == 1:
        return close[0][0], f"{close[0][0].intent} ({top:.3f}) is the best intent"
    highest = max(c.priority for _, c in close)
    leaders = [m for m, c in close if c.priority == highest]
    names = ", ".join(f"{m.intent} {m.score:.3f}" for m, _ in close)
    if len(leaders) == 1 and leaders[0].score >= threshold - _EPSILON:
        return leaders[0], f"{leaders[0].intent} wins by priority among {names}"
    return None, f"ambiguous: {names} are within the margin {margin}"
