"""Forms: slot filling that survives strays, interruptions, cancels and restores."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from chatbot import Chatbot, MemoryStore, SQLiteStore
from chatbot.botdir import check_bot, load_bot
from chatbot.cli import main
from chatbot.errors import BotValidationError
from chatbot.intents.loading import load_intents
from chatbot.session import FormSet, event_from_dict, event_to_dict
from tests.fakegen import FakeGenerator

PIZZA = Path(__file__).resolve().parent.parent / "examples" / "pizza"

BOOKING = """\
version: 1
entities:
  guests: {type: number}
forms:
  - name: book
    slots:
      - {name: guests, type: number, min: 1, max: 8, ask: "For how many?",
         invalid: "We seat 1 to 8."}
      - {name: name, ask: "Under which name?", validate: check_name}
      - {name: area, type: choice, choices: [inside, terrace], ask: "Inside or terrace?",
         remember: false}
    done: "Booked: {guests} for {name}, {area}."
    cancel_intent: stop_it
    cancelled: "No booking, then."
intents:
  - name: book
    examples: [book a table, i want to book a table, table for tonight]
    form: book
  - name: stop_it
    examples: [stop the booking, i give up]
    responses: [unused]
  - name: hours
    override: true
    examples: [when are you open, opening hours]
    responses: ["Noon to midnight."]
  - name: my_name
    override: true
    patterns: ['my name is (?P<name>\\w+)']
    examples: [my name is sam]
    responses: ["Hi {name}."]
fallback: ["Hm?"]
slots:
  name: {normalize: title}
