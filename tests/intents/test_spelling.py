"""Short-word typos and chat abbreviations, read in the intents' spelling."""

from __future__ import annotations

from chatbot.intents import Intent, IntentMatcher
from chatbot.intents.spelling import CHAT_ABBREVIATIONS, Speller, common_words, slips

VOCABULARY = ["hello", "help", "hi", "bye", "thanks", "ty", "feel", "tell", "hat", "how",
              "are", "you", "good", "morning", "night", "hello", "cart", "card"]


def test_slip_costs_follow_the_slips_people_make() -> None:
    found = slips("helo")
    assert found["hello"] == 0.5    # a dropped double letter
    assert found["help"] == 0.75    # o and p are neighbouring keys
    assert found["hel"] == 1.0      # any other dropped letter
    assert found["hleo"] == 0.75    # two neighbours swapped
    assert found["heko"] == 0.75 and found["hexo"] == 1.0
    assert slips("hii")["hi"] == 0.5
    assert "helo" not in found
    # Every candidate is one edit away: a length change of at most one.
    assert {len(w) for w in found} == {3, 4, 5}


def test_a_short_word_is_read_as_the_cheapest_example_word() -> None:
    speller = Speller(VOCABULARY)
    assert speller.read("helo") == "hello"          # not "help": a double costs least
    assert speller.read("hii thnaks") == "hi thanks"
    assert speller.read("hwo r u") == "how are you"
    assert speller.read("gud nite") == "good night"
    assert speller.read("thnx") == "thanks" and CHAT_ABBREVIATIONS["thnx"] == "thanks"


def test_words_are_left_as_typed_when_reading_them_would_guess() -> None:
    speller = Speller(VOCABULARY)
    assert speller.read("ty") == "ty"               # an example uses the abbreviation
    assert speller.read("fell") == "fell"           # a common word, never a typo of "tell"
    assert "fell" in common_words() and len(common_words()) == 3569
    assert speller.read("cat") == "cat"             # 3 letters: only cheap slips count
    assert speller.read("carq") == "carq"           # "cart" and "card" tie on cost and count
    assert speller.read("xq") == "xq"               # too short to correct
    assert speller.read("zzzzzz") == "zzzzzz"


def test_the_tie_goes_to_the_word_the_examples_use_most() -> None:
    assert Speller([*VOCABULARY, "card"]).read("carq") == "card"


def test_the_matcher_reads_typos_before_scoring() -> None:
    matcher = IntentMatcher([
        Intent("greet", examples=("hello", "hi there")),
        Intent("help", examples=("help", "i need help")),
        Intent("thanks", examples=("thanks", "thank you")),
    ])
    assert matcher.rank("helo")[0].intent == "greet" and matcher.rank("helo")[0].score == 1.0
    assert matcher.rank("hlep")[0].intent == "help"
    assert matcher.rank("thnx!!")[0].score == 1.0
    assert matcher.speller.read("i fell asleep") == "i fell asleep"
    assert matcher.rank("i fell asleep")[0].score < 0.2
