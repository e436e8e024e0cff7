"""The dialogue manager: picks each reply by the bot's policy and records the turn.

Rules run in the policy's order (default `override, neural, intents, fallback`):

- `override`: the best intent answers first if it is marked `override: true`.
- `neural`: the generator's reply, if its confidence clears
  `neural_min_confidence` and it is not degenerate (empty, a loop, an echo of
  the user, the same as last turn's reply).
- `intents`: the best intent.
- `fallback`: one of the `fallback` responses; always answers.

"The best intent" is decided by `chatbot.intents.decide` (requirements,
threshold, ambiguity margin, priority). Whatever answers, the user's utterance
and the reply both update the neural conversation state.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import importlib.util
import random
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from types import MappingProxyType
from typing import Any, Literal, Protocol

from chatbot.actions import ActionRegistry, TurnView
from chatbot.errors import ConfigError
from chatbot.intents import IntentMatcher, IntentSet, Match, Policy, forms, templates
from chatbot.intents.decide import Candidate, decide
from chatbot.intents.entities import EntityExtractor
from chatbot.intents.schema import DEFAULT_FALLBACK, Form, FormSlot, Intent, Rule
from chatbot.intents.text import clean
from chatbot.session import (
    BotSaid,
    ContextSet,
    Event,
    FormSet,
    Session,
    SlotSet,
    UserSaid,
)

Source = Literal["intent", "neural", "fallback", "form"]
DEGENERATE_FLAGS = ("empty", "loop", "echo", "repeat")


class GenerationLike(Protocol):
    """A generator's reply (`chatbot.generator.Generation`)."""

    @property
    def text(self) -> str: ...

    @property
    def confidence(self) -> float: ...

    @property
    def flags(self) -> tuple[str, ...]: ...


class ReplyGenerator(Protocol):
    """The neural generator as the dialogue manager uses it (`chatbot.generator.Generator`).

    Its states are instances of one class with `to_bytes()` and
    `from_bytes(data, state_size)`.
    """

    state_size: int

    def initial_state(self) -> Any: ...

    def respond(
        self, items: Sequence[tuple[Any, str, str | None]], *, decode: Any = None,
        seed: int | Sequence[int] | None = None,
    ) -> Sequence[tuple[Any, Any]]: ...

    def observe(self, states: Sequence[Any], texts: Sequence[str]) -> Sequence[Any]: ...


@dataclass(frozen=True)
class ReplyOption:
    """One reply the selector considered (`chatbot.replies.ReplyCandidate`, plain).

    `source` is `generated` or `retrieved`; `score` is None for a candidate
    dropped before ranking, and `dropped` says why; `origin` and `answered` name
    the corpus conversation a retrieved reply comes from and what it answered.
    """

    text: str
    source: str
    score: float | None
    features: tuple[float, ...] = ()
    similarity: float = 0.0
    origin: str | None = None
    answered: str | None = None
    dropped: str | None = None


@dataclass(frozen=True)
class NeuralCandidate:
    """The generator's reply for the turn, and why it was or was not used.

    `source` is `generated` or `retrieved`; `ranker` names what chose it
    (`none` for pure generation); `options` are every candidate the ranker saw.
    """

    text: str
    confidence: float
    flags: tuple[str, ...]
    accepted: bool
    source: str = "generated"
    ranker: str = "none"
    options: tuple[ReplyOption, ...] = ()


