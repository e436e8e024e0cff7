"""Replaying transcripts: verdicts, the failure report, resets, restores, lockstep batching."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from transcript_helpers import WriteTranscript

from chatbot.bot import Chatbot
from chatbot.transcripts import (
    format_report,
    format_result,
    load_transcript,
    load_transcripts,
    replay,
)

PASSING = """
    version: 1
    name: passing
    turns:
      - user: hello
        bot: {text: hello, intent: greet, source: intent, confidence: {gte: 1}}
      - user: my name is Ana
        bot: Nice to meet you, Ana!
        state: {slots: {name: Ana}}
      - user: how are you
        state: {contexts: {asked: 2}}
      - user: i am good
        bot: {intent: feels_good}
        state: {contexts: {asked: 1}}
      - user: tell me something
        bot: {text: i like trains, source: neural, confidence: {gte: 0.8, lte: 0.8}}
      - user: mumble
        bot: {source: fallback, text: "Sorry, I did not get that."}
    """

FAILING = """
    version: 1
    name: failing
    turns:
      - user: hello
        bot: Hello!
      - user: my name is Ana
        bot: {contains: Bob, intent: greet}
        state: {slots: {name: Bob}}
      - user: what is my name
        bot: {contains: Ana}
    """


class Clock:
    """A clock that advances one second per reading."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_a_transcript_whose_expectations_hold_passes(
    write: WriteTranscript, fake_bot: Chatbot
) -> None:
    report = replay([load_transcript(write("passing", PASSING))], bot=fake_bot)
    assert report.ok
    [result] = report.results
    assert result.status == "passed"
    assert [(t.index, t.line, t.reply and t.reply.source) for t in result.turns] == [
        (1, 4, "intent"), (2, 6, "intent"), (3, 9, "intent"), (4, 11, "intent"),
        (5, 14, "neural"), (6, 16, "fallback"),
    ]


