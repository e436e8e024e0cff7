"""Python actions: registered on the bot or found in a bot directory's actions.py."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from chatbot import ActionResult, Chatbot, MemoryStore, TurnView
from chatbot.actions import ActionError, ActionRegistry, declared_actions
from chatbot.botdir import check_bot
from chatbot.cli import main

INTENTS = """\
version: 1
intents:
  - name: order_status
    examples: [where is my order, order status]
    patterns: ['order (?P<order>\\d+)']
    action: order_status
  - name: greet
    examples: [hello, hi]
    responses: [Hello!]
  - name: size
    examples: [i want a large one]
    action: remember_size
    responses: ["Noted: {size}."]
fallback: ["Sorry, something went wrong."]
slots:
  size: {}     # set by an action
"""


def _bot_dir(tmp_path: Path, actions: str | None = None) -> Path:
    (tmp_path / "intents").mkdir()
    (tmp_path / "intents" / "shop.yml").write_text(INTENTS, encoding="utf-8")
    (tmp_path / "bot.yml").write_text("version: 1\nname: shop\nmodel: null\n", encoding="utf-8")
    if actions is not None:
        (tmp_path / "actions.py").write_text(actions, encoding="utf-8")
    return tmp_path


def test_a_registered_action_answers_and_its_changes_are_events(tmp_path: Path) -> None:
    bot = Chatbot.load(_bot_dir(tmp_path), store=MemoryStore())
    seen: list[TurnView] = []

    @bot.action("order_status")
    def status(turn: TurnView) -> ActionResult:
        seen.append(turn)
        return ActionResult(f"Order {turn.entities['order']} ships tomorrow.",
                            slots={"last_order": turn.entities["order"]},
                            contexts={"ordering": 2})

    session = bot.session("s1")
    session.send("hi")
    reply = session.send("what about order 42?")
    assert (reply.text, reply.source, reply.intent, reply.action) == (
        "Order 42 ships tomorrow.", "intent", "order_status", "order_status")
    assert reply.trace.action == "order_status" and reply.trace.action_error is None
    assert "intents: answered with intent order_status (action order_status)" in reply.trace.steps
    assert session.slots == {"order": "42", "last_order": "42"}
    assert session.contexts == {"ordering": 2}
    view = seen[0]
    assert (view.text, view.intent, view.confidence) == (
        "what about order 42?", "order_status", 1.0)
    assert dict(view.entities) == {"order": "42"} and dict(view.slots) == {"order": "42"}
    assert view.history == ("hi", "Hello!") and view.session_id == "s1"
    with pytest.raises(TypeError):
        view.slots["order"] = "7"  # type: ignore[index]
    # The changes are events: a restored session has them, and the store too.
    restored = bot.restore(session.to_dict())
    assert restored.slots == session.slots and restored.contexts == session.contexts
    assert bot.session("s1").slots == session.slots


def test_an_action_returning_none_lets_the_responses_answer_with_its_slots(
    tmp_path: Path,
) -> None:
    bot = Chatbot.load(_bot_dir(tmp_path), store=MemoryStore())
    bot.action("remember_size")(lambda turn: ActionResult(slots={"size": "large"}))
    reply = bot.session().send("i want a large one")
    assert (reply.text, reply.action) == ("Noted: large.", "remember_size")


@pytest.mark.parametrize(
    ("action", "error"),
    [
        (lambda turn: 1 / 0, "raised ZeroDivisionError: division by zero"),
        (lambda turn: 42, "returned int, not str, ActionResult or None"),
        (lambda turn: ActionResult(slots={"size": 3}),  # type: ignore[dict-item]
         "returned invalid slots or contexts: ['size']"),
    ],
)
def test_a_failing_action_gets_the_fallback_and_the_trace_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, action: object, error: str
) -> None:
    bot = Chatbot.load(_bot_dir(tmp_path), store=MemoryStore())
    bot.action("order_status")(action)  # type: ignore[arg-type]
    session = bot.session()
    with caplog.at_level(logging.ERROR, logger="chatbot.actions"):
        reply = session.send("where is my order")
    assert (reply.text, reply.source, reply.action) == ("Sorry, something went wrong.",
                                                       "fallback", None)
    assert (reply.trace.action, reply.trace.action_error) == ("order_status", error)
    assert f"action order_status failed: {error}" in str(reply.trace)
    assert error in caplog.text
    if "raised" in error:
        assert "Traceback" in caplog.text and "ZeroDivisionError" in caplog.text
    assert session.send("hello").text == "Hello!"     # the bot goes on
    assert session.turn == 2 and session.slots == {}


def test_an_action_past_its_time_limit_gets_the_fallback(tmp_path: Path) -> None:
    bot = Chatbot.load(_bot_dir(tmp_path), store=MemoryStore())
    bot.action("order_status", timeout=0.1)(lambda turn: time.sleep(1.0) or "late")
    reply = bot.session().send("order status")
    assert reply.source == "fallback"
    assert reply.trace.action_error == "timed out after 0.1 s"


def test_an_unregistered_action_gets_the_fallback(tmp_path: Path) -> None:
    bot = Chatbot.load(_bot_dir(tmp_path), store=MemoryStore())
    reply = bot.session().send("order status")
    assert reply.source == "fallback"
    assert reply.trace.action_error == "no action named 'order_status' is registered"


ACTIONS = """\
from chatbot import ActionResult, action

