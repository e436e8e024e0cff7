"""Rich output for the REPL: replies styled by source, traces, the attention heatmap.

Everything shown passes through `sanitize` and is built as `rich.text.Text`, so
no escape sequence, control character or bidi override from user text or a
reply reaches the terminal, and no user text is read as rich markup.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from chatbot.dialogue import Reply, Trace, option_lines

if TYPE_CHECKING:
    from chatbot.config import DecodeConfig

MAX_OPTIONS = 12
SOURCE_STYLES = {"intent": "cyan", "neural": "green", "fallback": "yellow", "form": "magenta"}
SHADES = " ░▒▓█"
MAX_CANDIDATES = 5
LABEL_WIDTH = 10
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves, screen clears
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: window titles, hyperlinks
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"  # DCS, SOS, PM, APC strings
    r"|\x1b[ -/]*[0-~]?"  # any other escape
    r"|\x9b[0-?]*[ -/]*[@-~]"  # 8-bit CSI
    r"|\x9d[^\x07\x9c]*(?:\x07|\x9c)?"  # 8-bit OSC
)
_DROPPED = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
"""Controls (C0, C1, DEL), format characters (bidi overrides and isolates,
zero-width), lone surrogates, line and paragraph separators."""


class AttentionLike(Protocol):
    """A generated reply's attention (`chatbot.generator.Generation`)."""

    @property
    def tokens(self) -> tuple[str, ...]: ...

    @property
    def user_tokens(self) -> tuple[str, ...]: ...

    @property
    def attention(self) -> tuple[tuple[float, ...], ...]: ...


def sanitize(text: str) -> str:
    """`text` safe to print: no escape sequences, control, format or bidi characters.

    Line breaks are kept (`\r\n` becomes `\n`); a tab becomes a space.
    """
    text = _ESCAPES.sub("", text.replace("\r\n", "\n").replace("\t", " "))
    return "".join(ch for ch in text if ch == "\n" or unicodedata.category(ch) not in _DROPPED)


def one_line(text: str) -> str:
    """`sanitize`d `text` on one line."""
    return sanitize(text).replace("\n", " ")


def reply_line(reply: Reply, *, name: str) -> Text:
    """`name> text`, the text styled by the reply's source."""
    style = SOURCE_STYLES.get(reply.source, "")
    line = Text(f"{one_line(name)}> ", style=f"bold {style}".strip())
    line.append(sanitize(reply.text), style=style)
    return line


def debug_line(reply: Reply) -> Text:
    """The reply's trace on one line: rule, answer, the neural candidate, the top intents."""
    trace = reply.trace
    answer = reply.source if reply.intent is None else f"intent {reply.intent}"
    parts = [f"[{trace.rule}] {one_line(answer)} {reply.confidence:.3f}"]
    neural = trace.neural
    if neural is not None and reply.source != "neural":
        verdict = "used" if neural.accepted else "rejected"
        flags = f" {','.join(neural.flags)}" if neural.flags else ""
        parts.append(f"neural {neural.confidence:.3f} {verdict}{flags}")
    top = ", ".join(f"{c.intent} {c.score:.3f}" for c in trace.candidates[:2])
    parts.append(f"top: {one_line(top) or 'none'}")
    return Text("  " + " | ".join(parts), style="dim")


def notice(message: str, *, style: str = "dim") -> Text:
    """A status line (not a reply)."""
    return Text(sanitize(message), style=style)


def problem(message: str) -> Text:
    """A line saying what went wrong and what to do instead."""
    return Text(sanitize(message), style="red")


def why(reply: Reply, *, generation: AttentionLike | None) -> RenderableType:
    """The reply's trace: candidates, scores, thresholds, steps, the deciding rule,
    and the heatmap of the neural candidate's attention over the user's tokens.
    """
    trace = reply.trace
    answer = reply.source if reply.intent is None else f"intent {reply.intent}"
    parts: list[RenderableType] = [
        Text(f"input: {one_line(trace.text)}"),
        Text(f"reply: {one_line(answer)}, confidence {reply.confidence:.3f}, "
             f"decided by {trace.rule}"),
        _candidates(trace),
        _neural(trace),
        _policy(trace),
        Text("steps:\n" + "\n".join(f"  {one_line(step)}" for step in trace.steps)),
    ]
    if generation is not None and generation.tokens and generation.attention:
        parts.append(heatmap(generation))
    return Group(*parts)


