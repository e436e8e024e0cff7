from __future__ import annotations

import math
from collections.abc import Sequence

import pytest
import torch

from chatbot.config import Config
from chatbot.decoding import (
    DecodeConfig,
    Hypothesis,
    NgramBans,
    Search,
    StepFn,
    Strategy,
    block_ngrams,
    constrain,
    constrain_,
    decode,
    sample_tokens,
)
from chatbot.errors import ConfigError
from chatbot.model import HRED, Memory

PAD, BOS, EOS, SEP = 0, 1, 2, 3
VOCAB = 40


# A random HRED and its batched start -------------------------------------------


@pytest.fixture(scope="module")
def model() -> HRED:
    torch.manual_seed(1)
    return HRED(Config.preset("tiny").model, vocab_size=VOCAB).eval()


USERS = [[5, 6, 7, 8, 9], [10, 11], [12, 13, 14, 15, 16, 17, 18, 19], [20]]


def start(model: HRED, users: Sequence[Sequence[int]], seed: int = 0) -> Search:
    """Encodes `users` (each + <eos>) from seeded random states."""
    g = torch.Generator().manual_seed(seed)
    states = torch.randn(len(users), model.config.context_size, generator=g)
    width = max(len(u) for u in users) + 1
    tokens = torch.full((len(users), width), PAD)
    for i, user in enumerate(users):
        tokens[i, : len(user) + 1] = torch.tensor([*user, EOS])
    lengths = torch.tensor([len(u) + 1 for u in users])
    with torch.no_grad():
        outputs, mask, vectors = model.encode(tokens, lengths)
        state = model.update_state(vectors, states)
        hidden, memory = model.start_reply(state, outputs, mask)
    return Search(
        hidden, memory, tokens.masked_fill(tokens == EOS, PAD), BOS, EOS, PAD, (PAD, BOS, SEP)
    )


def row(search: Search, i: int) -> Search:
    index = torch.tensor([i])
    return Search(
        search.hidden[:, index],
        search.memory.select(index),
        search.user[index],
        BOS,
        EOS,
        PAD,
        search.banned,
    )


def run(
    model: HRED,
    search: Search,
    config: DecodeConfig,
    generators: Sequence[torch.Generator] | None = None,
) -> list[list[Hypothesis]]:
    with torch.no_grad():
        return decode(model.decoder.step, search, config=config, generators=generators)


# A fake decoder: the next token's logits depend on the previous token only ------


