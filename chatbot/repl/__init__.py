"""`chatbot chat`: the interactive REPL at a terminal, line mode otherwise.

    chat(ChatOptions(bot="mybot", session="monday"))

At a terminal the prompt shows at once while the bot and its model load in a
background thread (the first message waits for them; importing torch is most
of the wait). When standard input is not a
terminal, or with `json=True`, each input line gets one reply line; without a
`session` nothing is stored, and the same input and seed give the same replies.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import shlex
import sys
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING

from chatbot.errors import ConfigError
from chatbot.repl.chat import Chat, open_chat
from chatbot.repl.loading import Loading
from chatbot.repl.options import ChatOptions

if TYPE_CHECKING:
    from prompt_toolkit.history import History

    from chatbot.generator import Generator

__all__ = ["Chat", "ChatOptions", "Loading", "chat", "default_history_path", "open_chat"]


def chat(
    options: ChatOptions, *, stdin: IO[str] | None = None, stdout: IO[str] | None = None
) -> int:
    """Holds a conversation as `options` say; returns the exit status.

    Raises:
        ChatbotError: the bot, its model or the session do not load, or a setting is invalid.
    """
    from chatbot.botdir import load_bot

    stdin = stdin if stdin is not None else sys.stdin
    stdout = stdout if stdout is not None else sys.stdout
    log_to_file()
    if options.record is not None and options.session is not None:
        raise ConfigError("--record records a new conversation; it cannot resume --session")
    if options.json or not stdin.isatty():
        definition = load_bot(options.bot)
        return _lines(partial(open_chat, definition), options, stdin=stdin, stdout=stdout)
    if options.bot is not None and not _looks_like_a_bot(Path(options.bot)):
        load_bot(options.bot)  # raises, saying what is wrong
    return _interactive(Loading(partial(_open, options)), options=options)


def _looks_like_a_bot(path: Path) -> bool:
    return (path / "intents").is_dir() or (path / "bot.yml").is_file()


def _open(options: ChatOptions) -> Chat:
    from chatbot.botdir import load_bot

    chat = open_chat(load_bot(options.bot), options)
    generator = chat.generations.inner if chat.generations is not None else None
    if generator is not None:
        stop = threading.Event()
        thread = threading.Thread(target=_warm, args=(generator, stop), name="reply-vectors",
                                  daemon=True)
        thread.start()
        atexit.register(_stop_warming, thread, stop)
    return chat


def _stop_warming(thread: threading.Thread, stop: threading.Event) -> None:
    """At exit: the table stops between chunks and is not written (the next run
    computes it again), so no torch computation is torn down mid-way."""
    stop.set()
    thread.join(timeout=30)


def _warm(generator: Generator, stop: threading.Event) -> None:
    """Fills the ranking head's table of index replies (from the cache folder after
    the first run: see `Generator.warm_reply_embeddings`); replies go on meanwhile."""
    from chatbot.paths import cache_dir

    try:
        count = generator.warm_reply_embeddings(cache_dir(), stop=stop)
        logging.getLogger("chatbot.repl").info("reply table: %d index replies", count)
    except Exception:  # noqa: BLE001 - without the table, replies encode as needed
        logging.getLogger("chatbot.repl").exception("filling the reply table failed")


def _lines(open_: Callable[[ChatOptions], Chat], options: ChatOptions, *, stdin: IO[str],
           stdout: IO[str]) -> int:
    from chatbot.repl.lines import run_lines
    from chatbot.session import MemoryStore

    if options.store is None and options.session is None:
        # Not kept, and named by the seed: the same input gets the same replies.
        options = dataclasses.replace(options, store=MemoryStore(),
                                      session=f"lines-{options.seed or 0}")
    return run_lines(open_(options), stdin=stdin, stdout=stdout, json_lines=options.json)


def log_to_file() -> Path | None:
    """Sends the `chatbot` loggers' records (a failing action's traceback) to
    `chatbot.log` beside the default session store rather than the terminal,
    unless the program configured logging itself; returns the file, or None."""
    import logging

    from chatbot.session.store import default_store_path

    logger = logging.getLogger("chatbot")
    if logging.getLogger().handlers or logger.handlers:
        return None
    path = default_store_path().with_name("chatbot.log")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    handler = logging.FileHandler(path, encoding="utf-8", delay=True)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    return path


def _interactive(loading: Loading[Chat], *, options: ChatOptions) -> int:
    from rich.console import Console

    from chatbot.repl.app import Repl

    resume = "chatbot chat" + (f" {shlex.quote(options.bot)}" if options.bot else "")
    repl = Repl(
        loading,
        name=Path(options.bot).resolve().name if options.bot else "chatbot",
        console=Console(highlight=False, emoji=False),
        history=file_history(options.history),
        seed=options.seed,
        resume=resume,
        session_name=options.session,
    )
    loading.start()  # only now: imports here would compete with it for the GIL
    try:
        return repl.run()
    finally:
        loading.join()


def default_history_path() -> Path:
    """`$XDG_DATA_HOME/chatbot/history` (next to the session store)."""
    from chatbot.session import default_store_path

    return default_store_path().parent / "history"


def file_history(path: Path | None) -> History:
    """A prompt-toolkit `FileHistory` at `path` (default: `default_history_path()`);
    in memory when the folder cannot be made."""
    from prompt_toolkit.history import FileHistory, InMemoryHistory

    target = path or default_history_path()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        return InMemoryHistory()
    return FileHistory(str(target))
