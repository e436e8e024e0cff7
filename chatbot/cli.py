"""The `chatbot` command. Exit codes: 0 ok, 1 a check failed, 2 bad usage or input."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from chatbot.errors import ChatbotError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        result: int = args.run(args)
        return result
    except ChatbotError as exc:
        print(f"chatbot: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("chatbot: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatbot", description=__doc__)
    commands = parser.add_subparsers(dest="command")

    train = commands.add_parser("train", help="train a model")
    train.add_argument("--config", default="default", help="preset name or YAML file")
    train.add_argument("--data", help="corpus: chitchat, chatterbot, cornell:PATH, jsonl:PATH, "
                       "transcripts:DIR (default: the config's data.source)")
    train.add_argument("--out", required=True, help="run folder (model/, checkpoints/, metrics)")
    train.add_argument("--max-steps", type=int, help="stop after this many steps in total")
    train.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    train.set_defaults(run=_train)

    evaluate = commands.add_parser("eval", help="perplexity with and without carried state")
    evaluate.add_argument("model", help="model directory, run folder, or 'default'")
    evaluate.add_argument("--data", help="corpus source (default: the model's training corpus)")
    evaluate.add_argument("--split", default="test", choices=["test", "valid", "train", "all"])
    evaluate.add_argument("--max-conversations", type=int, default=0)
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.set_defaults(run=_eval)
    return parser


def _train(args: argparse.Namespace) -> int:
    from chatbot.config import Config
    from chatbot.train import train

    config = Config.load(args.config)
    overrides = list(args.overrides)
    if args.data:
        overrides.append(f"data.source={args.data}")
    config = config.override(overrides)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        _init_distributed()
    rank = int(os.environ.get("RANK", "0"))
    show = rank == 0 and not args.quiet
    with _TrainDisplay(enabled=show) as display:
        result = train(
            config,
            out_dir=args.out,
            max_steps=args.max_steps,
            resume=args.resume,
            on_log=display.update,
        )
    if rank == 0:
        print(
            f"trained {result.steps} steps ({result.epochs:.2f} epochs) in {result.elapsed_s:.0f}s; "
            f"best validation perplexity {result.best_val_ppl:.3f}; model in {result.model_dir}"
        )
    if world > 1:
        import torch.distributed as dist

        dist.destroy_process_group()
    return EXIT_OK


def _init_distributed() -> None:
    import torch
    import torch.distributed as dist

    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend=backend)


class _TrainDisplay:
    """A rich progress bar fed by the trainer's metrics records."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self.progress: Any = None
        self.task: Any = None

    def __enter__(self) -> _TrainDisplay:
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(
                TextColumn("[bold]train"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[stats]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
            )
            self.progress.start()
        return self

    def update(self, record: dict[str, Any]) -> None:
        if self.progress is None:
            return
        if record.get("event") == "start":
            self.task = self.progress.add_task("train", total=record["total_steps"], stats="",
                                               completed=0)
            return
        if self.task is None or record.get("event") != "log":
            return
        stats = (
            f"loss {record['loss']} ppl {record['ppl']} val {record['val_ppl']} "
            f"{record['tokens_per_s']:.0f} tok/s"
        )
        self.progress.update(self.task, completed=record["step"], stats=stats)

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()


def _eval(args: argparse.Namespace) -> int:
    from chatbot.checkpoint import load_model, resolve_model_dir
    from chatbot.data import encode_conversations, load_corpus, split_conversations
    from chatbot.evaluate import perplexity

    loaded = load_model(resolve_model_dir(args.model))
    data = loaded.config.data
    source = args.data or data.source
    split = split_conversations(
        load_corpus(source),
        seed=data.split_seed,
        valid_fraction=data.valid_fraction,
        test_fraction=data.test_fraction,
    )
    conversations = split.get(args.split)
    if args.max_conversations:
        conversations = conversations[: args.max_conversations]
    encoded = encode_conversations(
        conversations, loaded.tokenizer, max_tokens=data.max_utterance_tokens
    )
    result = perplexity(
        loaded.model, encoded, bos_id=loaded.tokenizer.bos_id, eos_id=loaded.tokenizer.eos_id
    )
    report = {
        "model": str(loaded.path),
        "data": source,
        "split": args.split,
        "conversations": result.conversations,
        "target_tokens": result.target_tokens,
        "ppl_with_state": round(result.ppl_with_state, 4),
        "ppl_without_state": round(result.ppl_without_state, 4),
        "state_gain": round(result.state_gain, 4),
    }
    if args.json:
        print(json.dumps(report))
    else:
        width = max(len(k) for k in report)
        for key, value in report.items():
            print(f"{key:<{width}}  {value}")
    return EXIT_OK