def table_step(table: torch.Tensor) -> StepFn:
    """A step function whose logits are `table[token]`."""

    def step(
        token: torch.Tensor, hidden: torch.Tensor, memory: Memory
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return table[token].clone(), hidden, torch.ones(len(token), memory.mask.shape[1])

    return step


def fake_search(users: Sequence[Sequence[int]]) -> Search:
    b = len(users)
    width = max(len(u) for u in users)
    user = torch.full((b, width), PAD)
    for i, u in enumerate(users):
        user[i, : len(u)] = torch.tensor(u)
    memory = Memory(
        torch.zeros(b, 1, 2),
        torch.zeros(b, 1, 2),
        torch.ones(b, 1, dtype=torch.bool),
        torch.zeros(b, 2),
    )
    return Search(torch.zeros(1, b, 2), memory, user, BOS, EOS, PAD, (PAD, BOS, SEP))


def cycle_table(order: Sequence[int], v: int = 12) -> torch.Tensor:
    """Each token of `order` prefers the next one (then the one after); `<eos>` is unlikely."""
    table = torch.zeros(v, v)
    table[:, EOS] = -5.0
    chain = [BOS, *order]
    for a, b in zip(chain, [*order, *order][: len(chain)], strict=True):
        table[a, b] = 5.0
    for a, b in zip(order, [*order[2:], *order[:2]], strict=True):
        table[a, b] = 4.0
    return table


def ngrams(tokens: Sequence[int], n: int) -> list[tuple[int, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


# DecodeConfig -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"beam_size": 0}, "decode.beam_size must be in [1, 64] (got 0)"),
        ({"top_p": 1.5}, "decode.top_p must be in (0, 1] (got 1.5)"),
        ({"top_p": 0.0}, "decode.top_p must be in (0, 1] (got 0.0)"),
        ({"temperature": -0.5}, "decode.temperature must be >= 0 (0 = argmax) (got -0.5)"),
        ({"temperature": math.nan}, "decode.temperature must be finite (got nan)"),
        ({"max_length": 0}, "decode.max_length must be in [1, 512] (got 0)"),
        ({"min_length": 40}, "decode.min_length must be in [0, max_length=32] (got 40)"),
        ({"n_best": 6}, "decode.n_best must be in [1, beam_size=5] (got 6)"),
        ({"top_k": -1}, "decode.top_k must be >= 0 (0 = off) (got -1)"),
        ({"repetition_penalty": 0.0}, "decode.repetition_penalty must be positive (1 = off)"),
        ({"no_repeat_ngram": -2}, "decode.no_repeat_ngram must be >= 0 (0 = off) (got -2)"),
        ({"strategy": "topk"}, "decode.strategy must be one of greedy, beam, sample (got 'topk')"),
        ({"beam_size": True}, "decode.beam_size must be an integer (got True)"),
        ({"beam_size": 2.5}, "decode.beam_size must be an integer (got 2.5)"),
    ],
)
def test_invalid_settings_are_clear_errors(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        DecodeConfig(**changes)  # type: ignore[arg-type]
    assert str(info.value).startswith(message)
    with pytest.raises(ConfigError):
        DecodeConfig().replace(**changes)


def test_replace_parses_strings_from_a_repl() -> None:
    config = DecodeConfig().replace(strategy="beam", temperature="0.7", beam_size="3", top_p=" 0.9")
    assert config == DecodeConfig(strategy="beam", temperature=0.7, beam_size=3, top_p=0.9)
    DecodeConfig().validate()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"tempreature": "1"},
            "unknown decode setting 'tempreature' (did you mean 'temperature'?)",
        ),
        ({"beam_size": "five"}, "decode.beam_size expects an integer, got 'five'"),
        ({"top_p": "x"}, "decode.top_p expects a finite number, got 'x'"),
        ({"temperature": "inf"}, "decode.temperature expects a finite number, got 'inf'"),
        ({"strategy": " best"}, "decode.strategy must be one of greedy, beam, sample (got 'best')"),
        ({"beam_size": "0"}, "decode.beam_size must be in [1, 64] (got 0)"),
    ],
)
def test_replace_rejects_bad_values(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        DecodeConfig().replace(**changes)
    assert str(info.value).startswith(message)


# Logit constraints and token choice ------------------------------------------------


def test_block_ngrams_bans_the_token_completing_a_seen_ngram() -> None:
    source = torch.tensor([[4, 5, 6, 4, 5, 7], [4, 5, 6, 0, 0, 0]])
    prefix = torch.tensor([[4, 5], [5, 6]])
    out = block_ngrams(torch.zeros(2, 10), source, prefix)
    assert torch.isneginf(out[0]).nonzero().flatten().tolist() == [6, 7]
    assert torch.isneginf(out[1]).nonzero().flatten().tolist() == [0]
    unigrams = block_ngrams(torch.zeros(1, 10), torch.tensor([[8, 4]]), torch.zeros(1, 0).long())
    assert torch.isneginf(unigrams[0]).nonzero().flatten().tolist() == [4, 8]


@pytest.mark.parametrize(("repeat", "copy"), [(3, 0), (0, 2), (2, 3), (1, 1)])
def test_host_bans_equal_the_tensor_scan(repeat: int, copy: int) -> None:
    """`NgramBans` (dict lookups, kept as tokens arrive) bans exactly what
    `constrain` scanning the history and the user's tokens bans, at every step."""
    generator = torch.Generator().manual_seed(repeat * 10 + copy)
    users = [torch.randint(4, 9, (n,), generator=generator).tolist() for n in (7, 1, 4)]
    search = fake_search(users)
    config = DecodeConfig(no_repeat_ngram=repeat, block_user_ngrams=copy, min_length=0)
    replies = torch.randint(4, 9, (3, 12), generator=generator)
    bans = NgramBans(search.user, search, config)
    for t in range(replies.shape[1]):
        # From step 6 on, row 1 has left the batch (as finished rows do).
        rows = [0, 1, 2] if t < 6 else [0, 2]
        history, user = replies[rows, :t], search.user[rows]
        scanned = constrain(torch.zeros(len(rows), 10), history, search, config, user)
        looked_up = constrain_(
            torch.zeros(len(rows), 10), history, search, config, user, bans, rows
        )
        assert torch.equal(torch.isneginf(scanned), torch.isneginf(looked_up)), t
        bans.push(rows, replies[rows, t].tolist())


def test_constrain_bans_specials_and_early_eos_but_never_everything() -> None:
    search = fake_search([[4]])
    logits = torch.arange(6.0).unsqueeze(0)
    config = DecodeConfig(min_length=1, no_repeat_ngram=1)
    out = constrain(logits, torch.zeros(1, 0).long(), search, config, search.user)
    assert out[0].tolist() == [-math.inf, -math.inf, -math.inf, -math.inf, 4.0, 5.0]
    history = torch.tensor([[4, 5]])
    stuck = constrain(logits, history, search, config, search.user)
    assert stuck[0].tolist() == [-math.inf, -math.inf, 2.0, -math.inf, -math.inf, -math.inf]


def test_repetition_penalty_divides_positive_and_multiplies_negative_logits() -> None:
    search = fake_search([[4]])
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0, 4.0, -2.0, 1.0]])
    config = DecodeConfig(repetition_penalty=2.0, no_repeat_ngram=0)
    out = constrain(logits, torch.tensor([[4, 5, 4]]), search, config, search.user)
    assert out[0, 4:].tolist() == [2.0, -4.0, 1.0]


