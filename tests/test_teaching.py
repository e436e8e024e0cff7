"""Teaching the bot from the chat: at once, saved, replayable, and undoable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatbot import Chatbot, MemoryStore
from chatbot.cli import main
from chatbot.errors import ConfigError

INTENTS = """\
version: 1
intents:
  - name: greet
    examples: [hello, hi there]
    responses: [Hello!]
  - name: goodbye
    examples: [bye, see you later]
    responses: [Bye!]
fallback: ["Sorry?"]
"""


def _bot(tmp_path: Path) -> Path:
    (tmp_path / "intents").mkdir()
    (tmp_path / "intents" / "mine.yml").write_text(INTENTS, encoding="utf-8")
    (tmp_path / "bot.yml").write_text("version: 1\nmodel: null\n", encoding="utf-8")
    return tmp_path


def test_a_taught_reply_answers_at_once_survives_a_restart_and_is_undone(
    tmp_path: Path,
) -> None:
    root = _bot(tmp_path)
    mine = (root / "intents" / "mine.yml").read_text(encoding="utf-8")
    bot = Chatbot.load(root, store=MemoryStore())
    session = bot.session()
    assert session.send("what's your favourite colour?").text == "Sorry?"
    taught = bot.teach(session, reply="Blue, like the sky.")
    assert (taught.kind, taught.utterance, taught.transcript) == (
        "reply", "what's your favourite colour?",
        "transcripts/taught/001-what-s-your-favourite-colour.yml")
    # At once, in this session and others, for the utterance and close paraphrases.
    assert session.send("what's your favourite colour?").text == "Blue, like the sky."
    reply = bot.session().send("whats your favorite colour")
    assert (reply.text, reply.intent) == ("Blue, like the sky.", "taught_1")
    # Saved: a restarted bot knows it; the author's file is untouched; the
    # transcript replays.
    again = Chatbot.load(root, store=MemoryStore())
    assert again.session().send("what's your favourite colour?").text == "Blue, like the sky."
    assert (root / "intents" / "mine.yml").read_text(encoding="utf-8") == mine
    assert main(["replay", str(root)]) == 0
    log = json.loads((root / "taught.json").read_text(encoding="utf-8"))
    assert [t["reply"] for t in log["teachings"]] == ["Blue, like the sky."]
    # Undone: the reply, the intent file and the transcript are gone.
    assert bot.untaught() == taught
    assert session.send("what's your favourite colour?").text == "Sorry?"
    assert not (root / "intents" / "taught.yml").exists()
    assert not (root / taught.transcript).exists()
    assert bot.untaught() is None


def test_teaching_an_intent_adds_an_example(tmp_path: Path) -> None:
    bot = Chatbot.load(_bot(tmp_path), store=MemoryStore())
    session = bot.session()
    assert session.send("gotta run").text == "Sorry?"
    bot.teach(session, intent="goodbye")
    assert session.send("gotta run").intent == "goodbye"
    assert "examples:\n  goodbye:\n  - gotta run\n" in (
        tmp_path / "intents" / "taught.yml").read_text(encoding="utf-8")
    assert main(["check", str(tmp_path)]) == 0
    assert main(["replay", str(tmp_path)]) == 0


def test_what_cannot_be_taught_is_a_clear_error_and_changes_nothing(tmp_path: Path) -> None:
    bot = Chatbot.load(_bot(tmp_path), store=MemoryStore())
    session = bot.session()
    with pytest.raises(ConfigError, match="say something first"):
        bot.teach(session, reply="x")
    session.send("hello")
    with pytest.raises(ConfigError, match=r"no intent 'gooodbye' \(did you mean 'goodbye'\?\)"):
        bot.teach(session, intent="gooodbye")
    with pytest.raises(ConfigError, match="is also an example of intent 'greet'"):
        bot.teach(session, reply="Howdy!")
    assert not (tmp_path / "intents" / "taught.yml").exists()
    assert not list((tmp_path / "transcripts").rglob("*.yml"))
    assert session.send("hello").text == "Hello!"
    with pytest.raises(ConfigError, match="packaged bot cannot be taught"):
        Chatbot.load(store=MemoryStore()).teach(session, reply="x")


def test_taught_replies_join_the_reply_index_and_leave_it(tmp_path: Path) -> None:
    from chatbot.data.corpora import Conversation
    from chatbot.replies.index import ReplyIndex
    from tests.fakegen import FakeGenerator

    corpus = [Conversation(str(i), (f"do you like {w}", f"i love {w}", "me too"))
              for i, w in enumerate(["tea", "coffee", "colour blue", "colour red", "tea"])]
    index = ReplyIndex.build(corpus)
    before = index.to_bytes()
    generator = FakeGenerator()
    generator.index = index  # type: ignore[attr-defined]
    root = _bot(tmp_path)
    bot = Chatbot(Chatbot.load(root, store=MemoryStore()).intents, generator=generator,
                  store=MemoryStore(), root=root)
    session = bot.session()
    session.send("what colour do you like")
    bot.teach(session, reply="Blue, like the sky.")
    hits = index.search(["which colour do you like best"], k=3)[0]
    taught = [h for h in hits if index.reply(h.entry) == "Blue, like the sky."]
    assert len(taught) == 1 and index.source(taught[0].entry) == ("taught-1", 1)
    assert index.to_bytes() == before           # the saved index file never holds them
    # A bot loaded later puts them back; untaught takes them out.
    again = Chatbot(bot.intents, generator=generator, store=MemoryStore(), root=root)
    index.set_taught([])
    assert again.index_teachings() == 1
    bot.untaught()
    assert "Blue, like the sky." not in [index.reply(e) for e in range(len(index))]


def test_the_same_teachings_again_keep_the_key_matrix_and_never_wait_for_it() -> None:
    from chatbot.data.corpora import Conversation
    from chatbot.replies.index import ReplyIndex

    index = ReplyIndex.build([Conversation(str(i), (f"do you like {w}", f"i love {w}"))
                              for i, w in enumerate(["tea", "coffee", "tea", "milk"])])
    index.warm()
    keys = index._keys_t
    with index._lock:  # as while the background thread builds the key matrix
        index.set_taught([])  # a bot with nothing taught, at load: returns at once
    assert index._keys_t is keys
    index.set_taught([("hi", "hello")])
    assert index._keys_t is None and index.reply(len(index) - 1) == "hello"
    index.warm()
    keys = index._keys_t
    index.set_taught([("hi", "hello")])
    assert index._keys_t is keys


def test_a_teaching_waits_for_turns_in_flight_and_not_from_inside_one(tmp_path: Path) -> None:
    import threading

    from chatbot import ActionResult, TurnView

    root = _bot(tmp_path)
    more = """\
  - name: slow
    examples: [take your time]
    action: slow
  - name: selfteach
    examples: [teach yourself]
    action: selfteach
