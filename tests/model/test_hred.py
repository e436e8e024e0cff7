"""HRED: the batched loss against a turn-by-turn loop, state carrying, padding, tied output."""

from __future__ import annotations

import dataclasses
import random

import pytest
import torch
import torch.nn.functional as F

from chatbot.config import Attention, Config
from chatbot.data import Batch, WindowBatcher
from chatbot.model import HRED, Loss

PAD, BOS, EOS, VOCAB = 0, 1, 2, 50
WINDOWS = [
    [[5, 6, 7], [8, 9], [10, 11, 12, 13], [14]],
    [[20, 21], [22, 23, 24, 25, 26]],
    [[30], [31, 32], [33, 34, 35]],
]


def _model(attention: Attention = "general", num_layers: int = 1) -> HRED:
    config = dataclasses.replace(
        Config.preset("tiny").model, attention=attention, num_layers=num_layers, dropout=0.1
    )
    return HRED(config, vocab_size=VOCAB).eval()


def _batch(windows: list[list[list[int]]] = WINDOWS) -> Batch:
    batcher = WindowBatcher([], window_turns=4, batch_size=8, pad_id=PAD, bos_id=BOS, eos_id=EOS)
    return batcher.collate(windows)


def _loss(model: HRED, batch: Batch, **kwargs: object) -> Loss:
    return model(  # type: ignore[no-any-return]
        batch.utterances, batch.lengths, batch.turn_mask, batch.dec_in, batch.dec_out, **kwargs
    )


def _reply_log_probs(
    model: HRED, state: torch.Tensor, utterance: list[int], reply: list[int]
) -> torch.Tensor:
    """Log-probabilities of `reply` to `utterance` from `state` (before `utterance`)."""
    outputs, mask, vectors = model.encode(
        torch.tensor([utterance + [EOS]]), torch.tensor([len(utterance) + 1])
    )
    hidden, memory = model.start_reply(model.update_state(vectors, state), outputs, mask)
    features, _, _ = model.decoder(torch.tensor([[BOS] + reply]), hidden, memory)
    return F.log_softmax(model.decoder.logits(features), dim=-1)


def _hand_loss(
    model: HRED, windows: list[list[list[int]]], *, stateless: bool
) -> tuple[float, int]:
    """Cross-entropy turn by turn, one unpadded utterance at a time, through `reply_loss`."""
    total, tokens = 0.0, 0
    for window in windows:
        state = model.initial_state(1)
        for turn, reply in zip(window, window[1:], strict=False):
            outputs, mask, vectors = model.encode(
                torch.tensor([turn + [EOS]]), torch.tensor([len(turn) + 1])
            )
            state = model.update_state(vectors, model.initial_state(1) if stateless else state)
            hidden, memory = model.start_reply(state, outputs, mask)
            loss = model.reply_loss(
                torch.tensor([[BOS] + reply]), torch.tensor([reply + [EOS]]), hidden, memory
            )
            total += float(loss.total)
            tokens += loss.tokens
    return total, tokens


@pytest.mark.parametrize("attention", ["dot", "general", "concat"])
@pytest.mark.parametrize("stateless", [False, True])
def test_forward_equals_turn_by_turn_loop(attention: Attention, stateless: bool) -> None:
    model = _model(attention)
    with torch.no_grad():
        loss = _loss(model, _batch(), stateless=stateless)
        total, tokens = _hand_loss(model, WINDOWS, stateless=stateless)
    assert loss.tokens == tokens == (2 + 1) + (4 + 1) + (1 + 1) + (5 + 1) + (2 + 1) + (3 + 1)
    assert float(loss.total) == pytest.approx(total, rel=1e-5)
    assert float(loss.mean) == pytest.approx(total / tokens, rel=1e-5)


def test_stateless_differs_from_stateful() -> None:
    model = _model()
    with torch.no_grad():
        stateful = float(_loss(model, _batch()).total)
        stateless = float(_loss(model, _batch(), stateless=True).total)
    assert abs(stateful - stateless) > 1e-4


def test_loss_counts_only_non_pad_targets() -> None:
    model = _model()
    batch = _batch()
    with torch.no_grad():
        loss = _loss(model, batch)
    assert loss.tokens == int((batch.dec_out != PAD).sum()) == batch.target_tokens == 23
    assert Loss(torch.tensor(6.0), 3).mean == 2.0
    assert Loss(torch.tensor(0.0), 0).mean == 0.0


@pytest.mark.parametrize("num_layers", [1, 2])
def test_wider_utterances_change_nothing(num_layers: int) -> None:
    model = _model("concat", num_layers)
    batch = _batch()
    extra = 5
    wide = Batch(
        F.pad(batch.utterances, (0, extra), value=PAD),
        batch.lengths,
        batch.turn_mask,
        F.pad(batch.dec_in, (0, extra), value=PAD),
        F.pad(batch.dec_out, (0, extra), value=PAD),
    )
    with torch.no_grad():
        b, k, s = batch.utterances.shape
        outputs, mask, vectors = model.encode(
            batch.utterances.view(b * k, s), batch.lengths.view(-1)
        )
        wide_outputs, wide_mask, wide_vectors = model.encode(
            wide.utterances.view(b * k, s + extra), wide.lengths.view(-1)
        )
        assert not wide_mask[:, s:].any()
        assert torch.equal(wide_mask[:, :s], mask)
        assert (wide_outputs[:, :s][mask] - outputs[mask]).abs().max() <= 1e-6
        assert (wide_vectors - vectors).abs().max() <= 1e-6
        assert abs(float(_loss(model, wide).total) - float(_loss(model, batch).total)) <= 1e-6


