"""`chatbot replay`: exit codes, the report, --json, --junit, --fail-fast, --update."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from transcript_helpers import WriteTranscript

from chatbot.cli import main

GOOD = "version: 1\nname: good\nturns:\n  - user: hello\n    bot: Hello!\n"
BAD = "version: 1\nname: bad\nturns:\n  - user: hello\n    bot: Bye!\n"


def test_passing_transcripts_exit_0(
    write: WriteTranscript, bot_dir: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write("good", GOOD)
    monkeypatch.chdir(bot_dir)
    assert main(["replay"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "✓ good  transcripts/good.yml  1 turn"
    assert out[-1].startswith("1 transcript, 1 turn: 1 passed, 0 failed in ")


def test_a_failure_exits_1_with_json_and_junit(
    write: WriteTranscript, bot_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write("good", GOOD)
    bad = write("bad", BAD)
    junit = tmp_path / "junit.xml"
    assert main(["replay", str(bot_dir / "transcripts"), "--json", "--junit", str(junit)]) == 1
    data = json.loads(capsys.readouterr().out)
    assert [(t["name"], t["status"]) for t in data["transcripts"]] == [
        ("bad", "failed"), ("good", "passed"),
    ]
    assert data["bots"] == ["testbot"]
    suite = ET.parse(junit).getroot()
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    assert main(["replay", str(bad)]) == 1
    assert "text 'Bye!'" in capsys.readouterr().out


def test_fail_fast_skips_the_rest(
    write: WriteTranscript, bot_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write("a", BAD)
    write("b", GOOD.replace("turns:\n", "turns:\n  - user: hi\n"))
    assert main(["replay", "--fail-fast", "--json", str(bot_dir / "transcripts")]) == 1
    statuses = [t["status"] for t in json.loads(capsys.readouterr().out)["transcripts"]]
    assert statuses == ["failed", "skipped"]


def test_update_rewrites_and_passes(
    write: WriteTranscript, bot_dir: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = write("bad", BAD)
    monkeypatch.chdir(bot_dir)
    assert main(["replay", "--update", "transcripts/bad.yml"]) == 0
    assert path.read_text() == GOOD.replace("good", "bad")
    assert "  transcripts/bad.yml:4: 'Bye!' -> 'Hello!'\n" in capsys.readouterr().out


def test_invalid_files_and_paths_exit_2(
    write: WriteTranscript, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write("invalid", "version: 1\nturns:\n  - usr: hello\n")
    assert main(["replay", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == (f"chatbot: error: {path}:3:5: unknown key 'usr' (did you mean 'user'?)\n"
                   f"{path}:3:5: a turn needs 'user', 'reset', 'restore' or 'save'\n")
    assert main(["replay", str(tmp_path / "missing")]) == 2
    assert "missing: no such file or folder" in capsys.readouterr().err


def test_a_file_outside_transcripts_uses_the_bot_given(
    bot_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "elsewhere.yml"
    path.write_text(GOOD)
    assert main(["replay", "--bot", str(bot_dir), "--json", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["summary"]["passed"] == 1


def test_a_bot_directory_replays_its_transcripts_with_that_bot(
    write: WriteTranscript, bot_dir: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    write("good", GOOD)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["replay", str(bot_dir), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["bots"] == ["testbot"]
    assert [(t["name"], t["status"]) for t in data["transcripts"]] == [("good", "passed")]


def test_a_bot_directory_without_transcripts_is_a_usage_error(
    bot_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", str(bot_dir)]) == 2
    assert capsys.readouterr().err == (
        f"chatbot: error: {bot_dir / 'transcripts'}: no transcript files (*.yml) here\n"
    )
    (bot_dir / "transcripts").rmdir()
    assert main(["replay", str(bot_dir)]) == 2
    assert capsys.readouterr().err == (
        f"chatbot: error: {bot_dir}: a bot directory without a transcripts/ folder\n"
    )


def test_piped_output_shows_each_failure_as_the_pytest_plugin_does_unwrapped(
    write: WriteTranscript, bot_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from chatbot.transcripts import format_result, replay_paths
    from chatbot.transcripts.report import display_path

    long_reply = "Bye! " + "and a very long expectation " * 6
    path = write("bad", BAD.replace("bot: Bye!", f"bot: {long_reply.strip()}"))
    assert main(["replay", str(path)]) == 1
    out = capsys.readouterr().out
    [result] = replay_paths([path]).report.results
    assert out.splitlines()[0] == f"✗ bad  {display_path(path)}  1 turn"
    assert f"\n\n{format_result(result)}\n\n" in out
    assert any(len(line) > 120 for line in out.splitlines())  # not wrapped at 80 columns
    assert out.splitlines()[-1].startswith("1 transcript, 1 turn: 0 passed, 1 failed in ")