def test_sampling_follows_the_distribution_by_inverse_cdf() -> None:
    probs = torch.tensor([0.5, 0.3, 0.2])
    logits = probs.log().expand(1000, 3)
    uniforms = torch.arange(1000) / 1000
    tokens = sample_tokens(logits, uniforms, DecodeConfig(strategy="sample"))
    assert torch.bincount(tokens, minlength=3).tolist() == [500, 300, 200]
    top2 = sample_tokens(logits, uniforms, DecodeConfig(strategy="sample", top_k=2))
    assert torch.bincount(top2, minlength=3).tolist() == [625, 375, 0]
    nucleus = sample_tokens(logits, uniforms, DecodeConfig(strategy="sample", top_p=0.75))
    assert torch.bincount(nucleus, minlength=3).tolist() == [625, 375, 0]
    cold = sample_tokens(logits, uniforms, DecodeConfig(strategy="sample", temperature=0.0))
    assert cold.eq(0).all()


def test_temperature_zero_sample_equals_greedy(model: HRED) -> None:
    search = start(model, USERS)
    greedy = run(model, search, DecodeConfig())
    cold = run(model, search, DecodeConfig(strategy="sample", temperature=0.0))
    assert [h[0].tokens for h in cold] == [h[0].tokens for h in greedy]


# Strategies on a fake decoder ---------------------------------------------------


