"""The `Chatbot` facade: sessions, restore, batches, threads, bot directories, the CLI."""

from __future__ import annotations

import random
import shutil
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from fakegen import FakeGenerator

from chatbot import Chatbot, DecodeConfig, Reply
from chatbot.botdir import default_bot_dir, load_bot
from chatbot.checkpoint import packaged_model_dir
from chatbot.cli import main
from chatbot.errors import BotValidationError, SessionError
from chatbot.session import MemoryStore, Session, SessionStore, SQLiteStore

TURNS = ["hi", "my name is Ada", "do you like pizza?", "what's my name", "tell me more",
         "how are you", "i'm good", "qwxz", "thanks!", "bye"]


def fake_bot(store: SessionStore | None = None, generator: FakeGenerator | None = None) -> Chatbot:
    return Chatbot(load_bot().intents, generator=generator or FakeGenerator(), store=store)


def test_a_session_answers_with_intents_and_the_model() -> None:
    bot = fake_bot()
    session = bot.session("s")
    replies = [session.send(text) for text in TURNS[:4]]
    assert [(r.text, r.source, r.intent) for r in replies] == [
        ("Hi there!", "intent", "greet"),
        ("Nice to meet you, Ada!", "intent", "user_name"),
        ("i like that too", "neural", None),
        ("Your name is Ada.", "intent", "ask_user_name"),
    ]
    assert session.slots == {"name": "Ada"}


def test_decoding_settings_per_bot_and_per_call() -> None:
    generator = FakeGenerator()
    default, beam = DecodeConfig(max_length=20), DecodeConfig(strategy="beam", beam_size=3)
    bot = Chatbot(load_bot().intents, generator=generator, decode=default)
    a, b = bot.session("a"), bot.session("b")
    a.send("do you like pizza?")
    a.send("i went hiking", decode=beam)
    bot.send_batch([(a, "it rained"), (b, "i cooked pasta")], decode=beam)
    bot.send(b, "then i slept")
    assert generator.decodes == [default, beam, beam, default]
    assert bot.dialogue.decode == default


def test_reset_starts_over_and_is_stored() -> None:
    store = MemoryStore()
    bot = fake_bot(store)
    session = bot.session("s")
    session.send("my name is Ada")
    session.reset()
    assert session.slots == {} and session.neural_state is None
    assert session.send("what's my name").text == "I don't know your name yet. What is it?"
    stored = store.load("s")
    assert stored is not None
    assert [e["type"] for e in stored["events"]] == ["user", "slot", "bot", "reset", "user", "bot"]


def test_restore_continues_exactly_where_the_session_was() -> None:
    generator = FakeGenerator()
    bot = fake_bot(generator=generator)
    session = bot.session("s")
    for text in TURNS[:5]:
        session.send(text)
    data = session.to_dict()
    elsewhere = fake_bot(generator=generator)
    restored = elsewhere.restore(data)
    assert restored.to_dict() == data
    for text in TURNS[5:]:
        assert replies_of(restored.send(text)) == replies_of(session.send(text))


def test_a_session_resumes_from_the_store_by_id(tmp_path: Path) -> None:
    path = tmp_path / "sessions.sqlite3"
    first = fake_bot(SQLiteStore(path))
    session = first.session("user-1")
    for text in TURNS[:3]:
        session.send(text)
    resumed = fake_bot(SQLiteStore(path)).session("user-1")
    assert resumed.to_dict() == session.to_dict()
    expected = fake_bot().restore(session.to_dict()).send("tell me more")
    assert replies_of(resumed.send("tell me more")) == replies_of(expected)
    # `session` is now a turn behind the store: it catches up, then answers.
    following = fake_bot().restore(resumed.to_dict()).send("a stale object answers too")
    assert replies_of(session.send("a stale object answers too")) == replies_of(following)
    stored = SQLiteStore(path).load("user-1")
    assert stored is not None
    assert [e["text"] for e in stored["events"] if e["type"] == "user"] == [
        *TURNS[:3], "tell me more", "a stale object answers too"]
    assert session.to_dict() == {**stored, "bot": session.to_dict()["bot"]}


