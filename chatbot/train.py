"""The training loop, written out in one place.

Single process or DistributedDataParallel under `torchrun` (gloo on CPU, nccl on
GPU); only rank 0 writes files. The run folder holds `model/` (the best model
so far), `checkpoints/step-NNNNNNNN/` and `metrics.jsonl`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from chatbot import checkpoint, fsutil
from chatbot.config import Config, ModelConfig, TrainConfig
from chatbot.data import (
    Conversation,
    WindowBatcher,
    encode_conversations,
    load_corpus,
    split_for,
)
from chatbot.errors import TrainingError
from chatbot.evaluate import window_objective, window_perplexity
from chatbot.model import HRED
from chatbot.replies.index import INDEX_FILE, ReplyIndex
from chatbot.replies.negatives import retrieved_negatives
from chatbot.text import Tokenizer

LogFn = Callable[[dict[str, Any]], None]
_INIT_KEYS = ("corpus", "steps", "epochs", "val_ppl", "target_tokens", "elapsed_s")


@dataclass(frozen=True)
class TrainResult:
    steps: int
    epochs: float
    best_val_ppl: float
    final_val_ppl: float
    target_tokens: int
    elapsed_s: float
    stopped_early: bool
    model_dir: Path
    model: HRED = field(repr=False, compare=False)


@dataclass
class _Progress:
    """Everything the loop needs to continue exactly where it stopped."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    target_tokens: int = 0
    elapsed_s: float = 0.0
    best_val_ppl: float = math.inf
    best_objective: float = math.inf
    val_ppl: float = math.nan
    bad_evals: int = 0

    def to_json(self) -> dict[str, Any]:
        """Plain JSON: the not-yet-measured perplexities (inf, nan) become null."""
        return {k: (v if not isinstance(v, float) or math.isfinite(v) else None)
                for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> _Progress:
        progress = cls(**{k: v for k, v in data.items() if v is not None})
        return progress


def make_optimizer(model: torch.nn.Module, tc: TrainConfig) -> torch.optim.Adam:
    """Adam over all of `model`'s parameters, with the fused kernel (one pass over
    each parameter per step, several times faster than the per-tensor loop on CPU).
    """
    return torch.optim.Adam(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay, fused=True)


def lr_factor(step: int, *, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warmup, then cosine decay to `min_ratio` at `total` steps."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    span = max(total - warmup, 1)
    progress = min(max(step - warmup, 0) / span, 1.0)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def train(
    config: Config,
    *,
    out_dir: str | Path,
    conversations: Sequence[Conversation] | None = None,
    max_steps: int | None = None,
    resume: bool = False,
    on_log: LogFn | None = None,
    init_from: str | Path | None = None,
) -> TrainResult:
    """Trains a model from `config` and writes the run folder `out_dir`.

    Args:
        conversations: the corpus; loaded from `config.data.source` when None.
        max_steps: stop after this many optimizer steps in total; unlike
            `train.max_steps` it leaves the LR schedule alone, so the run can be
            resumed past it with the same result as an uninterrupted run.
        resume: continue from the newest verified checkpoint in `out_dir`.
        init_from: a model directory whose weights and tokenizer start this run
            (fine-tuning); its model config must equal `config.model`.
        on_log: called on rank 0 with each metrics record as it is written.
    """
    out = Path(out_dir)
    rank, world = _dist_info()
    tc = config.train
    if tc.threads:
        torch.set_num_threads(tc.threads)
    device = torch.device(f"cuda:{_local_rank()}" if torch.cuda.is_available() else "cpu")
    _seed_everything(tc.seed + rank)

    corpus = list(conversations) if conversations is not None else load_corpus(config.data.source)
    split = split_for(corpus, config.data)
    if not split.train:
        raise TrainingError("the training split is empty")
    start = checkpoint.latest_checkpoint(out / "checkpoints") if resume else None
    if resume and start is None:
        raise TrainingError(f"{out / 'checkpoints'}: no verified checkpoint to resume from")
    base = checkpoint.load_model(checkpoint.resolve_model_dir(init_from)) if init_from else None
    if base is not None and not _same_network(base.config.model, config.model):
        raise TrainingError(
            f"{base.path}: its model config {base.config.model} differs from {config.model}"
        )
    if base is not None and start is None:
        tokenizer = base.tokenizer
        if rank == 0:
            out.mkdir(parents=True, exist_ok=True)
            fsutil.write_text(out / "tokenizer.json", tokenizer.to_json())
    else:
        tokenizer = _tokenizer(config, split.train, out, start, rank, world)

    ranking = bool(config.model.ranker_size and tc.rank_weight)
    index = ReplyIndex.build(split.train) if ranking else None

    def batcher(convs: Sequence[Conversation], *, hard: bool = False) -> WindowBatcher:
        encoded = encode_conversations(
            convs, tokenizer, max_tokens=config.data.max_utterance_tokens
        )
        negatives = None
        if hard and index is not None and tc.rank_negatives:
            negatives = _encode_negatives(
                retrieved_negatives(index, convs, count=tc.rank_negatives, seed=tc.seed),
                tokenizer, config.data.max_utterance_tokens,
            )
        return WindowBatcher(
            encoded,
            window_turns=config.data.window_turns,
            batch_size=tc.batch_size,
            pad_id=tokenizer.pad_id,
            bos_id=tokenizer.bos_id,
            eos_id=tokenizer.eos_id,
            negatives=negatives,
        )

    train_batches = batcher(split.train, hard=True)
    valid_batches = batcher(split.valid or split.train[:1])
    steps_per_epoch = train_batches.steps_per_epoch(world)
    if steps_per_epoch == 0:
        raise TrainingError(
            f"{len(train_batches.windows)} training windows make no full batch across {world} "
            "process(es); use more data or a smaller train.batch_size"
        )
    schedule_steps = tc.max_epochs * steps_per_epoch
    if tc.max_steps:
        schedule_steps = min(schedule_steps, tc.max_steps)
    # `max_steps` interrupts a run without changing its recipe, so a run stopped
    # at N steps and resumed reaches exactly the weights of an uninterrupted one.
    total_steps = min(schedule_steps, max_steps) if max_steps else schedule_steps

    model = HRED(config.model, vocab_size=tokenizer.vocab_size, pad_id=tokenizer.pad_id).to(device)
    optimizer = make_optimizer(model, tc)
    if base is not None:
        # A ranking head that the base model lacks starts from its initialisation.
        missing, _ = model.load_state_dict(base.model.state_dict(), strict=False)
        if any(not name.startswith("ranker.") for name in missing):
            raise TrainingError(f"{base.path}: weights missing for {missing[:5]}")
    progress = _Progress()
    if start is not None:
        state = checkpoint.load_checkpoint(start, model, optimizer)
        progress = _Progress.from_json(state["progress"])
    engine: torch.nn.Module = model
    if world > 1:
        engine = torch.nn.parallel.DistributedDataParallel(model)

    def set_lr(step: int) -> None:
        factor = lr_factor(
            step, warmup=tc.warmup_steps, total=schedule_steps, min_ratio=tc.min_lr_ratio
        )
        for group in optimizer.param_groups:
            group["lr"] = tc.lr * factor

    def log(record: dict[str, Any]) -> None:
        if rank != 0:
            return
        fsutil.append_line(out / "metrics.jsonl", json.dumps(record, allow_nan=True))
        if on_log:
            on_log(record)

    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        log({"event": "start", "config": config.to_dict(), "steps_per_epoch": steps_per_epoch,
             "total_steps": total_steps, "resumed_from": start.name if start else None,
             "train_conversations": len(split.train), "valid_conversations": len(split.valid),
             "padding_fraction": round(train_batches.stats().padding_fraction, 4),
             "world_size": world, "device": str(device)})

    def save_best() -> None:
        if rank == 0:
            info = _provenance(config, progress, split_sizes=(split.train, split.valid, split.test))
            info["epochs"] = round(progress.step / steps_per_epoch, 4)
            if base is not None:
                info["init_from"] = {k: base.info.get(k) for k in _INIT_KEYS}
                info["init_from"]["config"] = base.config.to_dict()
            extra = {INDEX_FILE: index.to_bytes()} if index is not None else None
            checkpoint.save_model(out / "model", model, config=config, tokenizer=tokenizer,
                                  info=info, dtype=tc.save_dtype, extra=extra)

    def save_checkpoint() -> None:
        if rank == 0:
            checkpoint.save_checkpoint(
                out / "checkpoints", step=progress.step, model=model, optimizer=optimizer,
                config=config, tokenizer=tokenizer, state={"progress": progress.to_json()},
                keep=tc.keep_checkpoints,
            )

    def evaluate() -> bool:
        """Validation perplexity; True when patience has run out. With a ranking
        loss, the best model is the one with the best validation objective."""
        if ranking:
            progress.val_ppl, val_rank = window_objective(model, valid_batches, device=device)
            objective = math.log(progress.val_ppl) + tc.rank_weight * val_rank
            log({"event": "eval", "step": progress.step, "val_ppl": progress.val_ppl,
                 "val_rank_loss": val_rank, "val_objective": objective})
        else:
            progress.val_ppl = window_perplexity(model, valid_batches, device=device)
            objective = progress.val_ppl
        if objective < progress.best_objective:
            progress.best_objective = objective
            progress.best_val_ppl = progress.val_ppl
            progress.bad_evals = 0
            save_best()
        else:
            progress.bad_evals += 1
        return progress.bad_evals >= tc.patience

    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    )
    clock = time.monotonic()
    base_elapsed = progress.elapsed_s
    window_loss, window_tokens, window_start = 0.0, 0, time.monotonic()
    window_rank, window_batches = 0.0, 0
    stopped_early = False
    engine.train()
    while progress.step < total_steps and progress.epoch < tc.max_epochs and not stopped_early:
        batches = train_batches.batches(
            progress.epoch, seed=tc.seed, rank=rank, world_size=world, start=progress.batch_in_epoch
        )
        for batch in batches:
            batch = batch.to(device)
            set_lr(progress.step)
            with autocast:
                loss = engine(
                    batch.utterances, batch.lengths, batch.turn_mask, batch.dec_in, batch.dec_out,
                    teacher_forcing=tc.teacher_forcing,
                    rng=random.Random(tc.seed * 7_919 + progress.step * 31 + rank),
                    rank=ranking, negatives=batch.negatives,
                )
            objective = loss.mean
            if loss.rank is not None:
                objective = objective + tc.rank_weight * loss.rank
                window_rank += float(loss.rank.detach())
                window_batches += 1
            optimizer.zero_grad(set_to_none=True)
            objective.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip, foreach=True)
            optimizer.step()
            tokens = _sum_across_ranks(loss.tokens, world, device)
            progress.step += 1
            progress.batch_in_epoch += 1
            progress.target_tokens += tokens
            window_loss += float(loss.total.detach())
            window_tokens += loss.tokens
            progress.elapsed_s = base_elapsed + time.monotonic() - clock
            if progress.step % tc.eval_interval == 0:
                stopped_early = evaluate()
            if progress.step % tc.log_interval == 0 or stopped_early:
                now = time.monotonic()
                log(_record(progress, steps_per_epoch, window_loss / max(window_tokens, 1),
                            optimizer.param_groups[0]["lr"],
                            window_tokens * world / max(now - window_start, 1e-9), total_steps,
                            rank_loss=window_rank / window_batches if window_batches else None))
                window_loss, window_tokens, window_start = 0.0, 0, now
                window_rank, window_batches = 0.0, 0
            if progress.step % tc.checkpoint_interval == 0:
                save_checkpoint()
            if stopped_early or progress.step >= total_steps:
                break
        else:
            progress.epoch += 1
            progress.batch_in_epoch = 0

    if progress.step % tc.checkpoint_interval != 0:
        save_checkpoint()
    if not math.isfinite(progress.val_ppl) or progress.step % tc.eval_interval != 0:
        stopped_early = evaluate() or stopped_early
    if not (out / "model").exists():
        save_best()
    result = TrainResult(
        steps=progress.step,
        epochs=progress.step / steps_per_epoch,
        best_val_ppl=progress.best_val_ppl,
        final_val_ppl=progress.val_ppl,
        target_tokens=progress.target_tokens,
        elapsed_s=progress.elapsed_s,
        stopped_early=stopped_early,
        model_dir=out / "model",
        model=model,
    )
    summary = _record(progress, steps_per_epoch, math.nan, optimizer.param_groups[0]["lr"], 0.0,
                      total_steps)
    summary.update(event="summary", best_val_ppl=progress.best_val_ppl, stopped_early=stopped_early)
    log(summary)
    return result


