"""`chatbot replay`: find transcript files, match them to their bots, replay, update.

A transcript belongs to the bot whose folder holds its `transcripts/` folder
(`mybot/transcripts/greet.yml` -> `mybot`), links followed. A file outside any
`transcripts/` folder belongs to the bot in the working directory, else to the
packaged bot.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from chatbot.bot import Chatbot
from chatbot.botdir import BOT_FILE, INTENTS_DIR, default_bot_dir
from chatbot.errors import ConfigError
from chatbot.session import MemoryStore
from chatbot.transcripts.loading import load_transcripts, transcript_files
from chatbot.transcripts.results import ReplayReport, TranscriptResult
from chatbot.transcripts.runner import DEFAULT_BATCH_SIZE, replay
from chatbot.transcripts.schema import Transcript
from chatbot.transcripts.update import TextUpdate, update_texts

TRANSCRIPTS_DIR = "transcripts"


@dataclass(frozen=True)
class ReplayOutcome:
    """A replay's report, and the expectations `update` rewrote."""

    report: ReplayReport
    updates: tuple[TextUpdate, ...] = ()


def is_bot_dir(path: str | Path) -> bool:
    """Whether `path` holds a bot (`intents/` or `bot.yml`)."""
    root = Path(path)
    return (root / INTENTS_DIR).is_dir() or (root / BOT_FILE).is_file()


def bot_dir_of(path: str | Path) -> Path | None:
    """The folder holding the nearest `transcripts/` folder above `path`, if any.

    Links are followed first: a linked `transcripts/` folder belongs to the bot that
    really holds it (the top-level `transcripts` of this repository is the packaged bot's).
    """
    for parent in Path(os.path.realpath(path)).parents:
        if parent.name == TRANSCRIPTS_DIR:
            return parent.parent
    return None


def default_bot(cwd: str | Path = ".") -> Path:
    """The working directory when it holds a bot, else the packaged default bot."""
    return Path(cwd) if is_bot_dir(cwd) else default_bot_dir()


def find_transcripts(
    paths: Sequence[str | Path], *, bot: str | Path | None = None
) -> dict[Path, list[Path]]:
    """Transcript files by bot directory; no paths means the bot's `transcripts/` folder,
    and a path that is a bot directory means its `transcripts/`, replayed with it.

    Raises:
        ConfigError: a path that does not exist, or a folder without transcripts.
    """
    if not paths:
        root = Path(bot) if bot is not None else default_bot()
        paths = [root / TRANSCRIPTS_DIR]
    groups: dict[Path, list[Path]] = {}
    for path in map(Path, paths):
        owner_here = Path(bot) if bot is not None else None
        if path.is_dir() and path.name != TRANSCRIPTS_DIR and is_bot_dir(path):
            owner_here = owner_here or path
            path = path / TRANSCRIPTS_DIR
            if not path.is_dir():
                raise ConfigError(f"{path.parent}: a bot directory without a {TRANSCRIPTS_DIR}/ "
                                  "folder")
        if path.is_dir():
            files = transcript_files(path)
            if not files:
                raise ConfigError(f"{path}: no transcript files (*.yml) here")
        elif path.is_file():
            files = [path]
        else:
            raise ConfigError(f"{path}: no such file or folder")
        for file in files:
            owner = owner_here or bot_dir_of(file) or default_bot()
            groups.setdefault(owner, []).append(file)
    return groups


def replay_paths(
    paths: Sequence[str | Path],
    *,
    bot: Chatbot | str | Path | None = None,
    fail_fast: bool = False,
    update: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> ReplayOutcome:
    """Loads the transcripts under `paths`, replays them against their bots, and reports.

    Args:
        paths: files or folders (none: the bot's `transcripts/`).
        bot: a loaded bot, or a bot directory, for every transcript (default: each
            file's own bot; see the module docstring).
        fail_fast: stop at the first failure.
        update: rewrite failing `text` expectations from the replies, then replay
            the rewritten files again.
        batch_size: transcripts replayed in lockstep.

    Raises:
        BotValidationError: listing every problem in every transcript file.
        ConfigError: a path that does not exist, or holds no transcripts.
    """
    where = None if isinstance(bot, Chatbot) else bot
    groups = find_transcripts(paths, bot=where)
    files = [file for group in groups.values() for file in group]
    loaded = dict(zip(files, load_transcripts(files), strict=True))
    bots: dict[Path, Chatbot] = {}

    def run(items: dict[Path, list[Transcript]]) -> ReplayReport:
        report = ReplayReport()
        for root, transcripts in items.items():
            if fail_fast and not report.ok:
                skipped = tuple(TranscriptResult(t, "skipped", ()) for t in transcripts)
                report = report.merge(ReplayReport(skipped))
                continue
            if root not in bots:
                bots[root] = bot if isinstance(bot, Chatbot) else _load_bot(root)
            found = replay(transcripts, bot=bots[root], fail_fast=fail_fast,
                           batch_size=batch_size)
            report = report.merge(found)
        return report

    report = run({root: [loaded[f] for f in group] for root, group in groups.items()})
    if not update:
        return ReplayOutcome(report)
    updates = update_texts(report)
    changed = {u.path for u in updates}
    if changed:
        again = {root: load_transcripts([f for f in group if f in changed])
                 for root, group in groups.items() if changed & set(group)}
        report = report.replace(run(again))
    return ReplayOutcome(report, tuple(updates))


def _load_bot(root: Path) -> Chatbot:
    return Chatbot.load(root, store=MemoryStore())
