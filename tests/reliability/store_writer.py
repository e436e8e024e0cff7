"""A child process that answers turns into a shared SQLite session store.

    python store_writer.py DB NAME TURNS GO_FILE

Creates `GO_FILE.NAME` once imported and waits for GO_FILE, so both writers open
the new database file at the same moment. Then it writes TURNS turns to its own
sessions `NAME-0..3` (round robin) and TURNS turns to the session `shared`, which
the other writer appends to as well: on a conflict it reloads the session and
retries, as a client would.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from chatbot.errors import SessionError
from chatbot.session import SQLiteStore


def turn(name: str, k: int) -> list[dict[str, object]]:
    return [
        {"type": "user", "text": f"{name} u{k}"},
        {"type": "bot", "text": f"{name} b{k}", "source": "neural", "intent": None},
    ]


def main(db: Path, name: str, turns: int, go: Path) -> None:
    store = SQLiteStore(db)
    go.with_name(f"{go.name}.{name}").touch()
    while not go.exists():
        time.sleep(0.001)
    for k in range(turns):
        own = f"{name}-{k % 4}"
        store.save(own, start=2 * (k // 4), events=turn(name, k), state=f"{name}{k}")
        while True:
            stored = store.load("shared")
            start = 0 if stored is None else len(stored["events"])
            try:
                store.save("shared", start=start, events=turn(name, k), state=None)
                break
            except SessionError as exc:
                if "answered it meanwhile" not in str(exc) and "UNIQUE" not in str(exc):
                    raise
    store.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]))
