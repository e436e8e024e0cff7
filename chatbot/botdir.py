"""Bot directories: `intents/`, an optional `bot.yml`, and a model.

    mybot/
      bot.yml          # optional: name, model, policy, decode
      intents/*.yml    # the intents (see docs/intents.md)
      model/           # optional: a model directory (else `model:` in bot.yml, else the default)

`bot.yml`, version 1:

    version: 1
    name: mybot
    model: default      # "default" (packaged), a path relative to the bot, null: intents only
    policy: {intent_threshold: 0.6}
    decode: {strategy: beam, beam_size: 4}
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yaml.nodes import Node

from chatbot.actions import ACTIONS_FILE, declared_actions
from chatbot.config import DecodeConfig
from chatbot.errors import BotValidationError, ConfigError, LocatedError
from chatbot.intents.loading import PolicyValues, read_intents, read_policy, read_version
from chatbot.intents.nodes import Reader, read_file
from chatbot.intents.schema import IntentSet
from chatbot.paths import MANIFEST, packaged_model_dir, resolve_model_dir
from chatbot.replies.filter import ReplyFilter

BOT_FILE = "bot.yml"
INTENTS_DIR = "intents"
BOT_KEYS = ("version", "name", "description", "model", "policy", "decode", "reply_filter")
_BOTS = Path(__file__).parent / "bots"


def default_bot_dir() -> Path:
    """The packaged default bot (its intents ship inside the package)."""
    return _BOTS / "default"


def starter_bot_dir() -> Path:
    """The bot `chatbot init` copies."""
    return _BOTS / "starter"


@dataclass(frozen=True)
class BotDefinition:
    """A validated bot directory.

    Attributes:
        root: the bot directory.
        name: the bot's name (bot.yml `name`, else the folder's name).
        intents: the intents, fallback responses and policy.
        model: the model directory, or None for an intents-only bot.
        decode: `DecodeConfig` settings from bot.yml.
        reply_filter: what no reply may say (bot.yml `reply_filter:`, a YAML
            file of blocked words and patterns; default: the packaged list).
        actions_file: the bot's `actions.py`, if it has one (trusted code, run
            when the bot is loaded; `chatbot check` only parses it).
    """

    root: Path
    name: str
    intents: IntentSet
    model: Path | None
    decode: dict[str, Any] = field(default_factory=dict)
    reply_filter: ReplyFilter | None = None
    actions_file: Path | None = None


def load_bot(path: str | Path | None = None, *, check_model: bool = False) -> BotDefinition:
    """Reads a bot directory (default: the packaged bot).

    Raises:
        BotValidationError: listing every problem in bot.yml and the intent files.
    """
    problems: list[LocatedError] = []
    bot = read_bot(default_bot_dir() if path is None else path, problems, check_model=check_model)
    if problems:
        raise BotValidationError(problems)
    return bot


def check_bot(path: str | Path) -> list[LocatedError]:
    """Every problem in a bot directory, the model's presence included, and every
    action an intent names that its `actions.py` does not define (read with `ast`:
    no code runs); [] when clean."""
    problems: list[LocatedError] = []
    bot = read_bot(path, problems, check_model=True)
    declared: dict[str, tuple[int, int]] = {}
    if bot.actions_file is not None:
        declared, broken = declared_actions(bot.actions_file)
        problems += broken
    named = [(f"intent {i.name!r}", i.action, i.action_at or (str(bot.root), 0, 0))
             for i in bot.intents.intents if i.action is not None]
    where = ACTIONS_FILE if bot.actions_file is not None else f"no {ACTIONS_FILE}"
    fix = " does not define (decorate a function with @action)" if bot.actions_file else \
        " defines"
    for who, action, (file, line, col) in [*named, *bot.intents.action_refs]:
        if action not in declared:
            problems.append(LocatedError(
                file, line, col, f"{who} names action {action!r}, which {where}{fix}"))
    return problems


def read_bot(
    path: str | Path, problems: list[LocatedError], *, check_model: bool = False
) -> BotDefinition:
    """Like `load_bot`, but appends problems to `problems` instead of raising."""
    root = Path(path)
    bot_file = root / BOT_FILE
    if not root.is_dir():
        problems.append(LocatedError(root, 0, 0, "no such bot directory"))
    elif not (root / INTENTS_DIR).is_dir() and not bot_file.is_file():
        message = f"not a bot directory (no {INTENTS_DIR}/ or {BOT_FILE})"
        problems.append(LocatedError(root, 0, 0, message))
    settings = _BotFile(root)
    if bot_file.is_file():
        settings.read(bot_file, problems)
    intents = read_intents(root / INTENTS_DIR, problems, policy=settings.policy)
    model = settings.model_dir()
    if check_model and model is not None:
        _check_model(model, settings, problems)
    name = settings.name or root.resolve().name
    actions = root / ACTIONS_FILE
    return BotDefinition(root, name, intents, model, settings.decode, settings.reply_filter,
                         actions if actions.is_file() else None)


@dataclass
class _BotFile:
    """The settings of bot.yml, with the node of each for located messages."""

    root: Path
    name: str | None = None
    model: str | None = "auto"
    model_node: Node | None = None
    path: str = BOT_FILE
    policy: PolicyValues = field(default_factory=dict)
    decode: dict[str, Any] = field(default_factory=dict)
    reply_filter: ReplyFilter | None = None

    def read(self, file: Path, problems: list[LocatedError]) -> None:
        self.path = str(file)
        reader, entries = read_file(file, problems, what=BOT_FILE, keys=BOT_KEYS)
        if entries is None:
            return
        if "version" in entries:
            read_version(reader, entries["version"][1])
        if "name" in entries:
            self.name = reader.string(entries["name"][1], what="'name'")
        if "description" in entries:
            reader.string(entries["description"][1], what="'description'", empty=True)
        if "model" in entries:
            self.model_node = entries["model"][1]
            value = reader.value(self.model_node)
            if value is None or isinstance(value, str) and value.strip():
                self.model = value
            else:
                reader.error(self.model_node, "'model' must be a path, 'default' or null")
        if "policy" in entries:
            read_policy(reader, entries["policy"][1], self.policy)
        if "decode" in entries:
            self.decode = _read_decode(reader, entries["decode"][1])
        if "reply_filter" in entries:
            self.reply_filter = _read_filter(reader, entries["reply_filter"][1], self.root,
                                             problems)

    def model_dir(self) -> Path | None:
        """The model bot.yml names; without `model:`, `model/` if present, else the default."""
        if self.model is None:
            return None
        if self.model == "auto":
            local = self.root / "model"
            return resolve_model_dir(local) if local.is_dir() else packaged_model_dir()
        if self.model == "default":
            return packaged_model_dir()
        return resolve_model_dir(self.root / self.model)


def _read_decode(reader: Reader, node: Node) -> dict[str, Any]:
    names = [f.name for f in dataclasses.fields(DecodeConfig)]
    entries = reader.mapping(node, what="'decode'", keys=names) or {}
    settings = {key: reader.value(value) for key, (_, value) in entries.items() if key in names}
    try:
        DecodeConfig(**settings)
    except (ConfigError, TypeError, ValueError) as exc:
        reader.error(node, f"invalid decode settings: {exc}")
        return {}
    return settings


def _read_filter(
    reader: Reader, node: Node, root: Path, problems: list[LocatedError]
) -> ReplyFilter | None:
    name = reader.string(node, what="'reply_filter'")
    if name is None:
        return None
    path = root / name
    if not path.is_file():
        reader.error(node, f"reply filter {name!r} not found")
        return None
    try:
        return ReplyFilter.load(path)
    except LocatedError as exc:
        problems.append(exc)
        return None


def _check_model(model: Path, settings: _BotFile, problems: list[LocatedError]) -> None:
    """The model directory is there and loads: manifest hashes, config, tokenizer,
    weights' shapes and values (`load_model`), and its reply index and ranker. The
    packaged model is not loaded (it is verified whenever it loads, and checking a
    bot that uses it imports no torch)."""
    from chatbot.errors import CheckpointError

    if (model / MANIFEST).is_file():
        if model.resolve() == packaged_model_dir().resolve():
            return
        from chatbot.checkpoint import load_model

        try:
            _check_model_extras(load_model(model).path)
        except CheckpointError as exc:
            problems.append(LocatedError(exc.path, 0, 0, f"the model does not load: {exc.message}"))
        except ConfigError as exc:
            problems.append(LocatedError(model, 0, 0, f"the model does not load: {exc}"))
        return
    message = f"model directory {str(model)!r} not found (no {MANIFEST})"
    node = settings.model_node
    if node is None:
        problems.append(LocatedError(settings.root, 0, 0, message))
    else:
        mark = node.start_mark
        problems.append(LocatedError(settings.path, mark.line + 1, mark.column + 1, message))


def _check_model_extras(folder: Path) -> None:
    """Reads the model's reply index and ranker weights, where it has them."""
    from chatbot.replies.index import INDEX_FILE, ReplyIndex
    from chatbot.replies.rank import RANKER_FILE, RankerWeights

    if (folder / INDEX_FILE).is_file():
        ReplyIndex.load(folder / INDEX_FILE)
    if (folder / RANKER_FILE).is_file():
        RankerWeights.from_json((folder / RANKER_FILE).read_text(encoding="utf-8"),
                                str(folder / RANKER_FILE))


