"""Training throughput: this project's trainer path against the PyTorch chatbot tutorial.

One epoch over the same (utterance -> next utterance) pairs, the same BPE
tokenizer and the same target tokens (reply + `<eos>`), hidden 500, 2 layers:

  (a) `HRED` + `WindowBatcher` + Adam + clipping 1.0, the per-step computation
      of `chatbot/train.py` (warmup/cosine lr, autocast on CUDA), without its
      file writes and periodic validation; with windows of 2 turns (one pair
      each, 64 per batch) and with the default 8 turns (64 // 7 windows per batch);
  (b) `tutorial_reference`, the tutorial's algorithm (64 random pairs per batch).

    python benchmarks/bench_train.py --quick
    python benchmarks/bench_train.py --conversations 400 --threads 2 --json bench.json
    python benchmarks/bench_train.py --conversations 150 --hidden-size 796 --skip windows
    python benchmarks/bench_train.py --conversations 0 --budget-minutes 20 --eval-split test \
        --skip twoturn

`--hidden-size` sets (a)'s width (the tutorial's stays 500): at 500 (a) has
fewer parameters than (b), since each direction of its bidirectional encoder
has half the units; the report gives each run's parameter count.
`--budget-minutes` trains each run for that much of its own time (epochs
repeat) instead of one epoch, for a comparison of quality at equal time.

The runs take turns step by step (one step of each in turn), so that changes in
the shared machine's speed fall on all of them alike; each is charged the time
of its own steps. Prints a table (epoch seconds, target tokens per second,
validation perplexity after the epoch, time per phase) and the (a)/(b) ratios.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import random
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from chatbot.config import Config
from chatbot.data import Conversation, WindowBatcher, load_corpus, split_conversations
from chatbot.data.batching import EncodedConversation, encode_conversations
from chatbot.evaluate import window_perplexity
from chatbot.model import HRED
from chatbot.text import Tokenizer
from chatbot.train import lr_factor, make_optimizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tutorial_reference as ref  # noqa: E402

PHASES = ("data", "forward", "backward", "optimizer")


@dataclass
class RunResult:
    name: str
    batch: str
    steps: int = 0
    target_tokens: int = 0
    epoch_s: float = 0.0
    cpu_s: float = 0.0
    train_loss: float = math.nan
    val_ppl: float = math.nan
    parameters: int = 0
    encoder_parameters: int = 0
    epochs: float = 0.0
    extra_val: dict[str, float] = field(default_factory=dict)
    phases_s: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))

    @property
    def tokens_per_s(self) -> float:
        return self.target_tokens / self.epoch_s if self.epoch_s else math.nan

    @property
    def tokens_per_cpu_s(self) -> float:
        return self.target_tokens / self.cpu_s if self.cpu_s else math.nan


class PhaseClock:
    """Adds wall and CPU time to named phases; synchronizes CUDA so each phase is its own.

    Time counts only between `resume` and the next `pause`, so runs that take
    turns step by step are each charged their own steps.
    """

    def __init__(self, result: RunResult, device: torch.device) -> None:
        self.result, self.device = result, device
        self.last = time.perf_counter()
        self.cpu_last = time.process_time()

    def resume(self) -> None:
        self.last = time.perf_counter()
        self.cpu_last = time.process_time()

    def pause(self) -> None:
        self.result.cpu_s += time.process_time() - self.cpu_last

    def lap(self, phase: str) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        now = time.perf_counter()
        self.result.phases_s[phase] += now - self.last
        self.result.epoch_s += now - self.last
        self.last = now


def timed(iterator: Iterator[Any], clock: PhaseClock) -> Iterator[Any]:
    """Yields from `iterator`, charging the time to make each item to `data`."""
    for item in iterator:
        clock.lap("data")
        yield item


def interleave(runs: Sequence[Iterator[None]]) -> None:
    """Advances each run one step in turn until all are done, so that changes in
    the machine's speed (it is shared) fall on every run alike.
    """
    pending = list(runs)
    while pending:
        pending = [run for run in pending if next(run, StopIteration) is not StopIteration]


# --- (a) the trainer path -------------------------------------------------------------------


def trainer_config(*, vocab_size: int, window_turns: int, batch_size: int, seed: int,
                   hidden_size: int = 500) -> Config:
    return Config().override([
        f"tokenizer.vocab_size={vocab_size}",
        "model.embedding_size=500",
        f"model.hidden_size={hidden_size}",
        f"model.context_size={hidden_size}",
        "model.num_layers=2",
        f"data.window_turns={window_turns}",
        f"train.batch_size={batch_size}",
        f"train.seed={seed}",
    ])


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def run_trainer(name: str, config: Config, *, train: Sequence[EncodedConversation],
                tokenizer: Tokenizer, device: torch.device, autocast: bool,
                budget_s: float | None = None) -> tuple[RunResult, HRED, Iterator[None]]:
    """One epoch (or `budget_s` of its own time) of `chatbot/train.py`'s per-step
    computation, a step per `next`."""
    tc = config.train
    batcher = WindowBatcher(train, window_turns=config.data.window_turns,
                            batch_size=tc.batch_size, pad_id=tokenizer.pad_id,
                            bos_id=tokenizer.bos_id, eos_id=tokenizer.eos_id)
    result = RunResult(name, f"{tc.batch_size} windows of <= {config.data.window_turns} turns")
    torch.manual_seed(tc.seed)
    random.seed(tc.seed)
    model = HRED(config.model, vocab_size=tokenizer.vocab_size, pad_id=tokenizer.pad_id)
    result.parameters, result.encoder_parameters = count(model), count(model.encoder.gru)
    model.to(device).train()
    optimizer = make_optimizer(model, tc)
    schedule = tc.max_epochs * batcher.steps_per_epoch()
    context: AbstractContextManager[Any] = (
        torch.autocast("cuda", dtype=torch.bfloat16) if autocast else nullcontext()
    )

    def steps() -> Iterator[None]:
        loss_sum = 0.0
        clock = PhaseClock(result, device)
        per_epoch = batcher.steps_per_epoch()
        epochs = itertools.count() if budget_s else iter([0])
        batches = iter(timed((b for e in epochs for b in batcher.batches(e, seed=tc.seed)), clock))
        for step in itertools.count():
            clock.resume()
            batch = next(batches, None)
            if batch is None or (budget_s and result.epoch_s >= budget_s):
                break
            batch = batch.to(device)
            lr = tc.lr * lr_factor(step, warmup=tc.warmup_steps, total=schedule,
                                   min_ratio=tc.min_lr_ratio)
            for group in optimizer.param_groups:
                group["lr"] = lr
            with context:
                loss = model(batch.utterances, batch.lengths, batch.turn_mask, batch.dec_in,
                             batch.dec_out, teacher_forcing=tc.teacher_forcing,
                             rng=random.Random(tc.seed * 7_919 + step * 31))
            clock.lap("forward")
            optimizer.zero_grad(set_to_none=True)
            loss.mean.backward()
            clock.lap("backward")
            torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip, foreach=True)
            optimizer.step()
            loss_sum += float(loss.total.detach())
            result.target_tokens += loss.tokens
            result.steps += 1
            clock.lap("optimizer")
            clock.pause()
            yield
        result.train_loss = loss_sum / max(result.target_tokens, 1)
        result.epochs = result.steps / max(per_epoch, 1)

    return result, model, steps()


# --- (b) the tutorial reference -------------------------------------------------------------


def run_reference(name: str, config: ref.ReferenceConfig, *, train: Sequence[ref.Pair],
                  tokenizer: Tokenizer, device: torch.device, seed: int,
                  budget_s: float | None = None
                  ) -> tuple[RunResult, ref.TutorialSeq2Seq, Iterator[None]]:
    """One epoch (or `budget_s` of its own time) of the tutorial's algorithm, a step
    per `next`."""
    result = RunResult(name, f"{config.batch_size} random pairs")
    torch.manual_seed(seed)
    rng = random.Random(seed)
    model = ref.TutorialSeq2Seq(config, vocab_size=tokenizer.vocab_size, bos_id=tokenizer.bos_id)
    result.parameters, result.encoder_parameters = count(model), count(model.encoder.gru)
    model.to(device).train()
    optimizers = model.optimizers()
    per_epoch = math.ceil(len(train) / config.batch_size)
    epochs = itertools.count() if budget_s else iter([0])
    batches = (b for e in epochs for b in ref.epoch_batches(
        train, batch_size=config.batch_size, seed=seed + e, pad_id=tokenizer.pad_id,
        eos_id=tokenizer.eos_id))

    def steps() -> Iterator[None]:
        loss_sum = 0.0
        clock = PhaseClock(result, device)
        timed_batches = iter(timed(batches, clock))
        while True:
            clock.resume()
            batch = next(timed_batches, None)
            if batch is None or (budget_s and result.epoch_s >= budget_s):
                break
            nll, tokens = ref.train_step(model, optimizers, batch.to(device), rng, lap=clock.lap)
            loss_sum += nll
            result.target_tokens += tokens
            result.steps += 1
            clock.pause()
            yield
        result.train_loss = loss_sum / max(result.target_tokens, 1)
        result.epochs = result.steps / per_epoch

    return result, model, steps()


# --- data, report, command line -------------------------------------------------------------


def pairs_of(conversations: Sequence[EncodedConversation]) -> list[ref.Pair]:
    """(utterance i, utterance i+1) of every conversation, the targets `WindowBatcher` makes."""
    return [(conv[i], conv[i + 1]) for conv in conversations for i in range(len(conv) - 1)]


def load_data(args: argparse.Namespace) -> tuple[list[Conversation], list[Conversation]]:
    """The training conversations (`--conversations`, 0 for all) and the held-out ones
    (`--valid-conversations` of `--eval-split`, 0 for all)."""
    split = split_conversations(load_corpus(args.corpus), seed=0)
    held = split.test if args.eval_split == "test" else split.valid
    return (split.train[: args.conversations or None],
            held[: args.valid_conversations or None])


def report(results: Sequence[RunResult], info: dict[str, Any]) -> str:
    header = (f"{'run':<28} {'batch':<26} {'params':>11} {'steps':>5} {'epochs':>6} "
              f"{'tgt tokens':>10} {'train s':>8} "
              f"{'tok/s':>8} {'cpu s':>7} {'train loss':>10} {'ppl':>8}   phases s "
              f"({'/'.join(PHASES)})")
    lines = [
        f"corpus {info['corpus']}: {info['train_conversations']} train conversations "
        f"({info['train_pairs']} pairs), {info['valid_conversations']} {info['eval_split']} "
        "conversations "
        f"({info['valid_pairs']} pairs, {info['valid_tokens']} target tokens); "
        f"vocab {info['vocab_size']}; device {info['device']}, {info['threads']} threads",
        header,
        "-" * len(header),
    ]
    for r in results:
        phases = "/".join(f"{r.phases_s[p]:.1f}" for p in PHASES)
        extra = "".join(f"  [{k} {v:.2f}]" for k, v in r.extra_val.items())
        params = f"{r.parameters / 1e6:.2f}M/{r.encoder_parameters / 1e6:.2f}M"
        lines.append(f"{r.name:<28} {r.batch:<26} {params:>11} {r.steps:>5} {r.epochs:>6.2f} "
                     f"{r.target_tokens:>10} "
                     f"{r.epoch_s:>8.1f} {r.tokens_per_s:>8.0f} {r.cpu_s:>7.1f} "
                     f"{r.train_loss:>10.3f} {r.val_ppl:>8.2f}   {phases}{extra}")
    base = results[-1]
    for r in results[:-1]:
        lines.append(f"{r.name} / {base.name}: tokens/s x{r.tokens_per_s / base.tokens_per_s:.2f}, "
                     f"tokens per CPU second x{r.tokens_per_cpu_s / base.tokens_per_cpu_s:.2f}, "
                     f"ppl {r.val_ppl:.2f} vs {base.val_ppl:.2f}")
    lines.append("params: all / encoder GRU; ppl: on the held-out pairs (each utterance given "
                 "the one before); [val_ppl_windows_k]: given up to k-1 earlier turns")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default="chitchat")
    parser.add_argument("--conversations", type=int, default=400,
                        help="training conversations (default 400)")
    parser.add_argument("--valid-conversations", type=int, default=40,
                        help="held-out conversations to measure on (0: all)")
    parser.add_argument("--eval-split", choices=("valid", "test"), default="valid")
    parser.add_argument("--hidden-size", type=int, default=500, help="(a)'s hidden size")
    parser.add_argument("--budget-minutes", type=float, default=None,
                        help="train each run this long (its own time) instead of one epoch")
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--max-tokens", type=int, default=32,
                        help="utterances are cut to this many tokens before <eos>")
    parser.add_argument("--batch-pairs", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--no-autocast", action="store_true",
                        help="(a) in float32 on CUDA too (train.py uses bf16 autocast there)")
    parser.add_argument("--skip", choices=("twoturn", "windows", "reference"), action="append",
                        default=[], help="leave out (a) with 2-turn or 8-turn windows, or (b)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 5 train and 2 valid conversations")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if args.quick:
        args.conversations, args.valid_conversations = 5, 2
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")
    autocast = device.type == "cuda" and not args.no_autocast

    train_convs, valid_convs = load_data(args)
    tokenizer = Tokenizer.train((t for c in train_convs for t in c.turns),
                                vocab_size=args.vocab_size)
    train = encode_conversations(train_convs, tokenizer, max_tokens=args.max_tokens)
    valid = encode_conversations(valid_convs, tokenizer, max_tokens=args.max_tokens)
    train_pairs, valid_pairs = pairs_of(train), pairs_of(valid)

    def valid_batcher(k: int, batch_size: int) -> WindowBatcher:
        return WindowBatcher(valid, window_turns=k, batch_size=batch_size,
                             pad_id=tokenizer.pad_id, bos_id=tokenizer.bos_id,
                             eos_id=tokenizer.eos_id)

    windows_batch = max(1, round(args.batch_pairs / 7))
    budget_s = args.budget_minutes * 60 if args.budget_minutes else None
    trainer_runs = []
    if "twoturn" not in args.skip:
        trainer_runs.append(("(a) trainer, 2-turn windows", 2, args.batch_pairs))
    if "windows" not in args.skip:
        trainer_runs.append(("(a) trainer, 8-turn windows", 8, windows_batch))
    reference = ref.ReferenceConfig(batch_size=args.batch_pairs)

    def configure(k: int, batch_size: int) -> Config:
        return trainer_config(vocab_size=args.vocab_size, window_turns=k,
                              batch_size=batch_size, seed=args.seed,
                              hidden_size=args.hidden_size)

    # Untimed: the first steps of a process pay one-off costs (allocator, kernels, caches).
    interleave([
        run_trainer("warm-up", configure(2, args.batch_pairs), train=train[:2],
                    tokenizer=tokenizer, device=device, autocast=autocast)[2],
        run_reference("warm-up", replace(reference, batch_size=16), train=train_pairs[:16],
                      tokenizer=tokenizer, device=device, seed=args.seed)[2],
    ])

    runs = []
    for name, k, batch_size in trainer_runs:
        runs.append((k, batch_size, *run_trainer(name, configure(k, batch_size), train=train,
                                                 tokenizer=tokenizer, device=device,
                                                 autocast=autocast, budget_s=budget_s)))
    ref_run = None
    if "reference" not in args.skip:
        ref_run = run_reference("(b) tutorial reference", reference, train=train_pairs,
                                tokenizer=tokenizer, device=device, seed=args.seed,
                                budget_s=budget_s)
    interleave([run[-1] for run in runs] + ([ref_run[2]] if ref_run else []))

    results = []
    for k, batch_size, result, model, _ in runs:
        result.val_ppl = window_perplexity(model, valid_batcher(2, args.batch_pairs),
                                           device=device)
        if k > 2:
            result.extra_val[f"val_ppl_windows_{k}"] = window_perplexity(
                model, valid_batcher(k, batch_size), device=device
            )
        results.append(result)
    if ref_run is not None:
        result, ref_model, _ = ref_run
        result.val_ppl = ref.perplexity(ref_model, [
            ref.make_batch(valid_pairs[i : i + reference.batch_size], pad_id=tokenizer.pad_id,
                           eos_id=tokenizer.eos_id)
            for i in range(0, len(valid_pairs), reference.batch_size)
        ], device)
        results.append(result)

    info = {
        "corpus": args.corpus,
        "train_conversations": len(train_convs),
        "valid_conversations": len(valid_convs),
        "eval_split": args.eval_split,
        "train_pairs": len(train_pairs),
        "train_target_tokens": sum(len(t) + 1 for _, t in train_pairs),
        "valid_pairs": len(valid_pairs),
        "valid_tokens": sum(len(t) + 1 for _, t in valid_pairs),
        "vocab_size": tokenizer.vocab_size,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "autocast_bf16_for_a": autocast,
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }
    mismatched = [r.name for r in results if r.target_tokens != info["train_target_tokens"]]
    if mismatched and not budget_s:
        print(f"warning: target tokens differ from the pairs' in {mismatched}", file=sys.stderr)
    print(report(results, info))
    if args.json:
        payload = {"info": info, "results": [
            {**asdict(r), "tokens_per_s": r.tokens_per_s, "tokens_per_cpu_s": r.tokens_per_cpu_s}
            for r in results
        ]}
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
