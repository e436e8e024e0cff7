"""The PyTorch chatbot tutorial's `GreedySearchDecoder`, over this project's model.

A plain reference for `bench_decode.py`: like the tutorial, it takes the softmax
at every step, picks its max, concatenates the token and score, and always runs
`max_length` steps (no early stop at `<eos>`); `<eos>` and padding are dropped
from the output afterwards, as the tutorial's `evaluateInput` does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from chatbot.model import HRED
from chatbot.text import Tokenizer


@torch.no_grad()
def tutorial_greedy(
    model: HRED,
    tokenizer: Tokenizer,
    state: torch.Tensor,
    text: str,
    *,
    max_length: int,
    max_input_tokens: int,
) -> tuple[str, torch.Tensor]:
    """Reply to `text` from conversation `state` (1, C); returns it and the state after `text`."""
    ids = tokenizer.encode(text)[:max_input_tokens] + [tokenizer.eos_id]
    input_seq = torch.tensor([ids])
    outputs, mask, vectors = model.encode(input_seq, torch.tensor([len(ids)]))
    state = model.update_state(vectors, state)
    decoder_hidden, memory = model.start_reply(state, outputs, mask)
    decoder_input = torch.ones(1, dtype=torch.long) * tokenizer.bos_id
    all_tokens = torch.zeros([0], dtype=torch.long)
    all_scores = torch.zeros([0])
    for _ in range(max_length):
        logits, decoder_hidden, _ = model.decoder.step(decoder_input, decoder_hidden, memory)
        decoder_output = F.softmax(logits, dim=1)
        decoder_scores, decoder_input = torch.max(decoder_output, dim=1)
        all_tokens = torch.cat((all_tokens, decoder_input), dim=0)
        all_scores = torch.cat((all_scores, decoder_scores), dim=0)
    words = [i for i in all_tokens.tolist() if i not in (tokenizer.eos_id, tokenizer.pad_id)]
    return tokenizer.decode(words), state
