"""Corpus loaders. Each source becomes a list of `Conversation`.

Sources: `everyday` (this project's own corpus; `everyday:heldout` its held-out
topics), `chitchat`, `chatterbot`, `cornell:PATH`, `jsonl:PATH`,
`transcripts:DIR`. `A+B` is the conversations of both, in that order.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatbot import jsonio
from chatbot.errors import CorpusFormatError, DataError, EmptyCorpusError, YamlError

_SPACES = re.compile(r"\s+")
_LINE_ID = re.compile(r"L\d+")
_CORNELL_MARK = "+++$+++"


@dataclass(frozen=True)
class Conversation:
    """Utterances in order, alternating speakers; `id` is stable across loads.

    `split` is the split a corpus fixes for the conversation (`train`, `valid`,
    `test`), or None where the split is cut by seed.
    """

    id: str
    turns: tuple[str, ...]
    split: str | None = None


def load_corpus(source: str) -> list[Conversation]:
    """Loads a corpus by source name.

    Raises:
        DataError: unknown source or unreadable path.
        CorpusFormatError: a malformed record, with file and line.
        EmptyCorpusError: the source has no conversation of two or more turns.
    """
    loaders: dict[str, Callable[[str], list[Conversation]]] = {
        "everyday": _everyday,
        "chitchat": lambda _: _chitchat(),
        "chatterbot": lambda _: _chatterbot(),
        "cornell": _cornell,
        "jsonl": _jsonl,
        "transcripts": _transcripts,
    }
    parts = source.split("+")
    if len(parts) > 1 and all(p.partition(":")[0] in loaders for p in parts):
        return [c for part in parts for c in load_corpus(part)]
    kind, _, arg = source.partition(":")
    if kind not in loaders:
        raise DataError(
            f"unknown corpus {source!r}; use everyday, everyday:heldout, chitchat, chatterbot, "
            "cornell:PATH, jsonl:PATH, transcripts:DIR, or A+B for both"
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


def _everyday(arg: str) -> list[Conversation]:
    from chatbot.data import everyday

    if arg not in ("", "heldout"):
        raise DataError(f"corpus 'everyday:{arg}': use everyday or everyday:heldout")
    wanted = {"heldout"} if arg else {"train", "valid", "test"}
    return [
        Conversation(r.id, r.turns, "test" if r.split == "heldout" else r.split)
        for r in everyday.records()
        if r.split in wanted
    ]


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
    folder = Path(chatterbot_corpus.__file__).parent / "data" / "english"
    conversations = []
    for file in sorted(folder.glob("*.yml")):
        data = _load_yaml(file)
        records = data.get("conversations") if isinstance(data, dict) else None
        for index, turns in enumerate(records or []):
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
    """The file's lines, split at newlines only.

    `str.splitlines` would also split at U+2028, U+0085 and other separators that
    may sit inside a JSON string or a Cornell line (byte 0x85 is the Windows "...").
    """
    try:
        text = path.read_text(encoding=encoding)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not {encoding} text (byte {exc.start})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return [line.removesuffix("\r") for line in text.removeprefix("\ufeff").split("\n")]


def _cornell_fields(path: Path, number: int, line: str, count: int) -> list[str]:
    fields = [field.strip() for field in line.split(_CORNELL_MARK, count - 1)]
    if len(fields) != count:
        raise CorpusFormatError(
            path, number, 1, f"expected {count} fields separated by '+++$+++', got {len(fields)}"
        )
    return fields


def _cornell_movie(lines_file: Path, conversations_file: Path) -> list[Conversation]:
    lines: dict[str, tuple[str, str]] = {}
    for number, line in enumerate(_read_lines(lines_file, "iso-8859-1"), start=1):
        if line.strip():
            line_id, speaker, _, _, text = _cornell_fields(lines_file, number, line, 5)
            lines[line_id] = (speaker, text)
    conversations = []
    for number, line in enumerate(_read_lines(conversations_file, "iso-8859-1"), start=1):
        if not line.strip():
            continue
        _cornell_fields(conversations_file, number, line, 4)
        ids_start = line.rindex(_CORNELL_MARK) + len(_CORNELL_MARK)
        found = list(_LINE_ID.finditer(line, ids_start))
        missing = [m for m in found if m.group() not in lines]
        if missing:
            what = f"unknown line id {missing[0].group()}"
            raise CorpusFormatError(conversations_file, number, missing[0].start() + 1, what)
        if not found:
            raise CorpusFormatError(conversations_file, number, ids_start + 2, "no line ids")
        ids = [m.group() for m in found]
        turns = _merge_speakers(lines[i] for i in ids)
        conversations.append(make_conversation(f"cornell:{number}", turns))
    return conversations


def _json_line(path: Path, number: int, line: str) -> Any:
    try:
        return jsonio.loads(line)
    except jsonio.JsonError as exc:
        raise CorpusFormatError(path, number, exc.col, exc.message) from None


@dataclass(frozen=True)
class _Utterance:
    """One ConvoKit record; `order` sorts by timestamp, then by line in the file."""

    id: object
    reply_to: object
    order: tuple[float, int]
    speaker: str
    text: str


def _convokit(path: Path) -> list[Conversation]:
    grouped: dict[str, list[_Utterance]] = {}
    for number, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            continue
        record = _json_line(path, number, line)
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise CorpusFormatError(path, number, 1, "expected an object with a string 'text'")
        cid = str(record.get("conversation_id") or record.get("root") or "")
        grouped.setdefault(cid, []).append(_Utterance(
            id=record.get("id"),
            reply_to=record.get("reply-to", record.get("reply_to")),
            order=(_timestamp(record.get("timestamp")), number),
            speaker=str(record.get("speaker", "")),
            text=record["text"],
        ))
    return [
        make_conversation(cid, _merge_speakers((u.speaker, u.text) for u in _thread(items)))
        for cid, items in grouped.items()
    ]


def _thread(items: list[_Utterance]) -> list[_Utterance]:
    """Utterances in reply order: each follows the one it replies to.

    ConvoKit files need not list a conversation in order (the Cornell movie corpus
    lists it backwards, without timestamps). Replies to the same utterance follow
    each other by timestamp, then file line; a tree is read depth first.
    """
    items = sorted(items, key=lambda u: u.order)
    ids = {u.id for u in items if u.id is not None}
    children: dict[object, list[int]] = {}
    for index, u in enumerate(items):
        parent = u.reply_to if u.reply_to in ids and u.reply_to != u.id else None
        children.setdefault(parent, []).append(index)
    ordered: list[int] = []
    seen: set[int] = set()
    stack = list(reversed(children.get(None, [])))
    while stack:
        index = stack.pop()
        if index in seen:
            continue
        seen.add(index)
        ordered.append(index)
        stack.extend(reversed(children.get(items[index].id, [])))
    ordered += [i for i in range(len(items)) if i not in seen]  # reply cycles
    return [items[i] for i in ordered]


def _merge_speakers(utterances: Iterable[tuple[str, str]]) -> list[str]:
    """Joins consecutive utterances of one speaker; blank utterances are skipped."""
    turns: list[str] = []
    last_speaker: str | None = None
    for speaker, text in utterances:
        if not text.strip():
            continue
        if turns and speaker == last_speaker:
            turns[-1] = f"{turns[-1]} {text}"
        else:
            turns.append(text)
        last_speaker = speaker
    return turns


def _timestamp(value: Any) -> float:
    """A numeric timestamp, or 0.0 where there is none."""
    if isinstance(value, bool) or value is None:
        return 0.0
    try:
        stamp = float(value)
    except (TypeError, ValueError):
        return 0.0
    return stamp if math.isfinite(stamp) else 0.0


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


def _load_yaml(file: Path) -> Any:
    from chatbot import yamlio

    try:
        return yamlio.load(file)
    except YamlError as exc:
        raise CorpusFormatError(exc.path, exc.line, exc.col, exc.message) from None


def _transcripts(arg: str) -> list[Conversation]:
    folder = Path(arg)
    if not folder.is_dir():
        raise DataError(f"{arg}: not a folder of transcripts")
    conversations = []
    for file in sorted([*folder.rglob("*.yml"), *folder.rglob("*.yaml")]):
        data = _load_yaml(file)
        turns = data.get("turns") if isinstance(data, dict) else None
        if not isinstance(turns, list):
            raise CorpusFormatError(file, 1, 1, "a transcript needs a 'turns' list")
        name = file.relative_to(folder).as_posix()
        for segment, utterances in enumerate(_transcript_segments(turns)):
            conversations.append(make_conversation(f"{name}:{segment}", utterances))
    return conversations


def _transcript_segments(turns: list[Any]) -> list[list[str]]:
    """Runs of turns with both a user text and a bot text; any other turn ends a run."""
    segments: list[list[str]] = [[]]
    for turn in turns:
        pair = _transcript_pair(turn)
        if pair is not None:
            segments[-1] += pair
        elif segments[-1]:
            segments.append([])
    return [s for s in segments if s]


def _transcript_pair(turn: Any) -> list[str] | None:
    if not isinstance(turn, dict) or turn.get("reset"):
        return None
    user, bot = turn.get("user"), turn.get("bot")
    text = bot.get("text") if isinstance(bot, dict) else bot
    if isinstance(user, str) and isinstance(text, str):
        return [user, text]
    return None
