"""`chatbot.render`: sanitizing, reply lines, the debug line, the heatmap, the toolbar."""

from __future__ import annotations

import io
from dataclasses import dataclass

import pytest
from rich.console import Console

from chatbot.decoding import DecodeConfig
from chatbot.dialogue import NeuralCandidate, Reply, ReplyOption, Trace
from chatbot.intents.decide import Candidate
from chatbot.intents.schema import Policy
from chatbot.render import (
    debug_line,
    decode_summary,
    heatmap,
    one_line,
    reply_line,
    sanitize,
    toolbar,
    why,
)


@dataclass(frozen=True)
class FakeGeneration:
    tokens: tuple[str, ...]
    user_tokens: tuple[str, ...]
    attention: tuple[tuple[float, ...], ...]


def _render(renderable: object, *, color: bool = False, width: int = 80) -> str:
    console = Console(file=io.StringIO(), width=width, color_system="truecolor" if color else None,
                      force_terminal=color)
    console.print(renderable)
    assert isinstance(console.file, io.StringIO)
    return console.file.getvalue()


def _reply(text: str, *, source: str = "intent", neural: NeuralCandidate | None = None) -> Reply:
    trace = Trace(
        text="hi there",
        candidates=(Candidate("greet", 0.91, "examples", note="nearest example 'hi'"),
                    Candidate("goodbye", 0.12, "examples")),
        neural=neural,
        policy=Policy(),
        steps=("match: greet (0.910) is the best intent", "override: answered with intent greet"),
        rule="override",
    )
    intent = "greet" if source == "intent" else None
    return Reply(text, source, intent, 0.91 if intent else 0.0, trace)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain text", "plain text"),
        ("\x1b[31mred\x1b[0m", "red"),
        ("\x1b]0;new title\x07after", "after"),
        ("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\", "link"),
        ("bell\x07 back\x08space\r", "bell backspace"),
        ("c1\x9b31m csi \x85next", "c1 csi next"),
        ("evil\u202egnp.exe\u2066x\u2069", "evilgnp.exex"),
        ("two\nlines", "two\nlines"),
        ("tab\there", "tab here"),
        ("  indented\r\n  kept", "  indented\n  kept"),
    ],
)
def test_sanitize_strips_escapes_controls_and_bidi(raw: str, shown: str) -> None:
    assert sanitize(raw) == shown


def test_one_line_joins_lines() -> None:
    assert one_line("a\nb\x1b[2J") == "a b"


def test_reply_line_prints_no_escape_from_the_reply_even_in_colour() -> None:
    reply = _reply("\x1b]0;pwned\x07hi [bold]there[/bold] \x1b[2J\u202e!")
    plain = _render(reply_line(reply, name="bot\x1b[5m"))
    assert plain == "bot> hi [bold]there[/bold] !\n"
    coloured = _render(reply_line(reply, name="bot"), color=True)
    assert "pwned" not in coloured and "\x1b[2J" not in coloured and "\u202e" not in coloured
    assert "[bold]there[/bold]" in coloured


def test_reply_sources_have_their_own_colours() -> None:
    styles = {
        source: _render(reply_line(_reply("x", source=source), name="b"), color=True)
        for source in ("intent", "neural", "fallback")
    }
    assert len(set(styles.values())) == 3


def test_debug_line() -> None:
    neural = NeuralCandidate("hi hi hi", 0.1234, ("loop",), accepted=False)
    line = _render(debug_line(_reply("Hello!", neural=neural)), width=120)
    assert line == (
        "  [override] intent greet 0.910 | neural 0.123 rejected loop | "
        "top: greet 0.910, goodbye 0.120\n"
    )


def test_why_shows_candidates_thresholds_steps_and_rule() -> None:
    neural = NeuralCandidate("hello you", 0.25, (), accepted=False)
    lines = [line.rstrip() for line in _render(why(_reply("Hello!", neural=neural),
                                                   generation=None)).splitlines()]
    assert lines == [
        "input: hi there",
        "reply: intent greet, confidence 0.910, decided by override",
        "candidates:",
        "intent   score  via       note",
        "greet    0.910  examples  nearest example 'hi'",
        "goodbye  0.120  examples",
        "neural: 'hello you' confidence 0.250 (not used)",
        "policy: override > neural > intents > fallback",
        "  intent_threshold 0.6, ambiguity_margin 0.1, neural_min_confidence 0.2",
        "steps:",
        "  match: greet (0.910) is the best intent",
        "  override: answered with intent greet",
    ]