def _record(
    progress: _Progress, steps_per_epoch: int, loss: float, lr: float, tokens_per_s: float,
    total_steps: int, *, rank_loss: float | None = None,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "event": "log",
        "step": progress.step,
        "epoch": round(progress.step / steps_per_epoch, 4),
        "loss": round(loss, 5) if math.isfinite(loss) else None,
        "ppl": round(math.exp(min(loss, 50.0)), 3) if math.isfinite(loss) else None,
        "val_ppl": round(progress.val_ppl, 4) if math.isfinite(progress.val_ppl) else None,
        "target_tokens": progress.target_tokens,
        "elapsed_s": round(progress.elapsed_s, 2),
        "lr": lr,
        "tokens_per_s": round(tokens_per_s, 1),
        "total_steps": total_steps,
    }
    if rank_loss is not None:
        record["rank_loss"] = round(rank_loss, 5)
    return record


def _same_network(base: ModelConfig, config: ModelConfig) -> bool:
    """Whether `config` is `base`, perhaps with a ranking head added."""
    return dataclasses.replace(config, ranker_size=base.ranker_size) == base


def _encode_negatives(
    negatives: list[list[list[str]]], tokenizer: Tokenizer, max_tokens: int
) -> list[list[list[list[int]]]]:
    flat = [reply for conv in negatives for turn in conv for reply in turn]
    ids = iter(tokenizer.encode_batch(flat)) if flat else iter(())
    return [[[next(ids)[:max_tokens] for _ in turn] for turn in conv] for conv in negatives]


