"""The PyTorch chatbot tutorial's `GreedySearchDecoder`, over this project's model.

A plain reference for `bench_decode.py`: like the tutorial, it takes the softmax
at every step, picks its max, concatenates the token and score, and always runs
`max_length` steps (no early stop at `<eos>`); `<eos>` and padding are dropped
from the output afterwards, as the tutorial's `evaluateInput` does.

Each step is the tutorial's `LuongAttnDecoderRNN.forward` with this model's
weights: embed, one GRU step, `Attn.general_score` (which projects every encoder
output again at every step: `self.attn(encoder_output)`), softmax, context,
`concat` -> tanh, output layer. The conversation-state term this model adds to
the `concat` layer is kept, so both decoders compute the same logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from chatbot.model import HRED, Memory
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
    outputs, mask, vectors = _tutorial_encode(model, input_seq, torch.tensor([len(ids)]))
    state = model.update_state(vectors, state)
    decoder_hidden, memory = model.start_reply(state, outputs, mask)
    decoder_input = torch.ones(1, dtype=torch.long) * tokenizer.bos_id
    all_tokens = torch.zeros([0], dtype=torch.long)
    all_scores = torch.zeros([0])
    for _ in range(max_length):
        logits, decoder_hidden = _tutorial_step(model, decoder_input, decoder_hidden, memory)
        decoder_output = F.softmax(logits, dim=1)
        decoder_scores, decoder_input = torch.max(decoder_output, dim=1)
        all_tokens = torch.cat((all_tokens, decoder_input), dim=0)
        all_scores = torch.cat((all_scores, decoder_scores), dim=0)
    words = [i for i in all_tokens.tolist() if i not in (tokenizer.eos_id, tokenizer.pad_id)]
    return tokenizer.decode(words), state


def _tutorial_encode(
    model: HRED, input_seq: torch.Tensor, input_lengths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`EncoderRNN.forward` (packed `nn.GRU`), then this model's projection of the
    final states; returns what `HRED.encode` does: outputs, mask, vectors.
    """
    encoder = model.encoder
    embedded = encoder.embedding(input_seq)
    packed = nn.utils.rnn.pack_padded_sequence(embedded, input_lengths, batch_first=True)
    outputs, hidden = encoder.gru(packed)
    outputs, _ = nn.utils.rnn.pad_packed_sequence(outputs, batch_first=True)
    vectors = torch.tanh(encoder.project(torch.cat([hidden[-2], hidden[-1]], dim=-1)))
    mask = torch.ones(outputs.shape[:2], dtype=torch.bool)
    return outputs, mask, vectors


def _tutorial_step(
    model: HRED, token: torch.Tensor, hidden: torch.Tensor, memory: Memory
) -> tuple[torch.Tensor, torch.Tensor]:
    """`LuongAttnDecoderRNN.forward` for one step; returns logits (1, V) and the hidden."""
    decoder = model.decoder
    embedded = decoder.embedding(token).unsqueeze(1)
    rnn_output, hidden = decoder.gru(embedded, hidden)
    attention = decoder.attention
    if attention.kind == "dot":
        energy = torch.sum(rnn_output * memory.outputs, dim=2)
    elif attention.kind == "general":
        energy = torch.sum(rnn_output * attention.key(memory.outputs), dim=2)
    else:
        mixed = torch.tanh(attention.query(rnn_output) + attention.key(memory.outputs))
        energy = attention.v(mixed).squeeze(-1)
    energy = energy.masked_fill(~memory.mask, float("-inf"))
    weights = F.softmax(energy, dim=1).unsqueeze(1)
    context = weights.bmm(memory.outputs)
    concat_input = torch.cat((rnn_output.squeeze(1), context.squeeze(1)), 1)
    # `memory.state` holds the `concat` layer's bias and the conversation-state term.
    concat_output = torch.tanh(F.linear(concat_input, decoder.combine.weight) + memory.state)
    return decoder.logits(concat_output), hidden
