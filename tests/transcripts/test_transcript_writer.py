"""Recording: a conversation written as a transcript that replays it exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatbot.bot import Chatbot
from chatbot.transcripts import (
    TranscriptWriter,
    format_report,
    load_transcript,
    record_turn,
    replay,
)


def test_a_recorded_conversation_replays(bot_dir: Path, fake_bot: Chatbot) -> None:
    path = bot_dir / "transcripts" / "recorded" / "chat.yml"
    writer = TranscriptWriter(path, name="my chat: one", seed=2)
    session = fake_bot.session(writer.session_id)
    for text in ["hello", "my name is Ana", "tell me something"]:
        writer.add(text, session.send(text))
    assert load_transcript(path).turns[-1].user == "tell me something"
    session.reset()
    writer.reset()
    for text in ["what is my name", "yes", ""]:
        writer.add(text, session.send(text))
    writer.close()
    assert path.read_text() == """\
# Recorded with chatbot: each reply is pinned exactly; loosen what may vary.
version: 1
name: "my chat: one"
seed: 2
turns:
  - user: hello
    bot: {text: Hello!, source: intent, intent: greet}
  - user: my name is Ana
    bot: {text: "Nice to meet you, Ana!", source: intent, intent: user_name}
    state: {slots: {name: Ana}}
  - user: tell me something
    bot: {text: i like trains, source: neural}
  - reset: true
  - user: what is my name
    bot: {text: I don't know your name., source: intent, intent: ask_name}
  - user: "yes"
    bot: {text: i like that too, source: neural}
  - user: ""
    bot: {text: "Sorry, I did not get that.", source: fallback}
"""
    report = replay([load_transcript(path)], bot=fake_bot)
    assert report.ok, format_report(report)
    with pytest.raises(ValueError, match="closed"):
        writer.add("hi", session.send("hi"))


def test_record_turn_pins_text_source_and_intent(fake_bot: Chatbot) -> None:
    reply = fake_bot.session().send("hello")
    assert record_turn("hello", reply) == {
        "user": "hello", "bot": {"text": "Hello!", "source": "intent", "intent": "greet"},
    }


def test_nothing_is_written_without_a_turn(tmp_path: Path) -> None:
    with TranscriptWriter(tmp_path / "empty.yml", name="empty", decode={"strategy": "beam"}):
        pass
    assert not (tmp_path / "empty.yml").exists()


@pytest.mark.parametrize("text", [
    "Hi there!", "What is it?", "really? why?", "yes", "no", "null", "1.5", "", " padded ",
    "a: b", "a #b", "I'm, well", "- dash", "[x]", "{x}", "über", "tab\there", "line\nbreak",
    "bell\x07", "quote \" and ' marks", "back\\slash", "🙂", "&anchor", "*alias", "!tag",
])
def test_written_text_reads_back_the_same_in_block_and_flow(text: str, tmp_path: Path) -> None:
    from chatbot.transcripts.quoting import yaml_string

    path = tmp_path / "t.yml"
    path.write_text(f"version: 1\nturns:\n  - user: {yaml_string(text)}\n"
                    f"    bot: {{text: {yaml_string(text)}, source: intent}}\n")
    [turn] = load_transcript(path).turns
    assert turn.user == text
    assert turn.text is not None and turn.text.expected == text
