"""The everyday corpus: conversations written for this project, shipped with it.

`conversations.jsonl.gz` holds one conversation a line: `{"id", "topic",
"split", "turns"}`, the user first. `split` is fixed in the file (`train`,
`valid`, `test`, or `heldout` for every conversation of a held-out topic),
so every run sees the same split. `topics.tsv` lists the topics, `persona.md`
the bot side's persona, `DATASHEET.md` how it was made.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

from chatbot import jsonio
from chatbot.errors import CorpusFormatError, DataError

FOLDER = Path(__file__).with_name("everyday")
CONVERSATIONS = FOLDER / "conversations.jsonl.gz"
TOPICS = FOLDER / "topics.tsv"
SPLITS = ("train", "valid", "test", "heldout")
MAX_LINE = 64 * 1024
KEYS = ("id", "topic", "split", "turns")


@dataclass(frozen=True)
class Topic:
    id: str
    category: str
    split: str
    description: str


@dataclass(frozen=True)
class Record:
    """One conversation of the corpus, as stored."""

    id: str
    topic: str
    split: str
    turns: tuple[str, ...]


def topics(path: Path = TOPICS) -> dict[str, Topic]:
    """The topic list by id, in file order.

    Raises:
        CorpusFormatError: a malformed line, with its line and column.
    """
    out: dict[str, Topic] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 4:
            message = f"expected 4 tab-separated fields, got {len(fields)}"
            raise CorpusFormatError(path, number, 1, message)
        topic = Topic(*fields)
        if topic.split not in ("train", "heldout"):
            column = len(fields[0]) + len(fields[1]) + 3
            message = f"split must be train or heldout, not {topic.split!r}"
            raise CorpusFormatError(path, number, column, message)
        if topic.id in out:
            raise CorpusFormatError(path, number, 1, f"topic {topic.id!r} listed twice")
        out[topic.id] = topic
    return out


def records(path: Path = CONVERSATIONS) -> list[Record]:
    """Every conversation in the file, held-out topics included.

    Raises:
        DataError: the file is missing or not gzip.
        CorpusFormatError: a malformed line, with its line and column.
    """
    try:
        with gzip.open(path, "rt", encoding="utf-8", newline="\n") as stream:
            lines = stream.read().split("\n")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a gzip file of UTF-8 JSON lines ({exc})") from None
    return [_record(path, number, line) for number, line in enumerate(lines, 1) if line.strip()]


def _record(path: Path, number: int, line: str) -> Record:
    if len(line) > MAX_LINE:
        raise CorpusFormatError(path, number, MAX_LINE, f"line longer than {MAX_LINE} characters")
    try:
        row = jsonio.loads(line)
    except jsonio.JsonError as exc:
        raise CorpusFormatError(path, number, exc.col, exc.message) from None
    if not isinstance(row, dict) or tuple(sorted(row)) != tuple(sorted(KEYS)):
        message = f"expected an object with the keys {', '.join(KEYS)}"
        raise CorpusFormatError(path, number, 1, message)
    turns = row["turns"]
    if not isinstance(turns, list) or not all(isinstance(t, str) and t.strip() for t in turns):
        raise CorpusFormatError(path, number, 1, "'turns' must be a list of non-empty strings")
    if not all(isinstance(row[k], str) for k in ("id", "topic", "split")):
        raise CorpusFormatError(path, number, 1, "'id', 'topic' and 'split' must be strings")
    if row["split"] not in SPLITS:
        raise CorpusFormatError(path, number, 1, f"unknown split {row['split']!r}")
    return Record(row["id"], row["topic"], row["split"], tuple(turns))
