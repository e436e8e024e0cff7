"""Reply latency and batched throughput of `chatbot.generator` on CPU.

    python benchmarks/bench_decode.py                      # the packaged default model
    python benchmarks/bench_decode.py --model runs/x --json bench.json

Prints p50/p95 latency per reply for pure generation (greedy, beam 5), for a
selected reply (greedy + the replies retrieved from the model's index, ranked
in one batched pass: the default), and for a plain reference of the PyTorch
tutorial's greedy decoder (softmax every step, always `max_length` steps) over
held-out user turns (the test split of the model's own corpus, with the state
of each conversation carried up to that turn), then replies per second for a
batch of conversations answered in one call vs one by one, both ways.
Targets: greedy >= 2x faster than the reference (p50); batched greedy >= 8x one
by one; a selected reply p95 <= 25 ms; batched selection >= 5x one by one.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from chatbot.checkpoint import load_model, packaged_model_dir, resolve_model_dir
from chatbot.data import load_corpus, split_for
from chatbot.decoding import DecodeConfig
from chatbot.generator import Generator, NeuralState
from chatbot.paths import cache_dir

sys.path.insert(0, str(Path(__file__).parent))
from tutorial_greedy import tutorial_greedy  # noqa: E402

Turn = tuple[NeuralState, str, str | None]


def held_out_turns(generator: Generator, source: str, config: Any, count: int) -> list[Turn]:
    """Up to `count` (state before the turn, user text, previous bot turn) from the test split.

    Turns alternate speakers; every turn that has an answer is a user turn here.
    """
    split = split_for(load_corpus(source), config.data)
    turns: list[Turn] = []
    for conversation in split.test:
        state = generator.initial_state()
        for i, text in enumerate(conversation.turns[:-1]):
            previous = conversation.turns[i - 1] if i else None
            turns.append((state, text, previous))
            [state] = generator.observe([state], [text])
            if len(turns) == count:
                return turns
    return turns


def latencies(
    decoders: dict[str, Callable[[Turn], object]], turns: Sequence[Turn],
    clear: Callable[[], None] | None = None,
) -> dict[str, dict[str, float]]:
    """Times every decoder on each turn in turn, rotating their order, so that load
    from other processes falls on all of them alike; `clear` runs before each
    timed call (the generator's caches start cold every time).
    """
    wall: dict[str, list[float]] = {name: [] for name in decoders}
    cpu: dict[str, list[float]] = {name: [] for name in decoders}
    names = list(decoders)
    for name in names:
        decoders[name](turns[0])
    for i, turn in enumerate(turns):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            if clear is not None:
                clear()  # no reply embedding cached by an earlier turn
            start, start_cpu = time.perf_counter(), time.process_time()
            decoders[name](turn)
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    return {name: summary(wall[name], cpu[name]) for name in names}


def summary(wall: Sequence[float], cpu: Sequence[float]) -> dict[str, float]:
    ms = sorted(t * 1000 for t in wall)
    return {
        "p50_ms": statistics.median(ms),
        "p95_ms": ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))],
        "mean_ms": statistics.fmean(ms),
        "cpu_p50_ms": statistics.median(cpu) * 1000,
    }


def throughput(
    generator: Generator, items: Sequence[Turn], repeats: int, decode: DecodeConfig,
    *, keep_table: bool = False,
) -> dict[str, Any]:
    """Replies per second: all `items` in one call vs one call each, side by side
    `repeats` times; medians, and the median of each round's ratio (load from
    other processes shifts both halves of a round alike).
    """
    generator.respond(items, decode=decode)  # untimed: the first batch this size allocates
    batched: list[float] = []
    single: list[float] = []
    for _ in range(repeats):
        # Each half starts cold: no reply embedding from before (but the table).
        generator.clear_caches(keep_table=keep_table)
        start = time.perf_counter()
        generator.respond(items, decode=decode)
        batched.append(time.perf_counter() - start)
        generator.clear_caches(keep_table=keep_table)
        start = time.perf_counter()
        for item in items:
            generator.respond([item], decode=decode)
        single.append(time.perf_counter() - start)
    n = len(items)
    return {
        "batched_rps": n / statistics.median(batched),
        "one_by_one_rps": n / statistics.median(single),
        "speedup": statistics.median(s / b for s, b in zip(single, batched, strict=True)),
        "speedups": [s / b for s, b in zip(single, batched, strict=True)],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(packaged_model_dir()), help="model dir or run")
    parser.add_argument("--data", help="corpus source (default: the model's training corpus)")
    parser.add_argument("--turns", type=int, default=200, help="held-out user turns timed")
    parser.add_argument("--batch", type=int, default=64, help="conversations per batch")
    parser.add_argument("--repeats", type=int, default=5, help="rounds of batched vs one by one")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    loaded = load_model(resolve_model_dir(args.model))
    generator = Generator.from_loaded(loaded)
    if generator.index is not None:
        generator.index.warm()
    # The same weights with the ranking head's table of index replies filled, as
    # `chatbot chat` and `chatbot serve` fill it in the background (read from the
    # cache folder after the first run).
    tabled = Generator.from_loaded(loaded)
    table_size = tabled.warm_reply_embeddings(cache_dir())
    max_length = generator.decode.max_length
    greedy = generator.decode.replace(ranker="none")
    selected = generator.decode
    source = args.data or loaded.config.data.source
    turns = held_out_turns(generator, source, loaded.config, max(args.turns, args.batch))
    timed = turns[: args.turns]
    beam5 = DecodeConfig(strategy="beam", beam_size=5, ranker="none")

    def reference(turn: Turn) -> object:
        return tutorial_greedy(
            loaded.model,
            loaded.tokenizer,
            turn[0].tensor.unsqueeze(0),
            turn[1],
            max_length=max_length,
            max_input_tokens=generator.max_input_tokens,
        )

    replies = [g for turn in timed for g, _ in generator.respond([turn], decode=greedy)]
    rows = latencies(
        {
            "greedy": lambda t: generator.respond([t], decode=greedy),
            "selected": lambda t: generator.respond([t], decode=selected),
            "selected_table": lambda t: tabled.respond([t], decode=selected),
            "beam5": lambda t: generator.respond([t], decode=beam5),
            "tutorial_greedy": reference,
        },
        timed,
        clear=lambda: (generator.clear_caches(), tabled.clear_caches(keep_table=True)),
    )
    batch = throughput(generator, turns[: args.batch], args.repeats, greedy)
    batch_selected = throughput(generator, turns[: args.batch], args.repeats, selected)
    batch_table = throughput(tabled, turns[: args.batch], args.repeats, selected, keep_table=True)
    speedup = rows["tutorial_greedy"]["p50_ms"] / rows["greedy"]["p50_ms"]
    results = {
        "model": str(loaded.path),
        "corpus": source,
        "turns": len(timed),
        "batch": min(args.batch, len(turns)),
        "threads": args.threads,
        "max_length": max_length,
        "mean_reply_tokens": statistics.fmean(len(g.token_ids) for g in replies),
        "replies_at_max_length": sum(len(g.token_ids) >= max_length for g in replies),
        "latency": rows,
        "greedy_vs_tutorial_p50": speedup,
        "throughput": batch,
        "throughput_selected": batch_selected,
        "throughput_selected_table": batch_table,
        "reply_table": table_size,
        "selected_ranker": selected.ranker if generator.weights else "none (no ranker.json)",
        "targets_met": {
            "greedy_2x": speedup >= 2.0,
            "batched_8x": batch["speedup"] >= 8.0,
            "selected_p95_25ms": rows["selected"]["p95_ms"] <= 25.0,
            "selected_batched_5x": batch_selected["speedup"] >= 5.0,
            "selected_table_p95_25ms": rows["selected_table"]["p95_ms"] <= 25.0,
            "selected_table_batched_5x": batch_table["speedup"] >= 5.0,
        },
        "torch": torch.__version__,
        "machine": f"{platform.machine()} {platform.processor()}".strip(),
    }
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


def report(r: dict[str, Any]) -> str:
    lines = [
        f"model {r['model']}  corpus {r['corpus']}  {r['turns']} held-out turns  "
        f"threads {r['threads']}  max_length {r['max_length']}  "
        f"mean greedy reply {r['mean_reply_tokens']:.1f} tokens",
        f"{'decoder':<18}{'p50 ms':>10}{'p95 ms':>10}{'mean ms':>10}{'cpu p50 ms':>12}",
    ]
    for name, row in r["latency"].items():
        lines.append(
            f"{name:<18}{row['p50_ms']:>10.2f}{row['p95_ms']:>10.2f}{row['mean_ms']:>10.2f}"
            f"{row['cpu_p50_ms']:>12.2f}"
        )
    t, ts, tt = r["throughput"], r["throughput_selected"], r["throughput_selected_table"]
    met = r["targets_met"]
    lines += [
        f"greedy vs tutorial (p50): {r['greedy_vs_tutorial_p50']:.2f}x  "
        f"(target >= 2x: {'met' if met['greedy_2x'] else 'MISSED'}); stopping at <eos> "
        f"alone bounds it by {r['max_length']} / {r['mean_reply_tokens'] + 1:.1f} steps = "
        f"{r['max_length'] / (r['mean_reply_tokens'] + 1):.2f}x",
        f"{r['batch']} conversations: batched {t['batched_rps']:.1f} replies/s, "
        f"one by one {t['one_by_one_rps']:.1f} replies/s; ratio {t['speedup']:.2f}x median of "
        f"{'/'.join(f'{x:.2f}' for x in t['speedups'])}  "
        f"(target >= 8x: {'met' if met['batched_8x'] else 'MISSED'})",
        f"selected reply ({r['selected_ranker']}): p95 {r['latency']['selected']['p95_ms']:.2f} ms "
        f"(target <= 25 ms: {'met' if met['selected_p95_25ms'] else 'MISSED'}); "
        f"batched {ts['batched_rps']:.1f} replies/s, one by one {ts['one_by_one_rps']:.1f}; "
        f"ratio {ts['speedup']:.2f}x median of {'/'.join(f'{x:.2f}' for x in ts['speedups'])}  "
        f"(target >= 5x: {'met' if met['selected_batched_5x'] else 'MISSED'})",
        f"with the reply table ({r['reply_table']} index replies encoded ahead): p95 "
        f"{r['latency']['selected_table']['p95_ms']:.2f} ms "
        f"(target <= 25 ms: {'met' if met['selected_table_p95_25ms'] else 'MISSED'}); "
        f"batched {tt['batched_rps']:.1f} replies/s, one by one {tt['one_by_one_rps']:.1f}; "
        f"ratio {tt['speedup']:.2f}x median of {'/'.join(f'{x:.2f}' for x in tt['speedups'])}  "
        f"(target >= 5x: {'met' if met['selected_table_batched_5x'] else 'MISSED'})",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