@dataclass(frozen=True)
class Trace:
    """Why a reply was chosen.

    Attributes:
        text: the user's utterance as the bot read it (cleaned, truncated).
        candidates: the intents the matcher scored, best first.
        neural: the generator's candidate, when it was asked.
        policy: the rule order and thresholds in force.
        steps: one line per rule tried, saying what it decided.
        rule: the rule that answered.
        slots: the slots after the turn.
        contexts: the active contexts after the turn (turns left).
        action: the Python action the answering intent named, if any.
        action_error: why that action gave no answer (it raised, timed out,
            returned a wrong type or is not registered), if it failed.
        form: the active form after the turn, if any.
    """

    text: str
    candidates: tuple[Candidate, ...]
    neural: NeuralCandidate | None
    policy: Policy
    steps: tuple[str, ...]
    rule: Rule
    slots: tuple[tuple[str, str], ...] = ()
    contexts: tuple[tuple[str, int], ...] = ()
    action: str | None = None
    action_error: str | None = None
    form: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (tuples become lists)."""
        return asdict(self)

    def __str__(self) -> str:
        lines = [f"input: {self.text!r}"]
        for c in self.candidates:
            note = f" ({c.note})" if c.note else ""
            lines.append(f"  intent {c.intent}: {c.score:.3f} via {c.via}{note}")
        if self.neural is not None:
            n = self.neural
            flags = f" flags {','.join(n.flags)}" if n.flags else ""
            lines.append(f"  neural: {n.text!r} confidence {n.confidence:.3f}{flags}"
                         f" ({n.source}, ranker {n.ranker})")
            lines += [f"    {line}" for line in option_lines(n.options)]
        p = self.policy
        lines.append(f"policy: {' > '.join(p.order)}")
        lines.append(
            f"thresholds: intent {p.intent_threshold}, margin {p.ambiguity_margin}, "
            f"neural {p.neural_min_confidence}"
        )
        lines += [f"  {step}" for step in self.steps]
        if self.action_error:
            lines.append(f"action {self.action} failed: {self.action_error}")
        lines.append(f"decided by: {self.rule}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Reply:
    """The bot's answer to one user turn.

    Attributes:
        text: what the bot says (no control characters or escape sequences).
        source: `intent`, `neural` or `fallback`.
        intent: the intent's name when `source == "intent"`.
        confidence: the intent's score, the generator's confidence, or 0 for fallback.
        trace: the candidates, scores, thresholds and the deciding rule.
        action: the Python action that answered, if one did.
    """

    text: str
    source: Source
    intent: str | None
    confidence: float
    trace: Trace = field(repr=False, compare=False)
    action: str | None = None


@dataclass
class _Answer:
    text: str
    source: Source
    intent: Intent | None = None
    confidence: float = 0.0
    slots: dict[str, str | None] = field(default_factory=dict)
    contexts: dict[str, int] = field(default_factory=dict)
    action: str | None = None
    action_error: str | None = None
    form: tuple[str | None] | None = None
    """(name,) starts the form `name`, (None,) ends the active one; None changes nothing."""


@dataclass
class _Turn:
    """One session's turn while the batch is decided."""

    session: Session
    text: str
    rng: random.Random
    seed: int
    candidates: list[Candidate] = field(default_factory=list)
    best: Match | None = None
    steps: list[str] = field(default_factory=list)
    state: Any = None
    neural: Any = None
    state_after_user: Any = None
    entities: dict[str, str] = field(default_factory=dict)
    answer: _Answer | None = None
    rule: Rule = "fallback"


_IN_TURN: contextvars.ContextVar[bool] = contextvars.ContextVar("in_turn", default=False)
"""True while a turn is answered (actions run in a copy of the turn's context)."""


