"""Intent matcher quality and speed.

    python benchmarks/bench_intents.py [--intents 200] [--examples 20] [--queries 2000]

Prints the default bot's accuracy on the held-out sets in tests/intents/
(fresh_paraphrases.yml, never tuned on; paraphrases.yml, tuned against;
typo_utterances.yml, typo'd and abbreviated lines, never tuned on),
then the matcher's latency per utterance
(p50/p95/p99, wall clock and thread CPU time: on a busy machine the wall
clock includes waiting for a core) over synthetic intents: `--intents` intents of `--examples`
examples each, queried with typo'd examples and unrelated sentences.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import string
import time
from pathlib import Path

from chatbot.botdir import load_bot
from chatbot.intents import Intent, IntentMatcher
from chatbot.intents.evaluate import evaluate_intents, load_cases

ROOT = Path(__file__).resolve().parents[1]
WORDS = [
    "what", "where", "when", "how", "why", "who", "can", "could", "would", "should", "do",
    "does", "did", "is", "are", "was", "were", "the", "a", "an", "my", "your", "our", "their",
    "this", "that", "these", "those", "i", "you", "we", "they", "it", "me", "us", "them",
    "please", "tell", "show", "give", "find", "book", "order", "cancel", "change", "check",
    "help", "need", "want", "like", "love", "hate", "know", "think", "make", "time", "day",
    "week", "month", "year", "today", "tomorrow", "weather", "rain", "sun", "music", "song",
    "movie", "film", "book", "ticket", "flight", "hotel", "train", "car", "bus", "taxi", "food",
    "pizza", "coffee", "tea", "water", "money", "bank", "card", "account", "password", "email",
    "phone", "number", "address", "name", "age", "job", "work", "school", "home", "family",
    "friend",
]


def accuracy() -> None:
    for name, label in (("paraphrases.yml", "tuned set"), ("fresh_paraphrases.yml", "fresh set"),
                        ("typo_utterances.yml", "typo set")):
        cases = load_cases(ROOT / "tests" / "intents" / name)
        report = evaluate_intents(load_bot().intents, cases)
        wrong = sum(1 for _, _, chosen in report.errors if chosen is not None)
        print(
            f"paraphrase accuracy, {label} ({name}): {report.accuracy:.1%} of {report.total} "
            f"(in scope {report.in_scope[0]}/{report.in_scope[1]}, "
            f"out of scope {report.out_of_scope[0]}/{report.out_of_scope[1]}, "
            f"{wrong} sent to a wrong intent)"
        )


def synthetic(rng: random.Random, n_intents: int, n_examples: int) -> list[Intent]:
    intents = []
    for i in range(n_intents):
        topic = rng.sample(WORDS, 3)
        examples = {
            " ".join(rng.sample(WORDS, rng.randint(2, 5)) + rng.sample(topic, 2))
            for _ in range(n_examples)
        }
        intents.append(Intent(f"intent_{i}", examples=tuple(sorted(examples))))
    return intents


def typo(rng: random.Random, text: str) -> str:
    chars = list(text)
    position = rng.randrange(len(chars))
    chars[position] = rng.choice(string.ascii_lowercase)
    return "".join(chars)


def latency(n_intents: int, n_examples: int, n_queries: int) -> None:
    rng = random.Random(0)
    intents = synthetic(rng, n_intents, n_examples)
    started = time.perf_counter()
    matcher = IntentMatcher(intents)
    build_s = time.perf_counter() - started
    queries = []
    for _ in range(n_queries):
        if rng.random() < 0.5:
            queries.append(typo(rng, rng.choice(rng.choice(intents).examples)))
        else:
            queries.append(" ".join(rng.sample(WORDS, rng.randint(3, 12))))
    for query in queries[:50]:
        matcher.rank(query)
    wall, cpu = [], []
    for query in queries:
        started, started_cpu = time.perf_counter(), time.thread_time()
        matcher.rank(query)
        cpu.append((time.thread_time() - started_cpu) * 1000)
        wall.append((time.perf_counter() - started) * 1000)
    print(
        f"latency, {n_intents} intents x {n_examples} examples, {n_queries} queries "
        f"(index built in {build_s * 1000:.0f} ms):"
    )
    for name, timings in (("wall", wall), ("cpu", cpu)):
        p50, p95, p99 = (percentile(timings, p) for p in (0.5, 0.95, 0.99))
        print(f"  {name:4}  p50 {p50:.3f} ms  p95 {p95:.3f} ms  p99 {p99:.3f} ms")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--intents", type=int, default=200)
    parser.add_argument("--examples", type=int, default=20)
    parser.add_argument("--queries", type=int, default=2000)
    args = parser.parse_args()
    cpu = platform.processor() or platform.machine()
    print(f"machine: {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}")
    accuracy()
    latency(args.intents, args.examples, args.queries)


if __name__ == "__main__":
    main()
