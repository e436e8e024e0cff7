"""Where sessions persist: SQLite (a file, the default) or memory (tests).

A store keeps each session as its event list plus the cached neural state, in
the dict form of `Session.to_dict()`. `save` appends the events a turn added
and replaces the state in one transaction, so a crash mid-write loses no
earlier turn. A write that does not continue the stored history (another
process or object answered the same session meanwhile) raises `SessionError`.
"""

from __future__ import annotations

import copy
import json
import os
import sqlite3
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from chatbot.errors import SessionError
from chatbot.session.state import SESSION_VERSION

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    n_events INTEGER NOT NULL,
    state TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    event TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
) WITHOUT ROWID;
"""
TIMEOUT_S = 10.0
"""How long a write waits for another process's transaction to end."""


def default_store_path() -> Path:
    """`$XDG_DATA_HOME/chatbot/sessions.sqlite3` (`~/.local/share` when unset;
    `%LOCALAPPDATA%` on Windows)."""
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        base = Path(os.environ["LOCALAPPDATA"])
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "chatbot" / "sessions.sqlite3"


class SessionStore(ABC):
    """Persists sessions as dicts in `Session.to_dict()` form. Safe across threads."""

    @abstractmethod
    def load(self, session_id: str) -> dict[str, Any] | None:
        """The stored session dict, or None when there is none."""

    @abstractmethod
    def save(
        self,
        session_id: str,
        *,
        start: int,
        events: Sequence[dict[str, Any]],
        state: str | None,
    ) -> None:
        """Appends `events` as numbers `start`, `start + 1`, ... and replaces the state.

        Raises:
            SessionError: when the store does not hold exactly `start` events.
        """

    @abstractmethod
    def delete(self, session_id: str) -> None:
        """Forgets a session (no error when absent)."""

    @abstractmethod
    def ids(self) -> list[str]:
        """Every stored session id, sorted."""

    def close(self) -> None:  # noqa: B027 - most stores hold nothing to release
        """Releases the store's resources."""


class MemoryStore(SessionStore):
    """Keeps sessions in a dict; for tests and throwaway bots."""

    def __init__(self) -> None:
        self._sessions: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def load(self, session_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._sessions.get(session_id)
            return copy.deepcopy(found) if found is not None else None

    def save(
        self,
        session_id: str,
        *,
        start: int,
        events: Sequence[dict[str, Any]],
        state: str | None,
    ) -> None:
        with self._lock:
            stored = self._sessions.get(session_id)
            _check_start(session_id, 0 if stored is None else len(stored["events"]), start)
            if stored is None:
                stored = {"version": SESSION_VERSION, "id": session_id, "events": [], "state": None}
                self._sessions[session_id] = stored
            stored["events"].extend(copy.deepcopy(list(events)))
            stored["state"] = state

    def delete(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)

    def ids(self) -> list[str]:
        with self._lock:
            return sorted(self._sessions)


class SQLiteStore(SessionStore):
    """Sessions in an SQLite file (WAL mode): one row per session plus an events table.

    Many processes may share the file. The connection opens on first use, so
    creating a store touches no disk.

    Args:
        path: the database file (default: `default_store_path()`).
        durable: fsync every turn (`synchronous=FULL`); off, a power loss may
            drop the latest turns but never corrupts the file.
    """

    def __init__(self, path: str | Path | None = None, *, durable: bool = True) -> None:
        self.path = Path(path) if path is not None else default_store_path()
        self.durable = durable
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.RLock()

    def load(self, session_id: str) -> dict[str, Any] | None:
        with self._transaction(write=False) as db:
            row = db.execute(
                "SELECT version, n_events, state FROM sessions WHERE id = ?", (session_id,)
            ).fetchone()
            if row is None:
                return None
            rows = db.execute(
                "SELECT seq, event FROM events WHERE session_id = ? ORDER BY seq", (session_id,)
            ).fetchall()
        version, count, state = row
        if [seq for seq, _ in rows] != list(range(count)):
            raise SessionError(f"{self.path}: session {session_id!r} has missing events")
        try:
            events = [json.loads(text) for _, text in rows]
        except json.JSONDecodeError as exc:
            raise SessionError(f"{self.path}: session {session_id!r}: bad event: {exc}") from None
        return {"version": version, "id": session_id, "events": events, "state": state}

    def save(
        self,
        session_id: str,
        *,
        start: int,
        events: Sequence[dict[str, Any]],
        state: str | None,
    ) -> None:
        now = time.time()
        rows = [
            (session_id, start + i, json.dumps(e, ensure_ascii=False)) for i, e in enumerate(events)
        ]
        with self._transaction(write=True) as db:
            row = db.execute("SELECT n_events FROM sessions WHERE id = ?", (session_id,)).fetchone()
            _check_start(session_id, 0 if row is None else row[0], start)
            if row is None:
                db.execute(
                    "INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?)",
                    (session_id, SESSION_VERSION, start + len(rows), state, now, now),
                )
            else:
                db.execute(
                    "UPDATE sessions SET n_events = ?, state = ?, updated = ? WHERE id = ?",
                    (start + len(rows), state, now, session_id),
                )
            db.executemany("INSERT INTO events VALUES (?, ?, ?)", rows)

    def delete(self, session_id: str) -> None:
        with self._transaction(write=True) as db:
            db.execute("DELETE FROM events WHERE session_id = ?", (session_id,))
            db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))

    def ids(self) -> list[str]:
        with self._transaction(write=False) as db:
            return [row[0] for row in db.execute("SELECT id FROM sessions ORDER BY id")]

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                db = self._connect()
                db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield db
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise SessionError(f"{self.path}: {exc}") from None

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=TIMEOUT_S
            )
            # Switching a new file to WAL fails at once, without waiting, while another
            # process is creating it too: retry until the timeout.
            deadline = time.monotonic() + TIMEOUT_S
            while True:
                try:
                    self._setup(db)
                    break
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        db.close()
                        raise
                    time.sleep(0.01)
            self._connection = db
        return self._connection

    def _setup(self, db: sqlite3.Connection) -> None:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={'FULL' if self.durable else 'NORMAL'}")
        db.execute("PRAGMA foreign_keys=ON")
        db.executescript(SCHEMA)


def _check_start(session_id: str, stored: int, start: int) -> None:
    if stored != start:
        raise SessionError(
            f"session {session_id!r} holds {stored} events in the store, not {start}: "
            "another process or session object answered it meanwhile"
        )
