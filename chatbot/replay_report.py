"""The rich report of `chatbot replay`: a line per transcript, a panel per failure.

Each failing turn shows its file and line, the user's message and the reply,
the failed expectations beside what actually happened, and the reply's trace.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from chatbot.transcripts.report import describe_reply, display_path, format_summary
from chatbot.transcripts.results import ReplayReport, TranscriptResult, TurnResult
from chatbot.transcripts.update import TextUpdate

MARKS = {
    "passed": ("✓", "green"),
    "failed": ("✗", "red"),
    "error": ("!", "magenta"),
    "skipped": ("-", "yellow"),
}


def print_replay(
    report: ReplayReport, *, console: Console, updates: Sequence[TextUpdate] = ()
) -> None:
    """Prints `report` (and the expectations `--update` rewrote) to `console`."""
    console.print(replay_renderable(report, updates=updates))


def replay_renderable(report: ReplayReport, *, updates: Sequence[TextUpdate] = ()) -> Group:
    """The whole report as one renderable."""
    parts: list[RenderableType] = [_line(result) for result in report.results]
    parts += [_panel(result) for result in report.results if result.problems]
    if updates:
        parts.append(_updates(updates))
    style = "bold green" if report.ok else "bold red"
    parts.append(Text(format_summary(report), style=style))
    return Group(*parts)


def _line(result: TranscriptResult) -> Text:
    mark, style = MARKS[result.status]
    line = Text.assemble((f"{mark} ", style), (result.transcript.name, "bold"))
    line.append(f"  {display_path(result.transcript.path)}", style="dim")
    count = len(result.turns)
    line.append(f"  {count} turn{'s' * (count != 1)}", style="dim")
    return line


def _panel(result: TranscriptResult) -> Panel:
    mark, style = MARKS[result.status]
    turns = [_turn(turn, result) for turn in result.problems]
    title = Text(f"{mark} {result.status.upper()} {result.transcript.name}", style=f"bold {style}")
    return Panel(Group(*turns), title=title, title_align="left", border_style=style)


def _turn(turn: TurnResult, result: TranscriptResult) -> Group:
    where = f"{display_path(result.transcript.path)}:{turn.line}"
    parts: list[RenderableType] = [Text(f"turn {turn.index} at {where}", style="bold")]
    if turn.user is not None:
        parts.append(Text.assemble(("user:  ", "dim"), repr(turn.user)))
    if turn.error is not None:
        parts.append(Text.assemble(("error: ", "magenta"), turn.error))
    if turn.reply is not None:
        parts.append(Text.assemble(("reply: ", "dim"), describe_reply(turn.reply)))
    if turn.mismatches:
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, expand=False)
        table.add_column("expected", style="green", overflow="fold")
        table.add_column("actual", style="red", overflow="fold")
        for mismatch in turn.mismatches:
            table.add_row(mismatch.expected, mismatch.actual)
        parts.append(table)
    if turn.reply is not None:
        parts.append(Text("trace:", style="dim"))
        parts += _trace_lines(str(turn.reply.trace))
    return Group(*parts)


def _trace_lines(trace: str) -> list[RenderableType]:
    """The trace, each line indented so that its wrapped part hangs under its start."""
    lines: list[RenderableType] = []
    for line in trace.splitlines():
        indent = 2 + len(line) - len(line.lstrip(" "))
        lines.append(Padding(Text(line.lstrip(" "), style="dim"), (0, 0, 0, indent)))
    lines.append(Text(""))
    return lines


def _updates(updates: Sequence[TextUpdate]) -> Group:
    count = len(updates)
    lines: list[RenderableType] = [
        Text(f"updated {count} text expectation{'s' * (count != 1)}:", style="bold yellow")
    ]
    for update in updates:
        lines.append(Text(f"  {display_path(update.path)}:{update.line}: "
                          f"{update.old!r} -> {update.new!r}"))
    return Group(*lines)
