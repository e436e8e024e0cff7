"""The reply index: TF-IDF retrieval of human replies, filtering, the gzipped JSON file."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from chatbot.data.corpora import Conversation
from chatbot.errors import FormatError
from chatbot.replies.index import CONTEXT_WEIGHT, MAX_REPLY_WORDS, Hit, ReplyIndex

CONVERSATIONS = [
    Conversation("dogs", ("I just adopted a dog", "What breed is your dog?",
                          "A golden retriever puppy", "Golden retrievers are so friendly")),
    Conversation("coffee", ("Do you drink coffee in the morning?",
                            "Yes, I need coffee every morning", "I prefer tea in the morning",
                            "Tea is nice too")),
    Conversation("travel", ("I am planning a trip to Japan", "Japan is a great place for a trip",
                            "What should I see in Tokyo?", "Visit the temples and eat sushi")),
    Conversation("cats", ("I just adopted a cat", "What breed is your cat?", "A grumpy old cat",
                          "Old cats are the best")),
    Conversation("tea", ("Do you drink tea in the morning?", "Yes, I need coffee every morning",
                         "Coffee keeps me awake", "tea is NICE too")),
    Conversation("trains", ("I am planning a trip by train", "Trains are a relaxing way to travel",
                            "How long is the trip?", "About six hours")),
]
"""Six conversations of four turns: 18 entries, two replies said twice (once in other case)."""

QUERIES = ["I just adopted a dog", "Do you drink tea in the morning?", "planning a trip",
           "Yes, I need coffee every morning", "what about the morning?"]


@pytest.fixture(scope="module")
def index() -> ReplyIndex:
    return ReplyIndex.build(CONVERSATIONS)


def search(index: ReplyIndex, query: str, *, k: int = 20, **kwargs: Any) -> list[Hit]:
    [hits] = index.search([query], k=k, **kwargs)
    return hits


def test_every_reply_of_a_turn_after_the_first_is_an_entry(index: ReplyIndex) -> None:
    assert len(index) == 18
    assert index.entries == [(c, t) for c in range(6) for t in (1, 2, 3)]
    assert index.key(0) == "I just adopted a dog"
    assert index.reply(0) == "What breed is your dog?"
    assert index.key(17) == "How long is the trip?"
    assert index.reply(17) == "About six hours"


def test_source_is_conversation_id_and_turn(index: ReplyIndex) -> None:
    assert index.source(0) == ("dogs", 1)
    assert index.source(5) == ("coffee", 3)
    assert index.source(17) == ("trains", 3)
    assert [index.source(i) for i in range(len(index))] == [
        (conv.id, t) for conv in CONVERSATIONS for t in (1, 2, 3)
    ]


def test_a_keys_exact_text_finds_that_entry_first(index: ReplyIndex) -> None:
    hits = search(index, "I just adopted a dog")
    assert hits[0].entry == 0
    assert hits[0].similarity == pytest.approx(1.0, abs=1e-6)
    assert index.reply(hits[0].entry) == "What breed is your dog?"
    # The cat conversation shares every term but "dog".
    assert index.reply(hits[1].entry) == "What breed is your cat?"
    assert hits[1].similarity == pytest.approx(0.864308, abs=1e-5)


@pytest.mark.parametrize("entry", range(18))
def test_every_key_retrieves_itself_with_similarity_one(index: ReplyIndex, entry: int) -> None:
    first = search(index, index.key(entry))[0]
    assert index.key(first.entry) == index.key(entry)
    assert first.similarity == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("query", QUERIES)
def test_hits_are_sorted_positive_and_distinct_replies(index: ReplyIndex, query: str) -> None:
    hits = search(index, query)
    similarities = [h.similarity for h in hits]
    assert hits
    assert similarities == sorted(similarities, reverse=True)
    assert all(s > 0 for s in similarities)
    replies = [index.reply(h.entry).casefold() for h in hits]
    assert len(replies) == len(set(replies))


def test_a_reply_said_twice_is_returned_once(index: ReplyIndex) -> None:
    """Entries 4 and 13 have equal keys and replies that differ only in case."""
    hits = search(index, "Yes, I need coffee every morning")
    assert [h.entry for h in hits[:2]] == [4, 13]
    assert index.reply(4) == "I prefer tea in the morning"
    assert index.reply(13) == "Coffee keeps me awake"
    replies = [index.reply(h.entry) for h in search(index, "Do you drink tea in the morning?")]
    assert replies.count("Yes, I need coffee every morning") == 1
    assert sum(r.casefold() == "tea is nice too" for r in replies) == 1


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_k_caps_the_hits_to_the_best_ones(index: ReplyIndex, k: int) -> None:
    everything = search(index, "planning a trip")
    assert len(everything) > 5
    assert search(index, "planning a trip", k=k) == everything[:k]


def test_k_zero_finds_nothing(index: ReplyIndex) -> None:
    assert search(index, "planning a trip", k=0) == []


def test_a_query_of_unknown_words_finds_nothing(index: ReplyIndex) -> None:
    unknown, known = index.search(["zebra xylophone", "I just adopted a dog"], k=5)
    assert unknown == []
    assert known[0].entry == 0
    assert index.search(["", "Tokyo sushi temples"], k=5) == [[], []]


def test_exclude_skips_that_conversations_entries(index: ReplyIndex) -> None:
    everything = search(index, "I just adopted a dog")
    excluded = search(index, "I just adopted a dog", exclude=[0])
    assert excluded == [h for h in everything if index.entries[h.entry][0] != 0]
    assert index.reply(excluded[0].entry) == "What breed is your cat?"
    both = index.search(["I just adopted a dog"] * 2, k=20, exclude=[3, 0])
    assert both[0][0].entry == 0
    assert all(index.entries[h.entry][0] != 3 for h in both[0])
    assert both[1] == excluded


def test_replies_over_max_words_are_not_entries() -> None:
    longest = " ".join(["word"] * MAX_REPLY_WORDS)
    too_long = longest + " more"
    conversations = [*CONVERSATIONS,
                     Conversation("long", ("I just adopted a dog", too_long, "planning a trip",
                                           longest))]
    index = ReplyIndex.build(conversations)
    assert index.entries[18:] == [(6, 2), (6, 3)]
    assert index.reply(19) == longest
    assert all(index.reply(h.entry) != too_long for h in search(index, "I just adopted a dog"))


def test_keep_filters_the_replies() -> None:
    index = ReplyIndex.build(CONVERSATIONS, keep=lambda reply: "coffee" not in reply.casefold())
    expected = [(c, t) for c in range(6) for t in (1, 2, 3)]
    for dropped in [(1, 1), (4, 1), (4, 2)]:
        expected.remove(dropped)
    assert index.entries == expected
    assert all("coffee" not in index.reply(h.entry).casefold()
               for h in search(index, "Do you drink coffee in the morning?"))


def test_to_bytes_is_deterministic() -> None:
    data = ReplyIndex.build(CONVERSATIONS).to_bytes()
    assert data == ReplyIndex.build(CONVERSATIONS).to_bytes()
    assert data[4:8] == b"\0\0\0\0"  # gzip mtime
    header = json.loads(gzip.decompress(data))
    assert (header["format"], header["version"]) == ("chatbot-reply-index", 1)
    assert header["conversations"][0] == ["dogs", list(CONVERSATIONS[0].turns)]


def test_load_reads_what_to_bytes_wrote(index: ReplyIndex, tmp_path: Path) -> None:
    path = tmp_path / "replies.json.gz"
    path.write_bytes(index.to_bytes())
    loaded = ReplyIndex.load(path)
    assert loaded.conversations == CONVERSATIONS
    assert loaded.entries == index.entries
    assert loaded.vocabulary == index.vocabulary
    assert loaded.to_bytes() == index.to_bytes()
    for built, read in zip(index.search(QUERIES, k=20), loaded.search(QUERIES, k=20),
                           strict=True):
        assert [h.entry for h in read] == [h.entry for h in built]
        assert [h.similarity for h in read] == pytest.approx([h.similarity for h in built],
                                                             abs=1e-6)
    again = tmp_path / "again.json.gz"
    again.write_bytes(loaded.to_bytes())
    assert ReplyIndex.load(again).search(QUERIES, k=20) == loaded.search(QUERIES, k=20)


def test_a_loaded_index_searches_exactly_as_the_built_one(
    index: ReplyIndex, tmp_path: Path
) -> None:
    path = tmp_path / "replies.json.gz"
    path.write_bytes(index.to_bytes())
    assert ReplyIndex.load(path).search(QUERIES, k=20) == index.search(QUERIES, k=20)


def valid_data(index: ReplyIndex) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(gzip.decompress(index.to_bytes()))
    return data


def load_error(path: Path, raw: bytes) -> str:
    path.write_bytes(raw)
    with pytest.raises(FormatError) as caught:
        ReplyIndex.load(path)
    assert caught.value.path == str(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    return message.removeprefix(f"{path}: ")


def corrupt(index: ReplyIndex, path: Path, **changes: Any) -> str:
    data = valid_data(index)
    data.update(changes)
    return load_error(path, gzip.compress(json.dumps(data).encode()))


def test_a_file_that_is_not_gzip_is_a_format_error(index: ReplyIndex, tmp_path: Path) -> None:
    message = load_error(tmp_path / "replies.json.gz", b"hello, world")
    assert message == "not a reply index: Not a gzipped file (b'he')"


def test_gzip_of_non_json_is_a_format_error(index: ReplyIndex, tmp_path: Path) -> None:
    message = load_error(tmp_path / "replies.json.gz", gzip.compress(b"{oops"))
    assert message.startswith("not a reply index: invalid JSON: Expecting property name")


def test_a_wrong_format_name_is_a_format_error(index: ReplyIndex, tmp_path: Path) -> None:
    path = tmp_path / "replies.json.gz"
    assert corrupt(index, path, format="chatbot-other") == "not a chatbot-reply-index file"
    assert load_error(path, gzip.compress(b"[1, 2]")) == "not a chatbot-reply-index file"


def test_a_wrong_version_is_a_format_error(index: ReplyIndex, tmp_path: Path) -> None:
    message = corrupt(index, tmp_path / "replies.json.gz", version=2)
    assert message == "reply index version 2 is not supported"


@pytest.mark.parametrize(
    ("entry", "expected"),
    [([0, 4], "entry (0, 4) names no reply"),
     ([0, 0], "entry (0, 0) names no reply"),
     ([6, 1], "entry (6, 1) names no reply")],
)
def test_an_entry_naming_no_reply_is_a_format_error(
    index: ReplyIndex, tmp_path: Path, entry: list[int], expected: str
) -> None:
    entries = [list(e) for e in index.entries]
    entries[-1] = entry
    assert corrupt(index, tmp_path / "replies.json.gz", entries=entries) == expected


def test_an_idf_length_mismatch_is_a_format_error(index: ReplyIndex, tmp_path: Path) -> None:
    terms = len(index.vocabulary)
    message = corrupt(index, tmp_path / "replies.json.gz", idf=[1.0] * (terms - 1))
    assert message == f"{terms - 1} idf weights for {terms} terms"


def test_a_missing_field_is_a_format_error(index: ReplyIndex, tmp_path: Path) -> None:
    path = tmp_path / "replies.json.gz"
    data = valid_data(index)
    del data["entries"]
    message = load_error(path, gzip.compress(json.dumps(data).encode()))
    assert message == "invalid reply index: KeyError('entries')"


def test_the_line_before_the_key_breaks_ties_between_equal_keys() -> None:
    conversations = [
        Conversation("up", ("what time do you get up?", "like 6:30", "wow that is early")),
        Conversation("eat", ("when do you eat dinner?", "like 6:30", "same here")),
        # min_df=2: "dinner" and "get up" need a second key to enter the vocabulary.
        Conversation("more", ("dinner was great", "nice", "I get up at noon", "lucky")),
    ]
    index = ReplyIndex.build(conversations)
    [plain] = index.search(["like 6:30"], k=2)
    assert [round(h.similarity, 6) for h in plain] == [1.0, 1.0]
    [up] = index.search(["like 6:30"], k=2, contexts=["what time do you get up?"])
    [eat] = index.search(["like 6:30"], k=2, contexts=["when do you eat dinner?"])
    assert index.reply(up[0].entry) == "wow that is early"
    assert index.reply(eat[0].entry) == "same here"
    assert up[0].similarity == pytest.approx(1.0 + CONTEXT_WEIGHT)
    assert 1.0 < up[1].similarity < up[0].similarity  # the other context shares "do you"
    assert index.context(up[0].entry) == "what time do you get up?"


def test_the_context_alone_never_retrieves_a_reply() -> None:
    from chatbot.data import Conversation
    from chatbot.replies.index import ReplyIndex

    index = ReplyIndex.build([
        Conversation("a", ("do you read books", "do you like tea", "which tea", "green tea")),
        Conversation("b", ("do you like tea", "yes a lot", "which books", "old ones")),
        Conversation("c", ("which books do you read", "crime novels")),
    ])
    # After the bot said "do you like tea", the corpus line after it ("which tea"
    # -> "green tea") matched any utterance by its context; gibberish shares no word.
    [hits] = index.search(["zzqx wplk"], k=5, contexts=["do you like tea"])
    assert hits == []
    [hits] = index.search(["which"], k=5, contexts=["do you like tea"])
    assert hits and index.reply(hits[0].entry) == "green tea"  # the context still counts