class _SwapGate:
    """Many turns at once, or one swap of the intents between turns (a
    readers-writer lock that lets a waiting swap in before new turns)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._turns = 0
        self._swapping = False

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._swapping)
            self._turns += 1
        token = _IN_TURN.set(True)
        try:
            yield
        finally:
            _IN_TURN.reset(token)
            with self._cond:
                self._turns -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        if _IN_TURN.get():
            raise ConfigError("the intents cannot change during a turn (from an action): "
                              "teach between turns")
        with self._cond:
            self._cond.wait_for(lambda: not self._swapping)
            self._swapping = True
            self._cond.wait_for(lambda: self._turns == 0)
        try:
            yield
        finally:
            with self._cond:
                self._swapping = False
                self._cond.notify_all()


class DialogueManager:
    """Answers turns for many sessions with one intent set and one generator.

    Thread-safe when the generator is (the real one is): callers hold each
    session's lock, and the manager keeps no per-turn state of its own.
    """

    def __init__(
        self,
        intents: IntentSet,
        *,
        generator: ReplyGenerator | None = None,
        decode: Any = None,
        actions: ActionRegistry | None = None,
    ) -> None:
        self.actions = actions if actions is not None else ActionRegistry()
        self.generator = generator
        self.decode = decode
        self.clock: Callable[[], datetime.datetime] = datetime.datetime.now
        """What "now" is for date and time entities ("tomorrow")."""
        self._swap = _SwapGate()
        self.use_intents(intents)

    def use_intents(self, intents: IntentSet) -> None:
        """Answers with `intents` from the next turn on (taught corrections use it).
        Turns in flight finish with the old intents; the swap waits for them.

        Raises:
            ConfigError: a date entity without the optional dateparser package.
        """
        dated = [e.name for e in intents.entities if e.kind in ("date", "time", "datetime")]
        if dated and importlib.util.find_spec("dateparser") is None:
            raise ConfigError(
                f"entity {dated[0]!r} reads dates, which needs the optional dateparser "
                "package: pip install 'chatbot[dates]'")
        matcher, entities = IntentMatcher(intents.intents), EntityExtractor(intents.entities)
        with self._swap.writing():
            self.matcher, self.entities = matcher, entities
            self._by_name = {intent.name: intent for intent in intents.intents}
            self._forms = {form.name: form for form in intents.forms}
            self.policy = intents.policy
            self.intents = intents

    def handle(self, session: Session, text: str, *, decode: Any = None) -> Reply:
        """The reply to `text` in `session`; the turn's events are applied to it.
        `decode` (a `DecodeConfig`) replaces `self.decode` for this turn."""
        return self.handle_batch([(session, text)], decode=decode)[0]

    def handle_batch(
        self, items: Sequence[tuple[Session, str]], *, decode: Any = None
    ) -> list[Reply]:
        """Replies for several sessions (each at most once) with one batched decode
        (with `decode`, if given, instead of `self.decode`)."""
        ids = [session.id for session, _ in items]
        if len(set(ids)) != len(ids):
            raise ValueError("a batch may hold each session once")
        with self._swap.reading():
            return self._handle(items, decode)

    def _handle(self, items: Sequence[tuple[Session, str]], decode: Any) -> list[Reply]:
        turns = [self._start(session, text) for session, text in items]
        order = self.policy.order
        split = order.index("neural") if "neural" in order else len(order)
        for turn in turns:
            if turn.session.form is not None:
                turn.answer, turn.rule = self._form_turn(turn), "form"
            self._run(turn, order[:split])
        self._decode([t for t in turns if t.answer is None and "neural" in order], decode)
        for turn in turns:
            self._run(turn, (*order[split:], "fallback"))
        self._advance_states(turns)
        return [self._finish(turn) for turn in turns]

    def _start(self, session: Session, text: str) -> _Turn:
        cleaned = clean(text)
        key = f"{session.id}:{session.turn}"
        turn = _Turn(session, cleaned, random.Random(key), zlib.crc32(key.encode()))
        if cleaned:
            if self.intents.entities:
                found = self.entities.extract(cleaned, now=self.clock())
                for name, value in found.items():
                    normal = self.intents.normalize(name, value)
                    if normal:
                        turn.entities[name] = normal
                if turn.entities:
                    turn.steps.append("entities: " + ", ".join(
                        f"{k}={v!r}" for k, v in turn.entities.items()))
            decision = decide(
                self.matcher.rank(cleaned), self._by_name, self.policy,
                contexts=session.contexts, slots={**session.slots, **turn.entities},
            )
            turn.candidates, turn.best = list(decision.candidates), decision.best
            turn.steps.append(f"match: {decision.reason}")
        else:
            turn.steps.append("input: empty after cleaning; only the fallback can answer")
        return turn

    def _run(self, turn: _Turn, rules: Sequence[Rule]) -> None:
        for rule in rules:
            if turn.answer is not None:
                return
            turn.answer = getattr(self, f"_rule_{rule}")(turn)
            turn.rule = rule

    def _rule_override(self, turn: _Turn) -> _Answer | None:
        if turn.best is None:
            turn.steps.append("override: no best intent")
            return None
        intent = self._by_name[turn.best.intent]
        # Starting a form is a request, not chit-chat: the model never takes it.
        if not intent.override and intent.form is None:
            turn.steps.append(f"override: {intent.name} is not an override intent")
            return None
        return self._intent_answer(turn, intent, "override")

    def _rule_intents(self, turn: _Turn) -> _Answer | None:
        if turn.best is None:
            turn.steps.append("intents: no best intent")
            return None
        return self._intent_answer(turn, self._by_name[turn.best.intent], "intents")

    def _intent_answer(self, turn: _Turn, intent: Intent, rule: str) -> _Answer | None:
        assert turn.best is not None
        captured = {**turn.entities, **{name: self.intents.normalize(name, value)
                                        for name, value in turn.best.slots}}
        changes: dict[str, str | None] = {**captured, **dict(intent.sets.slots)}
        contexts: dict[str, int] = {}
        said: str | None = None
        ending = False
        if intent.action is not None:
            assert turn.best is not None
            view = self._view(turn, intent.name, turn.best.score, captured,
                              {**turn.session.slots, **changes})
            outcome = self.actions.run(intent.action, view)
            if outcome.result is None:
                turn.steps.append(f"{rule}: action {intent.action} of intent {intent.name} "
                                  f"failed ({outcome.error}); the fallback answers")
                answer = self._rule_fallback(turn)
                answer.action, answer.action_error = intent.action, outcome.error
                return answer
            changes.update(outcome.result.slots)
            contexts = dict(outcome.result.contexts)
            said = clean(outcome.result.text) if outcome.result.text is not None else None
            started = outcome.result.start_form
            if started is not None and started in self._forms and rule != "form":
                answer = self._start_form(turn, intent, self._forms[started], said, changes)
                answer.contexts, answer.action = contexts, intent.action
                return answer
            if started is not None and started not in self._forms:
                turn.steps.append(f"{rule}: action {intent.action} starts unknown form "
                                  f"{started!r}; ignored")
            ending = outcome.result.end_form and turn.session.form is not None
        slots = {**turn.session.slots, **changes}
        filled = {k: v for k, v in slots.items() if v is not None}
        text = said or templates.choose(
            intent.responses, filled, avoid=turn.session.last_reply, rng=turn.rng
        )
        if intent.form is not None and intent.form in self._forms and rule != "form":
            return self._start_form(turn, intent, self._forms[intent.form], text, changes)
        if not text:
            turn.steps.append(f"{rule}: no response of {intent.name} can be said with these slots")
            return None
        by = f" (action {intent.action})" if intent.action else ""
        turn.steps.append(f"{rule}: answered with intent {intent.name}{by}")
        return _Answer(text, "intent", intent, turn.best.score, changes, contexts, intent.action,
                       form=(None,) if intent.action is not None and ending else None)

    def _start_form(self, turn: _Turn, intent: Intent, form: Form, text: str | None,
                    changes: dict[str, str | None]) -> _Answer:
        """The intent `intent` starts `form`: its response (if any), then the first
        question, or the form's completion when every slot is known already."""
        assert turn.best is not None
        forget = {s.name: None for s in form.slots
                  if not s.remember and s.name in turn.session.slots and s.name not in changes}
        changes = {**forget, **changes, **self._choices_said(turn, form, changes)}
        known = {k: v for k, v in {**turn.session.slots, **changes}.items() if v is not None}
        turn.steps.append(f"intents: intent {intent.name} starts form {form.name}")
        missing = next((s for s in form.slots if s.name not in known), None)
        if missing is None:
            done = self._complete_form(turn, form, known, changes)
            done.text = " ".join(t for t in (text, done.text) if t)
            done.intent, done.confidence, done.form = intent, turn.best.score, (None,)
            return done
        question = self._ask(turn, missing, known)
        return _Answer(" ".join(t for t in (text, question) if t), "intent", intent,
                       turn.best.score, changes, form=(form.name,))

    def _form_turn(self, turn: _Turn) -> _Answer | None:
        """The active form's answer: a cancel, an interruption answered and the
        question asked again, a value accepted or refused, the next question or the
        completion. None when the session's form is not this bot's."""
        session = turn.session
        form = self._forms.get(session.form or "")
        if form is None:
            turn.steps.append(f"form: {session.form!r} is not a form of this bot; it ends")
            return None
        known = dict(session.slots)
        if (turn.best is not None and turn.best.intent == form.cancel_intent) or (
                form.cancel_intent is None and forms.cancels(turn.text)):
            turn.steps.append(f"form {form.name}: cancelled")
            text = templates.choose(form.cancelled, known, avoid=None, rng=turn.rng) or "OK."
            return _Answer(text, "form", form=(None,))
        by_name = {s.name: s for s in form.slots}
        asked = next((s for s in form.slots if s.name not in known), None)
        restarting = turn.best is not None and self._by_name[turn.best.intent].form == form.name
        interrupting = turn.best is not None and not restarting
        values = {name: turn.entities[name] for name in by_name if name in turn.entities}
        values.update(self._choices_said(turn, form, values))
        if restarting and not values and asked is not None:
            turn.steps.append(f"form {form.name}: already active; asks for {asked.name} again")
            return _Answer(self._ask(turn, asked, known), "form")
        if asked is not None and asked.name not in values and not interrupting:
            value = forms.read_value(asked, turn.text, now=self.clock())
            value = self.intents.normalize(asked.name, value)
            if value:
                values[asked.name] = value
        accepted: dict[str, str | None] = {}
        refusal: str | None = None
        for name, value in values.items():
            reason = self._refuse(turn, by_name[name], value)
            if reason is None:
                accepted[name] = value
                continue
            turn.entities.pop(name, None)   # a refused value is not stored
            if asked is not None and name == asked.name:
                refusal = reason
        if not values and interrupting:
            assert turn.best is not None
            answer = self._intent_answer(turn, self._by_name[turn.best.intent], "form")
            if answer is not None and answer.form == (None,):
                turn.steps.append(f"form {form.name}: ended by action {answer.action}")
                return answer
            if answer is not None and asked is not None:
                # The interruption may itself fill slots ("my name is Bob").
                now = {**known, **{k: v for k, v in answer.slots.items() if v is not None}}
                following = next((s for s in form.slots if s.name not in now), None)
                if following is None:
                    done = self._complete_form(turn, form, now, answer.slots)
                    done.text = f"{answer.text} {done.text}"
                    return done
                turn.steps.append(f"form {form.name}: interrupted; asks for {following.name}")
                answer.text = f"{answer.text} {self._ask(turn, following, now)}"
                return answer
        after = {**known, **{k: v for k, v in accepted.items() if v is not None}}
        missing = next((s for s in form.slots if s.name not in after), None)
        if missing is None:
            return self._complete_form(turn, form, after, accepted)
        if asked is not None and asked.name not in accepted:
            refusal = refusal or self._invalid(turn, asked, after)
            turn.steps.append(f"form {form.name}: no valid {asked.name}; asks again")
            text = f"{refusal} {self._ask(turn, missing, after)}"
        else:
            if accepted:
                turn.steps.append(f"form {form.name}: filled " + ", ".join(
                    f"{k}={v!r}" for k, v in accepted.items()))
            text = self._ask(turn, missing, after)
        return _Answer(text, "form", slots=accepted)

    def _choices_said(self, turn: _Turn, form: Form, known: dict[str, Any]) -> dict[str, str]:
        """The value of each `choice` slot of `form` that the utterance names (and
        `known` lacks): one utterance can fill several slots."""
        found = {}
        for slot in form.slots:
            if slot.type == "choice" and known.get(slot.name) is None:
                value = forms.read_value(slot, turn.text)
                if value is not None:
                    found[slot.name] = value
        return found

    def _ask(self, turn: _Turn, slot: FormSlot, slots: dict[str, str]) -> str:
        return templates.choose(slot.ask, slots, avoid=None, rng=turn.rng) or f"{slot.name}?"

    def _invalid(self, turn: _Turn, slot: FormSlot, slots: dict[str, str]) -> str:
        return (templates.choose(slot.invalid, slots, avoid=None, rng=turn.rng)
                or forms.DEFAULT_INVALID)

    def _refuse(self, turn: _Turn, slot: FormSlot, value: str) -> str | None:
        """Why `value` is refused for `slot` (its invalid message), or None."""
        known = {k: v for k, v in turn.session.slots.items()}
        if forms.problem(slot, value):
            return self._invalid(turn, slot, known)
        if slot.validate is None:
            return None
        view = self._view(turn, turn.session.form or "", 1.0, {slot.name: value}, known)
        outcome = self.actions.run(slot.validate, view)
        if outcome.result is None:
            turn.steps.append(f"form: validate action {slot.validate} failed ({outcome.error})")
            return self._invalid(turn, slot, known)
        return clean(outcome.result.text) if outcome.result.text else None

    def _complete_form(self, turn: _Turn, form: Form, slots: dict[str, str],
                       changes: dict[str, str | None]) -> _Answer:
        filled = {k: v for k, v in {**slots, **changes}.items() if v is not None}
        values = ", ".join(f"{s.name}={filled.get(s.name)!r}" for s in form.slots)
        turn.steps.append(f"form {form.name}: complete ({values})")
        said: str | None = None
        contexts: dict[str, int] = {}
        if form.action is not None:
            outcome = self.actions.run(form.action,
                                       self._view(turn, form.name, 1.0, {}, filled))
            if outcome.result is None:
                turn.steps.append(f"form {form.name}: action {form.action} failed "
                                  f"({outcome.error}); the fallback answers")
                answer = self._rule_fallback(turn)
                answer.slots, answer.form = dict(changes), (None,)
                answer.action, answer.action_error = form.action, outcome.error
                return answer
            changes = {**changes, **outcome.result.slots}
            filled = {k: v for k, v in {**filled, **changes}.items() if v is not None}
            contexts = dict(outcome.result.contexts)
            said = clean(outcome.result.text) if outcome.result.text else None
        text = said or templates.choose(form.done, filled, avoid=None, rng=turn.rng) or "Done."
        return _Answer(text, "form", slots=dict(changes), contexts=contexts,
                       action=form.action, form=(None,))

    @staticmethod
    def _view(turn: _Turn, intent: str, confidence: float, entities: dict[str, Any],
              slots: dict[str, Any]) -> TurnView:
        """What an action reads of `turn` (None values of `entities`/`slots` left out)."""
        session = turn.session
        return TurnView(
            text=turn.text, intent=intent, confidence=confidence,
            entities=MappingProxyType({k: v for k, v in entities.items() if v is not None}),
            slots=MappingProxyType({k: v for k, v in slots.items() if v is not None}),
            contexts=MappingProxyType(dict(session.contexts)),
            history=tuple(session.history), session_id=session.id, form=session.form,
        )

    def _rule_neural(self, turn: _Turn) -> _Answer | None:
        if turn.neural is None:
            reason = "no model" if self.generator is None else "not asked (empty input)"
            turn.steps.append(f"neural: {reason}")
            return None
        text = clean(turn.neural.text)
        flags = list(turn.neural.flags)
        if not text and "empty" not in flags:
            flags.append("empty")
        if text and text == turn.session.last_reply and "repeat" not in flags:
            flags.append("repeat")
        confidence = float(turn.neural.confidence)
        bad = [f for f in flags if f in DEGENERATE_FLAGS]
        minimum = self.policy.neural_min_confidence
        if bad:
            turn.steps.append(f"neural: degenerate reply ({', '.join(bad)})")
        elif confidence < minimum:
            turn.steps.append(f"neural: confidence {confidence:.3f} is below {minimum}")
        else:
            turn.steps.append(f"neural: confidence {confidence:.3f} clears {minimum}")
            return _Answer(text, "neural", confidence=confidence)
        return None

    def _rule_fallback(self, turn: _Turn) -> _Answer:
        last = turn.session.last_reply
        text = templates.choose(self.intents.fallback, turn.session.slots, avoid=last,
                                rng=turn.rng)
        if not text:
            text = templates.choose(DEFAULT_FALLBACK, {}, avoid=None, rng=turn.rng) or "?"
        turn.steps.append("fallback: answered")
        return _Answer(text, "fallback")

    def _decode(self, turns: list[_Turn], decode: Any) -> None:
        """Asks the generator once for every turn still open that has something to answer."""
        asked = [t for t in turns if t.text and self.generator is not None]
        if not asked:
            return
        for turn in asked:
            turn.state = self._state(turn.session)
        items = [(t.state, t.text, t.session.last_reply) for t in asked]
        assert self.generator is not None
        decode = self.decode if decode is None else decode
        results = self.generator.respond(items, decode=decode, seed=[t.seed for t in asked])
        for turn, (generation, state) in zip(asked, results, strict=True):
            turn.neural, turn.state_after_user = generation, state

    def _advance_states(self, turns: list[_Turn]) -> None:
        """Feeds the user's utterance (unless decoded already) and the reply to the state."""
        if self.generator is None:
            return
        for turn in turns:
            if turn.state is None:
                turn.state = self._state(turn.session)
        need_user = [t for t in turns if t.state_after_user is None and t.text]
        texts = [t.text for t in need_user]
        after = self.generator.observe([t.state for t in need_user], texts)
        for turn, state in zip(need_user, after, strict=True):
            turn.state_after_user = state
        states = [t.state if t.state_after_user is None else t.state_after_user for t in turns]
        replies = [t.answer.text if t.answer else "" for t in turns]
        final = self.generator.observe(states, replies)
        for turn, state in zip(turns, final, strict=True):
            turn.state = state

    def _state(self, session: Session) -> Any:
        """The session's cached state, or one rebuilt from its history."""
        if session.neural_state is not None:
            return session.neural_state
        assert self.generator is not None
        state = self.generator.initial_state()
        for text in session.history:
            state = self.generator.observe([state], [text])[0]
        session.neural_state = state
        return state

    def _finish(self, turn: _Turn) -> Reply:
        answer = turn.answer
        assert answer is not None
        session = turn.session
        events: list[Event] = [UserSaid(turn.text)]
        slots = {**turn.entities, **answer.slots}
        events += [SlotSet(name, value) for name, value in slots.items()]
        if answer.form is not None:
            events.append(FormSet(answer.form[0]))
        elif session.form is not None and session.form not in self._forms:
            events.append(FormSet(None))
        intent_name = answer.intent.name if answer.intent else None
        events.append(BotSaid(answer.text, answer.source, intent_name))
        if answer.intent is not None:
            events += [ContextSet(name, turns) for name, turns in answer.intent.sets.context]
        events += [ContextSet(name, turns) for name, turns in answer.contexts.items()]
        for event in events:
            session.apply(event)
        if self.generator is not None:
            session.neural_state = turn.state
        trace = Trace(
            text=turn.text,
            candidates=tuple(turn.candidates),
            neural=self._neural_candidate(turn),
            policy=self.policy,
            steps=tuple(turn.steps),
            rule=turn.rule,
            slots=tuple(sorted(session.slots.items())),
            contexts=tuple(sorted(session.contexts.items())),
            action=answer.action,
            action_error=answer.action_error,
            form=session.form,
        )
        return Reply(answer.text, answer.source, intent_name, answer.confidence, trace,
                     action=answer.action if answer.action_error is None else None)

    def _neural_candidate(self, turn: _Turn) -> NeuralCandidate | None:
        if turn.neural is None:
            return None
        accepted = turn.answer is not None and turn.answer.source == "neural"
        n = turn.neural
        options = tuple(
            ReplyOption(clean(c.text), c.source, c.score, tuple(c.features), c.similarity,
                        c.origin, c.answered, c.dropped)
            for c in getattr(n, "candidates", ())
        )
        return NeuralCandidate(
            clean(n.text), float(n.confidence), tuple(n.flags), accepted,
            getattr(n, "source", "generated"), getattr(n, "ranker", "none"), options,
        )


def option_lines(options: Sequence[ReplyOption]) -> list[str]:
    """One line per candidate, best score first, dropped ones last with the reason."""
    ranked = sorted(options, key=lambda o: (o.score is None, -(o.score or 0.0)))
    lines = []
    for rank, option in enumerate(ranked):
        mark = "*" if rank == 0 and option.score is not None else " "
        score = f"{'--':>7}" if option.score is None else f"{option.score:7.3f}"
        where = f" [{option.origin}]" if option.origin else ""
        reason = f" (dropped: {option.dropped})" if option.dropped else ""
        lines.append(f"{mark} {score} {option.source[:3]} {option.text!r}{where}{reason}")
    return lines
