"""`chatbot chat` when standard input is not a terminal: one reply per input line."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chatbot.bot import Chatbot
from chatbot.cli import main
from chatbot.session import MemoryStore
from chatbot.transcripts import format_report, load_transcripts, replay

FALLBACK = "Sorry, I didn't catch that. Could you say it another way?"


def _chat(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], stdin: str,
          *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(["chat", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def _data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))


def test_each_line_gets_one_reply_line(
    intents_bot_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _chat(monkeypatch, capsys, "hi\n\n   \nmy name is Ann\nwhat?\nbye",
                           str(intents_bot_dir))
    assert (code, err) == (0, "")
    assert out == f"Hello!\nNice to meet you, Ann!\n{FALLBACK}\nGoodbye!\n"


def test_json_prints_one_object_per_reply(
    intents_bot_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _chat(monkeypatch, capsys, "hi\nwhat?\n", str(intents_bot_dir), "--json")
    assert code == 0
    assert [json.loads(line) for line in out.splitlines()] == [
        {"text": "Hello!", "source": "intent", "intent": "greet", "confidence": 1.0},
        {"text": FALLBACK, "source": "fallback", "intent": None, "confidence": 0.0},
    ]


def test_bytes_that_are_not_utf8_and_escapes_are_harmless(
    intents_bot_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(b"my name is Ann\xff\x1b[2J\r\n\x1b]0;x\x07hi\n"))
    monkeypatch.setattr(sys, "stdin", stdin)
    assert main(["chat", str(intents_bot_dir)]) == 0
    assert capsys.readouterr().out == "Nice to meet you, Ann!\nHi Ann, good to see you.\n"


def test_without_a_session_nothing_is_stored(
    intents_bot_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    _chat(monkeypatch, capsys, "hi\n", str(intents_bot_dir))
    assert not (tmp_path / "data").exists()


def test_session_resumes_from_the_store(
    intents_bot_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    store = str(tmp_path / "s.sqlite3")
    args = (str(intents_bot_dir), "--session", "ann", "--store", store, "--json")
    _chat(monkeypatch, capsys, "my name is Ann\n", *args)
    _, out, _ = _chat(monkeypatch, capsys, "hi\n", *args)
    bot = Chatbot.load(intents_bot_dir, store=tmp_path / "s.sqlite3")
    session = bot.session("ann")
    assert (session.slots, session.turn, json.loads(out)["intent"]) == ({"name": "Ann"}, 2, "greet")


def test_record_writes_a_transcript_that_replays(
    intents_bot_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    path = tmp_path / "t.yml"
    code, _, _ = _chat(monkeypatch, capsys, "hi\nmy name is Ann\nbye\n", str(intents_bot_dir),
                       "--record", str(path), "--seed", "3")
    assert code == 0
    [transcript] = load_transcripts([path])
    assert (transcript.seed, len(transcript.turns)) == (3, 3)
    report = replay([transcript], bot=Chatbot.load(intents_bot_dir, store=MemoryStore()))
    assert report.ok, format_report(report)


def test_record_cannot_resume_a_session(
    intents_bot_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    code, out, err = _chat(monkeypatch, capsys, "hi\n", str(intents_bot_dir), "--session", "a",
                           "--record", str(tmp_path / "t.yml"))
    assert (code, out) == (2, "")
    assert err == ("chatbot: error: --record records a new conversation; "
                   "it cannot resume --session\n")


def test_a_missing_bot_directory_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = _chat(monkeypatch, capsys, "hi\n", str(tmp_path / "nope"))
    assert code == 2
    assert err == f"chatbot: error: {tmp_path / 'nope'}: no such bot directory\n"


def test_piped_into_the_command(intents_bot_dir: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "chatbot", "chat", str(intents_bot_dir)],
        input="hi\nbye\n", capture_output=True, text=True, timeout=120,
        env={**os.environ, "XDG_DATA_HOME": str(tmp_path)},
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "Hello!\nGoodbye!\n", "")
