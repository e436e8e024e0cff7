"""Perplexity: whole conversations with and without carried state, and over windows."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from chatbot.checkpoint import load_model
from chatbot.config import Config
from chatbot.data import WindowBatcher, encode_conversations, load_corpus
from chatbot.evaluate import conversation_nll, perplexity, window_perplexity
from chatbot.model import HRED

PAD, BOS, EOS, VOCAB = 0, 1, 2, 50
CONVERSATIONS = [
    [[5, 6, 7], [8, 9], [10, 11, 12, 13], [14], [15, 16]],
    [[20, 21], [22, 23, 24, 25, 26]],
    [[30], [31, 32], [33, 34, 35]],
    [[40, 41, 42]],
]


def _model() -> HRED:
    return HRED(Config.preset("tiny").model, vocab_size=VOCAB).eval()


def _nll(model: HRED, conversations: list[list[list[int]]], **kwargs: object) -> tuple[float, int]:
    return conversation_nll(model, conversations, bos_id=BOS, eos_id=EOS, **kwargs)  # type: ignore[arg-type]


def _reply_tokens(conversations: list[list[list[int]]]) -> int:
    return sum(len(reply) + 1 for conv in conversations for reply in conv[1:])


def test_perplexity_of_the_tiny_model(tiny_model_dir: Path, corpus_file: Path) -> None:
    loaded = load_model(tiny_model_dir)
    conversations = load_corpus(f"jsonl:{corpus_file}")[:12]
    encoded = encode_conversations(
        conversations, loaded.tokenizer, max_tokens=loaded.config.data.max_utterance_tokens
    )
    result = perplexity(
        loaded.model, encoded, bos_id=loaded.tokenizer.bos_id, eos_id=loaded.tokenizer.eos_id
    )
    assert result.conversations == 12
    assert result.target_tokens == _reply_tokens(encoded)
    assert result.target_tokens > 100
    for ppl in (result.ppl_with_state, result.ppl_without_state):
        assert math.isfinite(ppl)
        assert 1.0 < ppl < loaded.tokenizer.vocab_size  # better than uniform after training
    assert result.state_gain == pytest.approx(1 - result.ppl_with_state / result.ppl_without_state)


def test_window_perplexity_equals_the_forward_loss(tiny_model_dir: Path, corpus_file: Path) -> None:
    loaded = load_model(tiny_model_dir)
    tok = loaded.tokenizer
    encoded = encode_conversations(load_corpus(f"jsonl:{corpus_file}")[:6], tok, max_tokens=24)
    batcher = WindowBatcher(
        encoded,
        window_turns=4,
        batch_size=64,
        pad_id=tok.pad_id,
        bos_id=tok.bos_id,
        eos_id=tok.eos_id,
    )
    (batch,) = list(batcher.batches(0, seed=0, shuffle=False))
    with torch.no_grad():
        loss = loaded.model(
            batch.utterances, batch.lengths, batch.turn_mask, batch.dec_in, batch.dec_out
        )
    assert loss.tokens == batch.target_tokens
    expected = math.exp(float(loss.total) / loss.tokens)
    assert window_perplexity(loaded.model, batcher) == pytest.approx(expected, rel=1e-6)


def test_window_perplexity_sums_over_batches_and_restores_training_mode() -> None:
    model = _model()
    batcher = WindowBatcher(
        CONVERSATIONS, window_turns=3, batch_size=2, pad_id=PAD, bos_id=BOS, eos_id=EOS
    )
    total, tokens = 0.0, 0
    with torch.no_grad():
        for batch in batcher.batches(0, seed=0, shuffle=False):
            loss = model(
                batch.utterances, batch.lengths, batch.turn_mask, batch.dec_in, batch.dec_out
            )
            total, tokens = total + float(loss.total), tokens + loss.tokens
    assert tokens == _reply_tokens(CONVERSATIONS)
    model.train()
    assert window_perplexity(model, batcher) == pytest.approx(math.exp(total / tokens), rel=1e-6)
    assert model.training


def test_two_turn_conversation_is_the_same_with_and_without_state() -> None:
    model = _model()
    conversation = [CONVERSATIONS[1]]
    stateful = _nll(model, conversation, stateless=False)
    stateless = _nll(model, conversation, stateless=True)
    assert stateful == stateless
    assert stateful[1] == 6

    # the one reply, scored by hand from a zero state
    utterance, reply = CONVERSATIONS[1]
    with torch.no_grad():
        outputs, mask, vectors = model.encode(
            torch.tensor([utterance + [EOS]]), torch.tensor([len(utterance) + 1])
        )
        state = model.update_state(vectors, model.initial_state(1))
        hidden, memory = model.start_reply(state, outputs, mask)
        loss = model.reply_loss(
            torch.tensor([[BOS] + reply]), torch.tensor([reply + [EOS]]), hidden, memory
        )
    assert stateful[0] == pytest.approx(float(loss.total), rel=1e-6)


def test_longer_conversations_differ_with_and_without_state() -> None:
    model = _model()
    stateful, tokens = _nll(model, CONVERSATIONS[:1], stateless=False)
    stateless, same_tokens = _nll(model, CONVERSATIONS[:1], stateless=True)
    assert tokens == same_tokens == _reply_tokens(CONVERSATIONS[:1])
    assert abs(stateful - stateless) > 1e-4


@pytest.mark.parametrize("stateless", [False, True])
def test_whole_conversation_nll_equals_one_window_forward(stateless: bool) -> None:
    """A window as long as the conversation starts from the same zero state."""
    model = _model()
    total, tokens = _nll(model, CONVERSATIONS, stateless=stateless)
    batcher = WindowBatcher(
        CONVERSATIONS, window_turns=5, batch_size=8, pad_id=PAD, bos_id=BOS, eos_id=EOS
    )
    (batch,) = list(batcher.batches(0, seed=0, shuffle=False))
    with torch.no_grad():
        loss = model(
            batch.utterances,
            batch.lengths,
            batch.turn_mask,
            batch.dec_in,
            batch.dec_out,
            stateless=stateless,
        )
    assert tokens == loss.tokens == _reply_tokens(CONVERSATIONS) == 26
    assert total == pytest.approx(float(loss.total), rel=1e-5)


@pytest.mark.parametrize("stateless", [False, True])
def test_batch_size_does_not_change_the_nll(stateless: bool) -> None:
    model = _model()
    together = _nll(model, CONVERSATIONS, stateless=stateless, batch_size=64)
    one_by_one = _nll(model, CONVERSATIONS, stateless=stateless, batch_size=1)
    assert together[1] == one_by_one[1]
    assert together[0] == pytest.approx(one_by_one[0], rel=1e-5)


def test_perplexity_from_the_two_nlls() -> None:
    model = _model()
    with_state, tokens = _nll(model, CONVERSATIONS, stateless=False)
    without_state, _ = _nll(model, CONVERSATIONS, stateless=True)
    model.train()
    result = perplexity(model, CONVERSATIONS, bos_id=BOS, eos_id=EOS)
    assert model.training
    assert result.ppl_with_state == pytest.approx(math.exp(with_state / tokens), rel=1e-6)
    assert result.ppl_without_state == pytest.approx(math.exp(without_state / tokens), rel=1e-6)
    assert (result.target_tokens, result.conversations) == (tokens, 4)
    assert math.exp(without_state / tokens) > 1.0
