from __future__ import annotations

import math
import threading
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from chatbot.config import Config
from chatbot.decoding import DecodeConfig, Strategy
from chatbot.generator import (
    LOOP_MAX_DISTINCT,
    LOOP_NGRAM,
    LOOP_RUN,
    Generation,
    Generator,
    NeuralState,
    StateError,
    _contains,
    degenerate_flags,
    is_loop,
)
from chatbot.model import HRED
from chatbot.text import Tokenizer

TEXTS = ["hi there", "what do you do for fun?", "", "do you like pizza? " * 10]


@pytest.fixture(scope="module")
def gen(tiny_model_dir: Path) -> Generator:
    return Generator.load(tiny_model_dir)


def states_for(gen: Generator, count: int) -> list[NeuralState]:
    """Distinct states: conversations that have heard 0, 1, 2, ... earlier utterances."""
    states, state = [], gen.initial_state()
    for i in range(count):
        states.append(state)
        [state] = gen.observe([state], [f"turn {i}: how was your weekend?"])
    return states


# NeuralState ---------------------------------------------------------------------


def test_neural_state_bytes_round_trip_exactly() -> None:
    values = torch.tensor([0.0, -0.0, 1e-45, 3.4e38, math.inf, -math.inf, 1 / 3, -2.5])
    data = NeuralState(values).to_bytes()
    assert len(data) == 4 * len(values)
    assert NeuralState(torch.tensor([1.0])).to_bytes() == b"\x00\x00\x80\x3f"
    back = NeuralState.from_bytes(data, len(values))
    assert back.tensor.dtype == torch.float32
    assert torch.equal(back.tensor, values)
    assert torch.equal(back.tensor.signbit(), values.signbit())
    assert back == NeuralState(values.clone()) and hash(back) == hash(NeuralState(values))
    random = torch.randn(48)
    assert torch.equal(NeuralState.from_bytes(NeuralState(random).to_bytes(), 48).tensor, random)


def test_neural_state_of_the_wrong_size_is_an_error(gen: Generator) -> None:
    with pytest.raises(StateError, match="a neural state of 48 values needs 192 bytes, got 8"):
        NeuralState.from_bytes(b"\x00" * 8, 48)
    with pytest.raises(StateError, match=r"expected \(48,\)"):
        gen.respond([(NeuralState(torch.zeros(3)), "hi", None)])


# respond / observe against the model's own calls ----------------------------------


def manual_turn(gen: Generator, state: torch.Tensor, user: str) -> tuple[str, torch.Tensor]:
    """Greedy reply and state after the user, step by step with the model's calls."""
    model, tok = gen.model, gen.tokenizer
    ids = tok.encode(user)[: gen.max_input_tokens] + [tok.eos_id]
    with torch.no_grad():
        outputs, mask, vectors = model.encode(torch.tensor([ids]), torch.tensor([len(ids)]))
        after = model.update_state(vectors, state)
        hidden, memory = model.start_reply(after, outputs, mask)
        token, reply = torch.tensor([tok.bos_id]), []
        for t in range(32):
            logits, hidden, _ = model.decoder.step(token, hidden, memory)
            logits[:, [tok.pad_id, tok.bos_id, tok.sep_id]] = -math.inf
            if t < 1:
                logits[:, tok.eos_id] = -math.inf
            token = logits.argmax(1)
            if int(token) == tok.eos_id:
                break
            reply.append(int(token))
    return tok.decode(reply).strip(), after


def manual_observe(gen: Generator, state: torch.Tensor, text: str) -> torch.Tensor:
    ids = gen.tokenizer.encode(text)[: gen.max_input_tokens] + [gen.tokenizer.eos_id]
    with torch.no_grad():
        _, _, vectors = gen.model.encode(torch.tensor([ids]), torch.tensor([len(ids)]))
        return gen.model.update_state(vectors, state)


