"""chatbot: a GRU seq2seq chatbot with a carried conversation state, intents on top."""

from __future__ import annotations

__version__ = "0.1.0"

from chatbot.config import Config, DataConfig, ModelConfig, TokenizerConfig, TrainConfig
from chatbot.errors import (
    ChatbotError,
    CheckpointError,
    ConfigError,
    DataError,
    YamlError,
)

__all__ = [
    "ChatbotError",
    "CheckpointError",
    "Config",
    "ConfigError",
    "DataConfig",
    "DataError",
    "ModelConfig",
    "TokenizerConfig",
    "TrainConfig",
    "YamlError",
    "__version__",
]
