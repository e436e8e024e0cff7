"""Item 5: property tests. Any text gets a clean reply; mutated intent and transcript files
load or raise `ConfigError`; damaged session dicts raise `SessionError`."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatbot.bot import Chatbot
from chatbot.botdir import default_bot_dir
from chatbot.errors import ConfigError, SessionError
from chatbot.intents import load_intents
from chatbot.session import MemoryStore
from chatbot.transcripts.loading import load_transcript

FUZZ = settings(max_examples=60, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
NASTY = "\x00\x07\x08\t\n\r\x1b\x7f\x85\u200b\u200e\u202e\u2028\u2029\ufeff\ufffe\ud800\udfff"
PREFIXES = ["", "my name is ", "call me ", "hi ", "how are you ", "what's my name "]

any_char = st.one_of(
    st.characters(codec=None, exclude_categories=()),
    st.sampled_from(NASTY),
    st.integers(0xD800, 0xDFFF).map(chr),
)
user_text = st.builds(
    lambda prefix, body: prefix + body, st.sampled_from(PREFIXES), st.text(any_char, max_size=80)
)


def _clean(text: str) -> bool:
    return bool(text) and text.isprintable() and text == text.strip()


@FUZZ
@given(texts=st.lists(user_text, min_size=1, max_size=4))
def test_any_text_gets_a_reply_without_control_characters(
    fake_bot: Chatbot, texts: list[str]
) -> None:
    session = fake_bot.session()
    for text in texts:
        reply = session.send(text)
        assert _clean(reply.text), (text, reply.text)
    again = fake_bot.restore(session.to_dict())
    assert again.to_dict() == session.to_dict()


@pytest.fixture(scope="module")
def tiny_bot(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Chatbot:
    folder = tmp_path_factory.mktemp("bot")
    (folder / "intents").symlink_to(default_bot_dir() / "intents")
    (folder / "bot.yml").write_text(
        f"version: 1\nmodel: {tiny_model_dir}\npolicy: {{neural_min_confidence: 0.0}}\n",
        encoding="utf-8",
    )
    return Chatbot.load(folder, store=MemoryStore())


@settings(FUZZ, max_examples=25)
@given(text=user_text)
def test_the_real_model_replies_cleanly_to_any_text(tiny_bot: Chatbot, text: str) -> None:
    reply = tiny_bot.session().send(text)
    assert _clean(reply.text), (text, reply.text)


# Mutated files ----------------------------------------------------------------

YAML_BITS = [":", ": ", "- ", "-", "{", "}", "[", "]", "&a ", "*a", "!!str ", "!x ", "'", '"',
             "#", "\t", "\n", "  ", "|", ">", "?", ",", "%", "@", "`", "\x00", "\ud800", "1e9",
             "null", "true", "version: 2\n", "\ufeff"]


@st.composite
def mutated(draw: st.DrawFn, text: str) -> str:
    """`text` with 1-4 edits: cut a span, insert YAML punctuation, duplicate or swap lines."""
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["cut", "insert", "dup", "swap"]))
        i = draw(st.integers(0, max(len(text) - 1, 0)))
        if kind == "cut":
            text = text[:i] + text[i + draw(st.integers(1, 20)):]
        elif kind == "insert":
            bit = draw(st.one_of(st.sampled_from(YAML_BITS), st.text(any_char, max_size=3)))
            text = text[:i] + bit + text[i:]
        else:
            lines = text.split("\n")
            a, b = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            if kind == "dup":
                lines.insert(a, lines[b])
            else:
                lines[a], lines[b] = lines[b], lines[a]
            text = "\n".join(lines)
    return text


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    return path


INTENTS = (default_bot_dir() / "intents" / "basics.yml").read_text(encoding="utf-8")
TRANSCRIPT = (default_bot_dir() / "transcripts" / "name_slot.yml").read_text(encoding="utf-8")


@FUZZ
@given(text=mutated(INTENTS))
def test_a_mutated_intent_file_loads_or_raises_config_error(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        _write(Path(folder), "intents/basics.yml", text)
        try:
            load_intents(Path(folder) / "intents")
        except ConfigError as exc:
            assert str(exc)


@FUZZ
@given(text=mutated(TRANSCRIPT))
def test_a_mutated_transcript_loads_or_raises_config_error(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = _write(Path(folder), "t.yml", text)
        try:
            load_transcript(path)
        except ConfigError as exc:
            assert str(exc)


# Damaged session dicts -------------------------------------------------------

WRONG = [None, True, 0, 1, 1.0, -3, "", "x", [], [1], {}, {"type": "user"}, b"x"]
ACCEPTS: dict[str, tuple[type, ...]] = {
    "version": (int,), "id": (str,), "events": (list,), "state": (str, type(None)),
    "type": (str,), "text": (str,), "source": (str,), "intent": (str, type(None)),
    "name": (str,), "value": (str, type(None)), "turns": (int,), "bot": (dict, type(None)),
}


@pytest.fixture(scope="module")
def session_dict(fake_bot: Chatbot) -> dict[str, Any]:
    session = fake_bot.session("fuzz")
    for text in ["hi", "my name is Ada", "how are you", "do you ski?"]:
        session.send(text)
    session.reset()
    session.send("do you ski?")
    data = session.to_dict()
    assert {e["type"] for e in data["events"]} == {"user", "bot", "slot", "context", "reset"}
    assert data["state"] is not None
    return data


def _fields(data: dict[str, Any]) -> list[tuple[int | None, str]]:
    """(event index or None for the top level, key) of every field."""
    top = [(None, key) for key in data]
    return top + [(i, key) for i, event in enumerate(data["events"]) for key in event]


def _is_wrong(key: str, value: Any) -> bool:
    return isinstance(value, bool) or not isinstance(value, ACCEPTS[key])


@settings(FUZZ, max_examples=150)
@given(data=st.data())
def test_a_session_dict_with_a_field_removed_or_mistyped_raises_session_error(
    fake_bot: Chatbot, session_dict: dict[str, Any], data: st.DataObject
) -> None:
    damaged = copy.deepcopy(session_dict)
    index, key = data.draw(st.sampled_from(_fields(damaged)))
    holder = damaged if index is None else damaged["events"][index]
    if data.draw(st.booleans()):
        if (index, key) in ((None, "state"), (None, "bot")):
            return  # optional: no cached state replays the events; no bot is a legacy dict
        del holder[key]
    else:
        value = data.draw(st.sampled_from(WRONG).filter(lambda v: _is_wrong(key, v)))
        holder[key] = value  # for "type", a string is an unknown event type
    with pytest.raises(SessionError):
        fake_bot.restore(damaged)


def test_a_session_dict_without_state_replays_its_events(
    fake_bot: Chatbot, session_dict: dict[str, Any]
) -> None:
    data = {k: v for k, v in session_dict.items() if k != "state"}
    restored = fake_bot.restore({**data, "id": "again"})
    assert restored.to_dict()["events"] == session_dict["events"]


def test_every_field_removed_or_mistyped_raises_session_error(
    fake_bot: Chatbot, session_dict: dict[str, Any]
) -> None:
    """The exhaustive version of the property above, for every field and wrong value."""
    stored = fake_bot.store.load(session_dict["id"])
    for index, key in _fields(session_dict):
        for value in [_REMOVED, *WRONG]:
            if (index, key) in ((None, "state"), (None, "bot")) and value is _REMOVED:
                continue
            if value is not _REMOVED and not _is_wrong(key, value):
                continue
            damaged = copy.deepcopy(session_dict)
            holder = damaged if index is None else damaged["events"][index]
            if value is _REMOVED:
                del holder[key]
            else:
                holder[key] = value
            with pytest.raises(SessionError):
                fake_bot.restore(damaged)
            assert fake_bot.store.load(session_dict["id"]) == stored, (index, key, value)


_REMOVED = object()
