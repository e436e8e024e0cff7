"""Fixtures for the REPL: small bot directories, and a headless REPL run.

The REPL runs on a prompt-toolkit pipe input and `DummyOutput`; rich writes
into a `StringIO` at width 80 without colour, so outputs compare exactly.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from rich.console import Console

from chatbot.botdir import load_bot, scaffold
from chatbot.repl.app import Repl
from chatbot.repl.chat import Chat, open_chat
from chatbot.repl.loading import Loading
from chatbot.repl.options import ChatOptions
from chatbot.session import MemoryStore

F2 = "\x1bOQ"
CTRL_C, CTRL_D, ESC_ENTER = "\x03", "\x04", "\x1b\r"


def _bot_dir(root: Path, bot_yml: str) -> Path:
    scaffold(root)
    (root / "bot.yml").write_text(bot_yml, encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def intents_bot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `chatbot init` starter intents, without a model: no torch, instant replies."""
    root = tmp_path_factory.mktemp("bots") / "intents"
    return _bot_dir(root, "version: 1\nname: tiny\nmodel: null\n")


@pytest.fixture(scope="session")
def tiny_bot_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """The starter intents over the tiny model; neural replies are taken at any confidence."""
    root = tmp_path_factory.mktemp("bots") / "neural"
    return _bot_dir(root, (
        "version: 1\nname: tiny\n"
        f"model: {tiny_model_dir.resolve()}\n"
        "policy: {neural_min_confidence: 0.0}\n"
        "decode: {strategy: greedy}\n"
    ))


@pytest.fixture
def open_test_chat() -> Callable[..., Chat]:
    """`open_test_chat(bot_dir, **options)`: a chat in session `test` over a memory store."""

    def open_(bot_dir: Path, **options: Any) -> Chat:
        options.setdefault("store", MemoryStore())
        options.setdefault("session", "test")
        return open_chat(load_bot(bot_dir), ChatOptions(**options))

    return open_


@dataclass
class ReplRun:
    """What a headless REPL run printed, its exit status, and the REPL afterwards."""

    output: str
    code: int
    repl: Repl

    @property
    def lines(self) -> list[str]:
        """The output's lines, trailing spaces (rich's table padding) removed."""
        return [line.rstrip() for line in self.output.splitlines()]


@contextmanager
def make_repl(loading: Loading[Chat], keys: str, **options: Any) -> Iterator[Repl]:
    """A REPL on a pipe input that already holds `keys`."""
    with create_pipe_input() as pipe:
        pipe.send_text(keys)
        console = Console(file=io.StringIO(), width=80, color_system=None)
        yield Repl(loading, name="tiny", console=console, history=options.pop("history", None)
                   or InMemoryHistory(), input=pipe, output=DummyOutput(), **options)


@pytest.fixture
def run_repl() -> Callable[..., ReplRun]:
    """`run_repl(chat_or_loading, keys, **repl_options)`: runs the REPL on scripted keys.

    The keys must end the session (Ctrl-D or /quit), or the run waits for more input.
    """

    def run(chat: Chat | Loading[Chat], keys: str, **options: Any) -> ReplRun:
        loading = chat if isinstance(chat, Loading) else Loading.done(chat)
        with make_repl(loading, keys, **options) as repl:
            code = repl.run()
        assert isinstance(repl.console.file, io.StringIO)
        return ReplRun(repl.console.file.getvalue(), code, repl)

    return run