@pytest.mark.parametrize("stateless", [False, True])
def test_extra_padding_turns_change_nothing(stateless: bool) -> None:
    model = _model()
    batch = _batch()
    b, k, s = batch.utterances.shape
    t = batch.dec_in.shape[2]
    pad_turns = torch.full((b, 2, s), PAD, dtype=torch.long)
    pad_turns[:, :, 0] = EOS
    more = Batch(
        torch.cat([batch.utterances, pad_turns], dim=1),
        torch.cat([batch.lengths, torch.ones(b, 2, dtype=torch.long)], dim=1),
        torch.cat([batch.turn_mask, torch.zeros(b, 2, dtype=torch.bool)], dim=1),
        torch.cat([batch.dec_in, torch.full((b, 2, t), PAD)], dim=1),
        torch.cat([batch.dec_out, torch.full((b, 2, t), PAD)], dim=1),
    )
    with torch.no_grad():
        loss = _loss(model, batch, stateless=stateless)
        more_loss = _loss(model, more, stateless=stateless)
    assert more_loss.tokens == loss.tokens
    assert abs(float(more_loss.total) - float(loss.total)) <= 1e-6


def test_batch_rows_are_independent() -> None:
    model = _model()
    with torch.no_grad():
        together = float(_loss(model, _batch()).total)
        apart = sum(float(_loss(model, _batch([w])).total) for w in WINDOWS)
    assert together == pytest.approx(apart, rel=1e-5)


def test_carried_state_changes_the_reply_and_reset_restores_it() -> None:
    model = _model()
    utterance, reply = [5, 6, 7], [8, 9, 10]
    with torch.no_grad():
        first = _reply_log_probs(model, model.initial_state(1), utterance, reply)
        state = model.initial_state(1)
        for turn in (utterance, reply):
            tokens, lengths = torch.tensor([turn + [EOS]]), torch.tensor([len(turn) + 1])
            _, _, vectors = model.encode(tokens, lengths)
            state = model.update_state(vectors, state)
        carried = _reply_log_probs(model, state, utterance, reply)
        reset = _reply_log_probs(model, model.initial_state(1), utterance, reply)
    assert (carried - first).abs().max() > 1e-3
    assert torch.equal(reset, first)


def test_update_state_equals_the_context_gru_over_a_sequence() -> None:
    model = _model()
    vectors = torch.randn(2, 3, model.config.hidden_size)
    with torch.no_grad():
        states, _ = model.context(vectors, model.initial_state(2).unsqueeze(0))
        state = model.initial_state(2)
        for turn in range(3):
            state = model.update_state(vectors[:, turn], state)
            assert (states[:, turn] - state).abs().max() <= 1e-6


def test_initial_state_and_decoder_hidden() -> None:
    model = _model(num_layers=2)
    hidden_size = model.config.hidden_size
    zero = model.initial_state(3)
    assert torch.equal(zero, torch.zeros(3, model.config.context_size))
    state = torch.randn(3, model.config.context_size)
    hidden = model.decoder_hidden(state)
    assert hidden.shape == (2, 3, hidden_size)
    bridged = torch.tanh(model.bridge(state))
    for layer in range(2):
        torch.testing.assert_close(
            hidden[layer], bridged[:, layer * hidden_size : (layer + 1) * hidden_size]
        )


def test_output_layer_is_tied_to_the_embedding() -> None:
    model = _model()
    assert model.decoder.embedding.weight is model.encoder.embedding.weight
    assert model.embedding.weight is model.decoder.embedding.weight
    names = [name for name, _ in model.named_parameters()]
    assert names.count("embedding.weight") == 1
    assert not any(name.endswith(".embedding.weight") for name in names)
    assert torch.equal(model.embedding.weight[PAD], torch.zeros(model.config.embedding_size))
    features = torch.randn(4, 5, model.config.hidden_size)
    expected = model.decoder.out_proj(features) @ model.embedding.weight.T
    torch.testing.assert_close(model.decoder.logits(features), expected, rtol=0, atol=1e-6)


class _AlwaysBelow(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


def test_free_running_fed_the_reference_equals_teacher_forcing() -> None:
    model = _model()
    batch = _batch()
    with torch.no_grad():
        forced = _loss(model, batch)
        always_reference = _loss(model, batch, teacher_forcing=0.5, rng=_AlwaysBelow(0.0))
        never_reference = _loss(model, batch, teacher_forcing=0.5, rng=_AlwaysBelow(0.99))
    assert always_reference.tokens == forced.tokens == never_reference.tokens
    assert float(always_reference.total) == pytest.approx(float(forced.total), rel=1e-5)
    assert abs(float(never_reference.total) - float(forced.total)) > 1e-3


def test_every_parameter_gets_a_finite_gradient() -> None:
    model = _model()
    model.train()
    _loss(model, _batch()).total.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name