"""


def _booking(tmp_path: Path, text: str = BOOKING) -> Path:
    (tmp_path / "intents").mkdir(parents=True, exist_ok=True)
    (tmp_path / "intents" / "book.yml").write_text(text, encoding="utf-8")
    (tmp_path / "bot.yml").write_text("version: 1\nmodel: null\n", encoding="utf-8")
    (tmp_path / "actions.py").write_text(
        "from chatbot import action\n\n@action\ndef check_name(turn):\n"
        "    name = turn.entities['name']\n"
        "    if name.lower() == 'boom':\n        raise ValueError('boom')\n"
        "    return None if name.isalpha() else 'Just letters, please.'\n",
        encoding="utf-8")
    return tmp_path


def _talk(bot: Chatbot, lines: list[str], session_id: str = "s") -> list[str]:
    session = bot.session(session_id)
    return [session.send(line).text for line in lines]


def test_the_example_pizza_bot_passes_its_transcripts() -> None:
    assert main(["check", str(PIZZA)]) == 0
    assert main(["replay", str(PIZZA)]) == 0
    names = sorted(p.stem for p in (PIZZA / "transcripts").glob("*.yml"))
    assert names == ["all_at_once", "cancel", "failing_action", "happy_path", "interruption",
                     "invalid_values", "restore"]


def test_a_form_asks_validates_and_completes(tmp_path: Path) -> None:
    bot = Chatbot.load(_booking(tmp_path), store=MemoryStore())
    assert _talk(bot, ["book a table", "twelve", "4", "Ada!", "Ada", "on the terrace"]) == [
        "For how many?", "We seat 1 to 8. For how many?", "Under which name?",
        "Just letters, please. Under which name?", "Inside or terrace?",
        "Booked: 4 for Ada, terrace.",
    ]
    session = bot.session("s")
    assert session.form is None
    assert session.slots == {"guests": "4", "name": "Ada", "area": "terrace"}


def test_known_slots_are_not_asked_again_unless_forgotten(tmp_path: Path) -> None:
    bot = Chatbot.load(_booking(tmp_path), store=MemoryStore())
    _talk(bot, ["book a table", "2", "Ada", "inside"])
    # guests and name are remembered; area (remember: false) is asked again,
    # and a value in the starting utterance counts.
    assert _talk(bot, ["i want to book a table for 3"]) == ["Inside or terrace?"]
    assert bot.session("s").slots["guests"] == "3"


def test_interruptions_are_answered_then_the_question_repeats(tmp_path: Path) -> None:
    bot = Chatbot.load(_booking(tmp_path), store=MemoryStore())
    replies = _talk(bot, ["book a table", "when are you open?", "2"])
    assert replies == ["For how many?", "Noon to midnight. For how many?", "Under which name?"]


def test_the_cancel_intent_leaves_the_form(tmp_path: Path) -> None:
    bot = Chatbot.load(_booking(tmp_path), store=MemoryStore())
    assert _talk(bot, ["book a table", "2", "stop the booking", "Ada"]) == [
        "For how many?", "Under which name?", "No booking, then.", "Hm?"]
    assert bot.session("s").form is None


def test_a_failing_validate_action_refuses_the_value(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bot = Chatbot.load(_booking(tmp_path), store=MemoryStore())
    with caplog.at_level(logging.ERROR, logger="chatbot.actions"):
        replies = _talk(bot, ["book a table", "2", "boom"])
    assert replies[-1] == "Sorry, that doesn't look right. Under which name?"
    assert "action 'check_name' raised ValueError: boom" in caplog.text


def test_the_model_does_not_answer_while_a_form_is_active(tmp_path: Path) -> None:
    definition = load_bot(_booking(tmp_path))
    generator = FakeGenerator(confidence=0.99)
    bot = Chatbot(definition.intents, generator=generator, store=MemoryStore())
    bot.action("check_name")(lambda turn: None)
    session = bot.session()
    assert session.send("tell me something").source == "neural"
    calls = len(generator.respond_calls)
    # A confident model never takes the request that starts a form.
    started = session.send("book a table")
    assert (started.text, started.trace.rule) == ("For how many?", "override")
    for text in ["hmm what", "nice weather today", "2", "Ada"]:
        assert session.send(text).source in ("form", "intent")
    assert len(generator.respond_calls) == calls   # never asked during the form
    assert session.form == "book"


def test_a_half_filled_form_survives_to_dict_and_the_sqlite_store(tmp_path: Path) -> None:
    root = _booking(tmp_path / "bot")
    store_file = tmp_path / "s.sqlite3"
    first = Chatbot.load(root, store=SQLiteStore(store_file))
    session = first.session("half")
    session.send("book a table")
    session.send("5")
    saved = json.loads(json.dumps(session.to_dict()))
    assert {"type": "form", "name": "book"} in saved["events"]
    restored = Chatbot.load(root, store=MemoryStore()).restore(saved)
    assert restored.form == "book" and restored.slots == {"guests": "5"}
    assert restored.send("Ada").text == "Inside or terrace?"
    again = Chatbot.load(root, store=SQLiteStore(store_file)).session("half")
    assert again.send("Ada").text == "Inside or terrace?"
    assert again.send("inside").text == "Booked: 5 for Ada, inside."


def test_form_events_round_trip_and_are_checked() -> None:
    for event in (FormSet("book"), FormSet(None)):
        assert event_from_dict(event_to_dict(event)) == event
    with pytest.raises(Exception, match="'name' has the wrong type int"):
        event_from_dict({"type": "form", "name": 3})


def test_bad_forms_are_located_errors(tmp_path: Path) -> None:
    text = """\
version: 1
forms:
  - name: f
    slots:
      - {name: a, type: choice, ask: "A?"}
      - {name: b, type: colour, ask: "B?"}
      - {name: c, type: entity, ask: "C?"}
      - {name: a, ask: "again?"}
  - name: g
    slots: [{name: x, ask: "X?"}]
    cancel_intent: nope
intents:
  - {name: i, examples: [x], form: h}
