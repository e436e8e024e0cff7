"""Each matcher: when it holds, and what the report says when it does not."""

from __future__ import annotations

import re

import pytest

from chatbot.transcripts import matchers as m
from chatbot.transcripts.matchers import Mismatch, Observation

SEEN = Observation(
    text="Nice to meet you,  Ana!", source="intent", intent="user_name", confidence=0.875,
    slots={"name": "Ana"}, contexts={"asked": 2},
)


@pytest.mark.parametrize(("matcher", "holds"), [
    (m.Text("nice to meet you, ana"), True),
    (m.Text("Nice to meet you, Ana?!"), True),
    (m.Text("Nice to meet you Ana"), False),
    (m.Contains("MEET YOU, ANA"), True),
    (m.Contains("Bob"), False),
    (m.Regex(re.compile(r"\bAna!$")), True),
    (m.Regex(re.compile(r"^ana")), False),
    (m.OneOf(("Hello!", "nice to meet you, ana.")), True),
    (m.OneOf(("Hello!",)), False),
    (m.Similar("Nice to meet you, Anna!", 0.9), True),
    (m.Similar("Goodbye", 0.5), False),
    (m.WordCount(minimum=5), True),
    (m.WordCount(minimum=6), False),
    (m.WordCount(maximum=5), True),
    (m.WordCount(maximum=4), False),
    (m.IntentIs("user_name"), True),
    (m.IntentIs(None), False),
    (m.SourceIs("intent"), True),
    (m.SourceIs("neural"), False),
    (m.Confidence(gte=0.875, lte=0.9), True),
    (m.Confidence(gte=0.9), False),
    (m.Slot("name", "Ana"), True),
    (m.Slot("name", None), False),
    (m.Slot("city", None), True),
    (m.Context("asked"), True),
    (m.Context("asked", turns=2), True),
    (m.Context("asked", turns=1), False),
    (m.Context("asked", active=False), False),
    (m.Context("other", active=False), True),
    (m.Not(m.Contains("<")), True),
    (m.Not(m.Contains("Ana")), False),
    (m.All((m.Contains("Ana"), m.SourceIs("intent"))), True),
    (m.All((m.Contains("Ana"), m.SourceIs("neural"))), False),
    (m.AnyOf((m.Contains("Bob"), m.SourceIs("intent"))), True),
    (m.AnyOf((m.Contains("Bob"), m.SourceIs("neural"))), False),
])
def test_matchers_hold_or_not(matcher: m.Matcher, holds: bool) -> None:
    assert matcher.matches(SEEN) is holds
    assert (matcher.mismatches(SEEN) == []) is holds


@pytest.mark.parametrize(("matcher", "expected", "actual"), [
    (m.Text("Hello!"), "text 'Hello!'", "'Nice to meet you,  Ana!'"),
    (m.Contains("Bob"), "contains 'Bob'", "'Nice to meet you,  Ana!'"),
    (m.Regex(re.compile("^x")), "regex '^x'", "'Nice to meet you,  Ana!'"),
    (m.OneOf(("a", "b")), "one of 'a', 'b'", "'Nice to meet you,  Ana!'"),
    (m.Similar("Goodbye", 0.5), "similar to 'Goodbye' (ratio >= 0.5)",
     "ratio 0.14: 'Nice to meet you,  Ana!'"),
    (m.WordCount(minimum=6), "at least 6 words", "5 words: 'Nice to meet you,  Ana!'"),
    (m.WordCount(maximum=1), "at most 1 word", "5 words: 'Nice to meet you,  Ana!'"),
    (m.IntentIs("greet"), "intent greet", "intent user_name"),
    (m.IntentIs(None), "no intent", "intent user_name"),
    (m.SourceIs("fallback"), "source fallback", "source intent"),
    (m.Confidence(gte=0.9, lte=1.0), "confidence >= 0.9 and <= 1", "confidence 0.875"),
    (m.Slot("name", "Bob"), "slot name = 'Bob'", "slot name = 'Ana'"),
    (m.Slot("name", None), "slot name unset", "slot name = 'Ana'"),
    (m.Context("asked", turns=1), "context asked active, 1 turn left",
     "context asked active, 2 turns left"),
    (m.Context("asked", active=False), "context asked inactive",
     "context asked active, 2 turns left"),
    (m.Context("gone"), "context gone active", "context gone inactive"),
    (m.Not(m.Contains("Ana")), "not contains 'Ana'", "'Nice to meet you,  Ana!'"),
    (m.AnyOf((m.IntentIs("greet"), m.SourceIs("neural"))),
     "any of: intent greet; source neural", "intent user_name; source intent"),
])
def test_a_mismatch_says_what_was_expected_and_what_happened(
    matcher: m.Matcher, expected: str, actual: str
) -> None:
    assert matcher.mismatches(SEEN) == [Mismatch(expected, actual, 0)]


def test_all_reports_each_failing_part_with_its_line() -> None:
    matcher = m.All((m.Contains("Ana", 3), m.IntentIs("greet", 4), m.SourceIs("neural", 5)), 3)
    assert matcher.mismatches(SEEN) == [
        Mismatch("intent greet", "intent user_name", 4),
        Mismatch("source neural", "source intent", 5),
    ]


def test_normalize_ignores_case_whitespace_and_end_punctuation() -> None:
    assert m.normalize("  Hello,\n  WORLD?! ") == "hello, world"
    assert m.normalize("...") == ""
    assert m.words("I'm fine, thanks - you?") == ["I'm", "fine", "thanks", "you"]