def test_a_session_without_cached_state_rebuilds_it_from_its_history() -> None:
    bot = fake_bot()
    session = bot.session("s")
    for text in TURNS[:3]:
        session.send(text)
    data = {**session.to_dict(), "state": None}
    other = fake_bot()
    restored = other.restore(data)
    assert replies_of(restored.send("tell me more")) == replies_of(session.send("tell me more"))


def test_restore_refuses_a_history_the_store_contradicts() -> None:
    bot = fake_bot()
    session = bot.session("s")
    session.send("hi")
    data = session.to_dict()
    session.send("bye")
    assert bot.restore(session.to_dict()).id == "s"
    with pytest.raises(SessionError, match="different history"):
        bot.restore({**data, "events": data["events"][:1] + [data["events"][0]]})


def test_sessions_belong_to_their_bot() -> None:
    session = fake_bot().session("s")
    with pytest.raises(SessionError, match="belongs to another bot"):
        fake_bot().send_batch([(session, "hi")])


def test_send_batch_is_one_decode_and_keeps_each_sessions_order() -> None:
    generator = FakeGenerator()
    bot = fake_bot(generator=generator)
    a, b, c = bot.session("a"), bot.session("b"), bot.session("c")
    replies = bot.send_batch([(a, "do you ski?"), (b, "do you like pizza?"), (c, "hi"),
                              (a, "tell me more")])
    assert generator.respond_calls == [2, 1]
    assert [r.source for r in replies] == ["neural", "neural", "intent", "fallback"]
    assert "neural: degenerate reply (repeat)" in replies[3].trace.steps
    assert [e.text for e in a.events if hasattr(e, "text")][::2] == ["do you ski?", "tell me more"]
    one_by_one = fake_bot()
    a2, b2, c2 = one_by_one.session("a"), one_by_one.session("b"), one_by_one.session("c")
    alone = [a2.send("do you ski?"), b2.send("do you like pizza?"), c2.send("hi"),
             a2.send("tell me more")]
    assert [replies_of(r) for r in replies] == [replies_of(r) for r in alone]


def replies_of(reply: Reply) -> tuple[str, str, str | None, float]:
    return (reply.text, reply.source, reply.intent, reply.confidence)