@pytest.mark.parametrize("strategy", ["greedy", "beam", "sample"])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_ngram_blocking_leaves_no_repeated_ngram(strategy: Strategy, n: int) -> None:
    step = table_step(cycle_table([4, 5, 6, 7]))
    config = DecodeConfig(
        strategy=strategy,
        no_repeat_ngram=n,
        max_length=20,
        temperature=0.3,
    )
    unblocked = decode(step, fake_search([[4]]), config=config.replace(no_repeat_ngram=0))
    assert len(set(ngrams(unblocked[0][0].tokens, n))) < len(ngrams(unblocked[0][0].tokens, n))
    [[best]] = decode(
        step, fake_search([[4]]), config=config, generators=[torch.Generator().manual_seed(0)]
    )
    grams = ngrams(best.tokens, n)
    assert grams and len(set(grams)) == len(grams)


@pytest.mark.parametrize("strategy", ["greedy", "beam"])
def test_user_ngram_blocking_copies_no_user_ngram(strategy: Strategy) -> None:
    step = table_step(cycle_table([4, 5, 6, 7, 8]))
    user = [9, 5, 6, 7, 10]
    config = DecodeConfig(
        strategy=strategy,
        block_user_ngrams=2,
        no_repeat_ngram=0,
        max_length=12,
    )
    [[free]] = decode(step, fake_search([user]), config=config.replace(block_user_ngrams=0))
    assert set(ngrams(free.tokens, 2)) & set(ngrams(user, 2))
    [[best]] = decode(step, fake_search([user]), config=config)
    assert len(best.tokens) == 12
    assert not set(ngrams(best.tokens, 2)) & set(ngrams(user, 2))


@pytest.mark.parametrize("strategy", ["greedy", "beam", "sample"])
def test_min_length_suppresses_eos(strategy: Strategy) -> None:
    table = torch.zeros(12, 12)
    table[:, EOS] = 6.0
    table[:, 4:] = torch.linspace(3.0, 1.0, 8)
    step = table_step(table)
    for min_length in (0, 1, 4):
        config = DecodeConfig(
            strategy=strategy,
            min_length=min_length,
            no_repeat_ngram=0,
            temperature=0.0,
        )
        [[best]] = decode(step, fake_search([[4]]), config=config)
        assert len(best.tokens) == min_length and best.ended
        assert len(best.logprobs) == min_length + 1


@pytest.mark.parametrize("strategy", ["greedy", "beam", "sample"])
def test_max_length_stops_without_eos(strategy: Strategy) -> None:
    step = table_step(cycle_table([4, 5, 6]))
    config = DecodeConfig(strategy=strategy, max_length=7, no_repeat_ngram=0)
    for hyps in decode(
        step,
        fake_search([[4], [5, 6]]),
        config=config,
        generators=[torch.Generator().manual_seed(i) for i in range(2)],
    ):
        assert len(hyps[0].tokens) == 7 and not hyps[0].ended
        assert len(hyps[0].logprobs) == 7 and hyps[0].attention.shape == (7, 1)


def test_greedy_stops_at_eos_and_scores_the_eos() -> None:
    table = cycle_table([4, 5, 6])
    table[6, EOS] = 9.0
    [[best]] = decode(table_step(table), fake_search([[4]]), config=DecodeConfig(min_length=0))
    assert best.tokens == (4, 5, 6) and best.ended
    expected = [
        torch.log_softmax(table[a], 0)[b].item() for a, b in [(1, 4), (4, 5), (5, 6), (6, 2)]
    ]
    assert best.logprobs == pytest.approx(expected, abs=1e-6)
    assert best.score == pytest.approx(sum(expected) / 4, abs=1e-6)
    config = DecodeConfig(min_length=0, length_penalty=0.0)
    [[summed]] = decode(table_step(table), fake_search([[4]]), config=config)
    assert summed.score == pytest.approx(sum(expected), abs=1e-6)
    assert best.confidence == pytest.approx(math.exp(sum(expected) / 4), abs=1e-6)


