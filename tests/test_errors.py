"""The exception tree and how located errors print."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatbot import errors
from chatbot.errors import (
    ChatbotError,
    ConfigError,
    CorpusFormatError,
    DataError,
    EmptyCorpusError,
    FormatError,
    LocatedError,
    YamlError,
)


def test_located_error_prints_file_line_col() -> None:
    error = LocatedError(Path("intents/greet.yml"), 12, 5, "unknown key 'respones'")
    assert str(error) == "intents/greet.yml:12:5: unknown key 'respones'"
    assert (error.path, error.line, error.col, error.message) == (
        "intents/greet.yml", 12, 5, "unknown key 'respones'"
    )
    assert error.args == ("intents/greet.yml:12:5: unknown key 'respones'",)


def test_line_zero_means_the_whole_file() -> None:
    assert str(YamlError("big.yml", 0, 0, "file is too large")) == "big.yml: file is too large"


def test_corpus_format_error_is_data_and_located() -> None:
    error = CorpusFormatError("d.jsonl", 3, 7, "invalid JSON")
    assert str(error) == "d.jsonl:3:7: invalid JSON"
    assert isinstance(error, DataError) and isinstance(error, LocatedError)


def test_checkpoint_errors_name_the_file() -> None:
    error = FormatError(Path("model/tokenizer.json"), "not a tokenizer file")
    assert str(error) == "model/tokenizer.json: not a tokenizer file"
    assert error.path == "model/tokenizer.json"


@pytest.mark.parametrize(
    "cls", [ConfigError, YamlError, DataError, CorpusFormatError, EmptyCorpusError]
)
def test_value_errors(cls: type[Exception]) -> None:
    assert issubclass(cls, ChatbotError) and issubclass(cls, ValueError)


def test_every_error_is_a_chatbot_error() -> None:
    classes = [v for v in vars(errors).values() if isinstance(v, type) and issubclass(v, Exception)]
    assert {ChatbotError, ConfigError, YamlError, DataError, FormatError} <= set(classes)
    assert all(issubclass(cls, ChatbotError) for cls in classes)
