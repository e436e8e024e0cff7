"""Tab completion of slash commands and their arguments."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import make_repl
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from chatbot.repl.chat import Chat
from chatbot.repl.loading import Loading


@pytest.fixture
def complete(
    intents_bot_dir: Path, open_test_chat: Callable[..., Chat]
) -> Callable[[str], list[str]]:
    chat = open_test_chat(intents_bot_dir)
    chat.bot.store.save("monday", start=0, events=[], state=None)
    with make_repl(Loading.done(chat), "") as repl:
        completer = repl.prompt.completer
    assert completer is not None

    def run(text: str) -> list[str]:
        found = completer.get_completions(Document(text), CompleteEvent(completion_requested=True))
        return [c.text for c in found]

    return run


@pytest.mark.parametrize(
    ("text", "completions"),
    [
        ("/", ["/help", "/reset", "/why", "/set", "/session", "/record", "/debug", "/teach",
                "/untaught", "/quit"]),
        ("/se", ["/set", "/session"]),
        ("/set ", ["strategy=greedy", "strategy=beam", "strategy=sample", "beam=",
                   "temperature=", "top_k=", "top_p="]),
        ("/set beam=3 str", ["strategy=greedy", "strategy=beam", "strategy=sample"]),
        ("/session l", ["list", "load"]),
        ("/session load ", ["monday"]),
        ("/debug o", ["on", "off"]),
        ("/debug on ", []),
        ("/nope ", []),
        ("hello /se", []),
        ("hi", []),
    ],
)
def test_completions(
    complete: Callable[[str], list[str]], text: str, completions: list[str]
) -> None:
    assert complete(text) == completions
