"""JSON and JUnit XML results, and the rich report."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET

import pytest
from rich.console import Console
from transcript_helpers import WriteTranscript

from chatbot.bot import Chatbot
from chatbot.replay_report import print_replay
from chatbot.transcripts import (
    ReplayReport,
    format_result,
    load_transcripts,
    replay,
    to_json,
    to_junit,
)
from chatbot.transcripts.update import TextUpdate


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.5
        return self.now


@pytest.fixture
def report(
    write: WriteTranscript, fake_bot: Chatbot, monkeypatch: pytest.MonkeyPatch
) -> ReplayReport:
    """One passing, one failing and one erroring transcript, replayed from `bot_dir`."""
    write("good", "version: 1\nname: good\nturns:\n  - user: hello\n    bot: Hello!\n")
    write("bad", "version: 1\nname: bad <one>\nturns:\n  - user: hello\n    bot: Bye!\n")
    ugly = write("ugly", "version: 1\nname: ugly\nturns:\n  - restore: s.json\n    user: hi\n")
    (ugly.parent / "s.json").write_text("[]")
    monkeypatch.chdir(ugly.parent.parent)
    files = ["transcripts/good.yml", "transcripts/bad.yml", "transcripts/ugly.yml"]
    return replay(load_transcripts(files), bot=fake_bot, clock=Clock())


def test_junit_xml_has_one_testcase_per_transcript(report: ReplayReport) -> None:
    xml = to_junit(report)
    bad = report.results[1]
    assert xml == f"""\
<?xml version='1.0' encoding='utf-8'?>
<testsuites name="chatbot replay" tests="3" failures="1" errors="1" skipped="0" time="1.500">
  <testsuite name="testbot" tests="3" failures="1" errors="1" skipped="0" time="1.500">
    <testcase classname="transcripts.good" name="good" file="transcripts/good.yml" line="1" \
time="0.167" />
    <testcase classname="transcripts.bad" name="bad &lt;one&gt;" file="transcripts/bad.yml" \
line="1" time="0.167">
      <failure message="turn 1 (line 4): expected text 'Bye!', got 'Hello!'" \
type="transcript failure">{_escape(format_result(bad))}</failure>
    </testcase>
    <testcase classname="transcripts.ugly" name="ugly" file="transcripts/ugly.yml" line="1" \
time="0.167">
      <error message="turn 1 (line 4): cannot restore: a session must be a mapping, got list" \
type="transcript error">ERROR ugly (transcripts/ugly.yml)
  turn 1 at transcripts/ugly.yml:4
    user:  'hi'
    error: cannot restore: a session must be a mapping, got list</error>
    </testcase>
  </testsuite>
</testsuites>
"""
    root = ET.fromstring(xml.split("\n", 1)[1])
    assert [case.get("name") for case in root.iter("testcase")] == ["good", "bad <one>", "ugly"]
    assert [child.tag for case in root.iter("testcase") for child in case] == ["failure", "error"]


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def test_json_results_are_machine_readable(report: ReplayReport) -> None:
    data = json.loads(to_json(report))
    assert data["summary"] == {
        "passed": 1, "failed": 1, "error": 1, "skipped": 0, "transcripts": 3, "turns": 3,
        "duration_s": 1.5, "ok": False,
    }
    good, bad, ugly = data["transcripts"]
    assert good == {
        "path": "transcripts/good.yml", "name": "good", "status": "passed",
        "duration_s": 0.166667,
        "turns": [{
            "index": 1, "line": 4, "user": "hello", "passed": True,
            "reply": {"text": "Hello!", "source": "intent", "intent": "greet",
                      "confidence": 1.0},
            "mismatches": [], "error": None,
        }],
    }
    [turn] = bad["turns"]
    assert turn["mismatches"] == [{"expected": "text 'Bye!'", "actual": "'Hello!'", "line": 5}]
    assert turn["reply"]["trace"]["rule"] == "override"
    assert turn["reply"]["trace"]["candidates"][0]["intent"] == "greet"
    assert ugly["turns"][0]["error"].startswith("cannot restore")


def test_the_rich_report_lists_transcripts_and_details_failures(report: ReplayReport) -> None:
    out = io.StringIO()
    updates = [TextUpdate(report.results[0].transcript.path, 3, "Hi", "Hello!")]
    print_replay(report, console=Console(file=out, width=100, color_system=None),
                 updates=updates)
    text = out.getvalue()
    lines = text.splitlines()
    assert lines[:3] == [
        "✓ good  transcripts/good.yml  1 turn",
        "✗ bad <one>  transcripts/bad.yml  1 turn",
        "! ugly  transcripts/ugly.yml  1 turn",
    ]
    assert "╭─ ✗ FAILED bad <one> " in text
    assert "│ turn 1 at transcripts/bad.yml:4" in text
    assert "│  expected      actual" in text
    assert "│  text 'Bye!'   'Hello!'" in text
    assert "│ error: cannot restore: a session must be a mapping, got list" in text
    assert "updated 1 text expectation:" in text
    assert "  transcripts/good.yml:3: 'Hi' -> 'Hello!'" in text
    assert lines[-1] == "3 transcripts, 3 turns: 1 passed, 1 failed, 1 error in 1.50s"
