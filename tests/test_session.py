"""Sessions as folds over events, their dict form, and the stores that persist them."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from fakegen import FakeState

from chatbot.errors import SessionError
from chatbot.session import (
    BotSaid,
    ContextSet,
    MemoryStore,
    Reset,
    Session,
    SessionStore,
    SlotSet,
    SQLiteStore,
    UserSaid,
    default_store_path,
)

EVENTS = [
    UserSaid("hi, I'm Ann"),
    SlotSet("name", "Ann"),
    BotSaid("Hello Ann!", "intent", "user_name"),
    ContextSet("greeted", 2),
    UserSaid("how are you"),
    BotSaid("fine", "neural", None),
]


def decode(data: bytes) -> FakeState:
    return FakeState.from_bytes(data, 4)


def test_state_is_the_fold_of_the_events() -> None:
    session = Session.from_events(EVENTS, session_id="a")
    assert session.slots == {"name": "Ann"}
    assert session.contexts == {"greeted": 1}
    assert session.last_reply == "fine"
    assert session.history == ["hi, I'm Ann", "Hello Ann!", "how are you", "fine"]
    assert session.turn == 2
    session.apply(BotSaid("again", "fallback"))
    assert session.contexts == {}
    session.apply(SlotSet("name", None))
    session.apply(ContextSet("x", 3))
    session.apply(ContextSet("x", 0))
    assert (session.slots, session.contexts) == ({}, {})


def test_reset_forgets_everything_but_the_turn_count() -> None:
    session = Session.from_events([*EVENTS, Reset()], neural_state=None)
    session.neural_state = FakeState((1.0, 2.0, 3.0, 4.0))
    session.apply(Reset())
    assert (session.slots, session.contexts, session.history) == ({}, {}, [])
    assert (session.last_reply, session.neural_state, session.turn) == (None, None, 2)


def test_to_dict_round_trips_exactly() -> None:
    session = Session.from_events(EVENTS, session_id="a", neural_state=FakeState((0.5, -1, 2, 0)))
    data = session.to_dict()
    assert data["version"] == 1 and data["id"] == "a"
    assert data["events"][:2] == [
        {"type": "user", "text": "hi, I'm Ann"},
        {"type": "slot", "name": "name", "value": "Ann"},
    ]
    assert data["state"] == "AAAAPwAAgL8AAABAAAAAAA=="
    again = Session.from_dict(json.loads(json.dumps(data)), decode_state=decode)
    assert again.to_dict() == data
    assert again.neural_state == FakeState((0.5, -1.0, 2.0, 0.0))
    assert (again.slots, again.contexts, again.turn) == (session.slots, session.contexts, 2)


VALID: dict[str, Any] = {"version": 1, "id": "a", "events": [], "state": None}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "a session must be a mapping, got list"),
        ({**VALID, "version": 2}, "session: unsupported version 2"),
        ({**VALID, "extra": 1}, "session: unexpected keys ['extra']"),
        ({**VALID, "id": ""}, "session: 'id' must be a non-empty string"),
        ({**VALID, "events": {}}, "session: 'events' must be a list"),
        ({**VALID, "events": [1]}, "events[0]: expected a mapping, got int"),
        ({**VALID, "events": [{"type": "shout"}]}, "events[0]: unknown event type 'shout'"),
        ({**VALID, "events": [{"type": "user"}]}, "events[0]: missing 'text'"),
        ({**VALID, "events": [{"type": "user", "text": 3}]},
         "events[0]: 'text' has the wrong type int"),
        ({**VALID, "events": [{"type": "context", "name": "x", "turns": True}]},
         "events[0]: 'turns' has the wrong type bool"),
        ({**VALID, "events": [{"type": "reset", "x": 1}]}, "events[0]: unexpected keys ['x']"),
        ({**VALID, "state": 5}, "session: 'state' must be a base64 string or null"),
        ({**VALID, "state": "###"}, "session: 'state' is not valid base64"),
        ({**VALID, "state": "AAAA"}, "session: 'state' does not decode: expected 16 bytes, got 3"),
    ],
)
def test_malformed_dicts_raise_session_error(data: Any, message: str) -> None:
    with pytest.raises(SessionError) as caught:
        Session.from_dict(data, decode_state=decode)
    assert str(caught.value) == message


def test_an_unbound_session_cannot_send() -> None:
    with pytest.raises(SessionError, match="not attached to a bot"):
        Session("x").send("hi")


def test_a_store_keeps_sessions_in_dict_form(store: SessionStore) -> None:
    session = Session.from_events(EVENTS, session_id="a", neural_state=FakeState((1, 2, 3, 4)))
    data = session.to_dict()
    assert store.load("a") is None
    store.save("a", start=0, events=data["events"][:3], state=None)
    store.save("a", start=3, events=data["events"][3:], state=data["state"])
    assert store.load("a") == data
    store.save("b", start=0, events=[], state=None)
    assert store.ids() == ["a", "b"]
    store.delete("a")
    assert store.ids() == ["b"]
    assert store.load("a") is None


def test_a_write_that_does_not_continue_the_history_is_refused(store: SessionStore) -> None:
    store.save("a", start=0, events=[{"type": "user", "text": "x"}], state=None)
    with pytest.raises(SessionError, match="holds 1 events in the store, not 0"):
        store.save("a", start=0, events=[{"type": "user", "text": "y"}], state=None)
    loaded = store.load("a")
    assert loaded is not None and loaded["events"] == [{"type": "user", "text": "x"}]


def test_sqlite_store_opens_lazily_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "sessions.sqlite3"
    store = SQLiteStore(path)
    assert not path.exists()
    assert store.ids() == []
    store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_the_default_store_lives_in_the_user_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_store_path() == tmp_path / "chatbot" / "sessions.sqlite3"
    assert SQLiteStore().path == tmp_path / "chatbot" / "sessions.sqlite3"


def test_a_crash_mid_write_loses_no_earlier_turn(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    script = textwrap.dedent(
        f"""
        import os
        from chatbot.session import SQLiteStore
        store = SQLiteStore({str(path)!r})
        for turn in range(3):
            store.save("a", start=2 * turn, state="s%d" % turn, events=[
                {{"type": "user", "text": "u%d" % turn}},
                {{"type": "bot", "text": "b%d" % turn, "source": "neural", "intent": None}},
            ])
        with store._transaction(write=True) as db:
            db.execute("UPDATE sessions SET n_events = 8, state = 'torn' WHERE id = 'a'")
            db.execute("INSERT INTO events VALUES ('a', 6, '{{}}')")
            os._exit(9)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 9, done.stderr
    loaded = SQLiteStore(path).load("a")
    assert loaded is not None
    assert [e["text"] for e in loaded["events"]] == ["u0", "b0", "u1", "b1", "u2", "b2"]
    assert loaded["state"] == "s2"


