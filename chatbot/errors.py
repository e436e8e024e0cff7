"""The exception tree. Every error the project raises on purpose is a `ChatbotError`."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class ChatbotError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(ChatbotError, ValueError):
    """An invalid configuration value, key or file."""


class LocatedError(ConfigError):
    """An error at a place in a file, shown as `file:line:col: message`.

    Lines and columns are 1-based; `line` 0 means the file as a whole.
    """

    def __init__(self, path: str | Path, line: int, col: int, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.col = col
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.line <= 0:
            return f"{self.path}: {self.message}"
        return f"{self.path}:{self.line}:{self.col}: {self.message}"


class YamlError(LocatedError):
    """A YAML file that is malformed, unsafe or too large."""


class DataError(ChatbotError, ValueError):
    """A corpus source that cannot be read, or reads as empty."""


class CorpusFormatError(DataError, LocatedError):
    """A malformed line or record in a corpus file."""

    def __init__(self, path: str | Path, line: int, col: int, message: str) -> None:
        LocatedError.__init__(self, path, line, col, message)


class EmptyCorpusError(DataError):
    """A corpus source that yields no usable conversation."""


class CheckpointError(ChatbotError):
    """A model directory or training checkpoint that cannot be trusted.

    `path` names the offending file.
    """

    def __init__(self, path: str | Path, message: str) -> None:
        self.path = str(path)
        self.message = message
        super().__init__(f"{self.path}: {message}")


class MissingFileError(CheckpointError):
    """A file the manifest or format requires is absent."""


class IntegrityError(CheckpointError):
    """A file whose size or sha256 differs from its manifest entry."""


class FormatError(CheckpointError):
    """A file that is not in the expected format (bad header, pickle, bad JSON)."""


class ShapeError(CheckpointError):
    """Weights whose names, shapes or values do not fit the model config."""


class TrainingError(ChatbotError):
    """Training cannot start or continue."""


class BotValidationError(ConfigError):
    """A bot directory whose files have problems; `problems` lists every one, located."""

    def __init__(self, problems: list[LocatedError]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class SessionError(ChatbotError, ValueError):
    """A session dict or stored session that cannot be restored, or a conflicting write."""


class SessionConflictError(SessionError):
    """A write that does not continue the stored session: another process or
    session object answered it meanwhile. The bot catches up and answers the turn
    again; the error reaches a caller only when its retries run out."""


class SessionDeletedError(SessionError):
    """The store no longer holds a session this object had saved turns of."""


class TurnMismatchError(SessionError):
    """A turn sent with an expected turn number that the session is not at (a
    retry of a turn that was answered already, or a client that is behind)."""

    def __init__(self, session_id: str, expected: int, actual: int) -> None:
        self.session_id, self.expected, self.actual = session_id, expected, actual
        super().__init__(
            f"session {session_id!r} is at turn {actual}, not {expected}"
        )


class StoreUnavailableError(SessionError):
    """The session store failed (unreadable, corrupt or full) for one session;
    nothing of the turn was stored, and other sessions are unaffected."""


class BatchError(SessionError):
    """Some turns of a `send_batch` failed; the others were answered and stored.

    Attributes:
        replies: one entry per item, the reply or None where the turn failed.
        errors: the error of each failed item, by index.
    """

    def __init__(self, replies: list[Any], errors: dict[int, SessionError]) -> None:
        self.replies = replies
        self.errors = errors
        first = min(errors)
        super().__init__(
            f"{len(errors)} of {len(replies)} turns failed (item {first}: {errors[first]}); "
            "the others were answered and stored"
        )


class BotMismatchError(SessionError):
    """A session recorded with another bot (other intents or another model)."""