def _candidates(trace: Trace) -> RenderableType:
    if not trace.candidates:
        return Text("candidates: none")
    table = Table(box=None, padding=(0, 1), pad_edge=False, show_edge=False)
    for column, justify in (("intent", "left"), ("score", "right"), ("via", "left"),
                            ("note", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for candidate in trace.candidates[:MAX_CANDIDATES]:
        table.add_row(
            Text(one_line(candidate.intent)),
            Text(f"{candidate.score:.3f}"),
            Text(one_line(candidate.via)),
            Text(one_line(candidate.note)),
        )
    hidden = len(trace.candidates) - MAX_CANDIDATES
    title = Text("candidates:" + (f" (best {MAX_CANDIDATES} of {len(trace.candidates)})"
                                  if hidden > 0 else ""))
    return Group(title, table)


def _neural(trace: Trace) -> Text:
    neural = trace.neural
    if neural is None:
        return Text("neural: not asked")
    verdict = "used" if neural.accepted else "not used"
    flags = f", flags {', '.join(neural.flags)}" if neural.flags else ""
    line = Text("neural: ")
    line.append(repr(one_line(neural.text)), style=SOURCE_STYLES["neural"])
    line.append(f" confidence {neural.confidence:.3f}{flags} ({verdict})")
    if neural.options:
        line.append(f"\nranker {neural.ranker} chose a {neural.source} reply among "
                    f"{len(neural.options)} candidates (* won; gen/ret: generated/retrieved):")
        for option in option_lines(neural.options)[:MAX_OPTIONS]:
            line.append("\n  " + one_line(option))
        hidden = len(neural.options) - MAX_OPTIONS
        if hidden > 0:
            line.append(f"\n  ... {hidden} more")
    return line


def _policy(trace: Trace) -> Text:
    p = trace.policy
    return Text(
        f"policy: {' > '.join(p.order)}\n"
        f"  intent_threshold {p.intent_threshold}, ambiguity_margin {p.ambiguity_margin}, "
        f"neural_min_confidence {p.neural_min_confidence}"
    )


def heatmap(generation: AttentionLike) -> Text:
    """Attention of each reply token (rows) over the user's tokens (columns), as shades.

    Each row is scaled to its own largest weight; the row ends with the user
    token it attends to most.
    """
    users = [_token(t) for t in generation.user_tokens]
    out = Text("attention (rows: reply tokens, columns: your tokens, darker = more):\n")
    indent = " " * (LABEL_WIDTH + 1)
    if len(users) > 10:
        out.append(indent + "".join(f"{i // 10 or ' '} " for i in range(len(users))).rstrip()
                   + "\n")
    out.append(indent + "".join(f"{i % 10} " for i in range(len(users))).rstrip() + "\n")
    for token, row in zip(generation.tokens, generation.attention, strict=False):
        weights = list(row[: len(users)])
        out.append(f"{_token(token)[:LABEL_WIDTH]:<{LABEL_WIDTH}} ")
        out.append("".join(2 * _shade(w, max(weights, default=0.0)) for w in weights),
                   style="magenta")
        if weights:
            best = max(range(len(weights)), key=weights.__getitem__)
            out.append(f" -> {users[best]} {weights[best]:.2f}")
        out.append("\n")
    out.append("tokens: " + "  ".join(f"{i}={t}" for i, t in enumerate(users)))
    return out


def _token(token: str) -> str:
    shown = one_line(token).strip()
    return shown if shown else "_"


def _shade(weight: float, row_max: float) -> str:
    if row_max <= 0 or not math.isfinite(weight):
        return SHADES[0]
    return SHADES[max(0, min(len(SHADES) - 1, round((len(SHADES) - 1) * weight / row_max)))]


def help_table(commands: Sequence[tuple[str, str]], *, keys: Sequence[tuple[str, str]]) -> Group:
    """The slash commands and the keys, each with what it does."""
    parts: list[RenderableType] = []
    for title, rows in (("commands", commands), ("keys", keys)):
        table = Table(box=None, padding=(0, 1), pad_edge=False, show_edge=False,
                      show_header=False)
        table.add_column(style="bold")
        table.add_column()
        for usage, meaning in rows:
            table.add_row(Text(usage), Text(meaning))
        parts += [Text(f"{title}:"), table]
    return Group(*parts)


def decode_summary(decode: DecodeConfig | None, *, ranked: bool = True) -> str:
    """`greedy`, `beam 5`, `sample t=0.7 k=40 p=0.9`, then the ranker and what it
    retrieves (`greedy, ranker model, 20 retrieved`); `intents only` without a model.
    `ranked`: whether the model has a fitted ranker (without one, `model` generates)."""
    if decode is None:
        return "intents only"
    if decode.strategy == "beam":
        search = f"beam {decode.beam_size}"
    elif decode.strategy == "sample":
        search = f"sample t={decode.temperature:g} k={decode.top_k} p={decode.top_p:g}"
    else:
        search = "greedy"
    if decode.ranker == "none" or decode.ranker == "model" and not ranked:
        return search
    return f"{search}, ranker {decode.ranker}, {decode.retrieve} retrieved"


def toolbar(*, bot: str, decode: str, session: str, turns: int, flags: Sequence[str] = ()) -> str:
    """The bottom toolbar's text: bot, decoding, session, turn count, then `flags`."""
    fields = [one_line(bot), decode, f"session {one_line(session)}", f"turn {turns}"]
    return " " + " | ".join([*fields, *(one_line(f) for f in flags)]) + " "