def _provenance(
    config: Config, progress: _Progress, *, split_sizes: tuple[Sequence[Any], ...]
) -> dict[str, Any]:
    train, valid, test = split_sizes
    return {
        "corpus": config.data.source,
        "split_seed": config.data.split_seed,
        "conversations": {"train": len(train), "valid": len(valid), "test": len(test)},
        "steps": progress.step,
        "val_ppl": progress.val_ppl,
        "target_tokens": progress.target_tokens,
        "elapsed_s": round(progress.elapsed_s, 1),
        "seed": config.train.seed,
        "libraries": checkpoint.library_versions(),
        "trained_on": _hardware(),
    }


def _hardware() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"cpu x{os.cpu_count()} ({torch.get_num_threads()} threads)"


def _tokenizer(
    config: Config,
    train: Sequence[Conversation],
    out: Path,
    start: Path | None,
    rank: int,
    world: int,
) -> Tokenizer:
    if start is not None:
        return Tokenizer.load(start / "tokenizer.json")
    path = out / "tokenizer.json"
    if rank == 0:
        tokenizer = Tokenizer.train(
            (turn for conv in train for turn in conv.turns),
            vocab_size=config.tokenizer.vocab_size,
            min_frequency=config.tokenizer.min_frequency,
        )
        out.mkdir(parents=True, exist_ok=True)
        fsutil.write_text(path, tokenizer.to_json())
    if world > 1:
        dist.barrier()
    return Tokenizer.load(path)


def _dist_info() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def _sum_across_ranks(value: int, world: int, device: torch.device) -> int:
    if world == 1:
        return value
    tensor = torch.tensor([value], dtype=torch.long, device=device)
    dist.all_reduce(tensor)
    return int(tensor.item())


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
