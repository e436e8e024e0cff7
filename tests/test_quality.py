"""Reply-quality figures: distinct-n and the generic-reply rate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatbot.cli import main
from chatbot.data import Conversation
from chatbot.generator import Generator
from chatbot.quality import distinct_n, generic_rate, held_out_turns, reply_quality, tokens


def test_tokens_split_words_and_punctuation() -> None:
    assert tokens("I'm fine, thanks!") == ["i'm", "fine", ",", "thanks", "!"]


def test_distinct_n_golden_values() -> None:
    replies = ["i am fine", "i am good", "fine"]
    assert distinct_n(replies, 1) == pytest.approx(4 / 7)
    assert distinct_n(replies, 2) == pytest.approx(3 / 4)
    assert distinct_n([], 1) == 0.0
    assert distinct_n(["one"], 2) == 0.0


def test_generic_rate_counts_the_most_frequent_replies() -> None:
    replies = ["ok"] * 5 + ["yes"] * 3 + [f"r{i}" for i in range(12)]
    rate, common = generic_rate(replies, top=2)
    assert rate == pytest.approx(8 / 20)
    assert common == [("ok", 5), ("yes", 3)]


def test_held_out_turns_carry_the_real_history(tiny_model_dir: Path) -> None:
    generator = Generator.load(tiny_model_dir)
    conv = Conversation("c", ("a b", "c d", "e f", "g h", "i j"))
    turns = held_out_turns(generator, [conv], limit=10)
    assert [user for _, user in turns] == ["a b", "e f"]
    assert turns[0][0] == generator.initial_state()
    expected = generator.initial_state()
    for text in ("a b", "c d"):
        [expected] = generator.observe([expected], [text])
    assert turns[1][0] == expected
    assert len(held_out_turns(generator, [conv, conv], limit=3)) == 3


def test_reply_quality_matches_the_functions_on_the_decoded_replies(
    tiny_model_dir: Path,
) -> None:
    generator = Generator.load(tiny_model_dir)
    convs = [Conversation("a", ("hi there", "hello", "how are you?", "good")),
             Conversation("b", ("do you like pizza?", "yes", "me too", "nice"))]
    quality = reply_quality(generator, convs, limit=4)
    items = held_out_turns(generator, convs, limit=4)
    replies = [g.text for g, _ in generator.respond([(s, u, None) for s, u in items])]
    assert quality.replies == 4
    assert quality.distinct_1 == pytest.approx(distinct_n(replies, 1))
    assert quality.distinct_2 == pytest.approx(distinct_n(replies, 2))
    assert quality.generic_rate == pytest.approx(generic_rate(replies)[0])


def test_eval_with_replies_reports_diversity(
    tiny_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", str(tiny_run), "--split", "all", "--replies", "20", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["turns"] == 20
    keys = {"hits_at_1", "hits_at_1_retrieved", "f1", "distinct_1", "distinct_2",
            "generic_rate", "mean_length"}
    for system in ("generated", "selected"):
        assert set(report[system]) == keys
        assert 0.0 < report[system]["distinct_1"] <= 1.0
        assert 0.0 < report[system]["generic_rate"] <= 1.0
        assert 0.0 <= report[system]["hits_at_1"] <= 1.0
