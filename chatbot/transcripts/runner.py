"""Replays transcripts against a bot and checks every expectation.

Transcripts replay in lockstep: turn k of up to `batch_size` transcripts is
answered by one batched decode, so a hundred transcripts cost little more than
one. Each transcript has its own session (see `replay_session_id`) in a store
that keeps nothing, so a replay never touches the bot's sessions, and decoding
is greedy unless the transcript's `decode` says otherwise.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from chatbot.bot import Chatbot
from chatbot.config import DecodeConfig
from chatbot.dialogue import Reply
from chatbot.errors import ChatbotError
from chatbot.session import Session, SessionStore, StoredTail
from chatbot.transcripts.matchers import Mismatch, Observation
from chatbot.transcripts.results import ReplayReport, Status, TranscriptResult, TurnResult
from chatbot.transcripts.schema import Transcript, Turn

DEFAULT_BATCH_SIZE = 64
Clock = Callable[[], float]


class NullStore(SessionStore):
    """A session store that keeps nothing: replayed sessions live in memory only."""

    def load(self, session_id: str) -> dict[str, Any] | None:
        return None

    def load_since(self, session_id: str, start: int) -> StoredTail | None:
        return StoredTail(start, [], None)  # every session is up to date with nothing

    def save(self, session_id: str, *, start: int, events: Sequence[dict[str, Any]],
             state: str | None) -> None:
        return None

    def delete(self, session_id: str) -> None:
        return None

    def ids(self) -> list[str]:
        return []


def replay(
    transcripts: Iterable[Transcript],
    *,
    bot: Chatbot,
    fail_fast: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    clock: Clock = time.perf_counter,
) -> ReplayReport:
    """Replays `transcripts` against `bot` (its intents, model and policy).

    Args:
        transcripts: the transcripts, reported in this order.
        bot: the bot; its store and sessions are left alone.
        fail_fast: stop at the first round with a failure; transcripts not
            finished by then are `skipped`.
        batch_size: the most transcripts replayed in lockstep.
        clock: seconds, for the durations reported.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive (got {batch_size})")
    items = list(transcripts)
    start = clock()
    results: dict[int, TranscriptResult] = {}
    stopped = False
    for settings, members in _by_decode(items).items():
        replay_bot = replay_bot_for(bot, decode=json.loads(settings))
        for first in range(0, len(members), batch_size):
            runs = [_Run(items[i], replay_bot) for i in members[first : first + batch_size]]
            if not stopped:
                stopped = _lockstep(runs, replay_bot, fail_fast=fail_fast, clock=clock)
            for i, run in zip(members[first : first + batch_size], runs, strict=True):
                results[i] = run.result()
    ordered = tuple(results[i] for i in range(len(items)))
    return ReplayReport(ordered, clock() - start, (bot.name,))


def replay_bot_for(bot: Chatbot, *, decode: dict[str, Any] | None = None) -> Chatbot:
    """`bot`'s intents and model with a store that keeps nothing and replay's decoding.

    Decoding is the bot's, made greedy, then changed by `decode` (a transcript's settings).
    """
    settings = None
    if bot.generator is not None:
        base = bot.dialogue.decode or getattr(bot.generator, "decode", None)
        if not isinstance(base, DecodeConfig):
            base = DecodeConfig()
        settings = base.replace(**{"strategy": "greedy", **(decode or {})})
    replay = Chatbot(bot.intents, generator=bot.generator, store=NullStore(), decode=settings,
                     name=bot.name, actions=bot.actions)
    replay.dialogue.clock = bot.dialogue.clock
    return replay


def _by_decode(items: Sequence[Transcript]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for i, transcript in enumerate(items):
        groups.setdefault(json.dumps(transcript.decode, sort_keys=True), []).append(i)
    return groups


def _lockstep(runs: list[_Run], bot: Chatbot, *, fail_fast: bool, clock: Clock) -> bool:
    """Plays the runs' turns round by round; True when `fail_fast` stopped them."""
    while active := [run for run in runs if not run.done]:
        began = clock()
        sending = [run for run in active if run.prepare()]
        texts = [run.message() for run in sending]
        replies = bot.send_batch(zip([run.session for run in sending], texts, strict=True))
        for run, reply in zip(sending, replies, strict=True):
            run.finish(reply)
        share = (clock() - began) / len(active)
        for run in active:
            run.seconds += share
        if fail_fast and any(run.status() in ("failed", "error") for run in runs):
            return True
    return False


class _Run:
    """One transcript being replayed: its session, position and results so far."""

    def __init__(self, transcript: Transcript, bot: Chatbot) -> None:
        self.transcript = transcript
        self.bot = bot
        self.session = bot.session(transcript.session_id)
        self.position = 0
        self.turns: list[TurnResult] = []
        self.snapshots: dict[str, dict[str, Any]] = {}
        self.seconds = 0.0
        self.broken = False

    @property
    def done(self) -> bool:
        return self.broken or self.position >= len(self.transcript.turns)

    @property
    def turn(self) -> Turn:
        return self.transcript.turns[self.position]

    def message(self) -> str:
        assert self.turn.user is not None
        return self.turn.user

    def prepare(self) -> bool:
        """Resets and restores as the turn says; True when it has a message to send."""
        turn = self.turn
        step = "reset"
        try:
            if turn.reset:
                self.session.reset()
            step = "restore"
            if turn.restore is not None:
                self.session = self.bot.restore(self.snapshots[turn.restore])
            if turn.restore_file is not None:
                data = json.loads(turn.restore_file.read_text(encoding="utf-8"))
                self.session = self.bot.restore(data)
        except (ChatbotError, OSError, ValueError) as exc:
            self.turns.append(TurnResult(turn.index, turn.line, turn.user,
                                         error=f"cannot {step}: {exc}"))
            self.broken = True
            return False
        if turn.user is None:
            self.finish(None)
            return False
        return True

    def finish(self, reply: Reply | None) -> None:
        """Checks the turn's expectations on `reply` and the session, then saves if asked."""
        turn = self.turn
        seen = _observe(reply, self.session)
        mismatches: list[Mismatch] = []
        if turn.bot is not None:
            mismatches += turn.bot.mismatches(seen)
        if turn.state is not None:
            mismatches += turn.state.mismatches(seen)
        if turn.save is not None:
            self.snapshots[turn.save] = self.session.to_dict()
        self.turns.append(TurnResult(turn.index, turn.line, turn.user, reply, tuple(mismatches)))
        self.position += 1

    def status(self) -> Status:
        if any(t.error is not None for t in self.turns):
            return "error"
        if any(t.mismatches for t in self.turns):
            return "failed"
        return "passed" if self.done else "skipped"

    def result(self) -> TranscriptResult:
        return TranscriptResult(self.transcript, self.status(), tuple(self.turns), self.seconds)


def _observe(reply: Reply | None, session: Session) -> Observation:
    slots, contexts = dict(session.slots), dict(session.contexts)
    if reply is None:
        return Observation("", "none", None, 0.0, slots, contexts, form=session.form)
    return Observation(reply.text, reply.source, reply.intent, reply.confidence, slots, contexts,
                       reply.action, session.form)
