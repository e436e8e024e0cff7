"""The selector inside the generator: candidates, one batched scoring pass, the choice."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from chatbot.checkpoint import load_model
from chatbot.config import DecodeConfig
from chatbot.errors import FormatError
from chatbot.generator import Generator
from chatbot.replies.filter import ReplyFilter
from chatbot.replies.index import INDEX_FILE
from chatbot.replies.rank import RANKER_FILE, RankerWeights, ReplyEmbeddings
from chatbot.replies.select import best

USER = "do you have any pets?"


@pytest.fixture(scope="module")
def gen(tiny_rank_model_dir: Path) -> Generator:
    torch.set_num_threads(1)
    return Generator.from_loaded(load_model(tiny_rank_model_dir))


def test_the_model_directory_lists_its_index_and_ranker(tiny_rank_model_dir: Path) -> None:
    loaded = load_model(tiny_rank_model_dir)
    files = loaded.info["manifest"]["files"]
    assert INDEX_FILE in files and RANKER_FILE in files
    weights = RankerWeights.from_json((tiny_rank_model_dir / RANKER_FILE).read_text())
    assert weights.fitted_on == (
        "20 held-out turns, true reply vs 19 retrieved + 19 random + the greedy reply"
    )
    assert loaded.model.ranker is not None


def test_pure_generation_has_no_candidates(gen: Generator) -> None:
    [(g, _)] = gen.respond([(gen.initial_state(), USER, None)],
                           decode=DecodeConfig(ranker="none"))
    assert g.candidates == () and g.source == "generated" and g.ranker == "none"


def test_the_winner_is_the_best_scored_candidate(gen: Generator) -> None:
    [(g, _)] = gen.respond([(gen.initial_state(), USER, None)], decode=DecodeConfig())
    assert g.ranker == "model"
    sources = {c.source for c in g.candidates}
    assert sources == {"generated", "retrieved"}
    winner = best(g.candidates)
    assert winner is not None and winner.text == g.text and winner.source == g.source
    assert g.confidence == pytest.approx(gen.weights.confidence(winner.score, winner.features))
    retrieved = [c for c in g.candidates if c.source == "retrieved"]
    assert all(c.origin and c.origin.startswith("conversation ") for c in retrieved)
    assert [c.similarity for c in retrieved] == sorted(c.similarity for c in retrieved)[::-1]


def test_selection_features_equal_the_rank_method(gen: Generator) -> None:
    state = gen.observe([gen.initial_state()], ["hello"])[0]
    [(g, _)] = gen.respond([(state, USER, "hi")], decode=DecodeConfig())
    kept = [c for c in g.candidates if c.dropped is None]
    [features] = gen.rank(
        [(state, USER, [c.text for c in kept])],
        similarity=[[c.similarity for c in kept]],
        generated=[[c.source == "generated" for c in kept]],
    )
    assert torch.allclose(features, torch.tensor([c.features for c in kept]), atol=1e-5)


def test_log_p_feature_is_the_teacher_forced_log_likelihood(gen: Generator) -> None:
    state = gen.observe([gen.initial_state()], ["good morning"])[0]
    replies = ["i have a dog named max", "no, never pineapple", "yes"]
    [features] = gen.rank([(state, USER, replies)])
    for reply, row in zip(replies, features, strict=True):
        tokens = len(gen.tokenizer.encode(reply)) + 1
        assert float(row[1]) * tokens == pytest.approx(gen.score(state, USER, reply), abs=1e-4)


def test_log_prior_is_the_likelihood_after_an_empty_turn(gen: Generator) -> None:
    reply = "i love pizza, especially with mushrooms"
    [features] = gen.rank([(gen.initial_state(), USER, [reply])])
    tokens = len(gen.tokenizer.encode(reply)) + 1
    log_p = float(features[0, 1]) * tokens
    prior = gen.score(gen.initial_state(), "", reply)
    lam = gen.weights.mmi_lambda
    assert float(features[0, 2]) * tokens == pytest.approx(log_p - lam * prior, abs=1e-4)


def test_a_batch_scores_as_each_item_alone(gen: Generator) -> None:
    states = [gen.initial_state(), gen.observe([gen.initial_state()], ["hello"])[0]]
    items = [(states[0], USER, ["i have a dog", "yes"]),
             (states[1], "what music do you like?", ["rock", "mostly rock and some jazz", "no"])]
    together = gen.rank(items)
    for item, batched in zip(items, together, strict=True):
        [alone] = gen.rank([item])
        assert torch.allclose(alone, batched, atol=1e-5)


def test_a_blocked_candidate_never_wins(gen: Generator) -> None:
    [(g, _)] = gen.respond([(gen.initial_state(), USER, None)], decode=DecodeConfig())
    first = best(g.candidates)
    assert first is not None
    word = max(first.text.split(), key=len).strip("?!.,")
    strict = Generator(
        gen.model, gen.tokenizer, index=gen.index, weights=gen.weights,
        reply_filter=ReplyFilter(words=(word,)),
    )
    [(again, _)] = strict.respond([(gen.initial_state(), USER, None)], decode=DecodeConfig())
    assert word.casefold() not in again.text.casefold().split()
    dropped = [c for c in again.candidates if c.text == first.text]
    assert dropped and dropped[0].dropped == f"blocked: word '{word.casefold()}'"


def test_everything_blocked_leaves_no_reply_to_say(gen: Generator) -> None:
    everything = ReplyFilter(patterns=(re.compile(r"\w"),), pattern_names=("all",))
    strict = Generator(gen.model, gen.tokenizer, index=gen.index, weights=gen.weights,
                       reply_filter=everything)
    [(g, _)] = strict.respond([(gen.initial_state(), USER, None)], decode=DecodeConfig())
    assert g.confidence == 0.0 and "blocked" in g.flags
    assert all(c.dropped for c in g.candidates)


def test_mmi_ranks_by_pointwise_mutual_information(gen: Generator) -> None:
    config = DecodeConfig(ranker="mmi", mmi_lambda=0.5)
    [(g, _)] = gen.respond([(gen.initial_state(), USER, None)], decode=config)
    kept = [c for c in g.candidates if c.dropped is None]
    assert g.ranker == "mmi"
    assert all(c.score == pytest.approx(c.features[2]) for c in kept)
    assert g.text == max(kept, key=lambda c: c.score or 0.0).text


def test_retrieve_zero_keeps_generated_candidates_only(gen: Generator) -> None:
    [(g, _)] = gen.respond([(gen.initial_state(), USER, None)],
                           decode=DecodeConfig(retrieve=0, strategy="beam", n_best=3))
    assert {c.source for c in g.candidates} == {"generated"}


def test_consensus_is_the_mean_cosine_to_the_turns_other_candidates() -> None:
    from chatbot.replies.rank import _consensus

    rows = torch.nn.functional.normalize(torch.tensor(
        [[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [1.0, 1.0], [3.0, -1.0]]), dim=1)
    owner = torch.tensor([0, 0, 0, 1, 2])
    got = _consensus(rows, owner)
    cos = rows @ rows.T
    expected = [(cos[0, 1] + cos[0, 2]) / 2, (cos[1, 0] + cos[1, 2]) / 2,
                (cos[2, 0] + cos[2, 1]) / 2, 0.0, 0.0]
    assert got.tolist() == pytest.approx([float(x) for x in expected])


def test_index_set_writes_weights_with_a_note(tiny_rank_model_dir: Path, tmp_path: Path) -> None:
    import shutil

    from chatbot.cli import main

    model = tmp_path / "model"
    shutil.copytree(tiny_rank_model_dir, model)
    assert main(["index", str(model), "--set", "match=1", "similarity=5", "generated=-3"]) == 0
    weights = RankerWeights.from_json((model / RANKER_FILE).read_text())
    assert (weights.match, weights.similarity, weights.generated) == (1.0, 5.0, -3.0)
    assert weights.fitted_on == "set by hand: match=1, similarity=5, generated=-3"
    load_model(model)  # the manifest lists the rewritten file
    assert main(["index", str(model), "--set", "speed=3"]) == 2


def test_cached_reply_embeddings_equal_fresh_ones_and_skip_the_encoder(
    gen: Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = gen.model
    assert model.ranker is not None
    texts = ["i like pizza", "me too", "i like pizza", "what about you?", "me too"]
    tokens, _ = gen._pad([gen.tokenizer.encode(t) for t in texts])
    lengths = (tokens != model.pad_id).sum(1)
    with torch.inference_mode():
        _, vectors = model.encoder(tokens, lengths)
        fresh = model.ranker.embed_reply(vectors)
        cache = ReplyEmbeddings(size=3)
        first = cache.embed(model, tokens, lengths)
        assert len(cache) == 3  # three distinct replies
        encoded: list[int] = []
        encoder = model.encoder.forward

        def counting(t: torch.Tensor, n: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            encoded.append(len(t))
            return encoder(t, n)

        monkeypatch.setattr(model.encoder, "forward", counting)
        again = cache.embed(model, tokens, lengths)
        assert encoded == []  # every reply came from the cache
        more, _ = gen._pad([gen.tokenizer.encode(t) for t in ["a new one", "me too"]])
        cache.embed(model, more, (more != model.pad_id).sum(1))
        assert encoded == [1] and len(cache) == 3  # the least recently used went
    torch.testing.assert_close(first, fresh, rtol=0, atol=1e-5)
    assert torch.equal(again, first)
    assert torch.equal(first[0], first[2]) and torch.equal(first[1], first[4])


def test_warmed_index_embeddings_equal_fresh_ones(gen: Generator,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    assert gen.index is not None and gen.model.ranker is not None
    warmed = gen  # the module's generator: its caches are cleared at the end
    count = warmed.warm_reply_embeddings()
    distinct = {tuple(warmed.tokenizer.encode(warmed.index.reply(e))) for e in range(
        len(warmed.index))}  # type: ignore[union-attr]
    assert count == len(distinct)
    texts = [warmed.index.reply(e) for e in range(5)]  # type: ignore[union-attr]
    tokens, lengths = warmed._pad([warmed.tokenizer.encode(t) for t in texts])
    with torch.inference_mode():
        _, vectors = warmed.model.encoder(tokens, lengths)
        fresh = warmed.model.ranker.embed_reply(vectors)  # type: ignore[union-attr]
        calls: list[int] = []
        encoder = warmed.model.encoder.forward
        monkeypatch.setattr(warmed.model.encoder, "forward",
                            lambda t, n: calls.append(len(t)) or encoder(t, n))
        table = warmed._reply_embeddings.embed(warmed.model, tokens, lengths)
    assert calls == []  # all five came from the table
    # The table holds each embedding in half precision: the fresh one rounded,
    # give or take one step of float16 (2**-10 relative) where the batch differs.
    torch.testing.assert_close(table, fresh.half().float(), rtol=2**-10, atol=0)
    assert not torch.equal(table, fresh)
    warmed.clear_caches()


def test_the_reply_table_is_kept_in_the_cache_folder_and_read_back(
        tiny_rank_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    first = Generator.from_loaded(load_model(tiny_rank_model_dir))
    count = first.warm_reply_embeddings(tmp_path)
    [saved] = tmp_path.glob("reply-vectors-*.safetensors")
    table = first._reply_embeddings

    second = Generator.from_loaded(load_model(tiny_rank_model_dir))
    calls: list[int] = []
    encoder = second.model.encoder.forward
    monkeypatch.setattr(second.model.encoder, "forward",
                        lambda t, n: calls.append(len(t)) or encoder(t, n))
    assert second.warm_reply_embeddings(tmp_path) == count > 0
    assert calls == []  # read, not computed
    loaded = second._reply_embeddings
    assert loaded._table == table._table
    assert torch.equal(loaded._matrix, table._matrix)  # type: ignore[arg-type]

    # A broken file is computed again and rewritten; the warning names it. (It is
    # replaced, as every writer of the cache replaces files: the tables above map
    # the old one, which truncating in place would pull from under them.)
    broken = tmp_path / "broken.tmp"
    broken.write_bytes(saved.read_bytes()[:100])
    broken.replace(saved)
    third = Generator.from_loaded(load_model(tiny_rank_model_dir))
    with caplog.at_level("WARNING", logger="chatbot.generator"):
        assert third.warm_reply_embeddings(tmp_path) == count
    assert str(saved) in caplog.text and "computing the reply embeddings again" in caplog.text
    assert torch.equal(third._reply_embeddings._matrix, table._matrix)  # type: ignore[arg-type]
    assert [p.name for p in tmp_path.iterdir()] == [saved.name]
    ReplyEmbeddings().load_table(saved, third._vectors_meta())  # whole again


def test_a_reply_table_of_other_weights_is_refused(gen: Generator, tmp_path: Path) -> None:
    gen.warm_reply_embeddings(tmp_path)
    [saved] = tmp_path.glob("reply-vectors-*.safetensors")
    other = {**gen._vectors_meta(), "model.safetensors": "0" * 64}
    with pytest.raises(FormatError) as info:
        ReplyEmbeddings().load_table(saved, other)
    assert info.value.path == str(saved) and "computed for" in info.value.message
    gen.clear_caches()


def test_a_stopped_table_computation_writes_nothing_and_returns_zero(
        tiny_rank_model_dir: Path, tmp_path: Path) -> None:
    import threading

    stop = threading.Event()
    generator = Generator.from_loaded(load_model(tiny_rank_model_dir))
    stop.set()
    assert generator.warm_reply_embeddings(tmp_path, stop=stop) == 0
    assert list(tmp_path.iterdir()) == []
    assert generator._reply_embeddings.filled == 0
    assert generator.warm_reply_embeddings(tmp_path) > 0  # unstopped, it fills and writes
    assert len(list(tmp_path.glob("reply-vectors-*.safetensors"))) == 1


def test_a_truncated_reply_table_is_refused_before_it_is_mapped(gen: Generator,
                                                                  tmp_path: Path) -> None:
    from chatbot.errors import FormatError

    gen.warm_reply_embeddings(tmp_path)
    [saved] = tmp_path.glob("reply-vectors-*.safetensors")
    data = saved.read_bytes()
    for cut in (len(data) - 1, len(data) // 2, 9, 4):
        saved.write_bytes(data[:cut])
        with pytest.raises(FormatError, match="not a reply-vector table"):
            ReplyEmbeddings().load_table(saved, gen._vectors_meta())
    saved.write_bytes(data + b"\0")
    with pytest.raises(FormatError, match="bytes, but the header describes"):
        ReplyEmbeddings().load_table(saved, gen._vectors_meta())
