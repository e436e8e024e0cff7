"""The default bot's transcripts: they cover the bot, and pass on it."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakegen import FakeGenerator

from chatbot.bot import Chatbot
from chatbot.botdir import default_bot_dir, load_bot
from chatbot.session import MemoryStore
from chatbot.transcripts import format_report, load_transcripts, replay, transcript_files
from chatbot.transcripts import matchers as m

FOLDER = default_bot_dir() / "transcripts"
REPO = Path(__file__).resolve().parents[2]
DEFAULT_MODEL = REPO / "chatbot" / "models" / "default"


def _matchers(matcher: m.Matcher | None) -> list[m.Matcher]:
    if matcher is None:
        return []
    inner: list[m.Matcher] = []
    if isinstance(matcher, m.All | m.AnyOf):
        inner = [x for item in matcher.items for x in _matchers(item)]
    elif isinstance(matcher, m.Not):
        inner = _matchers(matcher.inner)
    return [matcher, *inner]


def test_the_top_level_folder_is_the_packaged_one() -> None:
    assert (REPO / "transcripts").resolve() == FOLDER.resolve()


def test_they_cover_every_intent_the_fallback_neural_reset_and_restore() -> None:
    transcripts = load_transcripts(transcript_files(FOLDER))
    assert len(transcripts) >= 15
    turns = [turn for t in transcripts for turn in t.turns]
    found = [x for turn in turns for x in _matchers(turn.bot) + _matchers(turn.state)]
    intents = {x.name for x in found if isinstance(x, m.IntentIs)}
    assert {i.name for i in load_bot().intents.intents} <= intents
    sources = {x.source for x in found if isinstance(x, m.SourceIs)}
    assert sources == {"intent", "neural", "fallback"}
    assert any(isinstance(x, m.Slot) for x in found)
    assert any(isinstance(x, m.Context) for x in found)
    assert any(turn.reset for turn in turns) and any(turn.restore for turn in turns)
    assert len({t.name for t in transcripts}) == len(transcripts)


def test_they_pass_with_a_confident_stand_in_for_the_model() -> None:
    transcripts = load_transcripts(transcript_files(FOLDER))
    users = sorted({turn.user for t in transcripts for turn in t.turns if turn.user})
    # gibberish.yml expects the gate to distrust keyboard mashing: so does the stand-in.
    mashing = {"asdkjh qwe zzz", ";;;;", "qwertyuiop asdfghjkl"}
    script = {user: (f"that sounds nice, tell me more {i}", 0.01 if user in mashing else 0.9, ())
              for i, user in enumerate(users)}
    bot = Chatbot(load_bot().intents, generator=FakeGenerator(script=script), store=MemoryStore())
    report = replay(transcripts, bot=bot)
    assert report.ok, format_report(report)


@pytest.mark.skipif(not (DEFAULT_MODEL / "manifest.json").is_file(),
                    reason="the default model is not built (chatbot/models/default)")
def test_they_pass_on_the_shipped_model() -> None:
    bot = Chatbot.load(store=MemoryStore())
    report = replay(load_transcripts(transcript_files(FOLDER)), bot=bot)
    assert report.ok, format_report(report)