def test_beam_finds_the_better_sequence_that_greedy_misses() -> None:
    table = torch.full((12, 12), -20.0)
    table[BOS, 4], table[BOS, 5] = 1.0, 0.9
    table[4, 6], table[4, 7] = 0.0, 0.0
    table[5, EOS] = 10.0
    table[6, EOS] = table[7, EOS] = 10.0
    config = DecodeConfig(no_repeat_ngram=0, length_penalty=0.0)
    [[greedy]] = decode(table_step(table), fake_search([[4]]), config=config)
    beams = decode(
        table_step(table),
        fake_search([[4]]),
        config=config.replace(strategy="beam", beam_size=3, n_best=3),
    )
    assert greedy.tokens[0] == 4
    assert [h.tokens for h in beams[0]][0] == (5,)
    assert len(beams[0]) == 3
    scores = [h.score for h in beams[0]]
    assert scores == sorted(scores, reverse=True)


# Strategies on a random HRED -----------------------------------------------------


def test_beam_size_one_equals_greedy(model: HRED) -> None:
    search = start(model, USERS)
    for blocking in (0, 2):
        greedy = run(model, search, DecodeConfig(no_repeat_ngram=blocking, max_length=12))
        beam = run(
            model,
            search,
            DecodeConfig(strategy="beam", beam_size=1, no_repeat_ngram=blocking, max_length=12),
        )
        for g, b in zip(greedy, beam, strict=True):
            assert g[0].tokens == b[0].tokens and g[0].ended == b[0].ended
            assert g[0].logprobs == pytest.approx(b[0].logprobs, abs=1e-5)
            assert g[0].score == pytest.approx(b[0].score, abs=1e-5)
            assert torch.allclose(g[0].attention, b[0].attention, atol=1e-6)


@pytest.mark.parametrize(
    "config",
    [
        DecodeConfig(max_length=10),
        DecodeConfig(strategy="beam", beam_size=3, n_best=3, max_length=10),
        DecodeConfig(strategy="sample", top_k=20, top_p=0.95, temperature=0.9, max_length=10),
    ],
    ids=["greedy", "beam", "sample"],
)
def test_a_batch_decodes_as_its_rows_alone(model: HRED, config: DecodeConfig) -> None:
    search = start(model, USERS)
    gens = [torch.Generator().manual_seed(100 + i) for i in range(len(USERS))]
    batch = run(model, search, config, generators=gens)
    for i in range(len(USERS)):
        [alone] = run(
            model, row(search, i), config, generators=[torch.Generator().manual_seed(100 + i)]
        )
        assert [h.tokens for h in alone] == [h.tokens for h in batch[i]]
        for a, b in zip(alone, batch[i], strict=True):
            assert a.logprobs == pytest.approx(b.logprobs, abs=1e-5)
            assert torch.allclose(a.attention, b.attention, atol=1e-5)


def test_a_seed_reproduces_a_sample_and_seeds_differ(model: HRED) -> None:
    search = row(start(model, USERS), 0)
    config = DecodeConfig(strategy="sample", max_length=10)

    def sample_with(seed: int) -> tuple[int, ...]:
        [[best]] = run(model, search, config, generators=[torch.Generator().manual_seed(seed)])
        return best.tokens

    assert sample_with(7) == sample_with(7)
    assert any(sample_with(seed) != sample_with(7) for seed in range(8, 12))


def test_beam_logprobs_are_the_models_teacher_forced_logprobs(model: HRED) -> None:
    search = start(model, USERS[:2])
    config = DecodeConfig(strategy="beam", beam_size=4, n_best=4, max_length=6)
    for i, hyps in enumerate(run(model, search, config)):
        for hyp in hyps:
            targets = torch.tensor([[*hyp.tokens, EOS][: len(hyp.logprobs)]])
            inputs = torch.tensor([[BOS, *hyp.tokens][: len(hyp.logprobs)]])
            alone = row(search, i)
            with torch.no_grad():
                features, _, _ = model.decoder(inputs, alone.hidden, alone.memory)
                logprobs = model.decoder.logits(features).log_softmax(-1)
            expected = logprobs[0].gather(1, targets.T).squeeze(1)
            assert hyp.logprobs == pytest.approx(expected.tolist(), abs=1e-5)
