"""Byte-level BPE: every string round-trips, special ids are fixed, files round-trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatbot.errors import FormatError, MissingFileError
from chatbot.text import SPECIAL_TOKENS, Tokenizer

SENTENCES = [
    "hello there, how are you today?",
    "i am fine, thank you. and you?",
    "what do you like to do for fun?",
    "i like hiking, reading and cooking.",
    "the weather is lovely this morning!",
    "café au lait, s'il vous plaît",
] * 4


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer.train(SENTENCES, vocab_size=300, min_frequency=1)


def test_trained_vocabulary(tokenizer: Tokenizer) -> None:
    assert tokenizer.vocab_size == 300
    vocab = json.loads(tokenizer.to_json())["model"]["vocab"]
    assert len(vocab) == 300
    assert len(set(vocab) - set(SPECIAL_TOKENS)) == 296, "256 bytes + 40 merges"


def test_training_is_deterministic(tokenizer: Tokenizer) -> None:
    again = Tokenizer.train(SENTENCES, vocab_size=300, min_frequency=1)
    assert again.to_json() == tokenizer.to_json()


def test_special_ids(tokenizer: Tokenizer) -> None:
    assert SPECIAL_TOKENS == ("<pad>", "<bos>", "<eos>", "<sep>")
    ids = (tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id, tokenizer.sep_id)
    assert ids == (0, 1, 2, 3)
    added = json.loads(tokenizer.to_json())["added_tokens"]
    assert [(t["id"], t["content"], t["special"]) for t in added] == [
        (0, "<pad>", True),
        (1, "<bos>", True),
        (2, "<eos>", True),
        (3, "<sep>", True),
    ]


def test_merges_shorten_training_text(tokenizer: Tokenizer) -> None:
    text = "hello there, how are you today?"
    ids = tokenizer.encode(text)
    assert len(ids) < len(text.encode("utf-8"))
    assert tokenizer.decode(ids) == text
    assert "".join(tokenizer.token_strings(ids)) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "hello",
        "  leading and trailing  ",
        "tabs\tand\nnewlines\r\n\n\n",
        "runs     of      spaces",
        "\u00a0\u2009\u3000 unicode spaces \u2028\u2029",
        "café naïve résumé Ångström",
        "e\u0301 a\u0308 combining marks \u0303\u0304",
        "emoji 😀👍🏽🇫🇷",
        "family 👩\u200d👩\u200d👧\u200d👦 ZWJ",
        "control \x00\x01\x07\x1b[0m\x7f\x85",
        "中文 日本語 한국어 العربية עברית",
        "\ufeffbom and \ufffd replacement",
        "<pad><bos><eos><sep>",
        "say <eos> and <pad>, mid<sep>word",
    ],
)
def test_round_trip_examples(tokenizer: Tokenizer, text: str) -> None:
    ids = tokenizer.encode(text)
    assert tokenizer.decode(ids) == text
    assert all(i > tokenizer.sep_id for i in ids)


def test_special_token_text_is_ordinary_text(tokenizer: Tokenizer) -> None:
    assert tokenizer.encode("<eos>") == tokenizer.encode("<") + tokenizer.encode("eos>")
    assert tokenizer.encode_batch(["<pad>", "x"]) == [
        tokenizer.encode("<pad>"),
        tokenizer.encode("x"),
    ]


@settings(
    max_examples=400,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(text=st.text())
def test_round_trip_property(tokenizer: Tokenizer, text: str) -> None:
    ids = tokenizer.encode(text)
    assert tokenizer.decode(ids) == text
    assert min(ids, default=4) >= 4, "encode never emits a special id"


def test_lone_surrogate_becomes_replacement_character(tokenizer: Tokenizer) -> None:
    ids = tokenizer.encode("a\ud800b\udfff")
    assert ids == tokenizer.encode("a\ufffdb\ufffd")
    assert tokenizer.decode(ids) == "a\ufffdb\ufffd"


def test_decode_drops_special_ids_and_repairs_broken_utf8(tokenizer: Tokenizer) -> None:
    ids = tokenizer.encode("hi")
    assert tokenizer.decode([1, *ids, 2, 0, 0]) == "hi"
    first_byte_of_e_acute = tokenizer.encode("é")[0]
    assert tokenizer.decode([first_byte_of_e_acute]) == "\ufffd"


def test_encode_batch_equals_encode(tokenizer: Tokenizer) -> None:
    texts = ["hello there", "", "café 😀", "a\ud800"]
    assert tokenizer.encode_batch(texts) == [tokenizer.encode(t) for t in texts]


def test_save_load_round_trip(tokenizer: Tokenizer, tmp_path: Path) -> None:
    path = tmp_path / "tokenizer.json"
    path.write_text(tokenizer.to_json(), encoding="utf-8")
    loaded = Tokenizer.load(path)
    assert loaded.to_json() == tokenizer.to_json()
    texts = [*SENTENCES[:6], "unseen words: zygote quixotic 😀", "<eos>"]
    assert loaded.encode_batch(texts) == tokenizer.encode_batch(texts)
    assert Tokenizer.from_json(tokenizer.to_json()).encode("<eos>") == tokenizer.encode("<eos>")


def test_from_json_garbage() -> None:
    with pytest.raises(FormatError) as info:
        Tokenizer.from_json("garbage", path="model/tokenizer.json")
    assert str(info.value).startswith("model/tokenizer.json: not a tokenizer file: ")


def test_from_json_wrong_special_ids(tokenizer: Tokenizer) -> None:
    data = json.loads(tokenizer.to_json())
    data["added_tokens"] = data["added_tokens"][1:]
    vocab = data["model"]["vocab"]
    del vocab["<pad>"]
    with pytest.raises(FormatError) as info:
        Tokenizer.from_json(json.dumps(data), path="t.json")
    assert str(info.value) == "t.json: special tokens must be ids 0-3, got [None, 1, 2, 3]"


def test_load_missing_and_non_utf8(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match=r"tokenizer\.json: no such file$"):
        Tokenizer.load(tmp_path / "tokenizer.json")
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"a": "\xff"}')
    with pytest.raises(FormatError, match=r"bad\.json: not UTF-8 text \(byte 7\)$"):
        Tokenizer.load(bad)


def test_token_strings_decode_each_token_alone(tokenizer: Tokenizer) -> None:
    ids = [*tokenizer.encode("héllo wörld 🙂, how are you?"), 0, 1, 2, 3]
    one_by_one = [tokenizer.decode([i]) if i > tokenizer.sep_id else "" for i in ids]
    assert tokenizer.token_strings(ids) == one_by_one
    assert one_by_one[-4:] == ["", "", "", ""]
    assert "\ufffd" in one_by_one  # a multi-byte character split across tokens
