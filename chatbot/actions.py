"""Actions: Python functions an intent answers with, run in process.

An intent names an action (`action: order_status` in its YAML). The function is
registered on the bot (`@bot.action("order_status")`) or defined in the bot
directory's `actions.py` with the `action` decorator (a bot directory is trusted
code, like a `conftest.py`):

    from chatbot import action

    @action("order_status")
    def order_status(turn):
        return f"Order {turn.slots.get('order', '?')} is on its way."

It is called with a read-only `TurnView` and returns the reply's text, an
`ActionResult` (text and slot and context changes), or None (the intent's
responses answer, with the changes applied). An action that raises or runs
past its time limit never crashes the bot: the turn gets the fallback, the
trace names the error, and the traceback goes to the `chatbot.actions` log.
"""

from __future__ import annotations

import ast
import concurrent.futures
import contextvars
import importlib.util
import logging
import sys
import threading
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, overload

from chatbot.errors import ChatbotError, LocatedError

ACTIONS_FILE = "actions.py"
DEFAULT_TIMEOUT = 5.0
"""Seconds an action may run before the turn gets the fallback."""
MAX_OVERDUE = 16
"""Timed-out actions still running (Python cannot stop a thread) beyond which a new
call is refused at once as busy, so stuck actions cannot pile up without bound."""
_MARK = "__chatbot_action__"
log = logging.getLogger("chatbot.actions")


@dataclass(frozen=True)
class TurnView:
    """What an action may read of the turn (read-only).

    Attributes:
        text: the user's utterance, cleaned.
        intent: the intent that named the action.
        confidence: the matcher's score for it.
        entities: slot values captured from this utterance.
        slots: the session's slots, this turn's captures included.
        contexts: the session's active contexts and their remaining turns.
        history: the utterances since the last reset, user's and bot's, before this one.
        session_id: the session's id.
        form: the active form, if any.
    """

    text: str
    intent: str
    confidence: float
    entities: Mapping[str, str]
    slots: Mapping[str, str]
    contexts: Mapping[str, int]
    history: tuple[str, ...]
    session_id: str
    form: str | None = None


@dataclass(frozen=True)
class ActionResult:
    """An action's answer.

    Attributes:
        text: the reply; None lets the intent's responses answer.
        slots: slots to set (None clears one).
        contexts: contexts to set, with their lifetime in turns (0 ends one).
        start_form: a form to start: its first question follows the text.
        end_form: end the active form.
    """

    text: str | None = None
    slots: Mapping[str, str | None] = field(default_factory=dict)
    contexts: Mapping[str, int] = field(default_factory=dict)
    start_form: str | None = None
    end_form: bool = False


Action = Callable[[TurnView], "str | ActionResult | None"]
F = TypeVar("F", bound=Callable[..., Any])


class ActionError(ChatbotError):
    """An action could not be registered or loaded (a bad name, a broken actions.py)."""


@overload
def action(name: F, /) -> F: ...
@overload
def action(name: str | None = None, /, *, timeout: float | None = None) -> Callable[[F], F]: ...
def action(name: Any = None, /, *, timeout: float | None = None) -> Any:
    """Marks a function of a bot's `actions.py` as the action `name` (default: the
    function's own name); `timeout` overrides `DEFAULT_TIMEOUT` seconds."""
    if callable(name):
        setattr(name, _MARK, (name.__name__, None))
        return name

    def mark(fn: F) -> F:
        setattr(fn, _MARK, (name or fn.__name__, timeout))
        return fn

    return mark


@dataclass(frozen=True)
class Outcome:
    """What running an action gave: a result, or the error that stopped it."""

    result: ActionResult | None = None
    error: str | None = None


