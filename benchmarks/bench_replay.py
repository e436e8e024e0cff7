"""Replay speed: 100 transcripts of 5 turns each, model load included.

    python benchmarks/bench_replay.py                       # the packaged default bot
    python benchmarks/bench_replay.py --bot path/to/bot --transcripts 200 --json out.json

Writes the transcripts to a temporary folder (each a mix of intent turns and
open chit-chat that the neural model answers), then times, in this process:
importing the package and torch, loading the bot and its model, reading the
transcripts, and replaying them (lockstep batches, and optionally one at a time).
Target: the whole run, imports and model load included, in at most 10 s on CPU.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from chatbot.bot import Chatbot  # noqa: E402
from chatbot.session import MemoryStore  # noqa: E402
from chatbot.transcripts import load_transcripts, replay, transcript_files  # noqa: E402

IMPORTED = time.perf_counter()

CHAT = [
    "i love listening to jazz", "do you play any sports?", "i cooked pasta for dinner",
    "i went hiking with my dog last weekend", "i just got back from the beach",
    "do you like pizza?", "my sister is visiting next week", "i have a test tomorrow",
    "we watched a movie last night", "i want to learn to play the guitar",
]
INTENT = ["hello", "my name is Ana", "what's my name", "how are you", "thanks", "bye"]
TARGET_S = 10.0


def write_transcripts(folder: Path, *, count: int, turns: int) -> None:
    """`count` transcripts of `turns` turns: every third turn an intent, the rest chit-chat."""
    for i in range(count):
        lines = ["version: 1", f"name: bench {i}", "seed: 0", "turns:"]
        for k in range(turns):
            if k % 3 == 0:
                lines += [f"  - user: \"{INTENT[(i + k) % len(INTENT)]}\"",
                          "    bot: {source: intent}"]
            else:
                lines += [f"  - user: \"{CHAT[(i * 7 + k) % len(CHAT)]}\"",
                          "    bot: {min_words: 1, not: {contains: \"<\"}}"]
        (folder / f"bench_{i:03d}.yml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bot", help="bot directory (default: the packaged default bot)")
    parser.add_argument("--transcripts", type=int, default=100)
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--one-at-a-time", action="store_true",
                        help="also time batch size 1, for comparison")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_transcripts(folder, count=args.transcripts, turns=args.turns)
        began = time.perf_counter()
        bot = Chatbot.load(args.bot, store=MemoryStore())
        loaded = time.perf_counter()
        transcripts = load_transcripts(transcript_files(folder))
        parsed = time.perf_counter()
        report = replay(transcripts, bot=bot, batch_size=args.batch_size)
        replayed = time.perf_counter()
        alone = None
        if args.one_at_a_time:
            alone = replay(transcripts, bot=bot, batch_size=1).duration_s

    total = replayed - STARTED
    results = {
        "transcripts": args.transcripts,
        "turns": report.turns,
        "passed": report.count("passed"),
        "import_s": round(IMPORTED - STARTED, 3),
        "load_bot_s": round(loaded - began, 3),
        "read_transcripts_s": round(parsed - loaded, 3),
        "replay_s": round(replayed - parsed, 3),
        "total_s": round(total, 3),
        "turns_per_s": round(report.turns / (replayed - parsed), 1),
        "batch_size": args.batch_size,
        "one_at_a_time_replay_s": None if alone is None else round(alone, 3),
        "target_s": TARGET_S,
        "ok": total <= TARGET_S,
        "torch_threads": torch.get_num_threads(),
        "machine": f"{platform.machine()}, {platform.processor() or platform.system()}",
    }
    for key, value in results.items():
        print(f"{key:<24} {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
