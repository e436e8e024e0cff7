"""The intent matcher: patterns, typo-robust example similarity, ranking."""

from __future__ import annotations

import re

import pytest

from chatbot.intents import Intent, IntentMatcher, Match, Policy
from chatbot.intents.decide import decide
from chatbot.intents.matcher import features

INTENTS = [
    Intent("greet", examples=("hello", "good morning", "hey there")),
    Intent("goodbye", examples=("bye", "see you later")),
    Intent(
        "user_name",
        examples=("my name is sam",),
        patterns=(re.compile(r"my name is (?P<name>\w+)(?: (?P<last>\w+))?", re.IGNORECASE),),
    ),
    Intent("empty_one", patterns=(re.compile(r"^zzz$"),)),
]


@pytest.fixture(scope="module")
def matcher() -> IntentMatcher:
    return IntentMatcher(INTENTS)


def test_features_are_padded_char_ngrams_and_words() -> None:
    assert features("Hi!") == {"hi": 2, " h": 1, "i ": 1, " hi": 1, "hi ": 1, " hi ": 1}


def test_an_exact_example_scores_one(matcher: IntentMatcher) -> None:
    assert matcher.rank("HELLO!!")[0] == Match("greet", 1.0, "examples", example="hello")


def test_typos_case_and_punctuation_keep_the_intent_on_top(matcher: IntentMatcher) -> None:
    expected = {
        "helo": "greet", "Good mornin!": "greet", "see ya later": "goodbye", "byee": "goodbye"
    }
    assert {text: matcher.rank(text)[0].intent for text in expected} == expected
    # One slip from an example word: read as that word. Two: the n-grams still rank it.
    assert matcher.rank("good mornin")[0].score == 1.0
    assert matcher.rank("good mrnin")[0] == Match("greet", 0.574782, "examples",
                                                  example="good morning")


def test_a_pattern_scores_one_and_fills_slots_from_named_groups(matcher: IntentMatcher) -> None:
    best = matcher.rank("Well, my name is Ada Lovelace.")[0]
    assert best == Match("user_name", 1.0, "pattern", (("name", "Ada"), ("last", "Lovelace")))
    only = matcher.rank("my name is Bob")[0]
    assert only.slots == (("name", "Bob"),)


def test_ranking_is_sorted_and_limited(matcher: IntentMatcher) -> None:
    ranked = matcher.rank("hello, see you later", limit=2)
    assert [m.intent for m in ranked] == ["goodbye", "greet"]
    assert ranked[0].score >= ranked[1].score
    assert matcher.rank("zzz") == [Match("empty_one", 1.0, "pattern")]
    assert matcher.rank("") == []
    assert matcher.rank("\x00\u202e") == []


def test_no_intents_means_no_matches() -> None:
    assert IntentMatcher([]).rank("hello") == []


def test_a_negative_example_at_least_as_close_as_every_example_vetoes_the_intent() -> None:
    examples = ("how are you", "how are you doing")
    plain = IntentMatcher([Intent("how_are_you", examples=examples)])
    matcher = IntentMatcher([
        Intent("how_are_you", examples=examples, negative_examples=("how old are you",)),
        Intent("greet", examples=("hello",)),
    ])
    assert plain.rank("how old are you?")[0].negative is None
    # The negative example, and near paraphrases of it, are closer than any example.
    for text in ("how old are you?", "How old r you"):
        match = matcher.rank(text)[0]
        assert (match.intent, match.negative) == ("how_are_you", "how old are you")
        assert match.example == plain.rank(text)[0].example
    # What the examples say still matches, unvetoed.
    for text in ("how are you?", "how are you doing today"):
        match = matcher.rank(text)[0]
        assert (match.intent, match.example, match.negative) == (
            "how_are_you", plain.rank(text)[0].example, None
        )
    assert matcher.rank("how are you?")[0].score == 1.0


def test_a_vetoed_intent_is_never_chosen_and_the_trace_says_why() -> None:
    how_are_you = Intent(
        "how_are_you", examples=("how are you",), negative_examples=("how old are you",)
    )
    intents = [how_are_you, Intent("bot_age", examples=("what is your age",))]
    matcher = IntentMatcher(intents)
    by_name = {intent.name: intent for intent in intents}
    policy = Policy(intent_threshold=0.3, ambiguity_margin=0.05)
    decision = decide(matcher.rank("how old are you"), by_name, policy)
    vetoed = next(c for c in decision.candidates if c.intent == "how_are_you")
    assert not vetoed.eligible
    assert vetoed.note == "vetoed: negative example 'how old are you' is as close as 'how are you'"
    assert decision.best is None
    assert decision.reason == "no intent reaches the threshold 0.3 (best: bot_age 0.090)"
    assert decide(matcher.rank("how are you?"), by_name, policy).best == Match(
        "how_are_you", 1.0, "examples", example="how are you"
    )


def test_a_negative_example_may_be_another_intents_example() -> None:
    matcher = IntentMatcher([
        Intent("how_are_you", examples=("how are you",), negative_examples=("how old are you",)),
        Intent("bot_age", examples=("how old are you", "what is your age")),
    ])
    [age, vetoed] = matcher.rank("how old are you")
    assert (age.intent, age.score, age.negative) == ("bot_age", 1.0, None)
    assert (vetoed.intent, vetoed.negative) == ("how_are_you", "how old are you")
    assert matcher.rank("how are you")[0].intent == "how_are_you"
