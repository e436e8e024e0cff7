"""The REPL over the tiny trained model: /why's heatmap, /set, resuming the hidden state."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import CTRL_D, ReplRun
from rich.console import Console

from chatbot.bot import Chatbot
from chatbot.cli import main
from chatbot.render import heatmap
from chatbot.repl.chat import Chat
from chatbot.session import MemoryStore
from chatbot.transcripts import format_report, load_transcripts, replay

OpenChat = Callable[..., Chat]
RunRepl = Callable[..., ReplRun]
LINES = ["what do you do for fun?", "i like hiking and reading", "was it good?"]


def _render(renderable: object) -> str:
    console = Console(file=io.StringIO(), width=80, color_system=None)
    console.print(renderable)
    assert isinstance(console.file, io.StringIO)
    return console.file.getvalue()


def _json_replies(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                  lines: list[str], *args: str) -> list[dict[str, object]]:
    monkeypatch.setattr(sys, "stdin", io.StringIO("".join(f"{line}\n" for line in lines)))
    assert main(["chat", *args, "--json"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_why_shows_the_attention_of_the_neural_reply(
    tiny_bot_dir: Path, open_test_chat: OpenChat, run_repl: RunRepl
) -> None:
    run = run_repl(open_test_chat(tiny_bot_dir), f"{LINES[0]}\r/why\r" + CTRL_D)
    reply, generation = run.repl.last_reply, run.repl.last_generation
    assert reply is not None and reply.source == "neural" and generation is not None
    assert generation.text == reply.text
    assert run.lines[0] == f"tiny> {reply.text}"
    assert "  neural: confidence" in run.output
    assert _render(heatmap(generation)) in run.output
    rows = [line for line in run.lines if " -> " in line]
    assert len(rows) == len(generation.tokens) > 0


def test_set_changes_the_decoding_and_explains_bad_values(
    tiny_bot_dir: Path, open_test_chat: OpenChat, run_repl: RunRepl
) -> None:
    chat = open_test_chat(tiny_bot_dir)
    keys = ("/set\r/set beam=3\r/set beam=0\r/set temperature=hot\r/set tmperature=1\r"
            "/set strategy\r/set strategy=greedy temperature=0.5\r" + CTRL_D)
    run = run_repl(chat, keys)
    assert run.lines == [
        "decoding: strategy=greedy beam=5 temperature=1 top_k=0 top_p=1",
        "decoding: beam 3",
        "/set: decode.beam_size must be in [1, 64] (got 0)",
        "/set: decode.temperature expects a finite number, got 'hot'",
        "/set: unknown key 'tmperature' (did you mean temperature?); keys: strategy,",
        "beam, temperature, top_k, top_p",
        "/set expects key=value, e.g. /set temperature=0.7; keys: strategy, beam,",
        "temperature, top_k, top_p",
        "decoding: greedy",
    ]
    assert (chat.decode.strategy, chat.decode.beam_size, chat.decode.temperature) == (
        "greedy", 3, 0.5)


def test_a_resumed_session_continues_with_its_hidden_state(
    tiny_bot_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    store = str(tmp_path / "sessions.sqlite3")
    bot = str(tiny_bot_dir)
    lines = [*LINES, "do you like music?"]
    whole = _json_replies(monkeypatch, capsys, lines, bot, "--store", store, "--session", "one")
    _json_replies(monkeypatch, capsys, lines[:2], bot, "--store", store, "--session", "two")
    resumed = _json_replies(monkeypatch, capsys, lines[2:], bot, "--store", store, "--session",
                            "two")
    fresh = _json_replies(monkeypatch, capsys, lines[2:], bot, "--store", store, "--session",
                          "three")
    assert any(reply["source"] == "neural" for reply in whole[2:])
    assert resumed == whole[2:]
    assert fresh != whole[2:]


def test_a_beam_recording_replays(
    tiny_bot_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    path = tmp_path / "beam.yml"
    _json_replies(monkeypatch, capsys, LINES, str(tiny_bot_dir), "--decode", "beam", "--beam",
                  "3", "--record", str(path))
    [transcript] = load_transcripts([path])
    assert transcript.decode == {"strategy": "beam", "beam_size": 3}
    report = replay([transcript], bot=Chatbot.load(tiny_bot_dir, store=MemoryStore()))
    assert report.ok, format_report(report)


def test_an_invalid_decoding_option_exits_2(
    tiny_bot_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("hi\n"))
    assert main(["chat", str(tiny_bot_dir), "--beam", "0"]) == 2
    assert capsys.readouterr().err == (
        "chatbot: error: decode.beam_size must be in [1, 64] (got 0)\n"
    )
