"""What a replay found: per turn, per transcript, and for the whole run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from chatbot.dialogue import Reply, Trace
from chatbot.transcripts.matchers import Mismatch
from chatbot.transcripts.schema import Transcript

Status = Literal["passed", "failed", "error", "skipped"]
STATUSES: tuple[Status, ...] = ("passed", "failed", "error", "skipped")


@dataclass(frozen=True)
class TurnResult:
    """One replayed turn.

    Attributes:
        index: the turn's 1-based position in its transcript.
        line: the line where the turn starts.
        user: what the user said (None for a turn without `user`).
        reply: the bot's reply (None when nothing was said, or on an error).
        mismatches: the expectations that did not hold.
        error: why the turn could not be played (e.g. a session that does not restore).
    """

    index: int
    line: int
    user: str | None
    reply: Reply | None = None
    mismatches: tuple[Mismatch, ...] = ()
    error: str | None = None

    @property
    def passed(self) -> bool:
        return not self.mismatches and self.error is None

    @property
    def trace(self) -> Trace | None:
        return None if self.reply is None else self.reply.trace

    def to_dict(self, *, trace: bool = False) -> dict[str, Any]:
        """JSON-ready; `trace` adds the reply's trace."""
        reply: dict[str, Any] | None = None
        if self.reply is not None:
            r = self.reply
            reply = {"text": r.text, "source": r.source, "intent": r.intent,
                     "confidence": round(r.confidence, 6)}
            if trace:
                reply["trace"] = r.trace.to_dict()
        return {
            "index": self.index,
            "line": self.line,
            "user": self.user,
            "passed": self.passed,
            "reply": reply,
            "mismatches": [asdict(m) for m in self.mismatches],
            "error": self.error,
        }


@dataclass(frozen=True)
class TranscriptResult:
    """One replayed transcript.

    Attributes:
        transcript: what was replayed.
        status: `passed`, `failed` (an expectation did not hold), `error` (a turn
            could not be played) or `skipped` (stopped early by `fail_fast`).
        turns: the turns played, in order.
        duration_s: this transcript's share of the replay's time.
    """

    transcript: Transcript
    status: Status
    turns: tuple[TurnResult, ...]
    duration_s: float = 0.0

    @property
    def problems(self) -> tuple[TurnResult, ...]:
        """The turns that failed or could not be played."""
        return tuple(turn for turn in self.turns if not turn.passed)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; failing turns carry their trace."""
        return {
            "path": str(self.transcript.path),
            "name": self.transcript.name,
            "status": self.status,
            "duration_s": round(self.duration_s, 6),
            "turns": [t.to_dict(trace=not t.passed) for t in self.turns],
        }


@dataclass(frozen=True)
class ReplayReport:
    """A replay of several transcripts against one or more bots.

    Attributes:
        results: one per transcript, in the order given.
        duration_s: the whole replay's wall time, model loading excluded.
        bots: the names of the bots replayed against.
    """

    results: tuple[TranscriptResult, ...] = ()
    duration_s: float = 0.0
    bots: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """True when every transcript passed."""
        return all(r.status == "passed" for r in self.results)

    def count(self, status: Status) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def turns(self) -> int:
        """Turns played in all."""
        return sum(len(r.turns) for r in self.results)

    def merge(self, other: ReplayReport) -> ReplayReport:
        """Both reports' results, with times added."""
        bots = tuple(dict.fromkeys(self.bots + other.bots))
        return ReplayReport(self.results + other.results, self.duration_s + other.duration_s,
                            bots)

    def replace(self, newer: ReplayReport) -> ReplayReport:
        """This report with the results of transcripts `newer` replayed again swapped in."""
        by_path = {r.transcript.path: r for r in newer.results}
        results = tuple(by_path.get(r.transcript.path, r) for r in self.results)
        return ReplayReport(results, self.duration_s + newer.duration_s, self.bots)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary and results."""
        summary: dict[str, Any] = {s: self.count(s) for s in STATUSES}
        summary.update(transcripts=len(self.results), turns=self.turns,
                       duration_s=round(self.duration_s, 6), ok=self.ok)
        return {
            "version": 1,
            "bots": list(self.bots),
            "summary": summary,
            "transcripts": [r.to_dict() for r in self.results],
        }
