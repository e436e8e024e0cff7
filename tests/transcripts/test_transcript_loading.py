"""Transcript files: the schema they load into, and located validation errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from transcript_helpers import WriteTranscript

from chatbot.errors import BotValidationError
from chatbot.transcripts import is_transcript, load_transcript, load_transcripts
from chatbot.transcripts import matchers as m
from chatbot.transcripts.schema import TextSpan, Turn


def test_a_transcript_loads_into_turns_and_matchers(write: WriteTranscript) -> None:
    path = write("greet", """
        version: 1
        name: greeting and name
        seed: 3
        decode: {strategy: beam, beam_size: 2}
        turns:
          - user: hello
            bot: Hello!   # the text shorthand
          - user: my name is Ana
            bot: {contains: Ana, not: {regex: "^x"}}
            state: {slots: {name: Ana}, contexts: [asked]}
            save: named
          - reset: true
          - restore: named
            user: ""
            bot: {confidence: {gte: 0.5}, similar: {to: hi}, min_words: 1, intent: null}
        """)
    transcript = load_transcript(path)
    assert (transcript.name, transcript.seed, transcript.path) == ("greeting and name", 3, path)
    assert transcript.decode == {"strategy": "beam", "beam_size": 2}
    assert transcript.session_id == "transcript:greeting and name:3"
    first, second, third, fourth = transcript.turns
    assert first == Turn(1, 6, "hello", m.Text("Hello!", 7), text=TextSpan(
        start=path.read_text().index("Hello!"), end=path.read_text().index("Hello!") + 6,
        raw="Hello!", style="", expected="Hello!"))
    assert second.bot == m.All((m.Contains("Ana", 9), m.Not(m.Regex(re.compile("^x"), 9), 9)), 9)
    assert second.state == m.All((m.Slot("name", "Ana", 10), m.Context("asked", line=10)), 10)
    assert (second.save, third.reset, third.user, fourth.restore) == ("named", True, None, "named")
    assert fourth.bot == m.All((
        m.Confidence(gte=0.5, line=15), m.Similar("hi", 0.8, 15),
        m.WordCount(minimum=1, line=15), m.IntentIs(None, 15),
    ), 15)
    assert fourth.user == ""


def test_name_defaults_to_the_file_stem(write: WriteTranscript) -> None:
    path = write("short", "version: 1\nturns: [{user: hi}]\n")
    assert load_transcript(path).name == "short"
    assert load_transcript(path).seed == 0


def test_every_problem_is_reported_at_once_with_file_line_col(write: WriteTranscript) -> None:
    path = write("bad", """
        version: 2
        seed: -1
        decode: {strategy: nope}
        turns:
          - user: hello
            bot: {intnet: greet, source: robot}
          - bot: Hello!
          - user: hi
            bot: {regex: "(", confidence: {gte: 0.9, lte: 0.1}, one_of: []}
            state: {slots: {name: 3}, contexts: {asked: two}}
          - restore: nowhere
          - user: x
            bot: {similar: {min: 2}, not: {}, all: [], min_words: -1}
            reset: yes
        """)
    with pytest.raises(BotValidationError) as caught:
        load_transcript(path)
    assert [str(p).removeprefix(f"{path}:") for p in caught.value.problems] == [
        "1:10: unsupported version 2 (this chatbot reads version 1)",
        "2:7: 'seed' must be at least 0 (got -1)",
        "3:9: invalid decode settings: decode.strategy must be one of greedy, beam, sample "
        "(got 'nope')",
        "6:11: unknown key 'intnet' (did you mean 'intent'?)",
        "6:34: unknown source 'robot' (sources: intent, neural, fallback, form)",
        "7:5: a turn needs 'user', 'reset', 'restore' or 'save'",
        "7:5: 'bot' needs a 'user' message in the same turn",
        "9:18: invalid regex '(': missing ), unterminated subpattern at position 0",
        "9:35: 'confidence' range is empty (gte 0.9 > lte 0.1)",
        "9:65: 'one_of' must list at least one reply",
        "10:27: slot 'name' must be expected as a string, or null for unset",
        "10:49: the turns left of context 'asked' must be an integer, not a string",
        "11:14: no earlier turn saved a session as 'nowhere' (saved so far: none); "
        "or name a .json session file",
        "13:20: 'similar' is missing the key 'to'",
        "13:26: 'similar.min' must be between 0.0 and 1.0 (got 2)",
        "13:35: a reply expectation must not be empty",
        "13:44: 'all' must list at least one expectation",
        "13:59: 'min_words' must be at least 0 (got -1)",
        "14:12: 'reset' must be true or false, not a string (YAML 1.1's 'yes' is text here: "
        "use true or false)",
    ]


def test_problems_of_several_files_come_together(write: WriteTranscript) -> None:
    one = write("one", "version: 1\nturns: []\n")
    two = write("two", "version: 1\nturns:\n  - user: [oops\n")
    three = write("three", "")
    with pytest.raises(BotValidationError) as caught:
        load_transcripts([one, two, three])
    assert [str(p) for p in caught.value.problems] == [
        f"{one}:2:8: 'turns' must not be empty",
        f"{two}:4:1: expected ',' or ']', but got '<stream end>'",
        f"{three}: file is empty (expected 'version: 1')",
    ]


def test_a_session_file_may_be_restored(write: WriteTranscript) -> None:
    path = write("file", "version: 1\nturns:\n  - restore: saved.json\n")
    with pytest.raises(BotValidationError, match=r"file.yml:3:14: session file '.*saved.json'"):
        load_transcript(path)
    (path.parent / "saved.json").write_text("{}")
    assert load_transcript(path).turns[0].restore_file == path.parent / "saved.json"


def test_only_mappings_with_version_and_turns_are_transcripts(tmp_path: Path) -> None:
    files = {"a.yml": "version: 1\nturns: []\n", "b.yml": "version: 1\nintents: []\n",
             "c.yml": "- a list\n", "d.yml": "turns: [oops\n"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert [is_transcript(tmp_path / name) for name in files] == [True, False, False, True]
