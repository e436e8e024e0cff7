"""The default bot's intents: present, valid, shipped, and accurate on held-out paraphrases."""

from __future__ import annotations

from pathlib import Path

from chatbot.botdir import check_bot, default_bot_dir, load_bot
from chatbot.intents import IntentMatcher
from chatbot.intents.decide import decide
from chatbot.intents.evaluate import evaluate_intents, load_cases

PARAPHRASES = Path(__file__).parent / "paraphrases.yml"
REQUIRED = ("greet", "goodbye", "thanks", "bot_identity", "how_are_you", "help", "user_name")


def test_the_default_bot_has_the_intents_other_tools_name() -> None:
    bot = load_bot()
    assert bot.root == default_bot_dir()
    assert set(REQUIRED) <= set(bot.intents.names)
    assert bot.intents.get("user_name").pattern_slots == ("name",)
    fallback = bot.intents.fallback[0].text
    assert fallback == "Sorry, I'm not sure what to say to that."
    assert all(bot.intents.get(name).override for name in REQUIRED)


def test_the_top_level_intents_folder_is_the_packaged_one() -> None:
    top = Path(__file__).parents[2] / "intents"
    assert top.resolve() == (default_bot_dir() / "intents").resolve()
    assert sorted(p.name for p in top.glob("*.yml")) == ["about.yml", "basics.yml", "names.yml"]


def test_the_default_bot_checks_clean_apart_from_the_model() -> None:
    problems = [p for p in check_bot(default_bot_dir()) if "model directory" not in p.message]
    assert problems == []


def test_paraphrase_accuracy_of_the_default_intents() -> None:
    report = evaluate_intents(load_bot().intents, load_cases(PARAPHRASES))
    assert (report.total, report.in_scope, report.out_of_scope) == (156, (78, 108), (46, 48))
    assert round(report.accuracy, 3) == 0.795
    wrong = [(text, expected, chosen) for text, expected, chosen in report.errors if chosen]
    assert wrong == [
        ("what am i called", "ask_user_name", "user_name"),
        ("tell me about it", None, "bot_identity"),
        ("what do you think", None, "help"),
    ]


def test_the_negative_examples_leave_near_miss_questions_to_the_model() -> None:
    bot = load_bot()
    matcher = IntentMatcher(bot.intents.intents)
    by_name = {intent.name: intent for intent in bot.intents.intents}
    for text, vetoed in [
        ("how old are you?", "how_are_you"),
        ("How old r u", "how_are_you"),
        ("what do you do for fun?", "help"),
    ]:
        decision = decide(matcher.rank(text), by_name, bot.intents.policy)
        assert decision.best is None, text
        assert any(c.intent == vetoed and not c.eligible for c in decision.candidates), text
    for text, intent in [("how are you?", "how_are_you"), ("what do you do?", "help")]:
        decision = decide(matcher.rank(text), by_name, bot.intents.policy)
        assert decision.best is not None and decision.best.intent == intent


def test_package_data_ships_every_bot_definition_file() -> None:
    import tomllib

    root = Path(__file__).parents[2]
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["chatbot"]
    package = root / "chatbot"
    bots = package / "bots"
    files = [p.relative_to(package) for p in [*bots.glob("*/bot.yml"), *bots.glob("*/intents/*")]]
    assert len(files) >= 6
    unshipped = [
        f for f in files
        if not any(len(f.parts) == len(Path(p).parts) and f.match(p) for p in patterns)
    ]
    assert unshipped == []
