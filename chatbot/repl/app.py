"""The interactive REPL: one prompt-toolkit `PromptSession`, replies printed with rich.

Ctrl-C cancels the line being typed, or the reply being generated (the turn is
rolled back), and returns to the prompt; Ctrl-D (or `/quit`) leaves with status 0.
Every turn is saved to the session store as it happens.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import suppress
from functools import partial
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.filters import Condition
from prompt_toolkit.history import History
from prompt_toolkit.input import Input
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.output import Output
from rich.console import Console

from chatbot.dialogue import Reply
from chatbot.errors import ChatbotError
from chatbot.render import debug_line, decode_summary, notice, problem, reply_line, toolbar
from chatbot.repl.chat import Chat
from chatbot.repl.commands import COMMANDS, dispatch
from chatbot.repl.complete import SlashCompleter
from chatbot.repl.loading import Loading, in_thread, wait_for

PROMPT = "you> "
KEYS = (
    ("Enter", "send (in multi-line mode: a new line)"),
    ("Esc Enter, Alt-Enter", "send, in multi-line mode"),
    ("F2", "multi-line mode on/off"),
    ("Tab", "complete a /command or its argument"),
    ("Right, Ctrl-E", "take the suggestion from history"),
    ("Up, Down, Ctrl-R", "history, history search"),
    ("Ctrl-C", "cancel the line, or the reply being generated"),
    ("Ctrl-D", "quit; the session is saved"),
    ("//text", "send text that starts with /"),
)


class _LoadFailed(Exception):
    """Ends the prompt when the background load fails."""


class Repl:
    """A conversation at the terminal.

    Args:
        loading: the chat being opened (`Loading.done(chat)` when it is open already).
        name: the bot's name, shown before the load finishes.
        console: where replies and messages go.
        history: the prompt's history (a `FileHistory` persists it).
        input, output: prompt-toolkit's (tests pass a pipe input and `DummyOutput`).
        seed: the seed of transcripts `/record` starts.
        resume: the command that resumes a session (shown on exit), without `--session`.
        session_name: the session shown in the toolbar before the load finishes.
    """

    def __init__(
        self,
        loading: Loading[Chat],
        *,
        name: str,
        console: Console,
        history: History | None = None,
        input: Input | None = None,
        output: Output | None = None,
        seed: int | None = None,
        resume: str = "chatbot chat",
        session_name: str | None = None,
    ) -> None:
        self.loading = loading
        self.name = name
        self.console = console
        self.seed = seed or 0
        self.resume = resume
        self.session_name = session_name or "new"
        self.debug = False
        self.multiline = False
        self.running = True
        self.last_reply: Reply | None = None
        self.last_generation: Any = None
        self._cancelled: list[tuple[Future[Any], dict[str, Any]]] = []
        self.prompt: PromptSession[str] = PromptSession(
            history=history,
            auto_suggest=AutoSuggestFromHistory(),
            completer=SlashCompleter(
                {name: partial(command.arguments, self) for name, command in COMMANDS.items()}
            ),
            complete_while_typing=True,
            bottom_toolbar=self._toolbar,
            multiline=Condition(lambda: self.multiline),
            prompt_continuation=lambda width, line, wrap: "." * (width - 1) + " ",
            key_bindings=self._keys(),
            input=input,
            output=output,
        )

    def _keys(self) -> KeyBindings:
        keys = KeyBindings()

        @keys.add("f2")
        def _toggle_multiline(event: KeyPressEvent) -> None:
            self.multiline = not self.multiline
            event.app.invalidate()

        return keys

    def run(self) -> int:
        """Holds the conversation until Ctrl-D or `/quit`; returns the exit status (0).

        Raises:
            the load's error, when the bot or its session fails to load.
        """
        self.loading.on_done(self._loaded)
        while self.running:
            self._raise_load_failure()
            try:
                line = self.prompt.prompt(PROMPT, pre_run=self._end_prompt_if_failed)
            except (KeyboardInterrupt, _LoadFailed):
                continue
            except EOFError:
                break
            self.handle(line)
        self._goodbye()
        return 0

    def handle(self, line: str) -> None:
        """One line of input: a slash command, or a message (`//x` sends `/x`)."""
        text = line.strip()
        if not text:
            return
        if text.startswith("/") and not text.startswith("//"):
            self._guard(lambda: dispatch(self, text))
        else:
            self._guard(lambda: self.send(text[1:] if text.startswith("//") else line))

    def _guard(self, action: Callable[[], None]) -> None:
        try:
            action()
        except KeyboardInterrupt:
            self.console.print(notice("(cancelled)"))
        except ChatbotError as exc:
            if self.loading.failed() is exc:
                raise
            self.console.print(problem(str(exc)))
        except OSError as exc:
            self.console.print(problem(f"{exc.strerror or exc}: {exc.filename or ''}"))

    def send(self, text: str) -> None:
        """Sends `text` and prints the reply; Ctrl-C while it is generated cancels the turn."""
        chat = self.chat()
        snapshot = chat.session.to_dict()
        future: Future[tuple[Reply, Any]] | None = None
        try:
            future = in_thread(chat.send, text, name="chatbot-reply")
            reply, generation = wait_for(future)
        except KeyboardInterrupt:
            if future is not None:
                self._cancelled.append((future, snapshot))
            raise
        self.last_reply, self.last_generation = reply, generation
        self.console.print(reply_line(reply, name=chat.bot.name))
        if self.debug:
            self.console.print(debug_line(reply))
        try:
            chat.add_to_recording(text, reply)
        except OSError as exc:
            self.console.print(problem(f"recording stopped: {exc.strerror or exc}"))

    def chat(self) -> Chat:
        """The open chat, waiting for the load if need be, with cancelled turns rolled back."""
        if not self.loading.ready():
            self.console.print(notice("(loading the model...)"))
        chat = self.loading.wait()
        while self._cancelled:
            future, snapshot = self._cancelled[0]
            with suppress(Exception):
                wait_for(future)
            chat.bot.store.delete(snapshot["id"])
            chat.session = chat.bot.restore(snapshot)
            self._cancelled.pop(0)
        return chat

    def forget_turn(self) -> None:
        """Clears what `/why` explains (after a reset or a session switch)."""
        self.last_reply, self.last_generation = None, None

    def _toolbar(self) -> str:
        flags = []
        if self.multiline:
            flags.append("multi-line: Esc-Enter sends")
        if self.debug:
            flags.append("debug")
        if not self.loading.ready() or self.loading.failed() is not None:
            state = "loading the model..." if not self.loading.ready() else "load failed"
            return toolbar(bot=self.name, decode=state, session=self.session_name, turns=0,
                           flags=flags)
        chat = self.loading.wait()
        if chat.writer is not None:
            flags.append(f"recording {chat.writer.path.name}")
        return toolbar(bot=chat.bot.name, decode=decode_summary(chat.decode, ranked=chat.ranked),
                       session=chat.session.id, turns=chat.session.turn, flags=flags)

    def _loaded(self) -> None:
        """Runs in the loading thread: repaint the toolbar, or end the prompt on failure.

        A prompt that starts after this ends itself in `_end_prompt_if_failed`.
        """
        app = self.prompt.app
        if self.loading.failed() is None:
            app.invalidate()
        elif app.is_running and app.loop is not None:
            app.loop.call_soon_threadsafe(self._end_prompt_if_failed)

    def _end_prompt_if_failed(self) -> None:
        """Runs in the prompt's event loop."""
        if self.loading.failed() is not None and self.prompt.app.is_running:
            with suppress(Exception):
                self.prompt.app.exit(exception=_LoadFailed())

    def _raise_load_failure(self) -> None:
        failure = self.loading.failed()
        if failure is not None:
            raise failure

    def _goodbye(self) -> None:
        if not self.loading.ready() or self.loading.failed() is not None:
            return
        chat = self.chat()
        path = chat.stop_recording()
        if path is not None:
            self.console.print(notice(f"transcript written to {path}"))
        if chat.session.events:
            sid = chat.session.id
            self.console.print(notice(f"session {sid} saved; resume it with: "
                                      f"{self.resume} --session {shlex.quote(sid)}"))
