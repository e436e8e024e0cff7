"""The `chatbot` command. Exit codes: 0 ok, 1 a check failed, 2 bad usage or input."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from typing import Any

from chatbot.errors import ChatbotError, ConfigError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    if args.command in ("chat", "replay", "check"):
        # Serving decodes small batches: OpenMP threads that spin-wait stall them
        # badly whenever another process holds a core (seen: 34 ms -> 2 s).
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
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
    _add_chat_command(commands)
    _add_serve_command(commands)

    train = commands.add_parser("train", help="train a model")
    train.add_argument("--config", default="default", help="preset name or YAML file")
    train.add_argument("--data", help="corpus: everyday, chitchat, chatterbot, cornell:PATH, "
                       "jsonl:PATH, transcripts:DIR, or A+B for both (default: the config's "
                       "data.source)")
    train.add_argument("--out", required=True, help="run folder (model/, checkpoints/, metrics)")
    train.add_argument("--max-steps", type=int, help="stop after this many steps in total")
    train.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    train.add_argument("--init", metavar="MODEL", help="start from this model's weights and "
                       "tokenizer (fine-tuning); 'default' is the packaged model")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    train.set_defaults(run=_train)

    evaluate = commands.add_parser("eval", help="perplexity with and without carried state")
    evaluate.add_argument("model", help="model directory, run folder, or 'default'")
    evaluate.add_argument("--data", help="corpus source (default: the model's training corpus)")
    evaluate.add_argument("--split", default="test", choices=["test", "valid", "train", "all"])
    evaluate.add_argument("--max-conversations", type=int, default=0)
    evaluate.add_argument("--replies", type=int, default=0, metavar="N",
                          help="also answer N held-out user turns by pure generation and by "
                          "the selector: hits@1/20, hits@1 among retrieved, F1, distinct-1/2, "
                          "generic rate, mean length")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.set_defaults(run=_eval)

    index = commands.add_parser("index", help="build a model's reply index and fit its ranker")
    index.add_argument("model", help="model directory or run folder (rewritten in place)")
    index.add_argument("--data", help="build the index from this corpus's training split "
                       "(default: keep the model's index, else its training corpus)")
    index.add_argument("--bot-side", action="store_true", help="index only the second "
                       "speaker's turns (the bot's, in a corpus where the user speaks first)")
    index.add_argument("--persona", action="store_true", help="leave out replies that claim "
                       "a human life (a job, family, body, hometown; chatbot/replies/persona.py)")
    index.add_argument("--fit", type=int, default=0, metavar="N",
                       help="fit the ranker's weights to pick the true next turn of N "
                       "validation turns (listwise); see docs/replies.md for when not to")
    index.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                       help="set ranker weights: match, log_p, pmi, similarity, generated, "
                       "consensus, mmi_lambda")
    index.add_argument("--note", help="how the weights were chosen (kept in ranker.json)")
    index.add_argument("--gate-input", action="store_true", help="let the gate weigh the "
                       "user's utterance's log p too (costs a decoder pass per reply)")
    index.add_argument("--gate", metavar="FILE", help="fit the confidence gate to judged "
                       "replies (JSON lines: turns, reply, acceptable)")
    index.set_defaults(run=_index)
    _add_bot_commands(commands)
    _add_replay_command(commands)
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
            init_from=args.init,
        )
    if rank == 0:
        print(
            f"trained {result.steps} steps ({result.epochs:.2f} epochs) "
            f"in {result.elapsed_s:.0f}s; "
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
    from chatbot.data import encode_conversations, load_corpus, split_for
    from chatbot.evaluate import perplexity

    loaded = load_model(resolve_model_dir(args.model))
    data = loaded.config.data
    source = args.data or data.source
    split = split_for(load_corpus(source), data)
    conversations = split.get(args.split)
    if args.max_conversations:
        conversations = conversations[: args.max_conversations]
    encoded = encode_conversations(
        conversations, loaded.tokenizer, max_tokens=data.max_utterance_tokens
    )
    result = perplexity(
        loaded.model, encoded, bos_id=loaded.tokenizer.bos_id, eos_id=loaded.tokenizer.eos_id
    )
    report: dict[str, Any] = {
        "model": str(loaded.path),
        "data": source,
        "split": args.split,
        "conversations": result.conversations,
        "target_tokens": result.target_tokens,
        "ppl_with_state": round(result.ppl_with_state, 4),
        "ppl_without_state": round(result.ppl_without_state, 4),
        "state_gain": round(result.state_gain, 4),
    }
    if args.replies:
        from chatbot.generator import Generator
        from chatbot.replies.evaluation import evaluate_replies

        generator = Generator.from_loaded(loaded)
        report.update(evaluate_replies(generator, conversations, limit=args.replies))
    if args.json:
        print(json.dumps(report))
    else:
        _print_report(report)
    return EXIT_OK


def _set_weights(weights: Any, pairs: list[str], note: str | None) -> Any:
    import dataclasses

    names = ("match", "log_p", "pmi", "similarity", "generated", "consensus", "unsupported",
             "mmi_lambda")
    changes: dict[str, float] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or name not in names:
            raise ConfigError(f"--set takes KEY=VALUE with KEY one of {', '.join(names)}: {pair!r}")
        try:
            changes[name] = float(raw)
        except ValueError:
            raise ConfigError(f"--set {name}: {raw!r} is not a number") from None
        if not math.isfinite(changes[name]):
            raise ConfigError(f"--set {name}: {raw!r} is not finite")
    fitted = note or "set by hand: " + ", ".join(f"{k}={v:g}" for k, v in changes.items())
    return dataclasses.replace(weights, **changes, fitted_on=fitted)


def _print_report(report: dict[str, Any], indent: str = "") -> None:
    width = max(len(k) for k in report)
    for key, value in report.items():
        if isinstance(value, dict):
            print(f"{indent}{key}")
            _print_report(value, indent + "  ")
        else:
            print(f"{indent}{key:<{width}}  {value}")


def _index(args: argparse.Namespace) -> int:
    from chatbot.checkpoint import add_files, load_model, resolve_model_dir
    from chatbot.data import load_corpus, split_for
    from chatbot.generator import Generator
    from chatbot.replies.fit import fit_gate, fit_ranker, read_judged
    from chatbot.replies.index import INDEX_FILE, ReplyIndex
    from chatbot.replies.persona import human_claim
    from chatbot.replies.rank import RANKER_FILE, RankerWeights

    path = resolve_model_dir(args.model)
    loaded = load_model(path)
    data = loaded.config.data
    source = args.data or data.source
    generator = Generator.from_loaded(loaded)
    split = split_for(load_corpus(source), data)
    files: dict[str, bytes] = {}
    if args.data or generator.index is None or args.bot_side or args.persona:
        keep = (lambda reply: human_claim(reply) is None) if args.persona else None
        generator.index = ReplyIndex.build(split.train, keep=keep, bot_side=args.bot_side)
        files[INDEX_FILE] = generator.index.to_bytes()
        print(f"index: {len(generator.index)} replies of {len(split.train)} conversations")
    weights = generator.weights
    if args.set:
        weights = _set_weights(weights or RankerWeights(), args.set, args.note)
    if args.fit:
        weights = fit_ranker(generator, split.valid, limit=args.fit, base=weights)
        print(f"ranker: match {weights.match:.4f}, log_p {weights.log_p:.4f}, "
              f"pmi {weights.pmi:.4f} ({weights.fitted_on})")
    if args.gate:
        generator.weights = weights
        rows, labels = read_judged(generator, args.gate)
        assert weights is not None
        weights = fit_gate(weights, rows, labels, use_input=args.gate_input)
        print(f"gate: fitted on {len(rows)} judged replies, {sum(labels)} acceptable")
    if weights is not None and (args.set or args.fit or args.gate):
        files[RANKER_FILE] = weights.to_json().encode("utf-8")
    add_files(path, files)
    print(f"{path}: wrote {', '.join(sorted(files)) or 'nothing'}")
    return EXIT_OK


def _add_bot_commands(commands: Any) -> None:
    check = commands.add_parser("check", help="validate a bot directory's intents and bot.yml")
    check.add_argument("bot", nargs="?", default=".", help="bot directory (default: .)")
    check.set_defaults(run=_check)

    init = commands.add_parser("init", help="create a new bot directory")
    init.add_argument("bot", help="the folder to create (must not exist, or be empty)")
    init.add_argument("--template", choices=["starter", "form"], default="starter",
                      help="starter: intents and a transcript; form: a small coffee-order "
                           "form bot with an entity and a Python action; either is named "
                           "after the folder (docs/forms.md)")
    init.set_defaults(run=_init)


def _check(args: argparse.Namespace) -> int:
    from chatbot.botdir import check_bot

    problems = check_bot(args.bot)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem{'s' * (len(problems) != 1)} in {args.bot}", file=sys.stderr)
        return EXIT_USAGE
    print(f"{args.bot}: ok")
    return EXIT_OK


def _init(args: argparse.Namespace) -> int:
    from chatbot.botdir import scaffold

    for path in scaffold(args.bot, template=args.template):
        print(f"created {path}")
    print(f"check it with: chatbot check {args.bot}")
    return EXIT_OK


def _add_replay_command(commands: Any) -> None:
    replay = commands.add_parser("replay", help="replay transcripts as regression tests")
    replay.add_argument("paths", nargs="*", help="transcript files or folders "
                        "(default: the bot's transcripts/)")
    replay.add_argument("--bot", help="bot directory for every transcript (default: the folder "
                        "holding each file's transcripts/, else ., else the packaged bot)")
    replay.add_argument("--fail-fast", action="store_true", help="stop at the first failure")
    replay.add_argument("--json", action="store_true", help="print the results as JSON")
    replay.add_argument("--junit", metavar="FILE", help="also write JUnit XML to FILE")
    replay.add_argument("--update", action="store_true",
                        help="rewrite failing 'text' expectations from the actual replies")
    replay.set_defaults(run=_replay)


def _replay(args: argparse.Namespace) -> int:
    from chatbot import fsutil
    from chatbot.repl import log_to_file
    from chatbot.transcripts import replay_paths, to_json, to_junit

    log_to_file()  # a failing action's traceback goes to chatbot.log, not the report
    outcome = replay_paths(args.paths, bot=args.bot, fail_fast=args.fail_fast,
                           update=args.update)
    if args.junit:
        fsutil.write_text(args.junit, to_junit(outcome.report))
    if args.json:
        print(to_json(outcome.report))
    elif not sys.stdout.isatty():
        from chatbot.transcripts.report import display_path, format_plain

        updated = [f"  {display_path(u.path)}:{u.line}: {u.old!r} -> {u.new!r}"
                   for u in outcome.updates]
        print(format_plain(outcome.report, updated=updated))
    else:
        from rich.console import Console

        from chatbot.replay_report import print_replay

        print_replay(outcome.report, console=Console(highlight=False), updates=outcome.updates)
    return EXIT_OK if outcome.report.ok else EXIT_FAILED


def _add_chat_command(commands: Any) -> None:
    chat = commands.add_parser(
        "chat", help="talk to a bot (the packaged default bot unless BOT_DIR is given)",
        description="Talk to a bot. At a terminal: a REPL (/help lists its commands); "
        "otherwise each input line gets one reply line.",
    )
    chat.add_argument("bot", nargs="?", metavar="BOT_DIR", help="bot directory "
                      "(default: the current folder if it is one, else the packaged "
                      "default bot)")
    chat.add_argument("--session", metavar="NAME", help="resume the saved session NAME "
                      "(or start one by that name)")
    chat.add_argument("--decode", choices=["greedy", "beam", "sample"], help="search strategy")
    chat.add_argument("--beam", type=int, metavar="N", help="beam size (implies --decode beam)")
    chat.add_argument("--temperature", type=float, metavar="T",
                      help="sampling temperature (implies --decode sample; 0 = argmax)")
    chat.add_argument("--seed", type=int, help="seed the random generators")
    chat.add_argument("--record", metavar="FILE", help="record a new conversation as a "
                      "replayable transcript")
    chat.add_argument("--json", action="store_true",
                      help="line mode, one JSON object per reply (text, source, intent, "
                      "confidence)")
    chat.add_argument("--history", metavar="FILE",
                      help="prompt history file (default: $XDG_DATA_HOME/chatbot/history)")
    chat.add_argument("--store", metavar="FILE", help="SQLite session store "
                      "(default: $XDG_DATA_HOME/chatbot/sessions.sqlite3)")
    chat.set_defaults(run=_chat)


def _add_serve_command(commands: Any) -> None:
    serve = commands.add_parser(
        "serve", help="serve a bot over HTTP (needs the serve extra)",
        description="Serve a bot over HTTP: a JSON API (docs/http.md) and a web chat page "
        "at /. Needs: pip install -e '.[serve]'.",
    )
    serve.add_argument("bot", nargs="?", metavar="BOT_DIR", help="bot directory "
                       "(default: the current folder if it is one, else the packaged "
                       "default bot)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: "
                       "127.0.0.1, this machine only)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="worker processes over one "
                       "session store (default 1)")
    serve.add_argument("--store", metavar="FILE", help="SQLite session store "
                       "(default: $XDG_DATA_HOME/chatbot/sessions.sqlite3)")
    serve.add_argument("--token", help="bearer token every route but /healthz and / needs "
                       "(default: $CHATBOT_TOKEN; none when unset; visible to other users "
                       "in the process list: prefer --token-file)")
    serve.add_argument("--token-file", metavar="FILE", help="read the bearer token from FILE "
                       "(its first line)")
    serve.add_argument("--no-token", action="store_true", help="serve without a token even "
                       "when --host is not a loopback address (by default one is made up "
                       "and printed then)")
    serve.add_argument("--batch-window-ms", type=float, default=5.0, metavar="MS",
                       help="how long the first turn of a batch waits for others (default 5)")
    serve.add_argument("--max-batch", type=int, default=64, help="largest batch (default 64)")
    serve.add_argument("--cors", action="append", default=[], metavar="ORIGIN",
                       help="allow browser calls from ORIGIN (repeatable; default: none)")
    serve.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                       help="a name the Host header may give besides this machine's "
                       "loopback names and --host (repeatable; '*': any)")
    serve.add_argument("--no-warm", action="store_true", help="do not encode the index's "
                       "replies for the ranker at start-up (saves ~100 MB; slower replies)")
    serve.add_argument("--log-level", default="info",
                       choices=["critical", "error", "warning", "info", "debug"])
    serve.set_defaults(run=_serve)


def _serve(args: argparse.Namespace) -> int:
    import dataclasses
    from pathlib import Path

    try:
        import uvicorn

        from chatbot.serve.app import LOOPBACK_HOSTS, OPTIONS_ENV, TOKEN_ENV, ServeOptions
    except ImportError as exc:
        raise ConfigError(f"chatbot serve needs the serve extra ({exc.name} is missing): "
                          "pip install -e '.[serve]'") from None
    from chatbot.botdir import load_bot

    if args.workers < 1 or args.max_batch < 1 or args.batch_window_ms < 0:
        raise ConfigError("--workers and --max-batch must be >= 1, --batch-window-ms >= 0")
    args.bot = _bot_or_here(args.bot)
    definition = load_bot(args.bot)  # a bad bot directory fails here, before any worker starts
    if definition.model is not None:
        from chatbot.checkpoint import load_model

        load_model(definition.model)  # and a damaged model: no worker crash loop
    options = ServeOptions(
        bot=str(Path(args.bot).resolve()) if args.bot else None,
        store=str(Path(args.store).resolve()) if args.store else None,
        token=args.token or _token_file(args.token_file) or os.environ.get(TOKEN_ENV)
        or _token_beyond_loopback(args.host, args.no_token),
        window_ms=args.batch_window_ms,
        max_batch=args.max_batch,
        cors=tuple(args.cors),
        warm=not args.no_warm,
        allowed_hosts=tuple(dict.fromkeys([*LOOPBACK_HOSTS, *_bound_names(args.host),
                                           *args.allowed_host])),
    )
    os.environ[OPTIONS_ENV] = json.dumps(dataclasses.asdict(options))
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from chatbot.serve.protocol import DeadlineProtocol

    uvicorn.run("chatbot.serve.app:create_app_from_env", factory=True, host=args.host,
                port=args.port, workers=args.workers, log_level=args.log_level,
                http=DeadlineProtocol, timeout_keep_alive=5)
    return EXIT_OK


def _token_beyond_loopback(host: str, refused: bool) -> str | None:
    """A fresh token, printed, when the server is reachable from other machines and
    no token was given (as Jupyter does); None on loopback or with --no-token."""
    import ipaddress
    import secrets

    name = host.strip("[]").lower()
    try:
        loopback = ipaddress.ip_address(name).is_loopback
    except ValueError:
        loopback = name == "localhost"
    if loopback or refused:
        return None
    token = secrets.token_urlsafe(24)
    print(f"chatbot serve: --host {host} is reachable from other machines, so every "
          f"route but /healthz and / needs a token:\n  Authorization: Bearer {token}\n"
          "(set your own with --token-file, or serve without one with --no-token)",
          file=sys.stderr)
    return token


def _token_file(path: str | None) -> str | None:
    from pathlib import Path

    if path is None:
        return None
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the token: {exc}") from None
    if not lines or not lines[0].strip():
        raise ConfigError(f"{path}: the token file is empty")
    return lines[0].strip()


def _bot_or_here(bot: str | None) -> str | None:
    """The rule of every command that takes a bot: the one named, else the current
    folder when it is a bot directory (it has `intents/` or `bot.yml`), else None
    (the packaged default bot)."""
    from pathlib import Path

    here = Path.cwd()
    if bot is None and ((here / "intents").is_dir() or (here / "bot.yml").is_file()):
        return "."
    return bot


def _bound_names(host: str) -> list[str]:
    """The address `chatbot serve` binds, as a Host name a request may give
    (none for a wildcard address: each name must then be allowed)."""
    return [] if host in ("0.0.0.0", "::", "") else [host.strip("[]").lower()]


def _chat(args: argparse.Namespace) -> int:
    from pathlib import Path

    from chatbot.repl import ChatOptions, chat

    implied = "beam" if args.beam else "sample" if args.temperature is not None else None
    changes = {"strategy": args.decode or implied, "beam_size": args.beam,
               "temperature": args.temperature}
    options = ChatOptions(
        bot=_bot_or_here(args.bot),
        session=args.session,
        decode={key: value for key, value in changes.items() if value is not None},
        seed=args.seed,
        record=Path(args.record) if args.record else None,
        json=args.json,
        history=Path(args.history) if args.history else None,
        store=Path(args.store) if args.store else None,
    )
    return chat(options)
