"""The default bot's name intent: a name is never a word of time, manner or grammar."""

from __future__ import annotations

import pytest

from chatbot import Chatbot, MemoryStore


@pytest.fixture(scope="module")
def bot() -> Chatbot:
    return Chatbot.load(store=MemoryStore())


@pytest.mark.parametrize("text", ["you can call me anytime", "call me maybe",
                                  "my name is on the list", "my name is not important",
                                  "call me later tonight"])
def test_no_name_is_read_from_a_common_word(bot: Chatbot, text: str) -> None:
    session = bot.session()
    reply = session.send(text)
    assert reply.intent != "user_name", reply.text
    assert "name" not in session.slots


@pytest.mark.parametrize(("text", "name"), [("call me Sam", "Sam"), ("my name is mary jane", "Mary Jane"),
                                            ("my name is sam and i like tea", "Sam"),
                                            ("people call me Will", "Will")])
def test_a_given_name_is_remembered_and_said(bot: Chatbot, text: str, name: str) -> None:
    session = bot.session()
    reply = session.send(text)
    assert reply.intent == "user_name"
    assert session.slots["name"] == name
    assert name in reply.text