TEMPLATES = ("starter", "form")
"""What `chatbot init --template` can copy: intents and an example transcript, or a
small form bot (a form, an entity, an action in `actions.py`)."""


def scaffold(path: str | Path, *, template: str = "starter") -> list[Path]:
    """Creates a new bot directory from a template bot (`TEMPLATES`), named after
    the folder (`chatbot init coffee` makes the bot `coffee`), with an example
    transcript that passes; returns the files written.

    Raises:
        ConfigError: when `path` exists and is not an empty folder.
    """
    target = Path(path)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ConfigError(f"{target}: already exists and is not an empty folder")
    if template not in TEMPLATES:
        raise ConfigError(f"unknown template {template!r} (templates: {', '.join(TEMPLATES)})")
    starter = _BOTS / template
    written = []
    for source in sorted(starter.rglob("*")):
        if source.is_file() and (source.suffix in (".yml", ".yaml")
                                 or source.name == ACTIONS_FILE):
            destination = target / source.relative_to(starter)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, destination)
            written.append(destination)
    bot_file = target / BOT_FILE
    name = target.resolve().name
    text = bot_file.read_text(encoding="utf-8")
    bot_file.write_text(text.replace("\nname: mybot\n", f"\nname: {json.dumps(name)}\n"),
                        encoding="utf-8")
    return written
