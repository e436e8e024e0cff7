"""Where sessions persist: SQLite (a file, the default) or memory (tests).

A store keeps each session as its event list plus the cached neural state, in
the dict form of `Session.to_dict()`. The number of stored events is the
session's version. `save` appends the events a turn added and replaces the
state in one transaction, so a crash mid-write loses no earlier turn; it
succeeds only on the version it was given (`start`), so of two writers that
answered the same version one wins and the other gets `SessionConflictError`.

The contract for any store (a networked one included): `save` is atomic and
checks `start` against the stored count inside its transaction; `load_since`
returns a consistent (count, events, state) triple; `lock(id)` gives this
process's lock for one session id.
"""

from __future__ import annotations

import copy
import errno
import hashlib
import json
import os
import random
import sqlite3
import sys
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatbot import jsonio
from chatbot.errors import SessionConflictError, SessionError
from chatbot.jsonio import JsonError

try:
    import fcntl
except ImportError:  # Windows: no cross-process session locks
    fcntl = None  # type: ignore[assignment]
from chatbot.session.state import SESSION_VERSION, SessionLock

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


_LOCKS_GUARD = threading.Lock()


@dataclass(frozen=True)
class StoredTail:
    """What a store holds for a session past some version.

    Attributes:
        count: the number of events stored (the session's version).
        events: the events from the asked-for start on, in dict form.
        state: the cached neural state after all `count` events (base64), or None.
    """

    count: int
    events: list[dict[str, Any]]
    state: str | None


class SessionStore(ABC):
    """Persists sessions as dicts in `Session.to_dict()` form. Safe across threads."""

    def lock(self, session_id: str) -> SessionLock:
        """This process's lock for `session_id`: the same object for every caller
        while anyone holds it, so all session objects of one id take turns."""
        with _LOCKS_GUARD:
            locks: weakref.WeakValueDictionary[str, SessionLock] = self.__dict__.setdefault(
                "_session_locks", weakref.WeakValueDictionary()
            )
            found = locks.get(session_id)
            if found is None:
                found = locks[session_id] = SessionLock()
            return found

    def load_since(self, session_id: str, start: int) -> StoredTail | None:
        """The stored count, the events from number `start` on and the state,
        read together; None when the store has no such session."""
        stored = self.load(session_id)
        if stored is None:
            return None
        return StoredTail(len(stored["events"]), stored["events"][start:], stored["state"])

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
            SessionConflictError: when the store does not hold exactly `start` events.
            SessionError: the store cannot be written.
        """

    @abstractmethod
    def delete(self, session_id: str) -> None:
        """Forgets a session (no error when absent)."""

    @abstractmethod
    def ids(self) -> list[str]:
        """Every stored session id, sorted."""

    def close(self) -> None:  # noqa: B027 - most stores hold nothing to release
        """Releases the store's resources."""

    @contextmanager
    def hold(self, session_ids: Iterable[str]) -> Iterator[None]:
        """Keeps other processes off these sessions while a turn is answered.

        Optional: a store that cannot lock across processes yields at once, and
        `save`'s version check alone decides (the loser of a race answers again).
        The caller holds the ids' in-process locks (`lock`) already.
        """
        yield


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
        self._lock_file: int | None = None

    @contextmanager
    def hold(self, session_ids: Iterable[str]) -> Iterator[None]:
        """Locks one byte per session id in `PATH.locks` (POSIX record locks), so
        one process at a time answers a session while the others wait. The kernel
        drops a killed process's locks. Without `fcntl` (Windows) nothing is locked
        and the version check alone decides."""
        if fcntl is None:
            yield
            return
        fd = self._locks_fd()
        offsets = sorted({_lock_offset(i) for i in session_ids})
        taken: list[int] = []
        try:
            while len(taken) < len(offsets):
                try:
                    fcntl.lockf(fd, fcntl.LOCK_EX, 1, offsets[len(taken)])
                    taken.append(offsets[len(taken)])
                except OSError as exc:
                    # Record locks belong to processes, not threads: two processes whose
                    # threads hold locks the other waits for look like a deadlock to the
                    # kernel even when one thread will finish. Let go and start again.
                    if exc.errno != errno.EDEADLK:
                        raise
                    _unlock(fd, taken)
                    time.sleep(random.uniform(0.001, 0.01))
            yield
        finally:
            _unlock(fd, taken)

    def _locks_fd(self) -> int:
        with self._lock:
            if self._lock_file is None:
                _private_folder(self.path.parent)
                self._lock_file = os.open(f"{self.path}.locks", os.O_RDWR | os.O_CREAT, 0o600)
            return self._lock_file

    def load(self, session_id: str) -> dict[str, Any] | None:
        read = self._read(session_id, 0)
        if read is None:
            return None
        version, tail = read
        return {"version": version, "id": session_id, "events": tail.events, "state": tail.state}

    def load_since(self, session_id: str, start: int) -> StoredTail | None:
        read = self._read(session_id, start)
        return None if read is None else read[1]

    def _read(self, session_id: str, start: int) -> tuple[int, StoredTail] | None:
        """The session's format version and its events from number `start` on, in
        one read transaction (no event rows are read when there are none past it)."""
        with self._transaction(write=False) as db:
            row = db.execute(
                "SELECT version, n_events, state FROM sessions WHERE id = ?", (session_id,)
            ).fetchone()
            if row is None:
                return None
            version, count, state = row
            rows = [] if count <= start else db.execute(
                "SELECT seq, event FROM events WHERE session_id = ? AND seq >= ? ORDER BY seq",
                (session_id, start),
            ).fetchall()
        if [seq for seq, _ in rows] != list(range(start, max(start, count))):
            raise SessionError(f"{self.path}: session {session_id!r} has missing events")
        try:
            events = [jsonio.loads(text) for _, text in rows]
        except JsonError as exc:
            raise SessionError(f"{self.path}: session {session_id!r}: bad event: {exc}") from None
        return version, StoredTail(count, events, state)

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
            if self._lock_file is not None:
                os.close(self._lock_file)
                self._lock_file = None

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
            _private_folder(self.path.parent)
            # Conversations are private: the file (and the -wal and -shm files SQLite
            # gives the same mode) is readable by its owner only.
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
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


def _unlock(fd: int, taken: list[int]) -> None:
    """Releases the record locks at `taken` (last first) and empties the list."""
    while taken:
        fcntl.lockf(fd, fcntl.LOCK_UN, 1, taken.pop())


def _lock_offset(session_id: str) -> int:
    """Where in the lock file a session id's byte lies (31 bits of its sha256)."""
    digest = hashlib.sha256(session_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def _check_start(session_id: str, stored: int, start: int) -> None:
    if stored != start:
        raise SessionConflictError(
            f"session {session_id!r} holds {stored} events in the store, not {start}: "
            "another process or session object answered it meanwhile"
        )


def _private_folder(folder: Path) -> None:
    """Creates `folder` (and its parents) if missing, the folder itself 0700."""
    if not folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
