"""Corpus loaders. Each source becomes a list of `Conversation`.

Sources: `chitchat`, `chatterbot`, `cornell:PATH`, `jsonl:PATH`, `transcripts:DIR`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatbot.errors import CorpusFormatError, DataError, EmptyCorpusError

_SPACES = re.compile(r"\s+")
_LINE_ID = re.compile(r"L\d+")
_CORNELL_SEP = " +++$+++ "


@dataclass(frozen=True)
class Conversation:
    """Utterances in order, alternating speakers; `id` is stable across loads."""

    id: str
    turns: tuple[str, ...]


def load_corpus(source: str) -> list[Conversation]:
    """Loads a corpus by source name.

    Raises:
        DataError: unknown source or unreadable path.
        CorpusFormatError: a malformed record, with file and line.
        EmptyCorpusError: the source has no conversation of two or more turns.
    """
    kind, _, arg = source.partition(":")
    loaders: dict[str, Callable[[str], list[Conversation]]] = {
        "chitchat": lambda _: _chitchat(),
        "chatterbot": lambda _: _chatterbot(),
        "cornell": _cornell,
        "jsonl": _jsonl,
        "transcripts": _transcripts,
    }
    if kind not in loaders:
        raise DataError(
            f"unknown corpus {source!r}; use chitchat, chatterbot, cornell:PATH, "
            "jsonl:PATH or transcripts:DIR"
        )
    if kind in ("cornell", "jsonl", "transcripts") and not arg:
        raise DataError(f"corpus {kind!r} needs a path: {kind}:PATH")
    conversations = [c for c in loaders[kind](arg) if len(c.turns) >= 2]
    if not conversations:
        raise EmptyCorpusError(f"corpus {source!r} has no conversation of two or more turns")
    return conversations


def make_conversation(cid: str, utterances: Iterable[str]) -> Conversation:
    """Normalises whitespace and drops empty utterances."""
    turns = tuple(t for t in (_SPACES.sub(" ", u).strip() for u in utterances) if t)
    return Conversation(cid, turns)


def _chitchat() -> list[Conversation]:
    try:
        import chitchat_dataset
    except ImportError:
        raise DataError(
            "corpus 'chitchat' needs the chitchat-dataset package: pip install 'chatbot[data]'"
        ) from None
    data = chitchat_dataset.Dataset()
    conversations = []
    for cid, record in data.items():
        turns = [" ".join(m["text"] for m in turn) for turn in record["messages"]]
        conversations.append(make_conversation(cid, turns))
    return conversations


def _chatterbot() -> list[Conversation]:
    try:
        import chatterbot_corpus
    except ImportError:
        raise DataError(
            "corpus 'chatterbot' needs the chatterbot-corpus package: pip install 'chatbot[data]'"
        ) from None
    from chatbot import yamlio

    folder = Path(chatterbot_corpus.__file__).parent / "data" / "english"
    conversations = []
    for file in sorted(folder.glob("*.yml")):
        data = yamlio.load(file)
        for index, turns in enumerate(data.get("conversations") or []):
            if isinstance(turns, list):
                conversations.append(
                    make_conversation(f"{file.stem}:{index}", (str(t) for t in turns))
                )
    return conversations


def _cornell(arg: str) -> list[Conversation]:
    path = Path(arg)
    if path.is_dir() and (path / "utterances.jsonl").exists():
        return _convokit(path / "utterances.jsonl")
    if path.is_file() and path.suffix == ".jsonl":
        return _convokit(path)
    if path.is_dir() and (path / "movie_lines.txt").exists():
        return _cornell_movie(path / "movie_lines.txt", path / "movie_conversations.txt")
    raise DataError(
        f"{arg}: expected a folder with movie_lines.txt and movie_conversations.txt, "
        "or a ConvoKit utterances.jsonl"
    )


def _read_lines(path: Path, encoding: str = "utf-8") -> list[str]:
    try:
        return path.read_text(encoding=encoding).splitlines()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not {encoding} text (byte {exc.start})") from None


def _cornell_movie(lines_file: Path, conversations_file: Path) -> list[Conversation]:
    lines: dict[str, str] = {}
    for number, line in enumerate(_read_lines(lines_file, "iso-8859-1"), start=1):
        if not line.strip():
            continue
        fields = line.split(_CORNELL_SEP)
        if len(fields) != 5:
            raise CorpusFormatError(
                lines_file, number, 1, f"expected 5 fields separated by '+++$+++', got {len(fields)}"
            )
        lines[fields[0].strip()] = fields[4]
    conversations = []
    for number, line in enumerate(_read_lines(conversations_file, "iso-8859-1"), start=1):
        if not line.strip():
            continue
        fields = line.split(_CORNELL_SEP)
        if len(fields) != 4:
            raise CorpusFormatError(
                conversations_file, number, 1,
                f"expected 4 fields separated by '+++$+++', got {len(fields)}",
            )
        ids = _LINE_ID.findall(fields[3])
        missing = [i for i in ids if i not in lines]
        if not ids or missing:
            col = len(_CORNELL_SEP.join(fields[:3])) + len(_CORNELL_SEP) + 1
            what = f"unknown line id {missing[0]}" if missing else "no line ids"
            raise CorpusFormatError(conversations_file, number, col, what)
        conversations.append(make_conversation(f"cornell:{number}", (lines[i] for i in ids)))
    return conversations


def _json_line(path: Path, number: int, line: str) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise CorpusFormatError(path, number, exc.colno, f"invalid JSON: {exc.msg}") from None


def _convokit(path: Path) -> list[Conversation]:
    grouped: dict[str, list[tuple[Any, int, str, str]]] = {}
    for number, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            continue
        record = _json_line(path, number, line)
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise CorpusFormatError(path, number, 1, "expected an object with a string 'text'")
        cid = str(record.get("conversation_id", record.get("root", "")))
        stamp = record.get("timestamp") or 0
        grouped.setdefault(cid, []).append(
            (stamp, number, str(record.get("speaker", "")), record["text"])
        )
    conversations = []
    for cid, items in grouped.items():
        items.sort(key=lambda item: (float(item[0]) if _is_number(item[0]) else 0.0, item[1]))
        conversations.append(make_conversation(cid, _merge_speakers(items)))
    return conversations


def _merge_speakers(items: list[tuple[Any, int, str, str]]) -> list[str]:
    turns: list[str] = []
    last_speaker: str | None = None
    for _, _, speaker, text in items:
        if turns and speaker == last_speaker:
            turns[-1] = f"{turns[-1]} {text}"
        else:
            turns.append(text)
        last_speaker = speaker
    return turns


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _jsonl(arg: str) -> list[Conversation]:
    path = Path(arg)
    conversations = []
    for number, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            continue
        record = _json_line(path, number, line)
        if isinstance(record, dict):
            record = record.get("turns")
        if not isinstance(record, list) or not all(isinstance(u, str) for u in record):
            raise CorpusFormatError(
                path, number, 1, 'expected a JSON list of strings (or {"turns": [...]})'
            )
        conversations.append(make_conversation(f"{path.name}:{number}", record))
    return conversations


def _transcripts(arg: str) -> list[Conversation]:
    from chatbot import yamlio

    folder = Path(arg)
    if not folder.is_dir():
        raise DataError(f"{arg}: not a folder of transcripts")
    conversations = []
    for file in sorted([*folder.rglob("*.yml"), *folder.rglob("*.yaml")]):
        data = yamlio.load(file)
        turns = data.get("turns") if isinstance(data, dict) else None
        if not isinstance(turns, list):
            raise CorpusFormatError(file, 1, 1, "a transcript needs a 'turns' list")
        utterances: list[str] = []
        segment = 0
        for turn in turns:
            user = turn.get("user") if isinstance(turn, dict) else None
            bot = turn.get("bot") if isinstance(turn, dict) else None
            text = bot if isinstance(bot, str) else bot.get("text") if isinstance(bot, dict) else None
            if isinstance(turn, dict) and turn.get("reset"):
                text = None
            if isinstance(user, str) and isinstance(text, str):
                utterances += [user, text]
                continue
            if utterances:
                conversations.append(make_conversation(f"{file.name}:{segment}", utterances))
                segment += 1
            utterances = []
        if utterances:
            conversations.append(make_conversation(f"{file.name}:{segment}", utterances))
    return conversations
