"""A child process that chats in one shared session of an SQLite store.

    python session_sender.py DB NAME TURNS GO_FILE

Creates `GO_FILE.NAME` once the bot is loaded and waits for GO_FILE, so both
senders start at the same moment. Then it sends TURNS user turns, `NAME 0`,
`NAME 1`, ..., to the session `shared` through the fake-generator bot; the
other sender does the same, so the two race for every version of the session.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fakegen import FakeGenerator  # noqa: E402

from chatbot import Chatbot  # noqa: E402
from chatbot.botdir import load_bot  # noqa: E402
from chatbot.session import SQLiteStore  # noqa: E402


def main(db: Path, name: str, turns: int, go: Path) -> None:
    bot = Chatbot(load_bot().intents, generator=FakeGenerator(), store=SQLiteStore(db))
    session = bot.session("shared")
    go.with_name(f"{go.name}.{name}").touch()
    while not go.exists():
        time.sleep(0.001)
    for k in range(turns):
        session.send(f"{name} {k}")
    bot.store.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]))
