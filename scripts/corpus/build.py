"""Build the everyday corpus from the writers' slices: merge, filter, deduplicate, split.

usage: python scripts/corpus/build.py SLICE.jsonl[.gz] ... [--out FILE]

Every conversation was written whole by a writer (see the datasheet); this
script only checks and selects, it never writes or edits a turn. It drops a
conversation that is malformed, outside 4 to 16 turns, on an unknown topic,
has a turn the reply filter blocks, has a bot turn that claims a human life,
or repeats most of the turns of one kept before it; it caps every topic at
1.5% of the corpus; then it fixes each conversation's split (held-out topics:
`heldout`; the rest by a hash of the id: 5% test, 5% valid, 90% train) and
writes the corpus as gzip JSON lines, sorted by id, byte for byte
reproducible. It prints what it dropped and why, then the statistics.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import hashlib
import io
import json
import sys
from pathlib import Path

from chatbot.data import everyday
from chatbot.data.variety import MIN_SHARED_WORDS, words
from chatbot.replies.filter import ReplyFilter
from chatbot.replies.persona import human_claim

TOPIC_CAP = 0.015


def read_slice(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as stream:
        rows = []
        for number, line in enumerate(stream, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    print(f"{path}:{number}: not JSON, skipped", file=sys.stderr)
        return rows


def split_of(cid: str, topic: everyday.Topic) -> str:
    if topic.split == "heldout":
        return "heldout"
    bucket = int(hashlib.sha256(cid.encode()).hexdigest()[:8], 16) % 100
    return "test" if bucket < 5 else "valid" if bucket < 10 else "train"


def _norm(text: str) -> str:
    return " ".join(words(text))


def select(rows: list[dict], topics: dict[str, everyday.Topic]) -> tuple[list[dict], collections.Counter]:
    """The conversations kept, and a count of the reasons others were dropped."""
    reply_filter = ReplyFilter.default()
    dropped: collections.Counter[str] = collections.Counter()
    kept: list[dict] = []
    ids: set[str] = set()
    owners: dict[str, int] = {}
    for row in sorted(rows, key=lambda r: str(r.get("id"))):
        turns = row.get("turns")
        if not isinstance(row.get("id"), str) or not isinstance(turns, list) \
                or not all(isinstance(t, str) and t.strip() for t in turns):
            dropped["malformed"] += 1
            continue
        turns = [" ".join(t.split()) for t in turns]
        if row["id"] in ids:
            dropped["id written twice"] += 1
        elif row.get("topic") not in topics:
            dropped["unknown topic"] += 1
        elif not 4 <= len(turns) <= 16:
            dropped["length outside 4-16 turns"] += 1
        elif any(reply_filter.blocked(t) for t in turns):
            dropped["a turn the reply filter blocks"] += 1
        elif any(human_claim(t) for t in turns[1::2]):
            dropped["a bot turn claims a human life"] += 1
        else:
            long = [_norm(t) for t in turns if len(words(t)) >= MIN_SHARED_WORDS]
            shared = collections.Counter(owners[t] for t in set(long) if t in owners)
            if shared and shared.most_common(1)[0][1] > len(turns) / 2:
                dropped["most turns shared with another conversation"] += 1
                continue
            for t in long:
                owners.setdefault(t, len(kept))
            ids.add(row["id"])
            kept.append({"id": row["id"], "topic": row["topic"], "turns": turns})
    cap = max(1, int(TOPIC_CAP * len(kept)))
    per_topic: collections.Counter[str] = collections.Counter()
    capped = []
    for row in kept:
        per_topic[row["topic"]] += 1
        if per_topic[row["topic"]] > cap:
            dropped["topic over its 1.5% cap"] += 1
        else:
            capped.append({**row, "split": split_of(row["id"], topics[row["topic"]])})
    return capped, dropped


def write(rows: list[dict], out: Path) -> None:
    lines = "".join(
        json.dumps({k: r[k] for k in everyday.KEYS}, ensure_ascii=False) + "\n" for r in rows
    )
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as gz:
        gz.write(lines.encode("utf-8"))
    out.write_bytes(buffer.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("slices", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=everyday.CONVERSATIONS)
    args = parser.parse_args()
    rows = [row for path in args.slices for row in read_slice(path)]
    kept, dropped = select(rows, everyday.topics())
    write(kept, args.out)
    print(f"read {len(rows)} conversations from {len(args.slices)} slices; kept {len(kept)}")
    for reason, count in dropped.most_common():
        print(f"  dropped {count:5d}: {reason}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
