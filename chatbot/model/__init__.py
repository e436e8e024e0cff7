"""The network: tensors in, tensors out; no I/O and no text."""

from chatbot.model.attention import LuongAttention
from chatbot.model.decoder import Decoder, Memory
from chatbot.model.encoder import UtteranceEncoder
from chatbot.model.hred import HRED, Loss

__all__ = ["HRED", "Decoder", "Loss", "LuongAttention", "Memory", "UtteranceEncoder"]