PREFIX = "Order"

@action("order_status")
def status(turn):
    return f"{PREFIX} {turn.slots.get('order', 'unknown')} is on its way."

@action(timeout=2)
def remember_size(turn):
    return ActionResult(slots={"size": "medium"})

def helper():
    return "not an action"
"""


def test_actions_py_is_loaded_with_the_bot(tmp_path: Path) -> None:
    bot = Chatbot.load(_bot_dir(tmp_path, ACTIONS), store=MemoryStore())
    assert bot.actions.names == ("order_status", "remember_size")
    session = bot.session()
    assert session.send("order 7").text == "Order 7 is on its way."
    assert session.send("i want a large one").text == "Noted: medium."
    assert check_bot(tmp_path) == []


def test_a_broken_actions_py_is_an_error_naming_it(tmp_path: Path) -> None:
    _bot_dir(tmp_path, "from chatbot import action\nraise RuntimeError('no config')\n")
    with pytest.raises(ActionError, match=r"actions\.py: RuntimeError: no config"):
        Chatbot.load(tmp_path, store=MemoryStore())


def test_check_finds_a_missing_action_without_running_actions_py(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    code = (f"open({str(marker)!r}, 'w').close()\nimport chatbot\n\n"
            "@chatbot.action('order_status')\ndef f(turn):\n    return 'ok'\n")
    _bot_dir(tmp_path, code)
    problems = [str(p) for p in check_bot(tmp_path)]
    assert problems == [
        f"{tmp_path}/intents/shop.yml:12:13: intent 'size' names action 'remember_size', "
        "which actions.py does not define (decorate a function with @action)",
    ]
    assert not marker.exists()
    assert main(["check", str(tmp_path)]) == 2


def test_check_reports_actions_named_by_a_bot_without_actions_py(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _bot_dir(tmp_path)
    assert main(["check", str(tmp_path)]) == 2
    err = capsys.readouterr()
    assert (f"{tmp_path}/intents/shop.yml:6:13: intent 'order_status' names action "
            "'order_status', which no actions.py defines") in err.out + err.err


def test_declared_actions_reads_decorators_and_syntax_errors(tmp_path: Path) -> None:
    file = tmp_path / "actions.py"
    file.write_text(ACTIONS, encoding="utf-8")
    assert declared_actions(file) == ({"order_status": (6, 1), "remember_size": (10, 1)}, [])
    file.write_text("@action\ndef f(turn:\n", encoding="utf-8")
    names, problems = declared_actions(file)
    assert names == {} and [(p.line, p.message.split(":")[0]) for p in problems] == [
        (2, "syntax error")]


def test_registry_rejects_bad_registrations() -> None:
    registry = ActionRegistry()
    with pytest.raises(ActionError, match="needs a name"):
        registry.register("", lambda turn: None)
    with pytest.raises(ActionError, match="timeout must be positive"):
        registry.register("x", lambda turn: None, timeout=0)


def test_the_repl_sends_action_tracebacks_to_a_log_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chatbot.repl import log_to_file

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    logger = logging.getLogger("chatbot")
    root_handlers = logging.getLogger().handlers[:]
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    try:
        logger.addHandler(logging.NullHandler())
        assert log_to_file() is None                 # logging configured: left alone
        logger.handlers.clear()
        path = log_to_file()
        assert path == tmp_path / "data" / "chatbot" / "chatbot.log"
        (tmp_path / "bot").mkdir()
        bot = Chatbot.load(_bot_dir(tmp_path / "bot"), store=MemoryStore())
        bot.action("order_status")(lambda turn: 1 / 0)
        assert bot.session().send("order status").source == "fallback"
        for handler in logger.handlers:
            handler.flush()
        logged = path.read_text(encoding="utf-8")
        assert "action 'order_status' raised ZeroDivisionError" in logged
        assert "Traceback (most recent call last)" in logged
    finally:
        for handler in logger.handlers[:]:
            logger.removeHandler(handler)
            handler.close()
        logging.getLogger().handlers[:] = root_handlers


def test_stuck_actions_never_block_other_actions_and_are_bounded(monkeypatch: pytest.MonkeyPatch
                                                                 ) -> None:
    import threading

    from chatbot import actions as actions_module
    from chatbot.actions import ActionRegistry

    monkeypatch.setattr(actions_module, "MAX_OVERDUE", 3)
    release = threading.Event()
    registry = ActionRegistry()
    registry.register("stuck", lambda turn: release.wait(30) and "late", timeout=0.05)
    registry.register("quick", lambda turn: "fast", timeout=1.0)
    view: object = None
    for _ in range(2):
        assert registry.run("stuck", view).error == "timed out after 0.05 s"
    outcome = registry.run("quick", view)  # not queued behind the stuck ones
    assert outcome.result is not None and outcome.result.text == "fast"
    assert registry.run("stuck", view).error == "timed out after 0.05 s"
    start = time.monotonic()
    assert registry.run("quick", view).error == "busy: 3 timed-out actions are still running"
    assert time.monotonic() - start < 0.05
    release.set()
    deadline = time.monotonic() + 5
    while registry._overdue and time.monotonic() < deadline:
        time.sleep(0.01)
    assert registry._overdue == 0
    release.clear()
    assert registry.run("stuck", view).error == "timed out after 0.05 s"  # accepted again
    release.set()
