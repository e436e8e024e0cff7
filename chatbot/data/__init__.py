"""Conversations from corpora, splits, and batches of conversation windows."""

from chatbot.data.batching import Batch, BatchStats, WindowBatcher, encode_conversations
from chatbot.data.corpora import Conversation, load_corpus
from chatbot.data.split import Split, split_conversations, split_for

__all__ = [
    "Batch",
    "BatchStats",
    "Conversation",
    "Split",
    "WindowBatcher",
    "encode_conversations",
    "load_corpus",
    "split_conversations",
    "split_for",
]
