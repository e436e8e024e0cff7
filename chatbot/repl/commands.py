"""The REPL's slash commands. A bad command or value prints a helpful line, never a traceback."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chatbot.errors import ChatbotError
from chatbot.render import decode_summary, help_table, notice, problem, why

if TYPE_CHECKING:
    from chatbot.repl.app import Repl

SET_KEYS = {
    "strategy": "strategy",
    "beam": "beam_size",
    "temperature": "temperature",
    "top_k": "top_k",
    "top_p": "top_p",
}
SET_USAGE = "/set expects key=value, e.g. /set temperature=0.7; keys: " + ", ".join(SET_KEYS)
STRATEGIES = ("greedy", "beam", "sample")


@dataclass(frozen=True)
class Command:
    """A slash command: how to call it, what it does, and its argument completions."""

    usage: str
    help: str
    run: Callable[[Repl, list[str]], None]
    arguments: Callable[[Repl, Sequence[str]], Iterable[str]] = lambda repl, before: ()


def dispatch(repl: Repl, line: str) -> None:
    """Runs the command `line` (`/name args...`)."""
    name, *args = line.split()
    command = COMMANDS.get(name.lower())
    if command is None:
        close = difflib.get_close_matches(name.lower(), list(COMMANDS), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        repl.console.print(problem(f"unknown command {name}{hint} (/help lists the commands)"))
        return
    try:
        command.run(repl, args)
    except (ChatbotError, ValueError) as exc:
        repl.console.print(problem(f"{name}: {exc}"))
    except OSError as exc:
        repl.console.print(problem(f"{name}: {exc.strerror or exc}: {exc.filename or ''}"))


def _help(repl: Repl, args: list[str]) -> None:
    from chatbot.repl.app import KEYS

    rows = [(command.usage, command.help) for command in COMMANDS.values()]
    repl.console.print(help_table(rows, keys=KEYS))


def _reset(repl: Repl, args: list[str]) -> None:
    chat = repl.chat()
    chat.session.reset()
    repl.forget_turn()
    if chat.writer is not None:
        chat.writer.reset()
    repl.console.print(notice("conversation reset"))


def _why(repl: Repl, args: list[str]) -> None:
    if repl.last_reply is None:
        repl.console.print(notice("nothing to explain yet: say something first"))
        return
    repl.console.print(why(repl.last_reply, generation=repl.last_generation))


def _set(repl: Repl, args: list[str]) -> None:
    chat = repl.chat()
    if chat.decode is None:
        repl.console.print(problem("/set: this bot has no model, so nothing is decoded"))
        return
    if not args:
        d = chat.decode
        repl.console.print(notice(
            f"decoding: strategy={d.strategy} beam={d.beam_size} temperature={d.temperature:g} "
            f"top_k={d.top_k} top_p={d.top_p:g}"
        ))
        return
    changes = {}
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep or not key or not value:
            repl.console.print(problem(SET_USAGE))
            return
        changes[SET_KEYS.get(key.lower(), key.lower())] = value
    unknown = [key for key in changes if key not in _fields(chat.decode)]
    if unknown:
        close = difflib.get_close_matches(unknown[0], [*SET_KEYS, *_fields(chat.decode)], n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        repl.console.print(problem(f"/set: unknown key {unknown[0]!r}{hint}; keys: "
                                   f"{', '.join(SET_KEYS)}"))
        return
    changes.setdefault("strategy", _implied_strategy(changes) or chat.decode.strategy)
    try:
        decode = chat.decode.replace(**changes)
    except ChatbotError as exc:
        repl.console.print(problem(f"/set: {exc}"))
        return
    chat.set_decode(decode)
    recording = " (the recording replays with these settings)" if chat.writer else ""
    repl.console.print(notice(f"decoding: {decode_summary(decode, ranked=chat.ranked)}{recording}"))


def _fields(decode: Any) -> list[str]:
    return [f.name for f in dataclasses.fields(decode)]


def _implied_strategy(changes: dict[str, str]) -> str | None:
    """`beam` for a beam size, `sample` for a sampling setting: settings that would
    otherwise have no effect."""
    if "beam_size" in changes:
        return "beam"
    if {"temperature", "top_k", "top_p"} & set(changes):
        return "sample"
    return None


def _session(repl: Repl, args: list[str]) -> None:
    usage = "usage: /session list | /session save NAME | /session load NAME"
    action = args[0].lower() if args else ""
    if action == "list" and len(args) == 1:
        _session_list(repl)
    elif action in ("save", "load") and len(args) == 2:
        (_session_save if action == "save" else _session_load)(repl, args[1])
    else:
        repl.console.print(problem(usage))


def _session_list(repl: Repl) -> None:
    chat = repl.chat()
    ids = chat.bot.store.ids()
    if not ids:
        repl.console.print(notice("no saved sessions"))
    for session_id in ids:
        mark = "*" if session_id == chat.session.id else " "
        repl.console.print(notice(f"{mark} {session_id}", style=""))


def _session_save(repl: Repl, name: str) -> None:
    chat = repl.chat()
    if name == chat.session.id:
        repl.console.print(notice(f"this is session {name}: every turn is saved already"))
        return
    data = chat.session.to_dict()
    data["id"] = name
    replaced = chat.bot.store.load(name) is not None
    if replaced:
        chat.bot.store.delete(name)
    chat.session = chat.bot.restore(data)
    _stop_recording(repl, "the session changed")
    note = " (replacing the one saved before)" if replaced else ""
    repl.console.print(notice(f"saved as {name}{note}; the conversation goes on as {name}"))


def _session_load(repl: Repl, name: str) -> None:
    chat = repl.chat()
    if chat.bot.store.load(name) is None:
        repl.console.print(problem(f"no saved session {name!r}; /session list shows them"))
        return
    chat.session = chat.bot.session(name)
    repl.forget_turn()
    _stop_recording(repl, "the session changed")
    last = chat.session.last_reply
    said = f"; last reply: {last}" if last else ""
    repl.console.print(notice(f"resumed {name} after {chat.session.turn} turns{said}"))


def _record(repl: Repl, args: list[str]) -> None:
    chat = repl.chat()
    if len(args) != 1:
        writer = chat.writer
        state = f"recording to {writer.path}" if writer else "not recording"
        repl.console.print(notice(f"{state}; usage: /record FILE | /record off"))
    elif args[0].lower() == "off":
        if not _stop_recording(repl, "as asked"):
            repl.console.print(notice("not recording"))
    else:
        _stop_recording(repl, "a new recording starts")
        previous = chat.session
        chat.record(Path(args[0]), seed=repl.seed)
        repl.forget_turn()
        kept = f" ({previous.id} stays saved)" if previous.events else ""
        repl.console.print(notice(f"recording to {args[0]}: a new conversation starts here{kept}"))


def _stop_recording(repl: Repl, why: str) -> bool:
    path = repl.chat().stop_recording()
    if path is not None:
        repl.console.print(notice(f"recording to {path} stopped: {why}"))
    return path is not None


def _debug(repl: Repl, args: list[str]) -> None:
    value = args[0].lower() if len(args) == 1 else ""
    if value not in ("on", "off"):
        state = "on" if repl.debug else "off"
        repl.console.print(notice(f"debug is {state}; usage: /debug on|off"))
        return
    repl.debug = value == "on"
    repl.console.print(notice(f"debug {value}: " + (
        "a one-line trace follows each reply" if repl.debug else "replies only")))


def _quit(repl: Repl, args: list[str]) -> None:
    repl.running = False


def _set_arguments(repl: Repl, before: Sequence[str]) -> Iterable[str]:
    keys = [f"{key}=" for key in SET_KEYS if key != "strategy"]
    return [f"strategy={s}" for s in STRATEGIES] + keys


def _session_arguments(repl: Repl, before: Sequence[str]) -> Iterable[str]:
    if not before:
        return ("list", "save", "load")
    if list(before) == ["load"] and repl.loading.ready() and repl.loading.failed() is None:
        return repl.loading.wait().bot.store.ids()
    return ()


TEACH_USAGE = ("/teach REPLY (what I should have said), /teach intent NAME (what you "
               "meant), /teach --undo")


def _teach(repl: Repl, args: list[str]) -> None:
    chat = repl.chat()
    if not args:
        repl.console.print(problem(TEACH_USAGE))
        return
    if args == ["--undo"]:
        _untaught(repl, [])
        return
    if args[0] == "intent":
        if len(args) != 2:
            repl.console.print(problem(TEACH_USAGE))
            return
        taught = chat.bot.teach(chat.session, intent=args[1])
        repl.console.print(notice(f"taught: {taught.utterance!r} means intent {taught.intent} "
                                  f"(saved; test: {taught.transcript})"))
        return
    taught = chat.bot.teach(chat.session, reply=" ".join(args))
    repl.console.print(notice(f"taught: {taught.utterance!r} -> {taught.reply!r} "
                              f"(saved; test: {taught.transcript})"))


def _untaught(repl: Repl, args: list[str]) -> None:
    taken = repl.chat().bot.untaught()
    if taken is None:
        repl.console.print(notice("nothing taught to take back"))
        return
    what = repr(taken.reply) if taken.kind == "reply" else f"intent {taken.intent}"
    repl.console.print(notice(f"took back: {taken.utterance!r} -> {what}"))


def _teach_arguments(repl: Repl, before: Sequence[str]) -> Iterable[str]:
    if not before:
        return ("intent", "--undo")
    if list(before) == ["intent"] and repl.loading.ready() and repl.loading.failed() is None:
        return repl.loading.wait().bot.intents.names
    return ()


COMMANDS: dict[str, Command] = {
    "/help": Command("/help", "this list", _help),
    "/reset": Command("/reset", "start the conversation over", _reset),
    "/why": Command("/why", "why the last reply: candidates, scores, thresholds, rule, "
                    "attention heatmap", _why),
    "/set": Command("/set key=value ...", "decoding: strategy (greedy|beam|sample), beam "
                    "(implies beam), temperature, top_k, top_p (imply sample); /set alone "
                    "shows them", _set, _set_arguments),
    "/session": Command("/session list|save NAME|load NAME", "saved conversations",
                        _session, _session_arguments),
    "/record": Command("/record FILE|off", "record a new conversation as a replayable "
                       "transcript (YAML)", _record,
                       lambda repl, before: () if before else ("off",)),
    "/debug": Command("/debug on|off", "a one-line trace under each reply", _debug,
                      lambda repl, before: () if before else ("on", "off")),
    "/teach": Command("/teach REPLY | intent NAME | --undo", "correct the reply to your last "
                      "message, or say which intent it meant; saved in the bot directory "
                      "with a transcript", _teach, _teach_arguments),
    "/untaught": Command("/untaught", "take the last /teach back", _untaught),
    "/quit": Command("/quit", "leave (Ctrl-D too); the session is saved", _quit),
}