def test_the_failure_report_shows_the_turn_expected_actual_and_trace(
    write: WriteTranscript, fake_bot: Chatbot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(write("failing", FAILING).parent.parent)
    report = replay(load_transcripts(["transcripts/failing.yml"]), bot=fake_bot, clock=Clock())
    [result] = report.results
    assert result.status == "failed"
    assert [t.passed for t in result.turns] == [True, False, True]
    reply = result.turns[1].reply
    assert reply is not None
    trace = textwrap.indent(str(reply.trace), " " * 6)
    assert format_report(report) == f"""\
FAILED failing (transcripts/failing.yml)
  turn 2 at transcripts/failing.yml:6
    user:  'my name is Ana'
    reply: 'Nice to meet you, Ana!' (intent user_name, confidence 1.000)

    expected          | actual
    contains 'Bob'    | 'Nice to meet you, Ana!'
    intent greet      | intent user_name
    slot name = 'Bob' | slot name = 'Ana'

    trace:
{trace}

1 transcript, 3 turns: 0 passed, 1 failed in 7.00s"""


def test_reset_save_and_restore(write: WriteTranscript, fake_bot: Chatbot) -> None:
    path = write("restore", """
        version: 1
        turns:
          - user: my name is Ana
            save: named
          - user: tell me about your day
            save: later
          - reset: true
            state: {slots: {name: null}}
          - user: what is my name
            bot: I don't know your name.
          - restore: named
            user: what is my name
            bot: Your name is Ana.
          - restore: later
            user: what is my name
            bot: Your name is Ana.
        """)
    report = replay([load_transcript(path)], bot=fake_bot)
    assert report.ok, format_report(report)


def test_a_restore_continues_exactly_as_the_saved_session_would(
    write: WriteTranscript, fake_bot: Chatbot
) -> None:
    path = write("same", """
        version: 1
        turns:
          - user: my name is Ana
            save: before
          - user: tell me about your day
          - restore: before
            user: tell me about your day
        """)
    [result] = replay([load_transcript(path)], bot=fake_bot).results
    first, second = result.turns[1].reply, result.turns[2].reply
    assert first is not None and second is not None
    assert (first.text, first.source) == (second.text, second.source)


def test_a_session_file_that_does_not_restore_is_an_error(
    write: WriteTranscript, fake_bot: Chatbot
) -> None:
    path = write("broken", """
        version: 1
        turns:
          - user: hello
          - restore: saved.json
            user: hello
          - user: never played
        """)
    (path.parent / "saved.json").write_text(json.dumps({"version": 9}))
    report = replay([load_transcript(path)], bot=fake_bot)
    [result] = report.results
    assert result.status == "error"
    assert [t.error for t in result.turns] == [
        None, "cannot restore: session: unsupported version 9",
    ]
    assert format_result(result).splitlines()[1:] == [
        f"  turn 2 at {path}:4",
        "    user:  'hello'",
        "    error: cannot restore: session: unsupported version 9",
    ]


def test_a_session_file_restores(write: WriteTranscript, fake_bot: Chatbot) -> None:
    session = fake_bot.session("saved")
    session.send("my name is Bob")
    path = write("from_file", """
        version: 1
        turns:
          - restore: bob.json
            state: {slots: {name: Bob}}
          - user: what is my name
            bot: Your name is Bob.
        """)
    (path.parent / "bob.json").write_text(json.dumps(session.to_dict()))
    assert replay([load_transcript(path)], bot=fake_bot).ok


def test_fail_fast_stops_at_the_first_failing_round(
    write: WriteTranscript, fake_bot: Chatbot
) -> None:
    long = "version: 1\nname: long\nturns:\n" + "  - user: hello\n" * 5
    short = "version: 1\nname: short\nturns:\n  - user: hello\n  - user: hi\n    bot: nope\n"
    transcripts = load_transcripts([write("long", long), write("short", short)])
    report = replay(transcripts, bot=fake_bot, fail_fast=True)
    assert [(r.status, len(r.turns)) for r in report.results] == [("skipped", 2), ("failed", 2)]
    full = replay(transcripts, bot=fake_bot)
    assert [(r.status, len(r.turns)) for r in full.results] == [("passed", 5), ("failed", 2)]


def test_lockstep_batches_decode_together_and_match_one_at_a_time(
    write: WriteTranscript, fake_bot: Chatbot
) -> None:
    texts = ["tell me about your day", "and then?", "my name is Ana", "really"]
    files = []
    for i in range(6):
        turns = "".join(f"  - user: {texts[(i + k) % 4]}\n" for k in range(3 + i % 2))
        files.append(write(f"t{i}", f"version: 1\nname: t{i}\nseed: {i % 2}\nturns:\n{turns}"))
    transcripts = load_transcripts(files)
    generator = fake_bot.generator
    assert generator is not None
    calls = generator.respond_calls  # type: ignore[attr-defined]
    together = replay(transcripts, bot=fake_bot, batch_size=4)
    batches = list(calls)
    calls.clear()
    alone = replay(transcripts, bot=fake_bot, batch_size=1)

    def replies(report: object) -> list[list[str]]:
        return [[t.reply.text for t in r.turns if t.reply] for r in report.results]  # type: ignore[attr-defined]

    assert replies(together) == replies(alone)
    assert set(calls) == {1}
    assert sum(batches) == len(calls) and max(batches) == 3 and len(batches) < len(calls)


def test_transcripts_with_other_decoding_replay_in_their_own_group(
    write: WriteTranscript, fake_bot: Chatbot
) -> None:
    greedy = write("greedy", "version: 1\nturns:\n  - user: tell me something\n")
    beam = write("beam", "version: 1\ndecode: {strategy: beam}\nturns:\n  - user: hi\n")
    report = replay(load_transcripts([greedy, beam, greedy]), bot=fake_bot)
    assert [r.transcript.name for r in report.results] == ["greedy", "beam", "greedy"]
    assert report.ok


def test_replay_leaves_the_bot_and_its_store_alone(
    write: WriteTranscript, fake_bot: Chatbot
) -> None:
    replay([load_transcript(write("passing", PASSING))], bot=fake_bot)
    assert fake_bot.store.ids() == []


def test_a_transcript_replays_the_same_on_the_tiny_model(tiny_bot_dir: Path) -> None:
    path = tiny_bot_dir / "transcripts" / "neural.yml"
    path.write_text(textwrap.dedent("""
        version: 1
        turns:
          - user: hello
            bot: {text: Hello!, intent: greet}
          - user: what do you do for fun?
            bot: {source: neural, min_words: 1, not: {contains: "<"}}
          - user: i like hiking
            bot: {any: [{source: neural}, {source: fallback}]}
          - user: do you have any pets?
            bot: {not: {contains: "<"}}
        """))
    bot = Chatbot.load(tiny_bot_dir)
    transcripts = load_transcripts([path] * 3)
    first = replay(transcripts, bot=bot, batch_size=3)
    again = replay(transcripts[:1], bot=bot)
    assert first.ok, format_report(first)
    texts = [[t.reply.text for t in r.turns if t.reply] for r in first.results + again.results]
    assert texts[0] == texts[1] == texts[2] == texts[3]
