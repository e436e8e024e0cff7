"""Response templates: slot fields, skipped variants, no repeats."""

from __future__ import annotations

import random

import pytest

from chatbot.intents import Response
from chatbot.intents.templates import choose, render, template_slots


def test_template_slots_lists_plain_fields_once() -> None:
    assert template_slots("Hi {name}, {name}! {{not a slot}} {mood}") == ("name", "mood")
    with pytest.raises(ValueError, match="must be a slot name"):
        template_slots("{0}")


def test_render_fills_slots_without_evaluating_them() -> None:
    assert render("Hi {name} {{x}}", {"name": "{__class__}"}) == "Hi {__class__} {x}"


def test_choose_skips_variants_with_unset_slots_and_honours_unless() -> None:
    responses = [
        Response("Hi {name}.", ("name",)),
        Response("Who are you?", (), ("name",)),
    ]
    rng = random.Random(0)
    assert choose(responses, {}, avoid=None, rng=rng) == "Who are you?"
    assert choose(responses, {"name": "Ann"}, avoid=None, rng=rng) == "Hi Ann."
    assert choose(responses[:1], {}, avoid=None, rng=rng) is None


def test_choose_avoids_last_reply_unless_nothing_else_is_left() -> None:
    responses = [Response("A"), Response("B")]
    for seed in range(20):
        assert choose(responses, {}, avoid="A", rng=random.Random(seed)) == "B"
    assert choose([Response("A")], {}, avoid="A", rng=random.Random(0)) == "A"


def test_choose_cleans_what_it_renders() -> None:
    chosen = choose([Response("Hi {name}", ("name",))], {"name": "\x1b[2Jbob\u202e"},
                    avoid=None, rng=random.Random(0))
    assert chosen == "Hi bob"