"""
    text = INTENTS.replace('fallback: ["Sorry?"]', more + 'fallback: ["Sorry?"]')
    (root / "intents" / "mine.yml").write_text(text, encoding="utf-8")
    bot = Chatbot.load(root, store=MemoryStore())
    inside, release = threading.Event(), threading.Event()

    @bot.action("slow", timeout=10)
    def slow(turn: TurnView) -> str:
        inside.set()
        release.wait(10)
        return "done"

    @bot.action("selfteach")
    def selfteach(turn: TurnView) -> ActionResult:
        bot.untaught()
        return ActionResult("unreachable")

    teacher = bot.session("t")
    teacher.send("what is up")
    replies: list[str] = []
    worker = threading.Thread(target=lambda: replies.append(bot.session("w").send(
        "take your time").text))
    worker.start()
    assert inside.wait(10)
    swapped = threading.Event()
    teaching = threading.Thread(target=lambda: (bot.teach(teacher, reply="Not much."),
                                                swapped.set()))
    teaching.start()
    assert not swapped.wait(0.3)          # the swap waits for the turn in flight
    release.set()
    worker.join(10)
    teaching.join(10)
    assert replies == ["done"] and swapped.is_set()
    assert bot.session("x").send("what is up").text == "Not much."
    # From inside a turn (an action), changing the intents is refused, not a deadlock.
    reply = bot.session("y").send("teach yourself")
    assert reply.source == "fallback"
    assert "intents cannot change during a turn" in (reply.trace.action_error or "")