def test_respond_and_observe_equal_the_model_calls(gen: Generator) -> None:
    config = DecodeConfig(no_repeat_ngram=0)
    state, expected = gen.initial_state(), torch.zeros(1, gen.state_size)
    for user in ["hi there", "what do you do for fun?", "do you like pizza?"]:
        [(reply, after)] = gen.respond([(state, user, None)], decode=config)
        text, expected_after = manual_turn(gen, expected, user)
        assert reply.text == text
        assert torch.allclose(after.tensor, expected_after[0], atol=1e-6)
        [state] = gen.observe([after], [reply.text])
        expected = manual_observe(gen, expected_after, text)
        assert torch.allclose(state.tensor, expected[0], atol=1e-6)


def test_respond_returns_the_state_after_the_user_only(gen: Generator) -> None:
    state = states_for(gen, 2)[1]
    [(_, after)] = gen.respond([(state, "good morning", None)])
    [observed] = gen.observe([state], ["good morning"])
    assert torch.allclose(after.tensor, observed.tensor, atol=1e-6)
    assert not after.tensor.is_inference() and not observed.tensor.is_inference()


@pytest.mark.parametrize(
    "config",
    [
        DecodeConfig(),
        DecodeConfig(strategy="beam", beam_size=4, n_best=3),
        DecodeConfig(strategy="sample", temperature=0.8, top_k=50, top_p=0.9),
    ],
    ids=["greedy", "beam", "sample"],
)
def test_a_batch_replies_as_each_conversation_alone(gen: Generator, config: DecodeConfig) -> None:
    states = states_for(gen, len(TEXTS))
    items = [
        (s, text, "hello" if i % 2 else None)
        for i, (s, text) in enumerate(zip(states, TEXTS, strict=True))
    ]
    batch = gen.respond(items, decode=config, seed=10)
    for i, item in enumerate(items):
        [(alone, after)] = gen.respond([item], decode=config, seed=10 + i)
        reply, batch_after = batch[i]
        assert (alone.text, alone.token_ids, alone.flags) == (
            reply.text,
            reply.token_ids,
            reply.flags,
        )
        assert alone.confidence == pytest.approx(reply.confidence, abs=1e-5)
        assert [t for t, _ in alone.n_best] == [t for t, _ in reply.n_best]
        assert torch.allclose(after.tensor, batch_after.tensor, atol=1e-5)


def test_a_seed_reproduces_a_sample(gen: Generator) -> None:
    config = DecodeConfig(strategy="sample", temperature=1.5)
    item = (gen.initial_state(), "how was your weekend?", None)

    def text(seed: int) -> str:
        return gen.respond([item], decode=config, seed=seed)[0][0].text

    assert text(3) == text(3)
    assert any(text(seed) != text(3) for seed in range(4, 10))


# Scores and confidence -----------------------------------------------------------


def step_logprob(gen: Generator, state: NeuralState, user: str, reply_ids: list[int]) -> float:
    """Sum of step-by-step log-probs of `reply_ids` (teacher forced through `decoder.step`)."""
    model, tok = gen.model, gen.tokenizer
    ids = tok.encode(user)[: gen.max_input_tokens] + [tok.eos_id]
    total = 0.0
    with torch.no_grad():
        outputs, mask, vectors = model.encode(torch.tensor([ids]), torch.tensor([len(ids)]))
        after = model.update_state(vectors, state.tensor.unsqueeze(0))
        hidden, memory = model.start_reply(after, outputs, mask)
        previous = tok.bos_id
        for target in reply_ids:
            logits, hidden, _ = model.decoder.step(torch.tensor([previous]), hidden, memory)
            total += float(logits.log_softmax(1)[0, target])
            previous = target
    return total


def test_step_decoder_and_teacher_forced_decoder_agree(gen: Generator) -> None:
    state = states_for(gen, 3)[2]
    for user, reply in [
        ("hi there", "hello! how are you?"),
        ("", "i like hiking and reading"),
        ("what?", ""),
    ]:
        ids = gen.tokenizer.encode(reply) + [gen.tokenizer.eos_id]
        assert gen.score(state, user, reply) == pytest.approx(
            step_logprob(gen, state, user, ids), abs=1e-4
        )


