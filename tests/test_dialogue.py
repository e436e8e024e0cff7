"""The dialogue manager's policy: order, thresholds, margin, contexts, slots, state updates."""

from __future__ import annotations

import json
import textwrap
import unicodedata
from pathlib import Path

import pytest
from fakegen import FakeGenerator
from hypothesis import given, settings
from hypothesis import strategies as st

from chatbot.dialogue import DialogueManager, Reply
from chatbot.intents import IntentSet, load_intents
from chatbot.session import Session

INTENTS = """\
version: 1
intents:
  - name: greet
    override: true
    examples: [hello, hi there]
    responses: ["Hello!", "Hi {name}!"]
  - name: user_name
    override: true
    patterns: ['my name is (?P<name>\\w+)']
    responses: ["Nice to meet you, {name}!"]
  - name: weather
    examples: [what is the weather like, is it raining]
    responses: ["I can't see outside."]
    sets: {context: {talked_weather: 2}}
  - name: umbrella
    requires: {context: [talked_weather]}
    examples: [should i take an umbrella]
    responses: ["Better safe than sorry: take it."]
  - name: pizza
    examples: [i like pizza]
    responses: ["Pizza is great."]
  - name: pasta
    examples: [i like pasta]
    responses: ["Pasta is great."]
fallback: ["Sorry?", "Say again?"]
policy: {intent_threshold: 0.6, ambiguity_margin: 0.1, neural_min_confidence: 0.3}
"""


def intents_from(tmp_path: Path, text: str = INTENTS) -> IntentSet:
    folder = tmp_path / "intents"
    folder.mkdir(exist_ok=True)
    (folder / "a.yml").write_text(textwrap.dedent(text), encoding="utf-8")
    return load_intents(folder)


@pytest.fixture
def intents(tmp_path: Path) -> IntentSet:
    return intents_from(tmp_path)


def manager(intents: IntentSet, **script: tuple[str, float, tuple[str, ...]]) -> DialogueManager:
    generator = FakeGenerator(script={k.replace("_", " "): v for k, v in script.items()})
    return DialogueManager(intents, generator=generator)


def fake(dm: DialogueManager) -> FakeGenerator:
    assert isinstance(dm.generator, FakeGenerator)
    return dm.generator


def test_an_override_intent_answers_before_the_model_is_asked(intents: IntentSet) -> None:
    dm = manager(intents)
    reply = dm.handle(Session("s"), "Hello!!")
    assert (reply.text, reply.source, reply.intent, reply.confidence) == (
        "Hello!", "intent", "greet", 1.0
    )
    assert reply.trace.rule == "override"
    assert fake(dm).respond_calls == []
    assert fake(dm).observed == ["Hello!!", "Hello!"]


def test_open_chit_chat_goes_to_a_confident_model(intents: IntentSet) -> None:
    dm = manager(intents, do_you_ski=("i love skiing", 0.62, ()))
    session = Session("s")
    reply = dm.handle(session, "do you ski")
    assert (reply.text, reply.source, reply.intent, reply.confidence) == (
        "i love skiing", "neural", None, 0.62
    )
    assert fake(dm).respond_calls == [1]
    assert fake(dm).observed == ["i love skiing"]
    assert reply.trace.neural is not None and reply.trace.neural.accepted


def test_an_unsure_model_leaves_the_turn_to_the_intents(intents: IntentSet) -> None:
    dm = manager(intents, whats_the_weather_like=("it is", 0.1, ()))
    reply = dm.handle(Session("s"), "whats the weather like")
    assert (reply.text, reply.source, reply.intent) == ("I can't see outside.", "intent", "weather")
    assert reply.trace.steps == (
        "match: weather (0.845) is the best intent",
        "override: weather is not an override intent",
        "neural: confidence 0.100 is below 0.3",
        "intents: answered with intent weather",
    )


@pytest.mark.parametrize(
    ("flags", "step"),
    [
        (("loop",), "neural: degenerate reply (loop)"),
        (("echo",), "neural: degenerate reply (echo)"),
    ],
)
def test_degenerate_replies_are_not_used(
    intents: IntentSet, flags: tuple[str, ...], step: str
) -> None:
    dm = manager(intents, tell_me_more=("more more more", 0.9, flags))
    reply = dm.handle(Session("s"), "tell me more")
    assert (reply.text, reply.source) == ("Say again?", "fallback")
    assert step in reply.trace.steps
    assert reply.trace.neural is not None and not reply.trace.neural.accepted


def test_the_same_reply_as_last_turn_counts_as_degenerate(intents: IntentSet) -> None:
    dm = manager(intents, a=("same thing", 0.9, ()), b=("same thing", 0.9, ()))
    session = Session("s")
    assert dm.handle(session, "a").text == "same thing"
    second = dm.handle(session, "b")
    assert (second.text, second.source) == ("Sorry?", "fallback")
    assert "neural: degenerate reply (repeat)" in second.trace.steps


def test_fallback_does_not_repeat_itself(intents: IntentSet) -> None:
    dm = DialogueManager(intents)
    session = Session("s")
    texts = [dm.handle(session, "qwxz").text for _ in range(6)]
    assert all(a != b for a, b in zip(texts, texts[1:], strict=False))
    assert set(texts) == {"Sorry?", "Say again?"}


