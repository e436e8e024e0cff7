"""Links out of a bot directory: an intent file linked from elsewhere is refused,
and teaching never writes through a link to elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatbot.botdir import check_bot, scaffold
from chatbot.errors import ConfigError
from chatbot.teaching import Teaching, write_transcript


def test_an_intent_file_linked_from_outside_is_a_located_problem(tmp_path: Path) -> None:
    bot = tmp_path / "bot"
    scaffold(bot)
    outside = tmp_path / "elsewhere.yml"
    outside.write_text("version: 1\nintents:\n  - name: sneaky\n    examples: [open sesame please]\n"
                       "    responses: [from outside]\n")
    (bot / "intents" / "linked.yml").symlink_to(outside)
    problems = [str(p) for p in check_bot(bot)]
    assert problems == [f"{bot / 'intents' / 'linked.yml'}: a link to {outside.resolve()}, "
                        "outside the bot directory: intent files must live inside it"]
    inside = bot / "inside.yml"
    inside.write_text(outside.read_text())
    (bot / "intents" / "linked.yml").unlink()
    (bot / "intents" / "linked.yml").symlink_to(inside)  # a link within the bot is fine
    assert check_bot(bot) == []


def test_teaching_never_writes_through_a_link_to_outside(tmp_path: Path) -> None:
    bot = tmp_path / "bot"
    scaffold(bot)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (bot / "transcripts" / "taught").symlink_to(elsewhere, target_is_directory=True)
    teaching = Teaching(kind="reply", utterance="hello there", reply="General Kenobi")
    with pytest.raises(ConfigError, match="leads outside the bot directory"):
        write_transcript(bot, teaching, 1)
    assert list(elsewhere.iterdir()) == []
