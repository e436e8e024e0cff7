"""Fixtures: a small bot directory (intents only, a fake generator, or the tiny model)
and a helper that writes transcript files into it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from fakegen import FakeGenerator
from transcript_helpers import SCRIPT, WriteTranscript, make_bot_dir

from chatbot.bot import Chatbot
from chatbot.intents import load_intents
from chatbot.session import MemoryStore


@pytest.fixture
def bot_dir(tmp_path: Path) -> Path:
    """An intents-only bot directory with an empty `transcripts/` folder."""
    return make_bot_dir(tmp_path / "bot", model=None)


@pytest.fixture
def write(bot_dir: Path) -> WriteTranscript:
    """Writes `transcripts/<name>.yml` (dedented) in `bot_dir`; returns its path."""

    def write_file(name: str, text: str) -> Path:
        path = bot_dir / "transcripts" / f"{name}.yml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        return path

    return write_file


@pytest.fixture
def fake_bot(bot_dir: Path) -> Chatbot:
    """The bot of `bot_dir` with a scripted fake generator (see `SCRIPT`)."""
    intents = load_intents(bot_dir / "intents")
    return Chatbot(intents, generator=FakeGenerator(script=SCRIPT), store=MemoryStore(),
                   name="testbot")


@pytest.fixture(scope="session")
def tiny_bot_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """A bot directory with the tiny trained model."""
    return make_bot_dir(tmp_path_factory.mktemp("tinybot") / "bot", model=str(tiny_model_dir))
