"""The shipped default model: verified, loadable, deterministic. It is never retrained here."""

from __future__ import annotations

import json

import pytest

from chatbot.checkpoint import load_model, packaged_model_dir, resolve_model_dir, verify
from chatbot.generator import Generator

USER_TURNS = ["hi, how are you doing today?", "what do you like to do for fun?",
              "do you have any plans for the weekend?"]


@pytest.fixture(scope="module")
def generator() -> Generator:
    return Generator.load("default")


def test_the_name_default_resolves_to_the_packaged_model() -> None:
    assert resolve_model_dir("default") == packaged_model_dir()


def test_the_shipped_model_verifies_and_is_small() -> None:
    folder = packaged_model_dir()
    manifest = verify(folder)
    sizes = {name: entry["size"] for name, entry in manifest["files"].items()}
    assert set(sizes) == {"model.safetensors", "config.json", "tokenizer.json",
                          "replies.json.gz", "ranker.json"}
    assert sum(sizes.values()) <= 20 * 1024 * 1024


def test_the_shipped_model_records_its_provenance() -> None:
    loaded = load_model(packaged_model_dir())
    info = loaded.info
    assert info["corpus"] == "chitchat"
    assert info["split_seed"] == 0
    assert info["conversations"] == {"train": 3625, "valid": 191, "test": 201}
    assert info["steps"] == 700 and info["val_ppl"] < 65
    assert info["init_from"]["steps"] == 383
    assert loaded.config.model.ranker_size == 256 and loaded.model.ranker is not None
    assert {"torch", "tokenizers", "safetensors", "python"} <= set(info["libraries"])
    meta = json.loads((packaged_model_dir() / "config.json").read_text())
    assert meta["config"]["train"]["save_dtype"] == "float16"
    assert all(p.dtype.is_floating_point and p.dtype.itemsize == 4
               for p in loaded.model.parameters())


def _exchange(generator: Generator) -> list[str]:
    state, previous, replies = generator.initial_state(), None, []
    for user in USER_TURNS:
        [(generation, state)] = generator.respond([(state, user, previous)])
        [state] = generator.observe([state], [generation.text])
        previous = generation.text
        replies.append(generation.text)
    return replies


def test_a_multi_turn_exchange_is_deterministic(generator: Generator) -> None:
    first = _exchange(generator)
    again = _exchange(Generator.load("default"))
    assert first == again
    assert all(reply.strip() for reply in first)
    assert first == GOLDEN_EXCHANGE


GOLDEN_EXCHANGE = [  # chosen by the shipped ranker among greedy and retrieved replies
    "Im doing well! How about you??",
    "I like learning about technology, specifically, mobile technology. I also play soccer "
    "and piano. How about you?",
    "Not really. Since I just moved into a bigger place. Probably spend most of it working on "
    "the house",
]