class ActionRegistry:
    """The actions a bot can run, by name. Thread-safe."""

    def __init__(self) -> None:
        self._actions: dict[str, tuple[Action, float]] = {}
        self._lock = threading.Lock()
        self._overdue = 0

    def __contains__(self, name: object) -> bool:
        return name in self._actions

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._actions))

    def register(self, name: str, fn: Action, *, timeout: float | None = None) -> None:
        """Adds (or replaces) the action `name`."""
        if not isinstance(name, str) or not name.strip():
            raise ActionError(f"an action needs a name (got {name!r})")
        if not callable(fn):
            raise ActionError(f"action {name!r} is not callable")
        limit = DEFAULT_TIMEOUT if timeout is None else float(timeout)
        if not limit > 0:
            raise ActionError(f"action {name!r}: timeout must be positive (got {timeout!r})")
        with self._lock:
            self._actions[name] = (fn, limit)

    def run(self, name: str, view: TurnView) -> Outcome:
        """Runs the action `name` on `view` in a thread of its own, within its time limit.

        Never raises: a missing action, an exception, a time-out or a result of
        the wrong type is an `Outcome` with `error` set (and logged). A timed-out
        action's result is discarded when it comes; Python cannot stop its
        thread, so it runs on, and while `MAX_OVERDUE` such threads are still
        running a new call is refused at once ("busy") rather than queued.
        """
        entry = self._actions.get(name)
        if entry is None:
            return self._failed(name, f"no action named {name!r} is registered", None)
        fn, limit = entry
        with self._lock:
            if self._overdue >= MAX_OVERDUE:
                busy = f"busy: {self._overdue} timed-out actions are still running"
                return self._failed(name, busy, None)
        future: concurrent.futures.Future[object] = concurrent.futures.Future()
        state = {"overdue": False}
        # The turn's context variables go with it (the dialogue manager's "in a turn").
        context = contextvars.copy_context()

        def call() -> None:
            try:
                future.set_result(context.run(fn, view))
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting turn
                future.set_exception(exc)
            finally:
                with self._lock:
                    if state["overdue"]:
                        self._overdue -= 1

        threading.Thread(target=call, name=f"chatbot-action-{name}", daemon=True).start()
        try:
            value = future.result(timeout=limit)
        except concurrent.futures.TimeoutError:
            with self._lock:
                if not future.done():
                    state["overdue"] = True
                    self._overdue += 1
            return self._failed(name, f"timed out after {limit:g} s", None)
        except Exception as exc:  # noqa: BLE001 - an author's code may raise anything
            return self._failed(name, f"raised {type(exc).__name__}: {exc}", exc)
        return _outcome(name, value, self)

    @staticmethod
    def _failed(name: str, error: str, exc: BaseException | None) -> Outcome:
        if exc is not None:
            log.error("action %r %s", name, error, exc_info=exc)
        else:
            log.error("action %r %s", name, error)
        return Outcome(error=error)


def _outcome(name: str, value: object, registry: ActionRegistry) -> Outcome:
    if value is None:
        return Outcome(ActionResult())
    if isinstance(value, str):
        return Outcome(ActionResult(text=value))
    if isinstance(value, ActionResult):
        bad = [k for k, v in value.slots.items()
               if not isinstance(k, str) or not (v is None or isinstance(v, str))]
        bad += [k for k, v in value.contexts.items()
                if not isinstance(k, str) or isinstance(v, bool) or not isinstance(v, int)]
        if bad:
            return registry._failed(name, f"returned invalid slots or contexts: {bad!r}", None)
        return Outcome(value)
    return registry._failed(
        name, f"returned {type(value).__name__}, not str, ActionResult or None", None)


def load_actions(path: str | Path) -> list[tuple[str, Action, float | None]]:
    """(name, function, timeout) of every function marked with `action` in the
    Python file `path`, which is executed (trusted code).

    Raises:
        ActionError: the file cannot be read or raises while it runs, naming it.
    """
    file = Path(path)
    module_name = f"chatbot_actions_{abs(hash(str(file.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise ActionError(f"{file}: cannot be loaded as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise ActionError(f"{file}: {type(exc).__name__}: {exc}") from exc
    found: list[tuple[str, Action, float | None]] = []
    for value in vars(module).values():
        mark = getattr(value, _MARK, None)
        if isinstance(value, types.FunctionType) and mark is not None:
            found.append((mark[0], value, mark[1]))
    return found


def declared_actions(path: str | Path) -> tuple[dict[str, tuple[int, int]], list[LocatedError]]:
    """The action names an `actions.py` declares, read with `ast` (no code runs):
    each top-level function decorated with `action`, `action("name")` or
    `chatbot.action(...)`, with its line and column; and the file's syntax error."""
    file = Path(path)
    try:
        tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
    except SyntaxError as exc:
        return {}, [LocatedError(file, exc.lineno or 0, exc.offset or 0,
                                 f"syntax error: {exc.msg}")]
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return {}, [LocatedError(file, 0, 0, f"cannot read: {exc}")]
    names: dict[str, tuple[int, int]] = {}
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for decorator in node.decorator_list:
            call = decorator if isinstance(decorator, ast.Call) else None
            target = call.func if call is not None else decorator
            named = (isinstance(target, ast.Name) and target.id == "action") or (
                isinstance(target, ast.Attribute) and target.attr == "action")
            if not named:
                continue
            name = node.name
            if call is not None and call.args and isinstance(call.args[0], ast.Constant) \
                    and isinstance(call.args[0].value, str):
                name = call.args[0].value
            names.setdefault(name, (node.lineno, node.col_offset + 1))
    return names, []