def test_two_close_intents_are_ambiguous_unless_priority_decides(tmp_path: Path) -> None:
    reply = DialogueManager(intents_from(tmp_path)).handle(Session("s"), "i like pizza and pasta")
    assert reply.source == "fallback"
    assert reply.trace.steps[0] == (
        "match: ambiguous: pizza 0.677, pasta 0.673 are within the margin 0.1"
    )
    preferred = INTENTS.replace("  - name: pasta\n", "  - name: pasta\n    priority: 1\n")
    reply = DialogueManager(intents_from(tmp_path, preferred)).handle(
        Session("s"), "i like pizza and pasta"
    )
    assert (reply.text, reply.intent) == ("Pasta is great.", "pasta")
    assert reply.trace.steps[0] == "match: pasta wins by priority among pizza 0.677, pasta 0.673"


def test_a_context_lives_for_its_number_of_turns(intents: IntentSet) -> None:
    dm = DialogueManager(intents)
    session = Session("s")
    dm.handle(session, "is it raining")
    assert session.contexts == {"talked_weather": 2}
    first = dm.handle(session, "should i take an umbrella")
    assert first.intent == "umbrella"
    assert session.contexts == {"talked_weather": 1}
    dm.handle(session, "qwxz")
    assert session.contexts == {}
    late = dm.handle(session, "should i take an umbrella")
    assert late.source == "fallback"
    assert late.trace.candidates[0].note == "requires context talked_weather"


def test_slots_from_patterns_fill_later_templates(intents: IntentSet) -> None:
    dm = manager(intents)
    session = Session("s")
    assert dm.handle(session, "hello").text == "Hello!"
    assert dm.handle(session, "My name is Ada.").text == "Nice to meet you, Ada!"
    assert session.slots == {"name": "Ada"}
    later = [dm.handle(session, "hello").text for _ in range(4)]
    assert later == ["Hello!", "Hi Ada!", "Hello!", "Hi Ada!"]


def test_the_policy_order_comes_from_the_config(tmp_path: Path) -> None:
    ordered = INTENTS.replace("policy: {", "policy: {order: [intents, neural], ")
    dm = manager(intents_from(tmp_path, ordered), is_it_raining=("yes", 0.99, ()))
    reply = dm.handle(Session("s"), "is it raining")
    assert (reply.source, reply.intent, reply.trace.rule) == ("intent", "weather", "intents")
    assert fake(dm).respond_calls == []


def test_without_a_model_the_intents_and_fallback_answer(intents: IntentSet) -> None:
    dm = DialogueManager(intents)
    session = Session("s")
    assert dm.handle(session, "hello").source == "intent"
    reply = dm.handle(session, "do you ski")
    assert reply.source == "fallback"
    assert "neural: no model" in reply.trace.steps
    assert session.neural_state is None


def test_a_batch_is_one_decode_and_equals_one_by_one(intents: IntentSet) -> None:
    texts = ["do you ski", "hello", "i like music", "what now", "is it raining"]
    batched = manager(intents)
    replies = batched.handle_batch([(Session(f"s{i}"), t) for i, t in enumerate(texts)])
    assert fake(batched).respond_calls == [4]
    single = manager(intents)
    alone = [single.handle(Session(f"s{i}"), t) for i, t in enumerate(texts)]
    assert [(r.text, r.source) for r in replies] == [(r.text, r.source) for r in alone]


def test_the_trace_explains_the_decision(intents: IntentSet) -> None:
    reply = manager(intents, hello_there=("hey", 0.9, ())).handle(Session("s"), "hello there")
    assert json.loads(json.dumps(reply.trace.to_dict()))["rule"] == "override"
    assert str(reply.trace) == textwrap.dedent(
        """\
        input: 'hello there'
          intent greet: 0.751 via examples (nearest example 'hello')
          intent weather: 0.221 via examples (nearest example 'what is the weather like')
          intent umbrella: 0.087 via examples (requires context talked_weather)
          intent pasta: 0.012 via examples (nearest example 'i like pasta')
          intent pizza: 0.012 via examples (nearest example 'i like pizza')
        policy: override > neural > intents > fallback
        thresholds: intent 0.6, margin 0.1, neural 0.3
          match: greet (0.751) is the best intent
          override: answered with intent greet
        decided by: override"""
    )


HOSTILE = [
    "",
    "   \t\n ",
    "🙂🙂🙂",
    "\x1b[31mred\x1b[0m\x07\x00",
    "\u202eevil\u202c",
    "\u200b\u200c\u200d\ufeff",
    "\ud800",
    "x" * 1_000_000,
]


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_any_input_gets_a_clean_reply(intents: IntentSet, text: str) -> None:
    dm = manager(intents, red=("\x1b[2Jgot it\u202e", 0.9, ()))
    reply = dm.handle(Session("s"), text)
    assert isinstance(reply, Reply) and reply.text
    assert_printable(reply.text)
    assert len(reply.trace.text) <= 1000


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_never_raises(text: str) -> None:
    dm = MANAGER_FOR_PROPERTY
    reply = dm.handle(Session("p"), text)
    assert_printable(reply.text)


def assert_printable(text: str) -> None:
    for ch in text:
        assert unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Zl", "Zp"), repr(ch)


MANAGER_FOR_PROPERTY = DialogueManager(
    load_intents(Path(__file__).parents[1] / "chatbot" / "bots" / "default" / "intents"),
    generator=FakeGenerator(),
)


def test_a_captured_slot_is_normalised_as_its_spec_says() -> None:
    from chatbot import Chatbot, MemoryStore
    from chatbot.botdir import default_bot_dir, load_bot

    definition = load_bot(default_bot_dir())
    bot = Chatbot(definition.intents, store=MemoryStore())
    session = bot.session("n")
    assert session.send("my name is mary jane").intent == "user_name"
    assert session.slots == {"name": "Mary Jane"}