def run_threads(
    make_bot: Callable[[], Chatbot], *, threads: int, turns: int, sessions: int
) -> tuple[dict[str, list[tuple[str, str]]], dict[str, list[tuple[str, str]]]]:
    """Replies per session, from `threads` threads at once and from one thread."""
    rng = random.Random(0)
    script = {f"s{i}": [rng.choice(TURNS) for _ in range(turns * threads // sessions)]
              for i in range(sessions)}
    owners = {t: [f"s{i}" for i in range(sessions) if i % threads == t] for t in range(threads)}

    def play(bot: Chatbot, names: list[str], out: dict[str, list[tuple[str, str]]]) -> None:
        live = {name: bot.session(name) for name in names}
        for step in range(len(script[names[0]])):
            for name in names:
                reply = live[name].send(script[name][step])
                out.setdefault(name, []).append((reply.text, reply.source))

    sequential: dict[str, list[tuple[str, str]]] = {}
    bot = make_bot()
    for t in range(threads):
        play(bot, owners[t], sequential)
    concurrent: dict[str, list[tuple[str, str]]] = {}
    shared = make_bot()
    workers = [threading.Thread(target=play, args=(shared, owners[t], concurrent))
               for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sequential, concurrent


def test_many_threads_give_the_same_replies_as_one() -> None:
    generator = FakeGenerator()
    sequential, concurrent = run_threads(
        lambda: fake_bot(generator=generator), threads=32, turns=200, sessions=64
    )
    assert sum(len(v) for v in concurrent.values()) == 32 * 200
    assert concurrent == sequential


def test_a_bot_directory_loads_with_its_settings(tmp_path: Path) -> None:
    shutil.copytree(default_bot_dir() / "intents", tmp_path / "intents")
    (tmp_path / "bot.yml").write_text(
        "version: 1\nname: helper\nmodel: null\npolicy: {neural_min_confidence: 0.5}\n",
        encoding="utf-8",
    )
    bot = Chatbot.load(tmp_path, store=MemoryStore())
    assert bot.name == "helper" and bot.generator is None
    assert bot.intents.policy.neural_min_confidence == 0.5
    assert bot.intents.policy.intent_threshold == 0.6
    reply = bot.session("s").send("do you like pizza?")
    assert (reply.source, reply.text) == (
        "fallback", "Hmm, I don't have a good answer to that one."
    )


def test_bot_yml_problems_are_reported_with_the_intents_ones(tmp_path: Path) -> None:
    (tmp_path / "intents").mkdir()
    (tmp_path / "intents" / "a.yml").write_text(
        "version: 1\npolicy: {intent_threshold: 0.5}\n", encoding="utf-8"
    )
    (tmp_path / "bot.yml").write_text(
        "version: 1\nmodle: x\npolicy: {intent_threshold: 0.6}\ndecode: {strategy: best}\n",
        encoding="utf-8",
    )
    with pytest.raises(BotValidationError) as caught:
        load_bot(tmp_path)
    assert [str(p).removeprefix(f"{tmp_path}/") for p in caught.value.problems] == [
        "bot.yml:2:1: unknown key 'modle' (did you mean 'model'?)",
        "bot.yml:4:9: invalid decode settings: decode.strategy must be one of greedy, beam, "
        "sample (got 'best')",
        f"intents/a.yml:2:10: policy 'intent_threshold' is already set at {tmp_path}/bot.yml:3:10",
    ]


def test_check_prints_every_problem_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "intents").mkdir()
    (tmp_path / "intents" / "a.yml").write_text(
        textwrap.dedent(
            """\
            version: 1
            intents:
              - name: greet
                examples: [hi]
                respones: [Hello]
            """
        ),
        encoding="utf-8",
    )
    (tmp_path / "bot.yml").write_text("version: 1\nmodel: null\n", encoding="utf-8")
    assert main(["check", str(tmp_path)]) == 2
    out = capsys.readouterr()
    assert out.out.splitlines() == [
        f"{tmp_path}/intents/a.yml:5:5: unknown key 'respones' (did you mean 'responses'?)",
        f"{tmp_path}/intents/a.yml:3:5: intent 'greet' has no 'responses' or 'action'",
    ]
    assert out.err == f"2 problems in {tmp_path}\n"


def test_init_scaffolds_a_bot_that_check_passes(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    fake_packaged_model: Path,
) -> None:
    target = tmp_path / "coffee shop"
    assert main(["init", str(target)]) == 0
    assert sorted(str(p.relative_to(target)) for p in target.rglob("*.yml")) == [
        "bot.yml", "intents/basics.yml", "transcripts/example.yml"
    ]
    assert main(["check", str(target)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"{target}: ok"
    assert load_bot(target).name == "coffee shop"
    assert main(["init", str(target)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_the_scaffold_passes_its_example_transcript_and_lets_questions_through(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "coffee"
    assert main(["init", str(target)]) == 0
    (target / "bot.yml").write_text(
        (target / "bot.yml").read_text().replace("model: default", "model: null"))
    assert main(["replay", str(target)]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith(
        "1 transcript, 3 turns: 1 passed, 0 failed in ")
    bot = Chatbot.load(target, store=MemoryStore())
    assert bot.session("a").send("hi").intent == "greet"
    asked = bot.session("b").send("hi, when do you open?")
    assert (asked.source, asked.intent) == ("fallback", None)


@pytest.fixture
def fake_packaged_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A stand-in packaged model directory (`check` only looks for its manifest)."""
    folder = tmp_path / "packaged"
    folder.mkdir()
    (folder / "manifest.json").write_text("{}", encoding="utf-8")
    monkeypatch.setattr("chatbot.checkpoint.packaged_model_dir", lambda: folder)
    return folder


@pytest.mark.skipif(not (packaged_model_dir() / "manifest.json").exists(),
                    reason="the packaged default model is not built yet")
def test_the_packaged_default_bot_answers_clear_matches_by_intent() -> None:
    bot = Chatbot.load(store=MemoryStore())
    session = bot.session("demo")
    expected = {"hello": "greet", "bye": "goodbye", "thank you": "thanks",
                "what's your name?": "bot_identity", "how are you?": "how_are_you",
                "what can you do?": "help", "my name is Ada": "user_name"}
    for text, intent in expected.items():
        reply = session.send(text)
        assert (reply.source, reply.intent) == ("intent", intent), text
    assert "Ada" in session.send("what's my name?").text
    assert session.send("what did you do last weekend?").source in ("neural", "fallback")


class TestWithTheTinyModel:
    """The real generator (the `tiny` model trained by conftest) behind the API."""

    @pytest.fixture
    def bot_dir(self, tmp_path: Path, tiny_model_dir: Path) -> Path:
        shutil.copytree(default_bot_dir() / "intents", tmp_path / "intents")
        (tmp_path / "bot.yml").write_text(
            f"version: 1\nmodel: {tiny_model_dir}\npolicy: {{neural_min_confidence: 0.0}}\n",
            encoding="utf-8",
        )
        return tmp_path

    def test_replies_flow_through_the_model_and_restore_exactly(self, bot_dir: Path) -> None:
        bot = Chatbot.load(bot_dir, store=MemoryStore())
        session = bot.session("s")
        first = [session.send(text) for text in ["hi there", "do you like pizza?", "my name is Bo"]]
        assert [r.source for r in first] == ["intent", "neural", "intent"]
        assert first[1].trace.neural is not None and first[1].trace.neural.accepted
        data = session.to_dict()
        assert isinstance(data["state"], str) and len(data["state"]) > 100
        other = Chatbot.load(bot_dir, store=MemoryStore())
        restored = other.restore(data)
        for text in ["what do you do for fun?", "what's my name?", "where are you from?"]:
            assert replies_of(restored.send(text)) == replies_of(session.send(text))

    def test_threads_match_sequential_and_leave_the_weights_alone(self, bot_dir: Path) -> None:
        bot = Chatbot.load(bot_dir, store=MemoryStore())
        model = bot.generator.model  # type: ignore[union-attr]
        before = {k: v.clone() for k, v in model.state_dict().items()}
        sequential, concurrent = run_threads(
            lambda: Chatbot(bot.intents, generator=bot.generator, store=MemoryStore()),
            threads=4, turns=6, sessions=8,
        )
        assert concurrent == sequential
        after = model.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before)

    @pytest.mark.slow
    def test_full_size_threads_match_sequential(self, bot_dir: Path) -> None:
        bot = Chatbot.load(bot_dir, store=MemoryStore())
        sequential, concurrent = run_threads(
            lambda: Chatbot(bot.intents, generator=bot.generator, store=MemoryStore()),
            threads=32, turns=200, sessions=64,
        )
        assert concurrent == sequential

    @pytest.mark.parametrize("text", ["", "\x1b[31m\u202e\ud800", "x" * 1_000_000, "🙂"])
    def test_hostile_input_gets_a_clean_reply(self, bot_dir: Path, text: str) -> None:
        reply = Chatbot.load(bot_dir, store=MemoryStore()).session().send(text)
        assert reply.text and reply.text.isprintable()


def test_an_unbound_session_is_rejected_by_send_batch() -> None:
    with pytest.raises(SessionError):
        fake_bot().send_batch([(Session("x"), "hi")])


def test_chatbot_load_without_a_path_is_the_packaged_bot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loaded: list[Path] = []

    def fake_load(
        path: Path, *, decode: object = None, reply_filter: object = None
    ) -> FakeGenerator:
        loaded.append(path)
        return FakeGenerator()

    monkeypatch.setattr("chatbot.generator.Generator.load", fake_load)
    bot = Chatbot.load(store=MemoryStore())
    assert loaded == [packaged_model_dir()]
    assert bot.name == "chatbot"
    assert {"greet", "goodbye", "thanks", "bot_identity", "help"} <= set(bot.intents.names)
    assert bot.intents.policy.intent_threshold == 0.6
    assert bot.session("s").send("hello").intent == "greet"


def test_the_scaffold_writes_the_documented_policy_defaults(tmp_path: Path) -> None:
    from chatbot.intents.schema import Policy

    assert main(["init", str(tmp_path / "b")]) == 0
    assert load_bot(tmp_path / "b").intents.policy == Policy()
    assert (Policy().intent_threshold, Policy().ambiguity_margin,
            Policy().neural_min_confidence) == (0.6, 0.1, 0.2)
    table = (Path(__file__).parents[1] / "docs" / "intents.md").read_text(encoding="utf-8")
    for row in ("| `intent_threshold` | 0.6 |", "| `ambiguity_margin` | 0.1 |",
                "| `neural_min_confidence` | 0.2 |"):
        assert row in table