def test_a_session_records_its_bot_and_another_bot_refuses_it_unless_forced(
    tmp_path: Path,
) -> None:
    from chatbot import BotMismatchError, Chatbot
    from chatbot.botdir import load_bot

    def bot(name: str, extra: str = "") -> Chatbot:
        folder = tmp_path / name
        (folder / "intents").mkdir(parents=True, exist_ok=True)
        (folder / "intents" / "a.yml").write_text(
            "version: 1\nintents:\n  - name: greet\n    examples: [hi]\n"
            f"    responses: [Hello!]\n{extra}", encoding="utf-8")
        (folder / "bot.yml").write_text(f"version: 1\nname: {name}\nmodel: null\n",
                                        encoding="utf-8")
        return Chatbot.from_definition(load_bot(folder), store=MemoryStore())

    coffee = bot("coffee")
    session = coffee.session("s1")
    session.send("hi")
    data = session.to_dict()
    assert data["bot"] == coffee.identity
    assert data["bot"]["name"] == "coffee" and len(data["bot"]["fingerprint"]) == 16
    assert bot("coffee").restore(data).slots == {}  # the same bot: same fingerprint
    other = bot("tea", "  - name: bye\n    examples: [bye]\n    responses: [Bye!]\n")
    with pytest.raises(BotMismatchError) as caught:
        other.restore(data)
    assert str(caught.value) == (
        f"session 's1' was recorded with bot 'coffee' (fingerprint "
        f"{coffee.identity['fingerprint']}), not this bot 'tea' "
        f"({other.identity['fingerprint']}); restore(data, force=True) loads it anyway"
    )
    forced = other.restore(data, force=True)
    assert forced.recorded_bot == coffee.identity
    assert forced.send("bye").text == "Bye!"
    legacy = {k: v for k, v in data.items() if k != "bot"}  # written before sessions named bots
    assert bot("tea2").restore(legacy).recorded_bot is None


def test_set_slot_is_an_event_that_restore_and_the_store_see(tmp_path: Path) -> None:
    from chatbot import Chatbot
    from chatbot.botdir import load_bot

    folder = tmp_path / "bot"
    (folder / "intents").mkdir(parents=True)
    (folder / "intents" / "a.yml").write_text(
        "version: 1\nintents:\n  - name: ask\n    examples: [what is my name]\n"
        "    responses: ['You are {name}.']\n"
        "  - name: tell\n    patterns: ['my name is (?P<name>\\w+)']\n"
        "    responses: ['Hi {name}.']\n", encoding="utf-8")
    store = SQLiteStore(tmp_path / "sessions.sqlite3")
    bot = Chatbot.from_definition(load_bot(folder), store=store)
    session = bot.session("s")
    session.set_slot("name", "Ada")
    assert session.slots == {"name": "Ada"}
    assert session.to_dict()["events"] == [{"type": "slot", "name": "name", "value": "Ada"}]
    again = Chatbot.from_definition(load_bot(folder), store=store).session("s")
    assert again.slots == {"name": "Ada"}
    assert again.send("what is my name").text == "You are Ada."
    again.set_slot("name", None)
    assert again.slots == {}
    with pytest.raises(SessionError, match="a value must be a string or None"):
        again.set_slot("name", 3)  # type: ignore[arg-type]
    with pytest.raises(SessionError, match="a slot name must be a non-empty string"):
        again.set_slot(" ", "x")


def test_a_new_sqlite_store_is_private_to_its_owner(tmp_path: Path) -> None:
    import stat

    from chatbot.session import SQLiteStore

    path = tmp_path / "new" / "sessions.sqlite3"
    store = SQLiteStore(path)
    with store.hold(["a"]):
        assert store.load("a") is None
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in path.parent.iterdir()}
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert modes["sessions.sqlite3"] == 0o600
    assert modes["sessions.sqlite3.locks"] == 0o600
    assert all(mode & 0o077 == 0 for mode in modes.values()), modes
