"""Text to token ids and back."""

from chatbot.text.tokenizer import SPECIAL_TOKENS, Tokenizer

__all__ = ["SPECIAL_TOKENS", "Tokenizer"]
