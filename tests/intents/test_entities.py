"""Entities: lookups with synonyms, regexes, numbers and dates, filling slots."""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path

import pytest

from chatbot import Chatbot, MemoryStore
from chatbot.errors import BotValidationError, ConfigError
from chatbot.intents.entities import EntityExtractor, number, when
from chatbot.intents.loading import load_intents

NOW = dt.datetime(2026, 11, 30, 12, 0)   # a Monday

FILE = """\
version: 1
entities:
  size: {small: [s, little], large: [l, big], extra large: [xl]}
  crust: [thin, thick]
  address: {pattern: 'to (?P<value>\\d+ [a-z]+ (street|road))'}
  count: {type: number}
intents:
  - name: order
    examples: [i want a pizza, a pizza please]
    responses: ["A {size} one, noted."]
  - name: ship
    examples: [ship it, ship it to 5 main street]
    requires: {slots: [address]}
    responses: ["Shipping to {address}."]
fallback: ["Hm?"]
"""


def _intents(tmp_path: Path, text: str = FILE) -> Path:
    (tmp_path / "intents").mkdir(exist_ok=True)
    (tmp_path / "intents" / "shop.yml").write_text(text, encoding="utf-8")
    (tmp_path / "bot.yml").write_text("version: 1\nmodel: null\n", encoding="utf-8")
    return tmp_path


def test_entity_kinds_load_from_the_intent_files(tmp_path: Path) -> None:
    entities = {e.name: e for e in load_intents(_intents(tmp_path) / "intents").entities}
    assert entities["size"].kind == "lookup"
    assert entities["size"].values == (("small", ("s", "little")), ("large", ("l", "big")),
                                       ("extra large", ("xl",)))
    assert entities["crust"].values == (("thin", ()), ("thick", ()))
    assert entities["address"].kind == "pattern" and entities["count"].kind == "number"


def test_bad_entities_are_located_errors(tmp_path: Path) -> None:
    text = """\
version: 1
entities:
  when: {type: weekday}
  code: {pattern: '(unclosed'}
  size: {type: number, small: [s]}
  crust: [thin]
intents:
  - {name: a, examples: [x], responses: [y]}
"""
    _intents(tmp_path, text)
    (tmp_path / "intents" / "more.yml").write_text(
        "version: 1\nentities:\n  crust: [thick]\n", encoding="utf-8")
    with pytest.raises(BotValidationError) as info:
        load_intents(tmp_path / "intents")
    assert [str(p).split("/intents/", 1)[1] for p in info.value.problems] == [
        "shop.yml:3:16: entity 'when': unknown type 'weekday'; use one of number, date, "
        "time, datetime",
        "shop.yml:4:19: entity 'code': invalid regex '(unclosed': missing ), unterminated "
        "subpattern",
        "shop.yml:5:9: entity 'size': 'type' or 'pattern' stands alone",
        f"shop.yml:6:3: entity 'crust' is already defined at {tmp_path}/intents/more.yml:3:3",
    ]


def test_lookups_read_synonyms_case_typos_and_the_longest_phrase(tmp_path: Path) -> None:
    extractor = EntityExtractor(load_intents(_intents(tmp_path) / "intents").entities)
    assert extractor.extract("A BIG one, on thin crust!") == {"size": "large", "crust": "thin"}
    assert extractor.extract("make it a lareg") == {"size": "large"}
    assert extractor.extract("extra large please") == {"size": "extra large"}
    assert extractor.extract("an XL and a small") == {"size": "extra large"}  # the first said
    assert extractor.extract("two pizzas to 5 Main Street") == {
        "address": "5 Main Street", "count": "2"}
    assert extractor.extract("slice") == {}


@pytest.mark.parametrize(("text", "value"), [
    ("two pizzas", "2"), ("I'd like 3", "3"), ("twenty one of them", "21"),
    ("a dozen eggs", "12"), ("2.5 kg", "2.5"), ("order 42, not 7", "42"),
    ("seventy-five", "75"), ("none at all", None), ("room 4b", None),
    ("a big one", None), ("a big thin one", None), ("this one", None), ("one pizza", "1"),
    ("just one", "1"),
])
def test_numbers_in_digits_and_words(text: str, value: str | None) -> None:
    assert number(text) == value


@pytest.mark.skipif(importlib.util.find_spec("dateparser") is None,
                    reason="the optional dateparser package is not installed")
@pytest.mark.parametrize(("text", "kind", "value"), [
    ("deliver it tomorrow at 7pm please", "datetime", "2026-12-01T19:00"),
    ("book a table for next friday", "date", "2026-12-04"),
    ("can i come on march 3?", "date", "2027-03-03"),
    ("see you at 6:30 pm", "time", "18:30"),
    ("next friday", "time", None),
    ("a large margherita", "date", None),
])
def test_dates_and_times_relative_to_now(text: str, kind: str, value: str | None) -> None:
    assert when(text, kind, now=NOW) == value


def test_entities_fill_slots_on_every_turn(tmp_path: Path) -> None:
    bot = Chatbot.load(_intents(tmp_path), store=MemoryStore())
    session = bot.session("e")
    reply = session.send("i want a pizza, a big one")
    assert reply.text == "A large one, noted."
    assert "entities: size='large'" in reply.trace.steps
    # A turn the fallback answers still stores what it found.
    assert session.send("to 12 Elm Road, thick crust").text == "Hm?"
    assert session.slots == {"size": "large", "address": "12 Elm Road", "crust": "thick",
                             "count": "12"}   # the built-in number reads any number
    # requires.slots sees an entity found in the same turn.
    fresh = bot.session("f")
    assert fresh.send("ship it").text == "Hm?"
    assert fresh.send("ship it to 9 Oak Street").text == "Shipping to 9 Oak Street."
    assert bot.restore(session.to_dict()).slots == session.slots


def test_a_date_entity_without_dateparser_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _intents(tmp_path, FILE.replace("count: {type: number}", "day: {type: date}"))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "dateparser" else real(name, *a))
    with pytest.raises(ConfigError, match=r"entity 'day' reads dates, which needs the "
                                          r"optional dateparser package: pip install"):
        Chatbot.load(tmp_path, store=MemoryStore())