"""
    (tmp_path / "intents").mkdir()
    (tmp_path / "intents" / "f.yml").write_text(text, encoding="utf-8")
    with pytest.raises(BotValidationError) as info:
        load_intents(tmp_path / "intents")
    assert [str(p).split("/intents/", 1)[1] for p in info.value.problems] == [
        "f.yml:5:16: slot 'a' of type choice has no 'choices'",
        "f.yml:6:25: slot 'b': unknown type 'colour'; use one of text, number, choice, "
        "entity, date",
        "f.yml:8:9: form 'f' asks for slot 'a' twice",
        "f.yml:3:11: form 'f' has no 'done' response or 'action'",
        "f.yml:9:11: form 'g' has no 'done' response or 'action'",
        "f.yml:13:36: no form 'h' is defined",
        "f.yml:7:16: slot 'c' of type entity has no entity of that name",
        "f.yml:11:20: no intent 'nope' is defined",
    ]


def test_init_with_the_form_template_makes_a_working_form_bot(tmp_path: Path) -> None:
    target = tmp_path / "cafe"
    assert main(["init", str(target), "--template", "form"]) == 0
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()) \
        == ["actions.py", "bot.yml", "intents/coffee.yml", "transcripts/example.yml"]
    assert main(["check", str(target)]) == 0
    assert main(["replay", str(target)]) == 0
    bot = Chatbot.load(target, store=MemoryStore())
    assert bot.name == "cafe"
    assert _talk(bot, ["an espresso please", "small"]) == [
        "Small or large?", "One small espresso: 2.00 dollars."]


def test_an_interruption_that_fills_the_asked_slot_moves_the_form_on(tmp_path: Path) -> None:
    bot = Chatbot.load(_booking(tmp_path), store=MemoryStore())
    assert _talk(bot, ["book a table", "2", "my name is ada"]) == [
        "For how many?", "Under which name?", "Hi Ada. Inside or terrace?"]


def test_the_starting_request_again_repeats_the_question(tmp_path: Path) -> None:
    bot = Chatbot.load(_booking(tmp_path), store=MemoryStore())
    assert _talk(bot, ["book a table", "2", "i want to book a table", "grace"]) == [
        "For how many?", "Under which name?", "Under which name?", "Inside or terrace?"]
    assert bot.session("s").slots["name"] == "Grace"   # the slot's normalize applies


def test_an_action_can_start_and_end_a_form_and_sees_which_is_active(tmp_path: Path) -> None:
    from chatbot import ActionResult, TurnView

    text = BOOKING.replace('fallback: ["Hm?"]\n', """\
  - name: vip
    examples: [i am a vip guest]
    action: vip
  - name: leave
    examples: [forget the table, drop it all]
    action: leave
fallback: ["Hm?"]
""")
    bot = Chatbot.load(_booking(tmp_path, text), store=MemoryStore())
    seen: list[str | None] = []

    @bot.action("vip")
    def vip(turn: TurnView) -> ActionResult:
        seen.append(turn.form)
        return ActionResult("Welcome back!", slots={"name": "Vip"}, start_form="book")

    @bot.action("leave")
    def leave(turn: TurnView) -> ActionResult:
        seen.append(turn.form)
        return ActionResult("Dropped.", end_form=True)

    session = bot.session("s")
    assert session.send("i am a vip guest").text == "Welcome back! For how many?"
    assert session.form == "book"
    assert session.send("forget the table").text == "Dropped."
    assert session.form is None and seen == [None, "book"]


def test_check_finds_missing_form_actions_without_running_actions_py(tmp_path: Path) -> None:
    root = _booking(tmp_path, BOOKING.replace('    done: "Booked',
                                              '    action: finish_booking\n    done: "Booked'))
    (root / "actions.py").write_text(
        "raise SystemExit('never run by check')\n", encoding="utf-8")
    problems = [str(p).split("/intents/", 1)[1] for p in check_bot(root)]
    assert problems == [
        "book.yml:9:58: slot 'name' of form 'book' names action 'check_name', which "
        "actions.py does not define (decorate a function with @action)",
        "book.yml:12:13: form 'book' names action 'finish_booking', which actions.py does "
        "not define (decorate a function with @action)",
    ]
