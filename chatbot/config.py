"""Typed configuration: dataclasses, named presets, `key=value` overrides.

    cfg = Config.preset("tiny").override(["model.hidden_size=64", "train.lr=3e-3"])
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from chatbot.errors import ConfigError

Attention = Literal["dot", "general", "concat"]
_Section = TypeVar("_Section")


@dataclass(frozen=True)
class ModelConfig:
    """Shapes of the HRED network."""

    embedding_size: int = 256
    hidden_size: int = 384
    num_layers: int = 1
    context_size: int = 384
    attention: Attention = "general"
    dropout: float = 0.1
    ranker_size: int = 0

    def validate(self) -> None:
        _positive(self, "embedding_size", "hidden_size", "num_layers", "context_size")
        if self.ranker_size < 0:
            raise ConfigError(f"model.ranker_size must be >= 0 (got {self.ranker_size})")
        if self.hidden_size % 2:
            raise ConfigError(f"model.hidden_size must be even (got {self.hidden_size})")
        if self.attention not in ("dot", "general", "concat"):
            raise ConfigError(
                f"model.attention must be one of dot, general, concat (got {self.attention!r})"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout must be in [0, 1) (got {self.dropout})")


@dataclass(frozen=True)
class TokenizerConfig:
    """The byte-level BPE tokenizer trained on the corpus."""

    vocab_size: int = 4000
    min_frequency: int = 2

    def validate(self) -> None:
        if self.vocab_size < 300:
            raise ConfigError(f"tokenizer.vocab_size must be at least 300 (got {self.vocab_size})")
        _positive(self, "min_frequency")


@dataclass(frozen=True)
class DataConfig:
    """Which corpus, how it is split, and how conversations become batches."""

    source: str = "chitchat"
    split_seed: int = 0
    valid_fraction: float = 0.05
    test_fraction: float = 0.05
    window_turns: int = 8
    max_utterance_tokens: int = 32
    max_conversations: int = 0

    def validate(self) -> None:
        if not self.source:
            raise ConfigError("data.source must name a corpus")
        for name in ("valid_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value < 0.5:
                raise ConfigError(f"data.{name} must be in [0, 0.5) (got {value})")
        if self.window_turns < 2:
            raise ConfigError(f"data.window_turns must be at least 2 (got {self.window_turns})")
        _positive(self, "max_utterance_tokens")
        if self.max_conversations < 0:
            raise ConfigError("data.max_conversations must be >= 0 (0 means all)")


@dataclass(frozen=True)
class TrainConfig:
    """The optimisation recipe."""

    batch_size: int = 64
    max_epochs: int = 6
    max_steps: int = 0
    lr: float = 2e-3
    min_lr_ratio: float = 0.05
    warmup_steps: int = 100
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    teacher_forcing: float = 1.0
    eval_interval: int = 200
    log_interval: int = 20
    checkpoint_interval: int = 100
    keep_checkpoints: int = 2
    patience: int = 5
    seed: int = 0
    threads: int = 0
    save_dtype: Literal["float32", "float16"] = "float32"
    rank_weight: float = 0.0
    rank_negatives: int = 0

    def validate(self) -> None:
        _positive(self, "batch_size", "max_epochs", "eval_interval", "log_interval")
        _positive(self, "checkpoint_interval", "keep_checkpoints", "patience")
        if self.lr <= 0:
            raise ConfigError(f"train.lr must be positive (got {self.lr})")
        if not 0.0 <= self.teacher_forcing <= 1.0:
            raise ConfigError(
                f"train.teacher_forcing must be in [0, 1] (got {self.teacher_forcing})"
            )
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ConfigError(f"train.min_lr_ratio must be in [0, 1] (got {self.min_lr_ratio})")
        for name in ("max_steps", "warmup_steps", "threads", "weight_decay", "rank_weight",
                     "rank_negatives"):
            if getattr(self, name) < 0:
                raise ConfigError(f"train.{name} must be >= 0 (got {getattr(self, name)})")
        if self.grad_clip <= 0:
            raise ConfigError(f"train.grad_clip must be positive (got {self.grad_clip})")
        if self.save_dtype not in ("float32", "float16"):
            raise ConfigError(
                f"train.save_dtype must be float32 or float16 (got {self.save_dtype!r})"
            )


@dataclass(frozen=True)
class Config:
    """Everything `chatbot train` needs."""

    model: ModelConfig = field(default_factory=ModelConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @classmethod
    def preset(cls, name: str) -> Config:
        """Returns a named preset: `tiny` (seconds, for tests) or `default` (the shipped model)."""
        try:
            overrides = PRESETS[name]
        except KeyError:
            raise ConfigError(
                f"unknown preset {name!r}; presets: {', '.join(sorted(PRESETS))}"
            ) from None
        return cls().override(overrides)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, origin: str = "config") -> Config:
        """Builds a config from nested mappings, e.g. a parsed YAML file.

        A top-level `preset:` key starts from that preset.
        """
        if not isinstance(data, dict):
            raise ConfigError(f"{origin}: expected a mapping at the top level")
        data = dict(data)
        try:
            base = cls.preset(str(data.pop("preset"))) if "preset" in data else cls()
            return base._apply(_flatten(data, origin=origin), origin=origin)
        except ConfigError as exc:
            if str(exc).startswith(f"{origin}: "):
                raise
            raise ConfigError(f"{origin}: {exc}") from None

    @classmethod
    def load(cls, preset_or_file: str) -> Config:
        """A preset name, or a YAML file of (nested) keys."""
        if preset_or_file in PRESETS:
            return cls.preset(preset_or_file)
        path = Path(preset_or_file)
        if not path.exists():
            raise ConfigError(
                f"{preset_or_file!r} is neither a preset ({', '.join(sorted(PRESETS))}) nor a file"
            )
        from chatbot import yamlio

        return cls.from_dict(yamlio.load(path), origin=str(path))

    def override(self, assignments: list[str] | tuple[str, ...]) -> Config:
        """Applies `section.key=value` strings; the values are parsed by the field type."""
        values: dict[str, Any] = {}
        for item in assignments:
            key, sep, raw = item.partition("=")
            if not sep:
                raise ConfigError(f"expected key=value, got {item!r}")
            values[key.strip()] = raw.strip()
        return self._apply(values, origin="override")

    def _apply(self, values: dict[str, Any], *, origin: str) -> Config:
        sections = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        changes: dict[str, dict[str, Any]] = {name: {} for name in sections}
        valid = valid_keys()
        for key, raw in values.items():
            section, _, name = key.partition(".")
            if key not in valid:
                hint = difflib.get_close_matches(key, valid, n=1)
                suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise ConfigError(
                    f"{origin}: unknown key {key!r}{suggestion}; valid keys: {', '.join(valid)}"
                )
            ftype = _field_types(type(sections[section]))[name]
            changes[section][name] = _coerce(key, raw, ftype)
        new = {
            name: dataclasses.replace(obj, **changes[name]) if changes[name] else obj
            for name, obj in sections.items()
        }
        config = Config(**new)
        config.validate()
        return config

    def validate(self) -> None:
        self.model.validate()
        self.tokenizer.validate()
        self.data.validate()
        self.train.validate()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PRESETS: dict[str, list[str]] = {
    "tiny": [
        "tokenizer.vocab_size=300",
        "tokenizer.min_frequency=1",
        "model.embedding_size=32",
        "model.hidden_size=48",
        "model.context_size=48",
        "model.dropout=0.0",
        "data.window_turns=4",
        "data.max_utterance_tokens=24",
        "train.batch_size=8",
        "train.max_epochs=2",
        "train.lr=3e-3",
        "train.warmup_steps=0",
        "train.eval_interval=20",
        "train.log_interval=5",
        "train.checkpoint_interval=20",
        "train.patience=3",
    ],
    "default": ["train.save_dtype=float16"],
    # Stage two of the shipped model's recipe, run with `--init` on stage one's
    # model: one epoch over 32-turn windows teaches the conversation state the
    # long histories a session accumulates (8-turn windows never show them).
    "default-ft": [
        "train.save_dtype=float16",
        "data.window_turns=32",
        "train.batch_size=16",
        "train.max_epochs=1",
        "train.lr=5e-4",
        "train.warmup_steps=20",
        "train.eval_interval=50",
        "train.checkpoint_interval=50",
        "train.log_interval=10",
    ],
    # The default model on the everyday corpus, run with `--init` on the chitchat
    # model (`--init default`): the generator and its ranking head learn the
    # persona's voice and the everyday topics, keeping what chitchat taught.
    "everyday": [
        "train.save_dtype=float16",
        "model.ranker_size=256",
        "data.source=everyday",
        "data.window_turns=16",
        "data.max_utterance_tokens=48",
        "train.batch_size=16",
        "train.max_epochs=4",
        "train.lr=5e-4",
        "train.warmup_steps=20",
        "train.eval_interval=100",
        "train.checkpoint_interval=50",
        "train.log_interval=10",
        "train.patience=4",
        "train.rank_weight=1.0",
        "train.rank_negatives=2",
    ],
    # Stage three, run with `--init` on stage two's model and `--index`: the
    # ranking head learns, together with the generator, to tell the true next
    # turn from in-batch replies and from replies retrieved for the same context.
    "default-rank": [
        "train.save_dtype=float16",
        "model.ranker_size=256",
        "data.window_turns=32",
        "train.batch_size=16",
        "train.max_epochs=2",
        "train.lr=5e-4",
        "train.warmup_steps=20",
        "train.eval_interval=100",
        "train.checkpoint_interval=50",
        "train.log_interval=10",
        "train.rank_weight=1.0",
        "train.rank_negatives=2",
    ],
}


def valid_keys() -> list[str]:
    """Every `section.key` name an override may set."""
    keys = []
    for section in dataclasses.fields(Config):
        section_type = _field_types(Config)[section.name]
        for name in _field_types(section_type):
            keys.append(f"{section.name}.{name}")
    return keys


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(key: str, raw: Any, ftype: Any) -> Any:
    origin = typing.get_origin(ftype)
    if origin is Literal:
        allowed = typing.get_args(ftype)
        if raw not in allowed:
            raise ConfigError(f"{key} must be one of {', '.join(map(str, allowed))} (got {raw!r})")
        return raw
    if origin in (types.UnionType, typing.Union):
        ftype = next(t for t in typing.get_args(ftype) if t is not type(None))
    try:
        if ftype is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).lower()
            if text in ("true", "1", "yes", "on"):
                return True
            if text in ("false", "0", "no", "off"):
                return False
            raise ValueError(raw)
        if ftype is int:
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError(raw)
            return int(str(raw).replace("_", "")) if isinstance(raw, str) else int(raw)
        if ftype is float:
            if isinstance(raw, bool) or not math.isfinite(value := float(raw)):
                raise ValueError(raw)
            return value
        if ftype is str:
            if not isinstance(raw, str | int | float):
                raise ValueError(raw)
            return str(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} expects {_type_name(ftype)}, got {raw!r}") from None
    raise ConfigError(f"{key}: unsupported type {ftype}")


_TYPE_NAMES = {int: "an integer", float: "a finite number", str: "a string", bool: "a boolean"}


def _type_name(ftype: Any) -> str:
    return _TYPE_NAMES.get(ftype, str(ftype))


def _flatten(data: dict[str, Any], *, origin: str, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, origin=origin, prefix=f"{name}."))
        else:
            flat[name] = value
    return flat


def _positive(obj: object, *names: str) -> None:
    section = type(obj).__name__.removesuffix("Config").lower()
    for name in names:
        value = getattr(obj, name)
        if value <= 0:
            raise ConfigError(f"{section}.{name} must be positive (got {value})")


def from_json_dict(data: dict[str, Any], cls: type[_Section]) -> _Section:
    """Rebuilds one config section from its `asdict` form, rejecting unknown keys."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} keys: {', '.join(sorted(unknown))}")
    return cls(**data)


