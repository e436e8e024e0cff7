"""Corpus sources, each read from small files written in its real format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatbot.data import Conversation, load_corpus
from chatbot.errors import CorpusFormatError, DataError, EmptyCorpusError

# Cornell Movie-Dialogs files list lines newest first; 0x85 is a Windows "..." byte.
MOVIE_LINES = [
    "L1045 +++$+++ u0 +++$+++ m0 +++$+++ BIANCA +++$+++ They do not!",
    "L1044 +++$+++ u2 +++$+++ m0 +++$+++ CAMERON +++$+++ They do to!",
    "L985 +++$+++ u0 +++$+++ m0 +++$+++ BIANCA +++$+++ I hope so.",
    "L984 +++$+++ u2 +++$+++ m0 +++$+++ CAMERON +++$+++ She okay?",
    "L926 +++$+++ u0 +++$+++ m0 +++$+++ BIANCA +++$+++ Wait\x85 the caf\xe9?",
    "L925 +++$+++ u0 +++$+++ m0 +++$+++ BIANCA +++$+++ Let's go.",
    "L924 +++$+++ u2 +++$+++ m0 +++$+++ CAMERON +++$+++ Wow",
    "L900 +++$+++ u2 +++$+++ m0 +++$+++ CAMERON +++$+++ ",
    "L899 +++$+++ u0 +++$+++ m0 +++$+++ BIANCA +++$+++ Alone.",
]
MOVIE_CONVERSATIONS = [
    "u0 +++$+++ u2 +++$+++ m0 +++$+++ ['L1044', 'L1045']",
    "u0 +++$+++ u2 +++$+++ m0 +++$+++ ['L984', 'L985']",
    "u0 +++$+++ u2 +++$+++ m0 +++$+++ ['L924', 'L925', 'L926']",
    "u0 +++$+++ u2 +++$+++ m0 +++$+++ ['L899', 'L900']",
]
CORNELL = [
    Conversation("cornell:1", ("They do to!", "They do not!")),
    Conversation("cornell:2", ("She okay?", "I hope so.")),
    Conversation("cornell:3", ("Wow", "Let's go. Wait the caf\u00e9?")),
]


def _lines(path: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def _cornell_dir(root: Path) -> Path:
    folder = root / "cornell movie-dialogs corpus"
    folder.mkdir()
    _lines(folder / "movie_lines.txt", MOVIE_LINES, "iso-8859-1")
    _lines(folder / "movie_conversations.txt", MOVIE_CONVERSATIONS, "iso-8859-1")
    return folder


def _utterance(
    uid: str,
    cid: str,
    speaker: str,
    text: str,
    reply_to: str | None,
    timestamp: float | None = None,
) -> str:
    return json.dumps(
        {
            "id": uid,
            "conversation_id": cid,
            "text": text,
            "speaker": speaker,
            "meta": {"movie_id": "m0"},
            "reply-to": reply_to,
            "timestamp": timestamp,
            "vectors": [],
        }
    )


def test_jsonl_lists_and_turn_objects(tmp_path: Path) -> None:
    path = _lines(
        tmp_path / "d.jsonl",
        [
            json.dumps(["hi there", "hello!"]),
            "",
            json.dumps({"turns": ["  how   are\tyou? ", "", "fine\nthanks", "good"]}),
            json.dumps(["just one turn"]),
            json.dumps(["line\u2028separator", "next\u0085line"], ensure_ascii=False),
        ],
    )
    assert load_corpus(f"jsonl:{path}") == [
        Conversation("d.jsonl:1", ("hi there", "hello!")),
        Conversation("d.jsonl:3", ("how are you?", "fine thanks", "good")),
        Conversation("d.jsonl:5", ("line separator", "next line")),
    ]


def test_jsonl_conftest_corpus(corpus_file: Path) -> None:
    conversations = load_corpus(f"jsonl:{corpus_file}")
    assert len(conversations) == 120
    assert conversations[0].id == "dialogues.jsonl:1"
    assert all(4 <= len(c.turns) <= 6 for c in conversations)


@pytest.mark.parametrize(
    ("line", "col", "message"),
    [
        ('["a", "b"', 10, "invalid JSON: Expecting ',' delimiter"),
        ('{"turns": }', 11, "invalid JSON: Expecting value"),
        ('["a", 2]', 1, 'expected a JSON list of strings (or {"turns": [...]})'),
        ('{"text": "a"}', 1, 'expected a JSON list of strings (or {"turns": [...]})'),
        ('"a b"', 1, 'expected a JSON list of strings (or {"turns": [...]})'),
    ],
)
def test_jsonl_malformed_line(tmp_path: Path, line: str, col: int, message: str) -> None:
    path = _lines(tmp_path / "bad.jsonl", [json.dumps(["a", "b"]), "", line, json.dumps(["c"])])
    with pytest.raises(CorpusFormatError) as info:
        load_corpus(f"jsonl:{path}")
    assert str(info.value) == f"{path}:3:{col}: {message}"
    assert (info.value.line, info.value.col) == (3, col)


def test_cornell_movie_dialogs(tmp_path: Path) -> None:
    assert load_corpus(f"cornell:{_cornell_dir(tmp_path)}") == CORNELL


def test_cornell_bad_field_count(tmp_path: Path) -> None:
    folder = _cornell_dir(tmp_path)
    _lines(folder / "movie_lines.txt", [MOVIE_LINES[0], "L1044 +++$+++ u2 +++$+++ m0"])
    with pytest.raises(CorpusFormatError) as info:
        load_corpus(f"cornell:{folder}")
    assert str(info.value) == (
        f"{folder / 'movie_lines.txt'}:2:1: expected 5 fields separated by '+++$+++', got 3"
    )


def test_cornell_unknown_line_id(tmp_path: Path) -> None:
    folder = _cornell_dir(tmp_path)
    _lines(
        folder / "movie_conversations.txt",
        [MOVIE_CONVERSATIONS[0], "u0 +++$+++ u2 +++$+++ m0 +++$+++ ['L984', 'L7']"],
    )
    with pytest.raises(CorpusFormatError) as info:
        load_corpus(f"cornell:{folder}")
    assert str(info.value) == f"{folder / 'movie_conversations.txt'}:2:44: unknown line id L7"


def test_convokit_follows_replies_and_merges_speakers(tmp_path: Path) -> None:
    path = _lines(
        tmp_path / "utterances.jsonl",
        [
            # The ConvoKit movie corpus: newest first, no timestamps, order from reply-to.
            _utterance("L1045", "L1044", "u0", "They do not!", "L1044"),
            _utterance("L1044", "L1044", "u2", "They do to!", None),
            _utterance("L985", "L984", "u0", "I hope so.", "L984"),
            _utterance("L984", "L984", "u2", "She okay?", None),
            # Same speaker twice in a row is one turn.
            _utterance("L926", "L924", "u0", "Wait...", "L925"),
            _utterance("L925", "L924", "u0", "Let's go.", "L924"),
            _utterance("L924", "L924", "u2", "Wow", None),
            _utterance("L927", "L924", "u2", "  ", "L926"),
            _utterance("L928", "L924", "u0", "Really.", "L927"),
            # No reply links: timestamps decide.
            _utterance("t2", "t", "b", "second", None, 20.0),
            _utterance("t1", "t", "a", "first", None, 10.0),
            _utterance("t3", "t", "a", "third", None, 30.0),
            _utterance("s1", "solo", "a", "nobody answers", None),
        ],
    )
    expected = [
        Conversation("L1044", ("They do to!", "They do not!")),
        Conversation("L984", ("She okay?", "I hope so.")),
        Conversation("L924", ("Wow", "Let's go. Wait... Really.")),
        Conversation("t", ("first", "second", "third")),
    ]
    assert load_corpus(f"cornell:{path}") == expected
    assert load_corpus(f"cornell:{tmp_path}") == expected


def test_convokit_and_movie_files_agree(tmp_path: Path) -> None:
    folder = _cornell_dir(tmp_path)
    speakers = {"u0": "BIANCA", "u2": "CAMERON"}
    by_id = {}
    for line in MOVIE_LINES:
        line_id, speaker, _, _, text = line.split(" +++$+++ ")
        by_id[line_id] = (speaker, text)
    records = []
    for line in reversed(MOVIE_CONVERSATIONS[:3]):
        ids = [i.strip("' ") for i in line.rsplit("+++$+++ ", 1)[1].strip("[]").split(",")]
        for prev, uid in reversed(list(zip([None, *ids], ids, strict=False))):
            speaker, text = by_id[uid]
            records.append(_utterance(uid, ids[0], speakers[speaker], text, prev))
    path = _lines(tmp_path / "utterances.jsonl", records)
    from_convokit = load_corpus(f"cornell:{path}")
    from_movie_files = load_corpus(f"cornell:{folder}")
    assert [c.turns for c in reversed(from_convokit)] == [c.turns for c in from_movie_files]


def test_convokit_record_without_text(tmp_path: Path) -> None:
    path = _lines(
        tmp_path / "utterances.jsonl",
        [_utterance("a", "a", "x", "hi", None), json.dumps({"id": "b", "text": None})],
    )
    with pytest.raises(CorpusFormatError) as info:
        load_corpus(f"cornell:{path}")
    assert str(info.value) == f"{path}:2:1: expected an object with a string 'text'"


def test_transcripts(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "greet.yml").write_text(
        "version: 1\n"
        "turns:\n"
        "  - user: hello\n"
        "    bot: {text: 'hi, how can I help?', intent: greet}\n"
        "  - user: what's your name?\n"
        "    bot:\n"
        "      text: I'm a chatbot.\n"
        "  - reset: true\n"
        "  - user: bye\n"
        "    bot: goodbye\n"
        "  - user: still there?\n"
        "    bot: yes\n",
        encoding="utf-8",
    )
    (tmp_path / "sub" / "greet.yaml").write_text(
        "turns:\n"
        "  - user: hey\n"
        "    bot: {intent: greet}\n"
        "  - user: tell me a joke\n"
        "    bot: {text: no}\n",
        encoding="utf-8",
    )
    assert load_corpus(f"transcripts:{tmp_path}") == [
        Conversation(
            "greet.yml:0", ("hello", "hi, how can I help?", "what's your name?", "I'm a chatbot.")
        ),
        Conversation("greet.yml:1", ("bye", "goodbye", "still there?", "yes")),
        Conversation("sub/greet.yaml:0", ("tell me a joke", "no")),
    ]


def test_transcript_yaml_error_is_located(tmp_path: Path) -> None:
    path = tmp_path / "bad.yml"
    path.write_text("turns:\n  - user: a\n    user: b\n", encoding="utf-8")
    with pytest.raises(CorpusFormatError) as info:
        load_corpus(f"transcripts:{tmp_path}")
    assert str(info.value) == f"{path}:3:5: duplicate key 'user' (first defined at line 2)"


def test_transcript_without_turns(tmp_path: Path) -> None:
    path = tmp_path / "bad.yml"
    path.write_text("steps: []\n", encoding="utf-8")
    with pytest.raises(CorpusFormatError) as info:
        load_corpus(f"transcripts:{tmp_path}")
    assert str(info.value) == f"{path}:1:1: a transcript needs a 'turns' list"


def test_empty_corpus(tmp_path: Path) -> None:
    path = _lines(tmp_path / "one.jsonl", [json.dumps(["alone"]), json.dumps(["", "  "])])
    with pytest.raises(EmptyCorpusError) as info:
        load_corpus(f"jsonl:{path}")
    assert str(info.value) == f"corpus 'jsonl:{path}' has no conversation of two or more turns"
    (tmp_path / "empty").mkdir()
    with pytest.raises(EmptyCorpusError):
        load_corpus(f"transcripts:{tmp_path / 'empty'}")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "reddit",
            "unknown corpus 'reddit'; use everyday, everyday:heldout, chitchat, chatterbot, "
            "cornell:PATH, jsonl:PATH, transcripts:DIR, or A+B for both",
        ),
        (
            "everyday+reddit",
            "unknown corpus 'everyday+reddit'; use everyday, everyday:heldout, chitchat, "
            "chatterbot, cornell:PATH, jsonl:PATH, transcripts:DIR, or A+B for both",
        ),
        ("jsonl", "corpus 'jsonl' needs a path: jsonl:PATH"),
        ("jsonl:{tmp}/missing.jsonl", "{tmp}/missing.jsonl: no such file"),
        ("jsonl:{tmp}", "{tmp}: cannot read: Is a directory"),
        ("transcripts:{tmp}/missing", "{tmp}/missing: not a folder of transcripts"),
        (
            "cornell:{tmp}",
            "{tmp}: expected a folder with movie_lines.txt and movie_conversations.txt, "
            "or a ConvoKit utterances.jsonl",
        ),
    ],
)
def test_bad_source(tmp_path: Path, source: str, message: str) -> None:
    with pytest.raises(DataError) as info:
        load_corpus(source.format(tmp=tmp_path))
    assert str(info.value) == message.format(tmp=tmp_path)


def test_chatterbot_corpus() -> None:
    pytest.importorskip("chatterbot_corpus")
    conversations = load_corpus("chatterbot")
    assert len(conversations) == 2025
    assert conversations[0] == Conversation(
        "ai:0",
        (
            "What is AI?",
            "Artificial Intelligence is the branch of engineering and science devoted to "
            "constructing machines that think.",
        ),
    )
    assert conversations[-1] == Conversation(
        "trivia:260", ("On every continent there is a city named what?", "Rome")
    )


@pytest.mark.slow
def test_chitchat_corpus() -> None:
    pytest.importorskip("chitchat_dataset")
    conversations = load_corpus("chitchat")
    assert len(conversations) == 4017
    first = conversations[0]
    assert first.id == "a07edb12-6b91-4138-b11e-02421888d699"
    assert first.turns[:2] == (
        "Hello How are you doing today?",
        "whats up MD im doing good how are you doing?",
    )
    assert len({c.id for c in conversations}) == 4017