@pytest.mark.parametrize("strategy", ["greedy", "beam"])
def test_confidence_is_the_geometric_mean_token_probability(
    gen: Generator, strategy: Strategy
) -> None:
    state = states_for(gen, 2)[1]
    config = DecodeConfig(strategy=strategy, max_length=20)
    for user in ["do you have any pets?", "good morning"]:
        [(reply, _)] = gen.respond([(state, user, None)], decode=config)
        ids = list(reply.token_ids)
        if len(ids) < config.max_length:
            ids.append(gen.tokenizer.eos_id)
        expected = math.exp(step_logprob(gen, state, user, ids) / len(ids))
        assert reply.confidence == pytest.approx(expected, abs=1e-5)
        assert 0.0 <= reply.confidence <= 1.0


# Generation contents --------------------------------------------------------------


def test_generation_carries_tokens_attention_and_n_best(gen: Generator) -> None:
    config = DecodeConfig(strategy="beam", beam_size=4, n_best=3)
    [(reply, _)] = gen.respond([(gen.initial_state(), "do you like pizza?", None)], decode=config)
    assert isinstance(reply, Generation)
    assert reply.user_tokens == (
        *gen.tokenizer.token_strings(gen.tokenizer.encode("do you like pizza?")),
        "<eos>",
    )
    assert reply.tokens == tuple(gen.tokenizer.token_strings(reply.token_ids))
    assert len(reply.attention) == len(reply.tokens)
    for weights in reply.attention:
        assert len(weights) == len(reply.user_tokens)
        assert sum(weights) == pytest.approx(1.0, abs=1e-5)
    assert len(reply.n_best) == 3 and reply.n_best[0][0] == reply.text
    assert [s for _, s in reply.n_best] == sorted((s for _, s in reply.n_best), reverse=True)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\x00\x01\x1b[31m\r\n\t",
        "lone \ud800 surrogate \udfff",
        "x" * 1_000_000,
        "word " * 200_000,
        "🙂" * 5000,
    ],
)
def test_any_input_string_gets_a_reply(gen: Generator, text: str) -> None:
    [(reply, state)] = gen.respond([(gen.initial_state(), text, None)])
    assert len(reply.user_tokens) <= gen.max_input_tokens + 1
    assert reply.user_tokens[-1] == "<eos>"
    assert state.tensor.shape == (gen.state_size,) and bool(torch.isfinite(state.tensor).all())
    [observed] = gen.observe([gen.initial_state()], [text])
    assert torch.allclose(observed.tensor, state.tensor, atol=1e-6)


def test_long_input_keeps_its_first_tokens(gen: Generator) -> None:
    text = "do you like pizza? " * 100
    [(reply, _)] = gen.respond([(gen.initial_state(), text, None)])
    first = gen.tokenizer.encode(text)[: gen.max_input_tokens]
    assert reply.user_tokens == (*gen.tokenizer.token_strings(first), "<eos>")


def test_loading_a_run_folder(tiny_model_dir: Path) -> None:
    loaded = Generator.load(tiny_model_dir.parent, decode=DecodeConfig(strategy="beam"))
    assert loaded.max_input_tokens == 24 and loaded.decode.strategy == "beam"
    assert loaded.respond([]) == [] and loaded.observe([], []) == []


def test_concurrent_callers_get_the_sequential_replies(gen: Generator) -> None:
    weights = {k: v.clone() for k, v in gen.model.state_dict().items()}
    config = DecodeConfig(strategy="beam", beam_size=3)
    batches = [[(gen.initial_state(), f"{text} {i}", None) for text in TEXTS] for i in range(4)]
    expected = [[g.text for g, _ in gen.respond(b, decode=config)] for b in batches]
    results: dict[int, list[str]] = {}

    def work(i: int) -> None:
        for _ in range(3):
            results[i] = [g.text for g, _ in gen.respond(batches[i], decode=config)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [results[i] for i in range(4)] == expected
    assert all(torch.equal(v, weights[k]) for k, v in gen.model.state_dict().items())


# Flags -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "user", "previous", "flags"),
    [
        ("", "hi", None, ("empty",)),
        (" ?! ", "hi", None, ("empty",)),
        ("i am fine, i am fine", "how are you", None, ("loop",)),
        ("no no no", "is it raining?", None, ("loop",)),
        ("Hello there!", "hello there", None, ("echo",)),
        ("what do you do", "so what do you do for fun?", None, ("echo",)),
        ("i like pizza too", "I like pizza", None, ("echo",)),
        ("i like pizza, what about you?", "i like pizza", None, ()),
        ("I am good.", "how are you?", "i am good", ("repeat",)),
        ("i am good", "how are you?", "i'm good", ()),
        ("ha ha ha", "ha ha ha", "ha ha ha", ("loop", "echo", "repeat")),
        ("i love hiking", "what do you do?", None, ()),
    ],
)
def test_degenerate_flags(
    reply: str, user: str, previous: str | None, flags: tuple[str, ...]
) -> None:
    assert degenerate_flags(reply, user, previous) == flags


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    texts = ["ha ha ha, that is funny", "hello there, how are you?", "i am fine"] * 20
    return Tokenizer.train(texts, vocab_size=300, min_frequency=1)


