"""`--update`: failing `text` expectations are rewritten in place, the rest of the file kept."""

from __future__ import annotations

import pytest
from transcript_helpers import WriteTranscript

from chatbot.bot import Chatbot
from chatbot.errors import ConfigError
from chatbot.transcripts import load_transcript, replay, replay_paths, update_texts
from chatbot.transcripts.update import TextUpdate

BEFORE = """\
# A comment at the top.
version: 1
name: update me
turns:
  - user: hello       # greets
    bot: Hi!          # plain shorthand, wrong
  - user: my name is Ana
    bot: {text: 'Hi, Ana', intent: user_name}   # single-quoted, wrong
  - user: how are you
    bot:
      text: "Fine, and you?"   # right: left alone
  - user: what is my name
    bot:
      text: |
        wrong
      source: intent
  - user: i am good
    bot: {text: "nope", not: {text: x}}
"""

AFTER = """\
# A comment at the top.
version: 1
name: update me
turns:
  - user: hello       # greets
    bot: Hello!          # plain shorthand, wrong
  - user: my name is Ana
    bot: {text: 'Nice to meet you, Ana!', intent: user_name}   # single-quoted, wrong
  - user: how are you
    bot:
      text: "Fine, and you?"   # right: left alone
  - user: what is my name
    bot:
      text: Your name is Ana.
      source: intent
  - user: i am good
    bot: {text: "Glad to hear it!", not: {text: x}}
"""


def test_update_rewrites_failing_texts_and_keeps_everything_else(
    write: WriteTranscript, fake_bot: Chatbot
) -> None:
    path = write("update", BEFORE)
    outcome = replay_paths([path], bot=fake_bot, update=True)
    assert path.read_text() == AFTER
    assert outcome.updates == (
        TextUpdate(path, 5, "Hi!", "Hello!"),
        TextUpdate(path, 7, "Hi, Ana", "Nice to meet you, Ana!"),
        TextUpdate(path, 12, "wrong\n", "Your name is Ana."),
        TextUpdate(path, 17, "nope", "Glad to hear it!"),
    )
    assert outcome.report.ok
    assert replay_paths([path], bot=fake_bot).report.ok


def test_update_leaves_other_failures_failing(write: WriteTranscript, fake_bot: Chatbot) -> None:
    text = "version: 1\nturns:\n  - user: hello\n    bot: {text: x, source: neural}\n"
    path = write("other", text)
    outcome = replay_paths([path], bot=fake_bot, update=True)
    assert path.read_text() == (
        "version: 1\nturns:\n  - user: hello\n    bot: {text: Hello!, source: neural}\n"
    )
    [result] = outcome.report.results
    assert result.status == "failed"
    assert [m.expected for m in result.turns[0].mismatches] == ["source neural"]


def test_texts_that_need_quotes_get_them(write: WriteTranscript, fake_bot: Chatbot) -> None:
    path = write("quotes", "version: 1\nturns:\n  - user: how are you\n    bot: {text: x}\n")
    replay_paths([path], bot=fake_bot, update=True)
    assert path.read_text().endswith('    bot: {text: "Fine, and you?"}\n')


def test_a_file_changed_since_loading_is_not_rewritten(
    write: WriteTranscript, fake_bot: Chatbot
) -> None:
    path = write("changed", "version: 1\nturns:\n  - user: hello\n    bot: Hi!\n")
    report = replay([load_transcript(path)], bot=fake_bot)
    path.write_text("version: 1\nturns:\n  - user: hello\n    bot: Yo!\n")
    with pytest.raises(ConfigError, match="changed since it was read; not updated"):
        update_texts(report)
    assert path.read_text().endswith("bot: Yo!\n")


def test_a_text_shared_through_an_alias_is_rewritten_once(
    write: WriteTranscript, fake_bot: Chatbot
) -> None:
    path = write("alias", """\
        version: 1
        turns:
          - user: hello
            bot: &same {text: Hi}
          - user: hi
            bot: *same
        """)
    outcome = replay_paths([path], bot=fake_bot, update=True)
    assert path.read_text().splitlines()[3] == "    bot: &same {text: Hello!}"
    assert [u.line for u in outcome.updates] == [3]
    assert outcome.report.ok