# Decoding -----------------------------------------------------------------------

Strategy = Literal["greedy", "beam", "sample"]
RankerKind = Literal["model", "mmi", "none"]
MAX_BEAM_SIZE = 64
MAX_LENGTH = 512
MAX_RETRIEVE = 200


@dataclass(frozen=True)
class DecodeConfig:
    """How replies are searched. Invalid values raise `ConfigError` on construction.

    Attributes:
        strategy: `greedy`, `beam` or `sample`.
        beam_size: beams per reply (`beam` only).
        length_penalty: hypotheses score log-prob / length ** length_penalty (beam ranks by it).
        min_length: `<eos>` is suppressed until this many reply tokens exist.
        max_length: the most reply tokens; a reply that reaches it stops without `<eos>`.
        no_repeat_ngram: no n-gram of this size occurs twice in a reply (0 = off).
        block_user_ngrams: no n-gram of this size is copied from the user's utterance (0 = off).
        temperature: `sample` divides logits by it; 0 means argmax.
        top_k: `sample` keeps the k likeliest tokens (0 = all).
        top_p: `sample` keeps the smallest set of tokens holding this much probability.
        repetition_penalty: logits of tokens already in the reply are divided by it
            (multiplied when negative), CTRL-style; 1 = off. Applies to every strategy.
        n_best: hypotheses returned per reply (`beam`; at most `beam_size`).
        ranker: how the reply is chosen among the candidates: `model` (the model's
            fitted ranker, `ranker.json`; a model without one generates as `none`),
            `mmi` (log p(reply | conversation) - mmi_lambda * log p(reply), per
            token), or `none` (pure generation: the search's best hypothesis).
        retrieve: human replies retrieved from the model's reply index as
            candidates beside the generated ones (0 = none; `none` retrieves none).
        mmi_lambda: the weight of log p(reply) for `mmi`.
    """

    strategy: Strategy = "greedy"
    beam_size: int = 5
    length_penalty: float = 1.0
    min_length: int = 1
    max_length: int = 32
    no_repeat_ngram: int = 3
    block_user_ngrams: int = 0
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    n_best: int = 1
    ranker: RankerKind = "model"
    retrieve: int = 20
    mmi_lambda: float = 0.5

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raises `ConfigError` naming the first invalid setting."""
        hints = typing.get_type_hints(DecodeConfig)
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            expected = hints[f.name]
            if expected is int and (isinstance(value, bool) or not isinstance(value, int)):
                raise ConfigError(f"decode.{f.name} must be an integer (got {value!r})")
            if expected is float and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise ConfigError(f"decode.{f.name} must be a number (got {value!r})")
            if expected is float and not math.isfinite(value):
                raise ConfigError(f"decode.{f.name} must be finite (got {value!r})")
        if self.strategy not in typing.get_args(Strategy):
            raise ConfigError(
                f"decode.strategy must be one of greedy, beam, sample (got {self.strategy!r})"
            )
        if self.ranker not in typing.get_args(RankerKind):
            raise ConfigError(
                f"decode.ranker must be one of model, mmi, none (got {self.ranker!r})"
            )
        rules = [
            ("beam_size", 1 <= self.beam_size <= MAX_BEAM_SIZE, f"in [1, {MAX_BEAM_SIZE}]"),
            ("max_length", 1 <= self.max_length <= MAX_LENGTH, f"in [1, {MAX_LENGTH}]"),
            (
                "min_length",
                0 <= self.min_length <= self.max_length,
                f"in [0, max_length={self.max_length}]",
            ),
            ("no_repeat_ngram", self.no_repeat_ngram >= 0, ">= 0 (0 = off)"),
            ("block_user_ngrams", self.block_user_ngrams >= 0, ">= 0 (0 = off)"),
            ("temperature", self.temperature >= 0, ">= 0 (0 = argmax)"),
            ("top_k", self.top_k >= 0, ">= 0 (0 = off)"),
            ("top_p", 0 < self.top_p <= 1, "in (0, 1]"),
            ("repetition_penalty", self.repetition_penalty > 0, "positive (1 = off)"),
            ("n_best", 1 <= self.n_best <= self.beam_size, f"in [1, beam_size={self.beam_size}]"),
            ("retrieve", 0 <= self.retrieve <= MAX_RETRIEVE, f"in [0, {MAX_RETRIEVE}]"),
            ("mmi_lambda", 0 <= self.mmi_lambda <= 1, "in [0, 1]"),
        ]
        for name, ok, expected in rules:
            if not ok:
                raise ConfigError(f"decode.{name} must be {expected} (got {getattr(self, name)!r})")

    def replace(self, **changes: Any) -> DecodeConfig:
        """A validated copy with `changes`; string values (`temperature="0.7"`) are parsed."""
        hints = typing.get_type_hints(DecodeConfig)
        parsed = {}
        for name, raw in changes.items():
            if name not in hints:
                hint = difflib.get_close_matches(name, list(hints), n=1)
                suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise ConfigError(
                    f"unknown decode setting {name!r}{suggestion}; settings: {', '.join(hints)}"
                )
            parsed[name] = _parse(name, raw, hints[name])
        return dataclasses.replace(self, **parsed)


def _parse(name: str, raw: Any, kind: Any) -> Any:
    """A decode setting given as text (`/set temperature=0.7`), parsed as config
    overrides are; other values are left for `DecodeConfig.validate`."""
    return _coerce(f"decode.{name}", raw.strip(), kind) if isinstance(raw, str) else raw
