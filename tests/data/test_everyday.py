"""The everyday corpus as shipped: schema, split, filter, persona, variety floors."""

from __future__ import annotations

import collections
import gzip
import json
from pathlib import Path

import pytest

from chatbot.data import everyday, load_corpus
from chatbot.data.split import split_conversations
from chatbot.data.variety import near_duplicates, variety
from chatbot.errors import CorpusFormatError, DataError
from chatbot.replies.filter import ReplyFilter
from chatbot.replies.persona import human_claim

SCRIPTS = Path(__file__).parents[2] / "scripts" / "corpus"


@pytest.fixture(scope="module")
def records() -> list[everyday.Record]:
    return everyday.records()


@pytest.fixture(scope="module")
def topics() -> dict[str, everyday.Topic]:
    return everyday.topics()


def test_topic_list_is_large_and_spans_the_categories(topics):
    assert len(topics) >= 400
    categories = collections.Counter(t.category for t in topics.values())
    assert len(categories) >= 25
    assert {"bad-news", "good-news", "about-bot", "advice", "small-talk"} <= set(categories)
    heldout = [t for t in topics.values() if t.split == "heldout"]
    assert 20 <= len(heldout) <= 40
    assert len({t.category for t in heldout}) >= 20


def test_size_and_lengths(records):
    assert len(records) >= 10_000
    assert sum(len(r.turns) for r in records) >= 80_000
    assert all(4 <= len(r.turns) <= 16 for r in records)
    assert len({r.id for r in records}) == len(records)


def test_every_topic_is_listed_and_none_dominates(records, topics):
    per_topic = collections.Counter(r.topic for r in records)
    assert set(per_topic) <= set(topics)
    assert max(per_topic.values()) <= 0.015 * len(records)
    assert len(per_topic) >= 0.9 * len(topics)


def test_split_is_fixed_by_id_and_heldout_topics_never_train(records, topics):
    by_split = collections.Counter(r.split for r in records)
    assert by_split["train"] > 0.8 * len(records)
    assert 0.03 < by_split["test"] / len(records) < 0.07
    assert 0.03 < by_split["valid"] / len(records) < 0.07
    for r in records:
        assert (r.split == "heldout") == (topics[r.topic].split == "heldout"), r.id
    trained = {c.id for c in load_corpus("everyday")}
    heldout = {c.id for c in load_corpus("everyday:heldout")}
    assert not trained & heldout
    assert heldout == {r.id for r in records if r.split == "heldout"}


def test_load_keeps_the_files_split_whatever_the_seed():
    conversations = load_corpus("everyday")
    a = split_conversations(conversations, seed=0)
    b = split_conversations(conversations, seed=7)
    assert [c.id for c in a.test] == [c.id for c in b.test]
    assert {c.split for c in a.train} == {"train"}


def test_sources_combine_with_plus():
    both = load_corpus("everyday+chatterbot") if _has("chatterbot_corpus") else None
    if both is None:
        pytest.skip("chatterbot-corpus is not installed")
    assert len(both) == len(load_corpus("everyday")) + len(load_corpus("chatterbot"))


def test_every_turn_passes_the_reply_filter_and_the_bot_claims_no_human_life(records):
    reply_filter = ReplyFilter.default()
    for r in records:
        for k, turn in enumerate(r.turns):
            assert reply_filter.blocked(turn) is None, (r.id, k, turn)
            if k % 2:
                assert human_claim(turn) is None, (r.id, k, turn)


def test_variety_floors(records):
    v = variety([r.turns for r in records])
    assert v.top_opener_share <= 0.02, v.top_openers[:3]
    assert v.distinct_2 >= 0.30  # chitchat: 0.267 over 67k bot turns
    assert v.repeated_rate <= 0.005
    assert v.near_duplicates == 0
    assert 8 <= v.bot_words_median <= 25
    assert v.question_rate <= 0.6


def test_user_side_reads_like_people_type(records):
    user = [t for r in records for t in r.turns[0::2]]
    short = sum(3 <= len(t.split()) <= 20 for t in user) / len(user)
    lower = sum(t == t.lower() for t in user) / len(user)
    assert short >= 0.7
    assert lower >= 0.25


def test_near_duplicates_are_found():
    a = ["my cat knocked the plant off the shelf again", "Which plant was it this time?",
         "the basil one, soil everywhere", "Basil never stood a chance against a bored cat."]
    b = [*a[:3], "Cats and basil, an old rivalry."]
    c = ["hello there", "Hi! How is your day going so far?", "fine", "Just fine, or good?"]
    assert near_duplicates([a, b, c]) == [0, 1]


def test_malformed_lines_are_located(tmp_path):
    path = tmp_path / "c.jsonl.gz"
    good = {"id": "a", "topic": "tea", "split": "train", "turns": ["hi", "hello"]}
    with gzip.open(path, "wt", encoding="utf-8") as stream:
        stream.write(json.dumps(good) + "\n" + '{"id": "b", "topic": 3}\n')
    with pytest.raises(CorpusFormatError) as info:
        everyday.records(path)
    assert str(info.value).startswith(f"{path}:2:1:")
    with gzip.open(path, "wt", encoding="utf-8") as stream:
        stream.write("[" * 100_000 + "\n")
    with pytest.raises(CorpusFormatError):
        everyday.records(path)
    path.write_bytes(b"not gzip")
    with pytest.raises(DataError):
        everyday.records(path)


def test_unknown_everyday_subset_is_an_error():
    with pytest.raises(DataError, match="everyday:heldout"):
        load_corpus("everyday:nope")


def test_the_build_is_reproducible(records, tmp_path):
    import subprocess
    import sys

    slices = sorted((Path(__file__).parents[2] / "corpus" / "slices").glob("*.jsonl.gz"))
    out = tmp_path / "rebuilt.jsonl.gz"
    subprocess.run([sys.executable, str(SCRIPTS / "build.py"), *map(str, slices), "--out", str(out)],
                   check=True, capture_output=True)
    assert out.read_bytes() == everyday.CONVERSATIONS.read_bytes()


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
