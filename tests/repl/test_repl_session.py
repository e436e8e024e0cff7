"""The REPL driven headless with scripted keys, on the intents-only bot: exact outputs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from conftest import CTRL_C, CTRL_D, ESC_ENTER, F2, ReplRun
from prompt_toolkit.history import FileHistory

from chatbot.repl.chat import Chat
from chatbot.session import UserSaid
from chatbot.transcripts import format_report, load_transcripts, replay

OpenChat = Callable[..., Chat]
RunRepl = Callable[..., ReplRun]
SAVED = "session test saved; resume it with: chatbot chat --session test"
FALLBACK = "tiny> Sorry, I didn't catch that. Could you say it another way?"


def test_a_scripted_conversation(
    intents_bot_dir: Path, open_test_chat: OpenChat, run_repl: RunRepl
) -> None:
    keys = "hi\rmy name is Ann\rhi\rwhat is this\rbye\r" + CTRL_D
    run = run_repl(open_test_chat(intents_bot_dir), keys)
    assert run.code == 0
    assert run.lines == [
        "tiny> Hello!",
        "tiny> Nice to meet you, Ann!",
        "tiny> Hi Ann, good to see you.",
        FALLBACK,
        "tiny> Goodbye!",
        SAVED,
    ]


def test_ctrl_d_on_a_new_session_says_nothing_and_exits_0(
    intents_bot_dir: Path, open_test_chat: OpenChat, run_repl: RunRepl
) -> None:
    run = run_repl(open_test_chat(intents_bot_dir), CTRL_D)
    assert (run.code, run.output) == (0, "")


def test_quit_leaves_like_ctrl_d(
    intents_bot_dir: Path, open_test_chat: OpenChat, run_repl: RunRepl
) -> None:
    run = run_repl(open_test_chat(intents_bot_dir), "hi\r/quit\rnever sent\r" + CTRL_D)
    assert run.lines == ["tiny> Hello!", SAVED]


def test_ctrl_c_cancels_the_line_being_typed(
    intents_bot_dir: Path, open_test_chat: OpenChat, run_repl: RunRepl
) -> None:
    chat = open_test_chat(intents_bot_dir)
    run = run_repl(chat, "my name is Bo" + CTRL_C + "hi\r" + CTRL_D)
    assert run.lines == ["tiny> Hello!", SAVED]
    assert [e for e in chat.session.events if isinstance(e, UserSaid)] == [UserSaid("hi")]


def test_debug_prints_a_trace_line_under_each_reply(
    intents_bot_dir: Path, open_test_chat: OpenChat, run_repl: RunRepl
) -> None:
    run = run_repl(open_test_chat(intents_bot_dir),
                   "/debug on\rhi\rwhat\r/debug off\rhi\r" + CTRL_D)
    assert run.lines == [
        "debug on: a one-line trace follows each reply",
        "tiny> Hello!",
        "  [override] intent greet 1.000 | top: greet 1.000",
        FALLBACK,
        "  [fallback] fallback 0.000 | top: goodbye 0.036",
        "debug off: replies only",
        "tiny> Hello!",
        SAVED,
    ]


def test_why_explains_the_last_reply(
    intents_bot_dir: Path, open_test_chat: OpenChat, run_repl: RunRepl
) -> None:
    run = run_repl(open_test_chat(intents_bot_dir), "/why\rhi\r/why\r" + CTRL_D)
    assert run.lines == [
        "nothing to explain yet: say something first",
        "tiny> Hello!",
        "input: hi",
        "reply: intent greet, confidence 1.000, decided by override",
        "candidates:",
        "intent  score  via      note",
        "greet   1.000  pattern",
        "neural: not asked",
        "policy: override > neural > intents > fallback",
        "  intent_threshold 0.6, ambiguity_margin 0.1, neural_min_confidence 0.2",
        "steps:",
        "  match: greet (1.000) is the best intent",
        "  override: answered with intent greet",
        SAVED,
    ]


def test_bad_commands_and_values_print_a_helpful_line(
    intents_bot_dir: Path, open_test_chat: OpenChat, run_repl: RunRepl
) -> None:
    keys = ("/foo\r/wy\r/debug maybe\r/session\r/session load nope\r/set beam=2\r/record\r"
            "/record off\r" + CTRL_D)
    run = run_repl(open_test_chat(intents_bot_dir), keys)
    assert run.lines == [
        "unknown command /foo (/help lists the commands)",
        "unknown command /wy; did you mean /why? (/help lists the commands)",
        "debug is off; usage: /debug on|off",
        "usage: /session list | /session save NAME | /session load NAME",
        "no saved session 'nope'; /session list shows them",
        "/set: this bot has no model, so nothing is decoded",
        "not recording; usage: /record FILE | /record off",
        "not recording",
    ]


def test_help_lists_every_command_and_the_keys(
    intents_bot_dir: Path, open_test_chat: OpenChat, run_repl: RunRepl
) -> None:
    run = run_repl(open_test_chat(intents_bot_dir), "/help\r" + CTRL_D)
    starts = [line.split()[0] for line in run.lines if line and not line.startswith(" ")]
    assert starts == ["commands:", "/help", "/reset", "/why", "/set", "/session", "/record",
                      "/debug", "/teach", "/untaught", "/quit", "keys:", "Enter", "Esc", "F2",
                      "Tab", "Right,", "Up,",
                      "Ctrl-C", "Ctrl-D", "//text"]


def test_no_escape_code_from_user_text_reaches_the_output(
    intents_bot_dir: Path, open_test_chat: OpenChat, run_repl: RunRepl
) -> None:
    pasted = _paste("my name is \x1b]0;pwned\x07\u202eAnn\x1b[2J") + "\r/debug on\r"
    keys = pasted + _paste("\x9b31mhi\r") + "\r/why\r" + CTRL_D
    run = run_repl(open_test_chat(intents_bot_dir), keys)
    assert run.lines[0] == "tiny> Nice to meet you, Ann!"
    for bad in ("\x1b", "\x9b", "\u202e", "\x07", "pwned"):
        assert bad not in run.output


def _paste(text: str) -> str:
    """`text` as a terminal pastes it (bracketed paste): inserted as is, escapes included."""
    return f"\x1b[200~{text}\x1b[201~"


def test_f2_toggles_multi_line_input_and_esc_enter_sends(
    intents_bot_dir: Path, open_test_chat: OpenChat, run_repl: RunRepl
) -> None:
    chat = open_test_chat(intents_bot_dir)
    keys = F2 + "my name\ris Ann" + ESC_ENTER + F2 + "hi\r" + CTRL_D
    run = run_repl(chat, keys)
    assert run.lines == ["tiny> Nice to meet you, Ann!", "tiny> Hi Ann, good to see you.", SAVED]
    assert not run.repl.multiline


def test_a_leading_double_slash_sends_a_slash(
    intents_bot_dir: Path, open_test_chat: OpenChat, run_repl: RunRepl
) -> None:
    chat = open_test_chat(intents_bot_dir)
    run_repl(chat, "//shrug\r" + CTRL_D)
    assert chat.session.events[0] == UserSaid("/shrug")


def test_reset_starts_over(
    intents_bot_dir: Path, open_test_chat: OpenChat, run_repl: RunRepl
) -> None:
    run = run_repl(open_test_chat(intents_bot_dir),
                   "my name is Ann\r/reset\r/why\rhi\r" + CTRL_D)
    assert run.lines == [
        "tiny> Nice to meet you, Ann!",
        "conversation reset",
        "nothing to explain yet: say something first",
        "tiny> Hello!",
        SAVED,
    ]


def test_sessions_save_list_and_load(
    intents_bot_dir: Path, open_test_chat: OpenChat, run_repl: RunRepl
) -> None:
    chat = open_test_chat(intents_bot_dir)
    keys = ("my name is Ann\r/session save first\r/session save first\r/session load test\r"
            "/reset\r/session list\r/session load first\rhi\r" + CTRL_D)
    run = run_repl(chat, keys)
    assert run.lines == [
        "tiny> Nice to meet you, Ann!",
        "saved as first; the conversation goes on as first",
        "this is session first: every turn is saved already",
        "resumed test after 1 turns; last reply: Nice to meet you, Ann!",
        "conversation reset",
        "  first",
        "* test",
        "resumed first after 1 turns; last reply: Nice to meet you, Ann!",
        "tiny> Hello!",
        "session first saved; resume it with: chatbot chat --session first",
    ]
    assert chat.bot.store.ids() == ["first", "test"]
    assert (chat.session.id, chat.session.slots, chat.session.turn) == ("first", {"name": "Ann"}, 2)


def test_the_toolbar_shows_bot_decoding_session_and_turns(
    intents_bot_dir: Path, open_test_chat: OpenChat, run_repl: RunRepl
) -> None:
    run = run_repl(open_test_chat(intents_bot_dir), "hi\r/debug on\rhey\r" + F2 + CTRL_D)
    assert run.repl.prompt.bottom_toolbar() == (  # type: ignore[misc, operator]
        " tiny | intents only | session test | turn 2 | multi-line: Esc-Enter sends | debug "
    )


def test_history_persists_in_a_file(
    intents_bot_dir: Path, open_test_chat: OpenChat, run_repl: RunRepl, tmp_path: Path
) -> None:
    path = tmp_path / "history"
    run_repl(open_test_chat(intents_bot_dir), "hi\r/why\r" + CTRL_D,
             history=FileHistory(str(path)))
    assert list(FileHistory(str(path)).load_history_strings()) == ["/why", "hi"]


def test_record_writes_a_transcript_that_replays(
    intents_bot_dir: Path, open_test_chat: OpenChat, run_repl: RunRepl, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    chat = open_test_chat(intents_bot_dir)
    path = Path("out") / "t.yml"
    keys = (f"hi\r/record {path}\rhi\rmy name is Ann\r/reset\rhi\rbye\r/record\r/record off\r"
            "bye\r" + CTRL_D)
    run = run_repl(chat, keys)
    assert run.lines[:3] == ["tiny> Hello!",
                             f"recording to {path}: a new conversation starts here "
                             "(test stays saved)",
                             "tiny> Hello!"]
    assert run.lines[7:9] == [f"recording to {path}; usage: /record FILE | /record off",
                              f"recording to {path} stopped: as asked"]
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert data["version"] == 1 and data["seed"] == 0
    assert data["name"].startswith("recorded ")
    assert data["turns"] == [
        {"user": "hi", "bot": {"text": "Hello!", "source": "intent", "intent": "greet"}},
        {"user": "my name is Ann", "bot": {"text": "Nice to meet you, Ann!", "source": "intent",
                                           "intent": "user_name"},
         "state": {"slots": {"name": "Ann"}}},
        {"reset": True},
        {"user": "hi", "bot": {"text": "Hello!", "source": "intent", "intent": "greet"}},
        {"user": "bye", "bot": {"text": "Goodbye!", "source": "intent", "intent": "goodbye"}},
    ]
    report = replay(load_transcripts([path]), bot=chat.bot)
    assert report.ok, format_report(report)
