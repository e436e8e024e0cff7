"""Utterance encoder: padding-invariant outputs and utterance vectors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from chatbot.model import UtteranceEncoder

VOCAB, EMBED, HIDDEN = 30, 12, 16


def _encoder(num_layers: int) -> UtteranceEncoder:
    embedding = nn.Embedding(VOCAB, EMBED, padding_idx=0)
    encoder = UtteranceEncoder(embedding, hidden_size=HIDDEN, num_layers=num_layers, dropout=0.2)
    return encoder.eval()


def _batch(width: int) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([5, 2, 1, 4])
    tokens = torch.randint(4, VOCAB, (4, width))
    tokens[torch.arange(width) >= lengths.unsqueeze(1)] = 0
    return tokens, lengths


@pytest.mark.parametrize("num_layers", [1, 2])
def test_shapes_and_zero_past_each_length(num_layers: int) -> None:
    tokens, lengths = _batch(5)
    outputs, vectors = _encoder(num_layers)(tokens, lengths)
    assert outputs.shape == (4, 5, HIDDEN)
    assert vectors.shape == (4, HIDDEN)
    past = torch.arange(5) >= lengths.unsqueeze(1)
    assert torch.all(outputs[past] == 0.0)
    assert torch.all(outputs[~past].abs().sum(-1) > 0)


@pytest.mark.parametrize("num_layers", [1, 2])
def test_wider_padding_changes_no_output(num_layers: int) -> None:
    encoder = _encoder(num_layers)
    tokens, lengths = _batch(5)
    wide = torch.cat([tokens, torch.zeros(4, 7, dtype=torch.long)], dim=1)
    outputs, vectors = encoder(tokens, lengths)
    wide_outputs, wide_vectors = encoder(wide, lengths)
    assert wide_outputs.shape == (4, 12, HIDDEN)
    assert torch.all(wide_outputs[:, 5:] == 0.0)
    torch.testing.assert_close(wide_outputs[:, :5], outputs, rtol=0, atol=1e-6)
    torch.testing.assert_close(wide_vectors, vectors, rtol=0, atol=1e-6)


@pytest.mark.parametrize("num_layers", [1, 2])
def test_tokens_in_the_padding_are_never_read(num_layers: int) -> None:
    encoder = _encoder(num_layers)
    tokens, lengths = _batch(5)
    garbage = tokens.clone()
    garbage[torch.arange(5) >= lengths.unsqueeze(1)] = 7
    outputs, vectors = encoder(tokens, lengths)
    garbage_outputs, garbage_vectors = encoder(garbage, lengths)
    torch.testing.assert_close(garbage_outputs, outputs, rtol=0, atol=1e-6)
    torch.testing.assert_close(garbage_vectors, vectors, rtol=0, atol=1e-6)


@pytest.mark.parametrize("num_layers", [1, 2])
def test_each_row_encodes_as_if_alone(num_layers: int) -> None:
    encoder = _encoder(num_layers)
    tokens, lengths = _batch(5)
    outputs, vectors = encoder(tokens, lengths)
    for i, n in enumerate(lengths.tolist()):
        alone_outputs, alone_vector = encoder(tokens[i : i + 1, :n], lengths[i : i + 1])
        torch.testing.assert_close(alone_outputs[0], outputs[i, :n], rtol=0, atol=1e-6)
        torch.testing.assert_close(alone_vector[0], vectors[i], rtol=0, atol=1e-6)


@pytest.mark.parametrize("num_layers", [1, 2])
def test_vector_projects_the_final_state_of_each_direction(num_layers: int) -> None:
    encoder = _encoder(num_layers)
    tokens, lengths = _batch(5)
    outputs, vectors = encoder(tokens, lengths)
    half = HIDDEN // 2
    last = outputs[torch.arange(4), lengths - 1, :half]  # forward direction ends at the last token
    first = outputs[:, 0, half:]  # backward direction ends at the first token
    expected = torch.tanh(encoder.project(torch.cat([last, first], dim=-1)))
    torch.testing.assert_close(vectors, expected, rtol=0, atol=1e-6)


def test_embedding_is_the_one_given() -> None:
    embedding = nn.Embedding(VOCAB, EMBED)
    encoder = UtteranceEncoder(embedding, hidden_size=HIDDEN, num_layers=1, dropout=0.0)
    assert encoder.embedding is embedding
    assert encoder.gru.hidden_size == HIDDEN // 2
    assert encoder.gru.bidirectional
