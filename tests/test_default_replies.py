"""The default bot's reply selection: gibberish gets the fallback, chit-chat a
selected reply, and the trace lists the candidates."""

from __future__ import annotations

import random
import string

import pytest

from chatbot import Chatbot, MemoryStore


@pytest.fixture(scope="module")
def bot() -> Chatbot:
    return Chatbot.load(store=MemoryStore())


def _random_strings(count: int) -> list[str]:
    rng = random.Random(40)
    symbols = string.ascii_letters + string.digits + string.punctuation
    return ["".join(rng.choice(symbols) for _ in range(40)) for _ in range(count)]


@pytest.mark.parametrize(
    "text", ["asdkjh qwe zzz", ";;;;", "qwertyuiop asdfghjkl", *_random_strings(5)]
)
def test_gibberish_gets_the_fallback(bot: Chatbot, text: str) -> None:
    reply = bot.session().send(text)
    assert reply.source == "fallback", (text, reply.trace.neural)
    neural = reply.trace.neural
    assert neural is not None
    assert neural.confidence < bot.intents.policy.neural_min_confidence


def test_clear_chit_chat_gets_a_confident_selected_reply(bot: Chatbot) -> None:
    reply = bot.session().send("have you ever been to Colorado?")
    assert reply.source == "neural"
    assert reply.text == "no I haven't! my parents have. they lived in Saudi Arabia and " \
        "travelled to Sweden lots"
    neural = reply.trace.neural
    assert neural is not None and neural.ranker == "model" and neural.source == "retrieved"
    assert reply.confidence == neural.confidence >= bot.intents.policy.neural_min_confidence


def test_the_trace_lists_every_candidate_with_source_scores_and_origin(bot: Chatbot) -> None:
    reply = bot.session().send("do you have any pets?")
    neural = reply.trace.neural
    assert neural is not None
    options = neural.options
    assert {o.source for o in options} == {"generated", "retrieved"}
    assert len(options) == 21
    scored = [o for o in options if o.score is not None]
    winner = max(scored, key=lambda o: o.score or 0.0)
    assert winner.text == reply.text
    assert all(o.origin and o.origin.startswith("conversation ") for o in options
               if o.source == "retrieved")
    text = str(reply.trace)
    assert f"({neural.source}, ranker model)" in text
    assert f"* {winner.score:7.3f} ret {winner.text!r} [{winner.origin}]" in text


@pytest.mark.parametrize("opener", ["what do you like to read?",
                                    "I had a pretty long day at work today",
                                    "do you like music?"])
def test_gibberish_mid_conversation_gets_the_fallback(bot: Chatbot, opener: str) -> None:
    # The bot's previous reply was retrieved from the corpus, so the line after it
    # there matched any utterance by context alone; now a key must share a word.
    session = bot.session()
    session.send(opener)
    reply = session.send("sdfkj qwpeo zzxq")
    assert reply.source == "fallback", reply.trace.neural
    neural = reply.trace.neural
    assert neural is not None and all(o.source == "generated" for o in neural.options)
