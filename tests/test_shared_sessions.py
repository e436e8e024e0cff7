"""One session, many objects, threads and processes: every turn stored once, in order.

A turn is a transaction over the stored session (see `chatbot.bot`): the object
catches up with the store, answers, and saves at the version it started from;
the loser of a race answers again on the new version.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from fakegen import FakeGenerator

from chatbot import Chatbot, DecodeConfig
from chatbot.botdir import default_bot_dir, load_bot
from chatbot.errors import BatchError, SessionConflictError, SessionError
from chatbot.session import BotSaid, MemoryStore, Session, SessionStore, SQLiteStore
from chatbot.session.events import Event

SENDER = Path(__file__).parent / "reliability" / "session_sender.py"


def fake_bot(store: SessionStore) -> Chatbot:
    return Chatbot(load_bot().intents, generator=FakeGenerator(), store=store)


def user_turns(events: Sequence[dict[str, Any]]) -> list[str]:
    return [e["text"] for e in events if e["type"] == "user"]


def assert_each_turn_answered_once(events: Sequence[dict[str, Any]]) -> None:
    """Every user event is followed by exactly one bot event before the next user event."""
    kinds = "".join("u" if e["type"] == "user" else "b" if e["type"] == "bot" else ""
                    for e in events)
    assert kinds == "ub" * (len(kinds) // 2)


def assert_is_the_sequential_fold(stored: dict[str, Any]) -> None:
    """Each turn answered once, and the stored session is what one object sending
    the same user turns in that order gets."""
    assert_each_turn_answered_once(stored["events"])
    expected = sequential_fold(stored["id"], user_turns(stored["events"]))
    assert stored["events"] == expected["events"]
    assert stored["state"] == expected["state"]


def sequential_fold(session_id: str, texts: Sequence[str]) -> dict[str, Any]:
    """The session one object gets by sending `texts` in order, alone."""
    bot = fake_bot(MemoryStore())
    session = bot.session(session_id)
    for text in texts:
        session.send(text)
    return session.to_dict()


def test_two_objects_of_one_session_take_turns_without_errors(store: SessionStore) -> None:
    bot = fake_bot(store)
    first, second = bot.session("u"), bot.session("u")
    assert first.lock is second.lock
    first.send("hi")
    second.send("my name is Ada")  # second is a turn behind: it catches up first
    reply = first.send("what's my name")  # and now first is
    assert reply.intent == "ask_user_name" and "Ada" in reply.text
    assert len(second.to_dict()["events"]) == 5  # its own view until it catches up
    second.refresh()
    assert first.to_dict() == second.to_dict() == {**store.load("u"), "bot": bot.identity}  # type: ignore[dict-item]
    assert first.to_dict() == sequential_fold("u", ["hi", "my name is Ada", "what's my name"])


def test_sixteen_threads_share_one_session_and_store_every_turn_once(
    store: SessionStore,
) -> None:
    bot = fake_bot(store)
    threads, turns = 16, 8
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def chat(t: int) -> None:
        session = bot.session("shared")  # an object of its own
        start.wait()
        try:
            for k in range(turns):
                session.send(f"thread {t} turn {k}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    workers = [threading.Thread(target=chat, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert errors == []
    stored = store.load("shared")
    assert stored is not None
    said = user_turns(stored["events"])
    assert sorted(said) == sorted(f"thread {t} turn {k}" for t in range(threads)
                                  for k in range(turns))
    for t in range(threads):
        assert [s for s in said if s.startswith(f"thread {t} ")] == [
            f"thread {t} turn {k}" for k in range(turns)]
    assert_is_the_sequential_fold(stored)


def _race(db: Path, turns: int) -> None:
    go = db.with_name("go")
    senders = [
        subprocess.Popen([sys.executable, str(SENDER), str(db), name, str(turns), str(go)],
                         stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONHASHSEED": "0"})
        for name in ("a", "b")
    ]
    deadline = time.monotonic() + 120
    while not all(go.with_name(f"go.{n}").exists() for n in "ab"):
        assert time.monotonic() < deadline, "the senders did not start"
        assert all(s.poll() is None for s in senders), [s.communicate() for s in senders]
        time.sleep(0.01)
    go.touch()
    for sender in senders:
        _, err = sender.communicate(timeout=300)
        assert sender.returncode == 0, err


def test_two_processes_alternating_on_one_session_lose_no_turn(tmp_path: Path) -> None:
    db, turns = tmp_path / "sessions.sqlite3", 100
    _race(db, turns)
    stored = SQLiteStore(db).load("shared")
    assert stored is not None
    said = user_turns(stored["events"])
    assert len(said) == 2 * turns
    switches = sum(x[0] != y[0] for x, y in zip(said, said[1:], strict=False))
    assert switches >= 10  # the two really took turns on one session
    for name in "ab":
        assert [s for s in said if s.startswith(f"{name} ")] == [
            f"{name} {k}" for k in range(turns)]
    assert_is_the_sequential_fold(stored)


class FlakyStore(MemoryStore):
    """A memory store whose writes to some sessions fail, or lose a race once."""

    def __init__(self) -> None:
        super().__init__()
        self.broken: set[str] = set()
        self.race_once: dict[str, list[dict[str, Any]]] = {}

    def save(self, session_id: str, *, start: int, events: Sequence[dict[str, Any]],
             state: str | None) -> None:
        if session_id in self.broken:
            raise SessionError(f"session {session_id!r}: the disk is full")
        rival = self.race_once.pop(session_id, None)
        if rival is not None:  # another process saves this version first
            super().save(session_id, start=start, events=rival, state=None)
        super().save(session_id, start=start, events=events, state=state)


def test_a_failed_save_fails_only_its_session_and_leaves_it_as_it_was() -> None:
    store = FlakyStore()
    bot = fake_bot(store)
    a, bad, c = bot.session("a"), bot.session("bad"), bot.session("c")
    bot.send_batch([(a, "hi"), (bad, "hi"), (c, "hi")])
    before, stored_before = bad.to_dict(), store.load("bad")
    store.broken.add("bad")
    with pytest.raises(BatchError) as caught:
        bot.send_batch([(a, "my name is Ada"), (bad, "my name is Bo"), (c, "bye"),
                        (bad, "still there?")])
    error = caught.value
    assert sorted(error.errors) == [1, 3]
    assert str(error.errors[1]) == "session 'bad': the disk is full"
    assert error.errors[1] is error.errors[3]
    replies = error.replies
    assert replies[1] is None and replies[3] is None
    assert replies[0] is not None and replies[0].intent == "user_name"
    assert "Ada" in replies[0].text
    assert replies[2] is not None and replies[2].intent == "goodbye"
    assert user_turns(store.load("a")["events"]) == ["hi", "my name is Ada"]  # type: ignore[index]
    assert user_turns(store.load("c")["events"]) == ["hi", "bye"]  # type: ignore[index]
    # The failed session is exactly as it was, in memory and in the store.
    assert bad.to_dict() == before and bad.slots == {} and bad.saved == 2
    assert store.load("bad") == stored_before
    with pytest.raises(SessionError, match="the disk is full"):  # alone: its own error
        bad.send("my name is Bo")
    store.broken.clear()
    assert "Bo" in bad.send("my name is Bo").text
    assert bad.to_dict() == sequential_fold("bad", ["hi", "my name is Bo"])


def test_a_turn_that_loses_a_race_is_answered_again_on_the_new_version() -> None:
    store = FlakyStore()
    bot = fake_bot(store)
    session = bot.session("s")
    session.send("hi")
    rival = [{"type": "user", "text": "my name is Ada"},
             {"type": "slot", "name": "name", "value": "Ada"},
             {"type": "bot", "text": "Nice to meet you, Ada!", "source": "intent",
              "intent": "user_name"}]
    store.race_once["s"] = rival
    other = bot.session("x")
    replies = bot.send_batch([(other, "hi"), (session, "what's my name")])
    assert replies[1].intent == "ask_user_name"
    assert "Ada" in replies[1].text  # answered after catching up
    stored = store.load("s")
    assert stored is not None
    assert user_turns(stored["events"]) == ["hi", "my name is Ada", "what's my name"]
    assert session.to_dict()["events"] == stored["events"]
    assert session.saved == len(stored["events"])


def test_a_session_that_always_loses_raises_a_conflict_and_is_left_as_it_was() -> None:
    class AlwaysBehind(MemoryStore):
        def save(self, session_id: str, *, start: int, events: Sequence[dict[str, Any]],
                 state: str | None) -> None:
            if session_id == "s" and start > 0:
                raise SessionConflictError("session 's' moved on")
            super().save(session_id, start=start, events=events, state=state)

    bot = fake_bot(AlwaysBehind())
    session = bot.session("s")
    session.set_slot("name", "Ada")  # start 0: stored
    before = session.to_dict()
    with pytest.raises(SessionConflictError, match="moved on"):
        session.send("hi")
    with pytest.raises(SessionConflictError):
        session.reset()
    assert session.to_dict() == before


def test_a_session_deleted_from_the_store_says_so() -> None:
    store = MemoryStore()
    bot = fake_bot(store)
    session = bot.session("s")
    session.send("hi")
    store.delete("s")
    with pytest.raises(SessionError, match="deleted from the store; load it again"):
        session.send("hello?")
    assert bot.session("s").send("hello?").source in {"intent", "neural", "fallback"}


def test_to_dict_never_pairs_events_with_the_state_of_another_turn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    apply = Session.apply

    def slow_apply(self: Session, event: Event) -> None:
        apply(self, event)
        if isinstance(event, BotSaid):
            time.sleep(0.002)  # widen the gap between a turn's events and its state

    monkeypatch.setattr(Session, "apply", slow_apply)
    bot = fake_bot(MemoryStore())
    session = bot.session("s")
    done = threading.Event()

    def chat() -> None:
        for k in range(60):
            session.send(f"turn {k}")
        done.set()

    sender = threading.Thread(target=chat)
    sender.start()
    snapshots = []
    while not done.is_set():
        snapshots.append(session.to_dict())
        time.sleep(0.0005)
    sender.join()
    monkeypatch.setattr(Session, "apply", apply)
    assert len(snapshots) >= 10
    for data in snapshots:
        with_state = fake_bot(MemoryStore()).restore(data).send("and then?")
        rebuilt = fake_bot(MemoryStore()).restore({**data, "state": None}).send("and then?")
        assert (with_state.text, with_state.source) == (rebuilt.text, rebuilt.source)


def test_sampled_replies_are_the_same_alone_and_in_a_batch_of_64(tiny_model_dir: Path,
                                                                 tmp_path: Path) -> None:
    folder = tmp_path / "bot"
    (folder / "intents").mkdir(parents=True)
    for f in (default_bot_dir() / "intents").iterdir():
        (folder / "intents" / f.name).write_bytes(f.read_bytes())
    (folder / "bot.yml").write_text(
        f"version: 1\nmodel: {tiny_model_dir}\npolicy: {{neural_min_confidence: 0.0}}\n"
        "decode: {strategy: sample, temperature: 1.5}\n",
        encoding="utf-8",
    )
    texts = ["i went hiking", "my sister plays the violin", "we had pasta for dinner",
             "the bus was late again"]
    batch_bot = Chatbot.load(folder, store=MemoryStore())
    sessions = [batch_bot.session(f"user-{i}") for i in range(64)]
    together = batch_bot.send_batch([(s, texts[i % 4]) for i, s in enumerate(sessions)])
    alone_bot = Chatbot.load(folder, store=MemoryStore())
    alone = [alone_bot.session(f"user-{i}").send(texts[i % 4]) for i in range(64)]
    together_neural = [r.trace.neural.text for r in together]  # type: ignore[union-attr]
    alone_neural = [r.trace.neural.text for r in alone]  # type: ignore[union-attr]
    assert together_neural == alone_neural
    assert [r.text for r in together] == [r.text for r in alone]
    # Sampled, not greedy: sessions that said the same thing got different replies.
    assert len(set(together_neural[0::4])) > 8


def test_the_batch_seeds_do_not_depend_on_the_first_session() -> None:
    generator = FakeGenerator()
    seeds: list[Any] = []
    respond = generator.respond

    def spy(items: Any, *, decode: object = None, seed: Any = None) -> Any:
        seeds.append(seed)
        return respond(items, decode=decode, seed=seed)

    generator.respond = spy  # type: ignore[method-assign]
    bot = Chatbot(load_bot().intents, generator=generator, store=MemoryStore(),
                  decode=DecodeConfig(strategy="sample"))
    a, b = bot.session("a"), bot.session("b")
    bot.send_batch([(a, "i like cheese"), (b, "i like bread")])
    bot.send_batch([(b, "i like rice")])
    assert len(seeds[0]) == 2 and seeds[0][1] != seeds[0][0]
    assert seeds[1] != [seeds[0][1]]  # b's second turn has a seed of its own
    c = Chatbot(load_bot().intents, generator=generator, store=MemoryStore(),
                decode=DecodeConfig(strategy="sample")).session("b")
    c.send("i like bread")
    assert seeds[2] == [seeds[0][1]]  # the same session and turn, alone: the same seed


def test_a_false_deadlock_report_from_the_kernel_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from chatbot.session import store as store_module

    fcntl = pytest.importorskip("fcntl")
    calls: list[tuple[int, int]] = []
    lockf = fcntl.lockf

    def flaky(fd: int, cmd: int, length: int = 0, start: int = 0) -> None:
        calls.append((cmd, start))
        if cmd == fcntl.LOCK_EX and sum(c == fcntl.LOCK_EX for c, _ in calls) == 2:
            raise OSError(errno.EDEADLK, "Resource deadlock avoided")
        lockf(fd, cmd, length, start)

    monkeypatch.setattr(store_module.fcntl, "lockf", flaky)
    db = SQLiteStore(tmp_path / "s.sqlite3")
    with db.hold(["a", "b"]):
        pass
    offsets = sorted({store_module._lock_offset(i) for i in ("a", "b")})
    ex, un = fcntl.LOCK_EX, fcntl.LOCK_UN
    assert calls == [(ex, offsets[0]), (ex, offsets[1]), (un, offsets[0]),  # let go, again
                     (ex, offsets[0]), (ex, offsets[1]), (un, offsets[1]), (un, offsets[0])]
    db.close()
