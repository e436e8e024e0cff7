"""chatbot: a GRU seq2seq chatbot with a carried conversation state, intents on top."""

from __future__ import annotations

__version__ = "0.1.0"

from chatbot.actions import ActionResult, TurnView, action
from chatbot.bot import Chatbot
from chatbot.config import (
    Config,
    DataConfig,
    DecodeConfig,
    ModelConfig,
    TokenizerConfig,
    TrainConfig,
)
from chatbot.dialogue import DialogueManager, Reply, Trace
from chatbot.errors import (
    BotMismatchError,
    BotValidationError,
    ChatbotError,
    CheckpointError,
    ConfigError,
    DataError,
    SessionError,
    YamlError,
)
from chatbot.intents import IntentMatcher
from chatbot.session import MemoryStore, Session, SessionStore, SQLiteStore

__all__ = [
    "ActionResult",
    "BotMismatchError",
    "BotValidationError",
    "Chatbot",
    "ChatbotError",
    "CheckpointError",
    "Config",
    "ConfigError",
    "DataConfig",
    "DataError",
    "DecodeConfig",
    "DialogueManager",
    "IntentMatcher",
    "MemoryStore",
    "ModelConfig",
    "Reply",
    "SQLiteStore",
    "Session",
    "SessionError",
    "SessionStore",
    "TokenizerConfig",
    "Trace",
    "TrainConfig",
    "TurnView",
    "YamlError",
    "__version__",
    "action",
]
