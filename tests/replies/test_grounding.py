"""Grounding: rare words of a reply that the conversation does not support."""

from __future__ import annotations

from chatbot.replies.grounding import MAX_COUNT, RARE_DF, document_frequency, unsupported

REPLIES = ["How long have you been playing?"] * RARE_DF + [
    "Was driving in Tokyo hard for the test?",
    "Sore fingertips are normal at first.",
    "Tokyo, Osaka, Kyoto and Sapporo, all in one week.",
]


def test_rare_words_the_context_never_mentions_are_counted() -> None:
    df = document_frequency(REPLIES)
    assert df["playing"] == RARE_DF and df["tokyo"] == 2
    context = ["I failed my driving test again, third time now"]
    # "driving" and "test" are rare here but said by the user; "tokyo" and "hard" are not.
    assert unsupported("Was driving in Tokyo hard for the test?", context, df) == 2
    # A five-letter stem is support enough: "fingers" supports "fingertips".
    assert unsupported("Sore fingertips are normal at first.",
                       ["just started guitar, my fingers hurt"], df) == 3  # sore, normal, first
    assert unsupported("How long have you been playing?", context, df) == 0
    many = "Tokyo, Osaka, Kyoto and Sapporo, all in one week."
    assert unsupported(many, context, df) == MAX_COUNT


def test_short_words_and_case_do_not_count() -> None:
    df = document_frequency(REPLIES)
    assert unsupported("Ha, TOKYO!", ["tokyo was great"], df) == 0
    assert unsupported("Ha, so big.", [], df) == 0
