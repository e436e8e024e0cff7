"""Plan the writing of the everyday corpus: which writer writes which conversation.

The plan assigns topics, and for each conversation a situation seed (the
user's mood, how they type, a twist, a length), to writers. It writes no
turns: every conversation is written whole by a person from its plan line.

usage: python scripts/corpus/plan.py --wave 1 --writers 8 --per-topic 12 --out DIR

Wave 2 rotates the topic slices, so every topic is written by two writers.
One plan file per writer: DIR/w{wave}-{k}.tsv, one conversation a line.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

TOPICS = Path(__file__).parents[2] / "chatbot" / "data" / "everyday" / "topics.tsv"

MOODS = (
    "cheerful", "sad", "bored", "stressed", "excited", "tired", "annoyed", "curious",
    "neutral", "anxious", "playful", "grumpy", "confused", "proud", "chatty", "flat",
)
REGISTERS = (
    "all lower case, little punctuation",
    "lower case with typos and texting shortcuts (u, ur, idk, tbh, lol)",
    "ordinary sentences with capitals",
    "terse: one to six words a message",
    "chatty: longer messages, two or three sentences",
    "slang and casual",
    "simple English, as a non-native speaker writes it",
    "teenager",
    "polite and a little formal, an older person",
    "lower case, some run-on messages",
)
TWISTS = (
    "none", "none", "none", "none",
    "the user changes the subject halfway through",
    "the user refers back to something they said two or more turns earlier",
    "the user is rude or dismissive to the bot at some point",
    "the user asks the bot something about itself",
    "the user gives one-word answers at first, then opens up",
    "the user misunderstands one of the bot's questions",
    "the user asks for advice",
    "the user says goodbye at the end",
    "the user makes a joke",
    "the user asks the bot's opinion",
    "the user mentions a person (sister, friend, boss) and brings them up again later",
    "the user disagrees with the bot",
)
LENGTHS = (4, 4, 6, 6, 6, 8, 8, 8, 8, 10, 10, 10, 12, 12, 14, 16, 5, 7, 9, 11)


def read_topics(path: Path = TOPICS) -> list[tuple[str, str, str, str]]:
    """(id, category, split, description) for every topic, in file order."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        topic, category, split, description = line.split("\t")
        rows.append((topic, category, split, description))
    return rows


def plan(*, wave: int, writers: int, per_topic: int, seed: int) -> dict[int, list[str]]:
    """Plan lines per writer (1-based), each a tab-separated conversation seed."""
    topics = read_topics()
    order = list(range(len(topics)))
    random.Random(seed).shuffle(order)
    out: dict[int, list[str]] = {k: [] for k in range(1, writers + 1)}
    for position, index in enumerate(order):
        writer = (position + wave - 1) % writers + 1
        topic, category, split, description = topics[index]
        rng = random.Random(f"{seed}:{wave}:{topic}")
        for n in range(per_topic):
            row = (
                f"w{wave}-{writer}-{topic}-{n + 1:02d}", topic, description,
                rng.choice(MOODS), rng.choice(REGISTERS), rng.choice(TWISTS),
                str(rng.choice(LENGTHS)),
            )
            out[writer].append("\t".join(row))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wave", type=int, required=True)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--per-topic", type=int, default=12)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    header = "id\ttopic\tdescription\tmood\tregister\ttwist\tturns"
    for writer, lines in plan(wave=args.wave, writers=args.writers,
                              per_topic=args.per_topic, seed=args.seed).items():
        path = args.out / f"w{args.wave}-{writer}.tsv"
        path.write_text(header + "\n" + "\n".join(lines) + "\n", encoding="utf-8")
        print(path, len(lines))


if __name__ == "__main__":
    main()
