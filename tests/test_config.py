"""Typed configs: presets, `key=value` overrides, YAML files, and their errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from chatbot.config import Config, TrainConfig, from_json_dict, valid_keys
from chatbot.errors import ConfigError

SPEC_KEYS = [
    "model.hidden_size",
    "model.embedding_size",
    "model.num_layers",
    "model.attention",
    "model.dropout",
    "tokenizer.vocab_size",
    "train.batch_size",
    "train.max_epochs",
    "train.lr",
    "train.seed",
]


def test_spec_keys_exist() -> None:
    assert set(SPEC_KEYS) <= set(valid_keys())


@pytest.mark.parametrize("name", ["tiny", "default"])
def test_presets_exist_and_validate(name: str) -> None:
    config = Config.preset(name)
    config.validate()
    assert Config.load(name) == config


def test_preset_values() -> None:
    tiny = Config.preset("tiny")
    assert (tiny.model.hidden_size, tiny.model.embedding_size, tiny.tokenizer.vocab_size) == (
        48,
        32,
        300,
    )
    assert (tiny.train.batch_size, tiny.train.lr, tiny.data.window_turns) == (8, 3e-3, 4)
    default = Config.preset("default")
    assert default.model == Config().model
    assert default.train.save_dtype == "float16"


def test_unknown_preset() -> None:
    expected = r"^unknown preset 'huge'; presets: default, default-ft, default-rank, everyday, tiny$"
    with pytest.raises(ConfigError, match=expected):
        Config.preset("huge")


def test_override_parses_each_field_type() -> None:
    base = Config.preset("tiny")
    config = base.override(
        [
            "model.hidden_size=64",
            "train.lr=3e-4",
            "model.attention=dot",
            "data.source=jsonl:x",
            " train.seed = 7 ",
            "train.max_steps=1_000",
        ]
    )
    assert config.model.hidden_size == 64
    assert isinstance(config.model.hidden_size, int)
    assert config.train.lr == 3e-4
    assert isinstance(config.train.lr, float)
    assert config.model.attention == "dot"
    assert config.data.source == "jsonl:x"
    assert config.train.seed == 7
    assert config.train.max_steps == 1000
    assert base.model.hidden_size == 48, "override returns a new config"
    assert dataclasses.replace(config.model, hidden_size=48, attention="general") == base.model


def test_unknown_key_suggests_and_lists_valid_keys() -> None:
    with pytest.raises(ConfigError) as info:
        Config().override(["model.hiden_size=64"])
    message = str(info.value)
    assert message.startswith(
        "override: unknown key 'model.hiden_size' (did you mean 'model.hidden_size'?); valid keys: "
    )
    assert message.endswith(", ".join(valid_keys()))
    for key in SPEC_KEYS:
        assert key in message


def test_unknown_key_without_close_match() -> None:
    with pytest.raises(ConfigError, match=r"^override: unknown key 'zzz'; valid keys: model\."):
        Config().override(["zzz=1"])


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("model.hidden_size=abc", "model.hidden_size expects an integer, got 'abc'"),
        ("model.hidden_size=64.5", "model.hidden_size expects an integer, got '64.5'"),
        ("model.hidden_size=63", "model.hidden_size must be even (got 63)"),
        ("model.hidden_size=0", "model.hidden_size must be positive (got 0)"),
        ("model.attention=foo", "model.attention must be one of dot, general, concat (got 'foo')"),
        ("model.dropout=1.5", "model.dropout must be in [0, 1) (got 1.5)"),
        ("model.dropout=x", "model.dropout expects a finite number, got 'x'"),
        ("train.lr=-1", "train.lr must be positive (got -1.0)"),
        ("train.lr=0", "train.lr must be positive (got 0.0)"),
        ("train.lr=nan", "train.lr expects a finite number, got 'nan'"),
        ("train.lr=inf", "train.lr expects a finite number, got 'inf'"),
        ("train.weight_decay=-0.1", "train.weight_decay must be >= 0 (got -0.1)"),
        ("train.save_dtype=int8", "train.save_dtype must be one of float32, float16 (got 'int8')"),
        ("tokenizer.vocab_size=299", "tokenizer.vocab_size must be at least 300 (got 299)"),
        ("data.valid_fraction=0.5", "data.valid_fraction must be in [0, 0.5) (got 0.5)"),
        ("data.window_turns=1", "data.window_turns must be at least 2 (got 1)"),
        ("model.hidden_size", "expected key=value, got 'model.hidden_size'"),
    ],
)
def test_bad_value_message(assignment: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        Config.preset("tiny").override([assignment])
    assert str(info.value) == message


def test_load_yaml_file_with_preset_and_nested_keys(tmp_path: Path) -> None:
    path = tmp_path / "run.yml"
    path.write_text(
        "preset: tiny\n"
        "model:\n"
        "  hidden_size: 64\n"
        "  attention: concat\n"
        "  dropout: 0\n"
        "train:\n"
        "  lr: 1e-3\n"
        "  seed: 3\n"
        "data:\n"
        "  source: jsonl:dialogues.jsonl\n",
        encoding="utf-8",
    )
    config = Config.load(str(path))
    expected = Config.preset("tiny").override(
        [
            "model.hidden_size=64",
            "model.attention=concat",
            "model.dropout=0",
            "train.lr=1e-3",
            "train.seed=3",
            "data.source=jsonl:dialogues.jsonl",
        ]
    )
    assert config == expected
    assert config.model.dropout == 0.0
    assert isinstance(config.model.dropout, float)
    assert config.train.batch_size == 8, "unset keys come from the preset"


def test_load_yaml_without_preset_starts_from_defaults(tmp_path: Path) -> None:
    path = tmp_path / "run.yml"
    path.write_text("train:\n  batch_size: 16\n", encoding="utf-8")
    assert Config.load(str(path)) == Config().override(["train.batch_size=16"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "model:\n  hiden_size: 64\n",
            "{path}: unknown key 'model.hiden_size' (did you mean 'model.hidden_size'?); "
            "valid keys: ",
        ),
        ("model:\n  hidden_size: null\n", "{path}: model.hidden_size expects an integer, got None"),
        ("model:\n  dropout: [1]\n", "{path}: model.dropout expects a finite number, got [1]"),
        (
            "preset: tiny\nmodel:\n  dropout: 2\n",
            "{path}: model.dropout must be in [0, 1) (got 2.0)",
        ),
        (
            "preset: huge\n",
            "{path}: unknown preset 'huge'; presets: default, default-ft, default-rank, everyday, tiny",
        ),
        ("- 1\n", "{path}: expected a mapping at the top level"),
    ],
)
def test_load_yaml_errors_name_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        Config.load(str(path))
    assert str(info.value).startswith(message.format(path=path))


def test_load_neither_preset_nor_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yml"
    with pytest.raises(ConfigError) as info:
        Config.load(str(missing))
    presets = "default, default-ft, default-rank, everyday, tiny"
    assert str(info.value) == f"{str(missing)!r} is neither a preset ({presets}) nor a file"


def test_to_dict_round_trips_through_from_json_dict() -> None:
    config = Config.preset("tiny")
    data = config.to_dict()
    assert data["train"]["lr"] == 3e-3
    assert from_json_dict(data["train"], TrainConfig) == config.train
    with pytest.raises(ConfigError, match=r"^unknown TrainConfig keys: bogus$"):
        from_json_dict({**data["train"], "bogus": 1}, TrainConfig)
