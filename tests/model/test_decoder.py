"""Attention decoder: one-call teacher forcing equals the step loop; padding; tied output."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from chatbot.config import Attention
from chatbot.model import Decoder, Memory
from chatbot.model.decoder import FOLD_ROWS

VOCAB, EMBED, HIDDEN, CONTEXT = 40, 12, 16, 10
KINDS: list[Attention] = ["dot", "general", "concat"]
CASES = list(itertools.product(KINDS, [1, 2]))


def _decoder(kind: Attention, num_layers: int) -> Decoder:
    embedding = nn.Embedding(VOCAB, EMBED, padding_idx=0)
    return Decoder(
        embedding,
        hidden_size=HIDDEN,
        num_layers=num_layers,
        context_size=CONTEXT,
        attention=kind,
        dropout=0.3,
    ).eval()


def _memory(decoder: Decoder, width: int = 6) -> Memory:
    lengths = torch.tensor([6, 3, 1])
    mask = torch.arange(width) < lengths.unsqueeze(1)
    outputs = torch.randn(3, width, HIDDEN).masked_fill(~mask.unsqueeze(-1), 0.0)
    return decoder.prepare(outputs, mask, torch.randn(3, CONTEXT))


def _log_probs(
    decoder: Decoder, tokens: torch.Tensor, hidden: torch.Tensor, memory: Memory
) -> torch.Tensor:
    features, _, _ = decoder(tokens, hidden, memory)
    return F.log_softmax(decoder.logits(features), dim=-1)


@pytest.mark.parametrize("recording", [True, False])
@pytest.mark.parametrize(("kind", "num_layers"), CASES)
def test_one_call_equals_step_loop(kind: Attention, num_layers: int, recording: bool) -> None:
    """Recording gradients or not (the step's gate-table path): the same log-probs."""
    decoder = _decoder(kind, num_layers)
    memory = _memory(decoder)
    hidden = torch.randn(num_layers, 3, HIDDEN)
    tokens = torch.randint(1, VOCAB, (3, 7))
    features, final, weights = decoder(tokens, hidden, memory)
    one_call = F.log_softmax(decoder.logits(features), dim=-1)

    state, steps, step_weights = hidden, [], []
    with torch.set_grad_enabled(recording):
        for t in range(tokens.shape[1]):
            logits, state, w = decoder.step(tokens[:, t], state, memory)
            steps.append(F.log_softmax(logits, dim=-1))
            step_weights.append(w)
    stepped = torch.stack(steps, dim=1)

    assert one_call.shape == (3, 7, VOCAB)
    assert (one_call - stepped).abs().max() <= 1e-5
    assert (final - state).abs().max() <= 1e-5
    assert (weights - torch.stack(step_weights, dim=1)).abs().max() <= 1e-5


@torch.no_grad()
def test_step_follows_weights_changed_in_place() -> None:
    """The step's cached first-layer input gates (used when no gradient is
    recorded) are rebuilt when the embedding or the GRU's input weights change
    (an optimizer step, `load_state_dict`)."""
    decoder = _decoder("general", 2)
    memory = _memory(decoder)
    hidden = torch.randn(2, 3, HIDDEN)
    token = torch.tensor([4, 9, 17])
    before, _, _ = decoder.step(token, hidden, memory)
    for weight in (decoder.embedding.weight, decoder.gru.weight_ih_l0, decoder.gru.bias_ih_l0):
        weight.mul_(1.5)
        stepped, _, _ = decoder.step(token, hidden, memory)
        features, _, _ = decoder(token.unsqueeze(1), hidden, memory)
        torch.testing.assert_close(stepped, decoder.logits(features).squeeze(1), rtol=0, atol=1e-5)
        assert (stepped - before).abs().max() > 1e-3
        before = stepped
    decoder.load_state_dict(_decoder("general", 2).state_dict())
    stepped, _, _ = decoder.step(token, hidden, memory)
    features, _, _ = decoder(token.unsqueeze(1), hidden, memory)
    torch.testing.assert_close(stepped, decoder.logits(features).squeeze(1), rtol=0, atol=1e-5)


@pytest.mark.parametrize(("kind", "num_layers"), CASES)
def test_extra_padding_changes_no_log_prob(kind: Attention, num_layers: int) -> None:
    decoder = _decoder(kind, num_layers)
    memory = _memory(decoder, width=6)
    wide_memory = Memory(
        torch.cat([memory.outputs, torch.zeros(3, 4, HIDDEN)], dim=1),
        decoder.attention.prepare(torch.cat([memory.outputs, torch.zeros(3, 4, HIDDEN)], dim=1)),
        torch.cat([memory.mask, torch.zeros(3, 4, dtype=torch.bool)], dim=1),
        memory.state,
    )
    hidden = torch.randn(num_layers, 3, HIDDEN)
    tokens = torch.randint(1, VOCAB, (3, 5))
    wide_tokens = torch.cat([tokens, torch.zeros(3, 6, dtype=torch.long)], dim=1)
    expected = _log_probs(decoder, tokens, hidden, memory)
    for toks, mem in [(tokens, wide_memory), (wide_tokens, memory), (wide_tokens, wide_memory)]:
        got = _log_probs(decoder, toks, hidden, mem)[:, :5]
        assert (got - expected).abs().max() <= 1e-6


@pytest.mark.parametrize("num_layers", [1, 2])
def test_lengths_give_each_rows_hidden_at_its_last_token(num_layers: int) -> None:
    decoder = _decoder("general", num_layers)
    memory = _memory(decoder)
    hidden = torch.randn(num_layers, 3, HIDDEN)
    lengths = torch.tensor([2, 5, 1])
    tokens = torch.randint(1, VOCAB, (3, 5))
    tokens[torch.arange(5) >= lengths.unsqueeze(1)] = 0
    packed_features, packed_final, _ = decoder(tokens, hidden, memory, lengths)
    features, _, _ = decoder(tokens, hidden, memory)
    real = torch.arange(5) < lengths.unsqueeze(1)
    assert (packed_features[real] - features[real]).abs().max() <= 1e-6
    for i, n in enumerate(lengths.tolist()):
        state = hidden[:, i : i + 1]
        row = memory.select(torch.tensor([i]))
        for t in range(n):
            _, state, _ = decoder.step(tokens[i : i + 1, t], state, row)
        assert (packed_final[:, i] - state[:, 0]).abs().max() <= 1e-5


def test_logits_go_through_the_tied_embedding() -> None:
    decoder = _decoder("dot", 1)
    features = torch.randn(3, 4, HIDDEN)
    expected = decoder.out_proj(features) @ decoder.embedding.weight.T
    torch.testing.assert_close(decoder.logits(features), expected, rtol=0, atol=1e-6)
    assert decoder.logits(features).shape == (3, 4, VOCAB)


def test_state_enters_every_output_step() -> None:
    decoder = _decoder("dot", 1)
    memory = _memory(decoder)
    other = Memory(memory.outputs, memory.keys, memory.mask, memory.state + 1.0)
    hidden = torch.zeros(1, 3, HIDDEN)
    tokens = torch.randint(1, VOCAB, (3, 4))
    features, _, weights = decoder(tokens, hidden, memory)
    other_features, _, other_weights = decoder(tokens, hidden, other)
    assert torch.equal(weights, other_weights)  # the state does not touch the GRU or attention
    assert torch.all((features - other_features).abs().amax(-1) > 1e-4)
    states, _ = decoder.gru(decoder.embedding(tokens), hidden)
    context = weights @ memory.outputs
    # `memory.state` carries the combining layer's bias with the state term.
    combined = decoder.combine(torch.cat([states, context], -1)) - decoder.combine.bias
    expected = torch.tanh(combined + memory.state.unsqueeze(1))
    torch.testing.assert_close(features, expected, rtol=0, atol=1e-6)


def test_prepare_and_select() -> None:
    decoder = _decoder("general", 1)
    outputs = torch.randn(3, 6, HIDDEN)
    mask = torch.arange(6) < torch.tensor([[6], [2], [4]])
    state = torch.randn(3, CONTEXT)
    memory = decoder.prepare(outputs, mask, state)
    keys = decoder.attention.key(outputs)
    torch.testing.assert_close(memory.keys[mask], keys[mask])
    assert memory.keys[~mask].abs().sum().item() == 0.0  # padding gets no key
    expected = state @ decoder.state_proj.weight.T + decoder.combine.bias
    torch.testing.assert_close(memory.state, expected)
    assert memory.bias.shape == (3, 1, 6)
    assert memory.bias[1, 0].tolist() == [0.0, 0.0] + [float("-inf")] * 4
    picked = memory.select(torch.tensor([2, 2, 0]))
    assert picked.outputs.shape == (3, 6, HIDDEN)
    assert torch.equal(picked.outputs[0], outputs[2])
    assert torch.equal(picked.keys[2], memory.keys[0])
    assert torch.equal(picked.state[1], memory.state[2])
    assert torch.equal(picked.bias[0], memory.bias[2])


def test_dropout_is_active_only_in_training() -> None:
    decoder = _decoder("dot", 1)
    memory = _memory(decoder)
    hidden = torch.zeros(1, 3, HIDDEN)
    tokens = torch.randint(1, VOCAB, (3, 4))
    a, _, _ = decoder(tokens, hidden, memory)
    b, _, _ = decoder(tokens, hidden, memory)
    assert torch.equal(a, b)
    decoder.train()
    c, _, _ = decoder(tokens, hidden, memory)
    assert not torch.equal(a, c)


def test_step_with_gradients_reaches_the_embedding_and_input_weights() -> None:
    """Outside `no_grad` the step computes its input gates instead of reading the
    cached table, so gradients reach the embedding and the GRU's input weights."""
    decoder = _decoder("dot", 1)
    memory = _memory(decoder)
    logits, _, _ = decoder.step(torch.tensor([4, 9, 17]), torch.randn(1, 3, HIDDEN), memory)
    logits.logsumexp(-1).sum().backward()
    assert decoder.gru.weight_ih_l0.grad is not None
    assert decoder.gru.weight_ih_l0.grad.abs().sum() > 0
    grad = decoder.embedding.weight.grad
    assert grad is not None and grad[[4, 9, 17]].abs().sum() > 0


@pytest.mark.parametrize("rows", [1, 2])
@pytest.mark.parametrize(("kind", "num_layers"), CASES)
@torch.no_grad()
def test_few_rows_step_with_folded_values_equals_one_call(
    kind: Attention, num_layers: int, rows: int
) -> None:
    """Up to `FOLD_ROWS` rows a step mixes `Memory.values`; the same log-probs."""
    assert rows <= FOLD_ROWS
    decoder = _decoder(kind, num_layers)
    full = _memory(decoder)
    memory = full.select(torch.arange(rows))
    hidden = torch.randn(num_layers, rows, HIDDEN)
    tokens = torch.randint(1, VOCAB, (rows, 7))
    one_call = _log_probs(decoder, tokens, hidden, memory)
    state, steps = hidden, []
    for t in range(tokens.shape[1]):
        logits, state, _ = decoder.step(tokens[:, t], state, memory)
        steps.append(F.log_softmax(logits, dim=-1))
    assert memory.values.shape == (rows, 6, HIDDEN)
    torch.testing.assert_close(torch.stack(steps, dim=1), one_call, rtol=0, atol=1e-5)


@torch.no_grad()
def test_folded_values_follow_the_combining_layer() -> None:
    decoder = _decoder("general", 1)
    memory = _memory(decoder).select(torch.tensor([0]))
    hidden, token = torch.randn(1, 1, HIDDEN), torch.tensor([7])
    before, _, _ = decoder.step(token, hidden, memory)
    first = memory.values
    decoder.combine.weight.mul_(1.5)
    stepped, _, _ = decoder.step(token, hidden, memory)
    assert memory.values is not first
    features, _, _ = decoder(token.unsqueeze(1), hidden, memory)
    torch.testing.assert_close(stepped, decoder.logits(features).squeeze(1), rtol=0, atol=1e-5)
    assert (stepped - before).abs().max() > 1e-3
