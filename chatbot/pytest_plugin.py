"""A pytest plugin: every transcript under a `transcripts/` folder is a test.

Registered through the `pytest11` entry point, so `pytest` in a bot directory
replays `transcripts/**/*.yml` with no configuration. A YAML file there counts
when it is a transcript (a mapping with `version` and `turns`). A failing
transcript prints the same report as `chatbot replay`. Each transcript's bot is
the folder holding its `transcripts/` folder; bots load once per run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from chatbot.bot import Chatbot
    from chatbot.transcripts import Transcript, TranscriptResult

_SUFFIXES = (".yml", ".yaml")
_FOLDER = "transcripts"
_BOTS = pytest.StashKey[dict[Path, "Chatbot"]]()


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> TranscriptFile | None:
    """Collects `transcripts/**/*.yml` files that are transcripts."""
    if file_path.suffix not in _SUFFIXES or not _under_transcripts(file_path, parent):
        return None
    from chatbot.transcripts import is_transcript

    if not is_transcript(file_path):
        return None
    file: TranscriptFile = TranscriptFile.from_parent(parent, path=file_path)
    return file


def _under_transcripts(path: Path, parent: pytest.Collector) -> bool:
    """Whether a folder named `transcripts` holds `path`, below the rootdir."""
    root = parent.config.rootpath
    try:
        parts = path.relative_to(root).parts[:-1]
    except ValueError:
        parts = path.parts[:-1]
    return _FOLDER in parts


class TranscriptFile(pytest.File):
    """A transcript file: one test item."""

    def collect(self) -> Iterator[TranscriptItem]:
        from chatbot.errors import BotValidationError
        from chatbot.transcripts import load_transcript

        try:
            transcript = load_transcript(self.path)
        except BotValidationError as exc:
            raise self.CollectError(str(exc)) from None
        yield TranscriptItem.from_parent(self, name=transcript.name, transcript=transcript)


class TranscriptFailed(Exception):
    """A transcript did not pass; carries its result for the report."""

    def __init__(self, result: TranscriptResult) -> None:
        super().__init__(result.status)
        self.result = result


class TranscriptItem(pytest.Item):
    """Replays one transcript against its bot."""

    def __init__(self, *, transcript: Transcript, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.transcript = transcript

    def runtest(self) -> None:
        from chatbot.transcripts import replay

        report = replay([self.transcript], bot=self._bot())
        result = report.results[0]
        if result.status != "passed":
            raise TranscriptFailed(result)

    def _bot(self) -> Chatbot:
        from chatbot.bot import Chatbot
        from chatbot.session import MemoryStore
        from chatbot.transcripts import bot_dir_of

        bots = self.config.stash.setdefault(_BOTS, {})
        root = bot_dir_of(self.path) or self.config.rootpath
        if root not in bots:
            bots[root] = Chatbot.load(root, store=MemoryStore())
        return bots[root]

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | Any:
        """The replay report for a failed transcript, the message of a bot that does not
        load; pytest's own report for anything else."""
        from chatbot.errors import ChatbotError

        if isinstance(excinfo.value, TranscriptFailed):
            from chatbot.transcripts import format_result

            return format_result(excinfo.value.result)
        if isinstance(excinfo.value, ChatbotError):
            return f"cannot replay {self.path}: {excinfo.value}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"transcript: {self.transcript.name}"