def test_heatmap_shades_each_row_by_its_largest_weight() -> None:
    generation = FakeGeneration(
        tokens=("hello", " there"),
        user_tokens=("hi", " you", "<eos>"),
        attention=((0.7, 0.2, 0.1), (0.0, 0.5, 0.5)),
    )
    assert _render(heatmap(generation)) == (
        "attention (rows: reply tokens, columns: your tokens, darker = more):\n"
        "           0 1 2\n"
        "hello      ██░░░░ -> hi 0.70\n"
        "there        ████ -> you 0.50\n"
        "tokens: 0=hi  1=you  2=<eos>\n"
    )


def test_heatmap_numbers_columns_past_ten_on_two_rows() -> None:
    users = tuple(f"t{i}" for i in range(12))
    generation = FakeGeneration(("x",), users, ((0.0,) * 11 + (1.0,),))
    lines = _render(heatmap(generation)).splitlines()
    assert lines[1] == " " * 11 + "                    1 1"
    assert lines[2] == " " * 11 + "0 1 2 3 4 5 6 7 8 9 0 1"
    assert lines[3] == "x          " + "  " * 11 + "██ -> t11 1.00"


def test_heatmap_sanitizes_tokens() -> None:
    generation = FakeGeneration(("\x1b[2J",), ("\x1b]0;t\x07a",), ((1.0,),))
    out = _render(heatmap(generation))
    assert "\x1b" not in out and "-> a 1.00" in out and "_" in out


def test_decode_summary() -> None:
    assert decode_summary(None) == "intents only"
    assert decode_summary(DecodeConfig()) == "greedy, ranker model, 20 retrieved"
    assert decode_summary(DecodeConfig(ranker="none")) == "greedy"
    assert decode_summary(DecodeConfig(), ranked=False) == "greedy"
    assert decode_summary(DecodeConfig(strategy="beam", beam_size=4, ranker="none")) == "beam 4"
    assert decode_summary(DecodeConfig(ranker="mmi", retrieve=5), ranked=False) == (
        "greedy, ranker mmi, 5 retrieved"
    )
    sample = DecodeConfig(strategy="sample", temperature=0.7, top_k=40, top_p=0.9, ranker="none")
    assert decode_summary(sample) == "sample t=0.7 k=40 p=0.9"


def test_toolbar() -> None:
    text = toolbar(bot="my\x1b[1mbot", decode="greedy", session="s1", turns=3, flags=["debug"])
    assert text == " mybot | greedy | session s1 | turn 3 | debug "


def test_why_lists_the_reply_candidates_best_first_with_dropped_ones_last() -> None:
    options = (
        ReplyOption("nope", "retrieved", 1.5, similarity=0.4, origin="conversation c7, turn 3"),
        ReplyOption("i have a dog", "generated", None, dropped="degenerate: echo"),
        ReplyOption("yes, two cats", "retrieved", 4.25, similarity=0.8,
                    origin="conversation c2, turn 5"),
    )
    neural = NeuralCandidate("yes, two cats", 0.61, (), accepted=True, source="retrieved",
                             ranker="model", options=options)
    lines = [line.rstrip() for line in _render(why(_reply("yes, two cats", neural=neural),
                                                   generation=None), width=120).splitlines()]
    start = lines.index("neural: 'yes, two cats' confidence 0.610 (used)")
    assert lines[start + 1 : start + 5] == [
        "ranker model chose a retrieved reply among 3 candidates (* won; gen/ret: "
        "generated/retrieved):",
        "  *   4.250 ret 'yes, two cats' [conversation c2, turn 5]",
        "      1.500 ret 'nope' [conversation c7, turn 3]",
        "         -- gen 'i have a dog' (dropped: degenerate: echo)",
    ]
