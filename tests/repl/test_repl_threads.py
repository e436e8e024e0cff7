"""Work off the prompt's thread: Ctrl-C during a reply, loading while the prompt shows."""

from __future__ import annotations

import _thread
import io
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from conftest import CTRL_D, make_repl
from fakegen import FakeGenerator, FakeState

from chatbot.bot import Chatbot
from chatbot.botdir import load_bot
from chatbot.errors import CheckpointError
from chatbot.repl.chat import Chat, RecordingGenerator
from chatbot.repl.loading import Loading
from chatbot.session import MemoryStore

SAVED = "session test saved; resume it with: chatbot chat --session test"


class BlockingGenerator(FakeGenerator):
    """Blocks in `respond` until released, while `block` is set."""

    def __init__(self) -> None:
        super().__init__(confidence=0.9)
        self.block = True
        self.started = threading.Event()
        self.release = threading.Event()

    def respond(self, items: Sequence[tuple[FakeState, str, str | None]], **options: Any) -> Any:
        if self.block:
            self.started.set()
            self.release.wait(30)
        return super().respond(items, **options)


def _chat(bot_dir: Path, generator: FakeGenerator) -> Chat:
    generations = RecordingGenerator(generator)
    bot = Chatbot(load_bot(bot_dir).intents, generator=generations, store=MemoryStore(),
                  name="tiny")
    return Chat(bot, bot.session("test"), generations)


def _when(condition: Callable[[], bool], then: Callable[[], None]) -> threading.Thread:
    """Runs `then()` in a thread once `condition()` holds (polled)."""

    def run() -> None:
        deadline = time.monotonic() + 30
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.01)
        then()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _printed(console: Any) -> str:
    assert isinstance(console.file, io.StringIO)
    return console.file.getvalue()


@pytest.fixture
def sigint_raises() -> Iterator[None]:
    """Ctrl-C's usual handler for the test. `interrupt_main` does nothing while
    SIGINT is ignored, as it is in a job that a shell without job control
    started in the background (`cmd &` in a script)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("sigint_raises")
def test_ctrl_c_cancels_the_reply_being_generated_and_rolls_the_turn_back(
    intents_bot_dir: Path,
) -> None:
    generator = BlockingGenerator()
    chat = _chat(intents_bot_dir, generator)
    with make_repl(Loading.done(chat), "tell me a story\rtell me a story\r" + CTRL_D) as repl:
        interrupter = _when(generator.started.is_set, _thread.interrupt_main)

        def release() -> None:
            generator.block = False
            generator.release.set()

        releaser = _when(lambda: "(cancelled)" in _printed(repl.console), release)
        assert repl.run() == 0
        interrupter.join()
        releaser.join()
    reference = _chat(intents_bot_dir, FakeGenerator(confidence=0.9))
    expected, _ = reference.send("tell me a story")
    assert [line.rstrip() for line in _printed(repl.console).splitlines()] == [
        "(cancelled)", f"tiny> {expected.text}", SAVED,
    ]
    assert chat.session.to_dict() == reference.session.to_dict()
    assert chat.bot.store.load("test") == reference.bot.store.load("test")


def test_the_prompt_shows_while_the_bot_loads_and_the_first_message_waits(
    intents_bot_dir: Path,
) -> None:
    chat = _chat(intents_bot_dir, FakeGenerator(script={"hi": ("hey", 0.9, ())}))
    gate = threading.Event()

    def load() -> Chat:
        gate.wait(30)
        return chat

    loading = Loading(load).start()
    with make_repl(loading, "what's new\r" + CTRL_D, session_name="test") as repl:
        assert repl.prompt.bottom_toolbar() == (  # type: ignore[misc, operator]
            " tiny | loading the model... | session test | turn 0 "
        )
        opener = _when(lambda: "(loading the model...)" in _printed(repl.console), gate.set)
        assert repl.run() == 0
        opener.join()
    reply = chat.session.last_reply
    assert [line.rstrip() for line in _printed(repl.console).splitlines()] == [
        "(loading the model...)", f"tiny> {reply}", SAVED,
    ]


@pytest.mark.parametrize("delay", [0.0, 0.3])
def test_a_failed_load_ends_the_repl_with_its_error(
    intents_bot_dir: Path, delay: float
) -> None:
    def load() -> Chat:
        time.sleep(delay)
        raise CheckpointError(Path("model"), "no manifest.json")

    loading: Loading[Chat] = Loading(load).start()
    with make_repl(loading, "") as repl, pytest.raises(CheckpointError, match="manifest"):
        repl.run()