def biased(tokenizer: Tokenizer, token: int) -> Generator:
    """A random model whose every step prefers `token`."""
    torch.manual_seed(0)
    model = HRED(Config.preset("tiny").model, vocab_size=tokenizer.vocab_size)
    with torch.no_grad():
        model.decoder.out_proj.weight.zero_()
        model.decoder.out_proj.bias.fill_(1.0)
        model.embedding.weight[token] = 1.0
    return Generator(model, tokenizer, decode=DecodeConfig(min_length=0, no_repeat_ngram=0))


def test_flags_of_degenerate_generations(tokenizer: Tokenizer) -> None:
    [ha] = tokenizer.encode(" ha")
    laughing = biased(tokenizer, ha)
    start = laughing.initial_state()
    [(loop, _)] = laughing.respond(
        [(start, "hello", None)], decode=laughing.decode.replace(max_length=6)
    )
    assert loop.text == "ha ha ha ha ha ha" and loop.flags == ("loop",)
    assert loop.confidence > 0.99
    short = laughing.decode.replace(max_length=1)
    [(echo, _), (repeat, _)] = laughing.respond(
        [(start, "Ha!", None), (start, "hi", "ha")], decode=short
    )
    assert (echo.text, echo.flags) == ("ha", ("echo",))
    assert (repeat.text, repeat.flags) == ("ha", ("repeat",))
    silent = biased(tokenizer, tokenizer.eos_id)
    [(empty, _)] = silent.respond([(start, "hello", None)])
    assert (empty.text, empty.tokens, empty.flags) == ("", (), ("empty",))
    assert empty.attention == () and empty.confidence > 0.99


def test_one_phrase_said_twice_in_a_long_reply_is_not_a_loop() -> None:
    from chatbot.generator import degenerate_flags

    reply = "I like to play piano, but I like to cook and I enjoy learning about music."
    assert degenerate_flags(reply, "what do you like to do?", None) == ()
    assert degenerate_flags("i am fine, i am fine", "how are you", None) == ("loop",)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(["a", "b", "ab", "ba", "i'm"]), max_size=8),
    st.lists(st.sampled_from(["a", "b", "ab", "ba", "i'm"]), max_size=4),
)
def test_contains_is_a_run_of_consecutive_words(outer: list[str], inner: list[str]) -> None:
    """The joined-string search agrees with comparing every slice of `outer`."""
    n = len(inner)
    by_slices = any(outer[i : i + n] == inner for i in range(len(outer) - n + 1))
    assert _contains(outer, inner) == by_slices


def _loop_by_definition(said: list[str]) -> bool:
    """`is_loop` spelled out: repeated n-grams, or one word LOOP_RUN times running."""
    grams = [tuple(said[i : i + LOOP_NGRAM]) for i in range(len(said) - LOOP_NGRAM + 1)]
    if grams and len(set(grams)) < LOOP_MAX_DISTINCT * len(grams):
        return True
    runs = (said[i : i + LOOP_RUN] for i in range(len(said) - LOOP_RUN + 1))
    return any(len(set(run)) == 1 for run in runs)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(["i", "like", "to", "cook", "a"]), max_size=14))
def test_is_loop_agrees_with_its_definition(said: list[str]) -> None:
    assert is_loop(said) == _loop_by_definition(said)
