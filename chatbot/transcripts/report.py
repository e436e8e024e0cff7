"""Plain-text replay reports: what the pytest plugin prints, and the base of the rich one.

A failing turn shows where it is (file and line), what the user said, the reply,
the expectations that failed beside what actually happened, and the reply's
trace: the intents' scores, the neural candidate's confidence, the thresholds
and the rule that decided.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from chatbot.dialogue import Reply
from chatbot.transcripts.matchers import Mismatch
from chatbot.transcripts.results import ReplayReport, TranscriptResult, TurnResult

INDENT = "  "


def display_path(path: str | Path) -> str:
    """`path` relative to the working directory when it is below it."""
    absolute = os.path.abspath(path)
    relative = os.path.relpath(absolute)
    return absolute if relative.startswith(os.pardir) else relative


def describe_reply(reply: Reply) -> str:
    """`'Hello!' (intent greet, confidence 1.000)`: the reply and where it came from."""
    if reply.source == "intent":
        origin = f"intent {reply.intent}, confidence {reply.confidence:.3f}"
    elif reply.source == "neural":
        origin = f"neural, confidence {reply.confidence:.3f}"
    else:
        origin = reply.source
    return f"{reply.text!r} ({origin})"


def side_by_side(mismatches: tuple[Mismatch, ...]) -> list[str]:
    """The mismatches as two aligned columns under an `expected | actual` header."""
    width = max(len("expected"), *(len(m.expected) for m in mismatches))
    rows = [("expected", "actual")] + [(m.expected, m.actual) for m in mismatches]
    return [f"{left:<{width}} | {right}" for left, right in rows]


def format_turn(turn: TurnResult, result: TranscriptResult) -> list[str]:
    """The lines describing one failing (or unplayable) turn."""
    where = f"{display_path(result.transcript.path)}:{turn.line}"
    lines = [f"turn {turn.index} at {where}"]
    body = []
    if turn.user is not None:
        body.append(f"user:  {turn.user!r}")
    if turn.error is not None:
        body.append(f"error: {turn.error}")
    if turn.reply is not None:
        body.append(f"reply: {describe_reply(turn.reply)}")
    if turn.mismatches:
        body += ["", *side_by_side(turn.mismatches)]
    if turn.reply is not None:
        body += ["", "trace:", *(INDENT + line for line in str(turn.reply.trace).splitlines())]
    return lines + [INDENT + line if line else "" for line in body]


def format_result(result: TranscriptResult) -> str:
    """A transcript's heading, and each of its failing turns."""
    heading = (f"{result.status.upper()} {result.transcript.name} "
               f"({display_path(result.transcript.path)})")
    lines = [heading]
    for turn in result.problems:
        lines += [INDENT + line if line else "" for line in format_turn(turn, result)]
    return "\n".join(lines)


def format_summary(report: ReplayReport) -> str:
    """`3 transcripts, 12 turns: 2 passed, 1 failed in 0.42s`."""
    counts = [f"{report.count('passed')} passed", f"{report.count('failed')} failed"]
    counts += [f"{report.count(s)} {s}" for s in ("error", "skipped") if report.count(s)]
    return (f"{_plural(len(report.results), 'transcript')}, {_plural(report.turns, 'turn')}: "
            f"{', '.join(counts)} in {report.duration_s:.2f}s")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"


def format_report(report: ReplayReport) -> str:
    """Every transcript that did not pass, then the summary."""
    blocks = [format_result(r) for r in report.results if r.status != "passed"]
    return "\n\n".join([*blocks, format_summary(report)])


MARKS = {"passed": "✓", "failed": "✗", "error": "!", "skipped": "-"}


def format_plain(report: ReplayReport, *, updated: Sequence[str] = ()) -> str:
    """`chatbot replay`'s report as plain text, for output that is not a terminal:
    one line per transcript, each failure as the pytest plugin reports it
    (`format_result`), the rewritten expectations, the summary; never wrapped."""
    lines = []
    for result in report.results:
        count = len(result.turns)
        lines.append(f"{MARKS[result.status]} {result.transcript.name}  "
                     f"{display_path(result.transcript.path)}  "
                     f"{count} turn{'s' * (count != 1)}")
    blocks = [format_result(r) for r in report.results if r.problems]
    if updated:
        blocks.append("\n".join([f"updated {len(updated)} text expectation"
                                 f"{'s' * (len(updated) != 1)}:", *updated]))
    return "\n\n".join(["\n".join(lines), *blocks, format_summary(report)])
