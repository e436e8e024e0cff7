"""Shared fixtures: a small corpus the tests write, and a tiny model trained on it once."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from chatbot.session import MemoryStore, SessionStore, SQLiteStore

DIALOGUES = [
    ["hi there", "hello! how are you?", "i am good, thanks. and you?", "doing well, thank you"],
    ["hello", "hi, what's up?", "not much, just relaxing", "sounds nice"],
    ["what do you do for fun?", "i like hiking and reading", "what was the last book you read?",
     "a mystery novel about a lighthouse", "was it good?", "yes, i could not put it down"],
    ["do you like pizza?", "i love pizza, especially with mushrooms", "me too! pineapple?",
     "no, never pineapple", "fair enough"],
    ["how was your weekend?", "it was great, i went to the beach", "lucky you, was it sunny?",
     "very sunny and warm", "i stayed home and studied"],
    ["are you a student?", "yes, i study biology", "that's cool, what year?", "my third year",
     "almost done then"],
    ["good morning", "good morning! did you sleep well?", "not really, i had a test",
     "oh no, how did it go?", "i think it went fine"],
    ["what's your favorite movie?", "probably the lord of the rings", "the books or the films?",
     "both, but the films more", "i have never seen them"],
    ["do you have any pets?", "i have a dog named max", "what kind of dog?", "a golden retriever",
     "they are so friendly"],
    ["where are you from?", "i am from utah", "do you like it there?",
     "yes, the mountains are great",
     "i would like to visit someday"],
    ["what music do you like?", "mostly rock and some jazz", "any favorite bands?",
     "queen and the beatles", "classic choices"],
    ["i am so tired today", "why, what happened?", "i stayed up late watching a show",
     "which show?", "a cooking competition"],
]


def _conversations(count: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    return [list(rng.choice(DIALOGUES)) for _ in range(count)]


@pytest.fixture(autouse=True)
def _seed() -> None:
    random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _cache_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a test caches (a server's reply table) goes to a folder of the test run,
    never to the user's `~/.cache`."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache-home"))


@pytest.fixture(scope="session")
def corpus_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A `jsonl:` corpus of 120 short conversations."""
    path = tmp_path_factory.mktemp("corpus") / "dialogues.jsonl"
    lines = [json.dumps(conv) for conv in _conversations(120, seed=1)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, corpus_file: Path) -> Path:
    """A run folder of the `tiny` preset trained for 60 steps on `corpus_file`."""
    from chatbot.config import Config
    from chatbot.train import train

    out = tmp_path_factory.mktemp("tiny") / "run"
    config = Config.preset("tiny").override([f"data.source=jsonl:{corpus_file}"])
    train(config, out_dir=out, max_steps=60)
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_run: Path) -> Path:
    """The model directory of `tiny_run`."""
    return tiny_run / "model"


@pytest.fixture(scope="session")
def tiny_rank_model_dir(tmp_path_factory: pytest.TempPathFactory, corpus_file: Path) -> Path:
    """A `tiny` model with a ranking head trained 40 steps with retrieved negatives,
    its reply index, and ranker weights fitted by `chatbot index`."""
    from chatbot.cli import main
    from chatbot.config import Config
    from chatbot.train import train

    out = tmp_path_factory.mktemp("tiny-rank") / "run"
    config = Config.preset("tiny").override([
        f"data.source=jsonl:{corpus_file}", "model.ranker_size=16", "train.rank_weight=1.0",
        "train.rank_negatives=2",
    ])
    train(config, out_dir=out, max_steps=40)
    assert main(["index", str(out), "--fit", "20"]) == 0
    return out / "model"


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SessionStore]:
    """A `MemoryStore`, then an `SQLiteStore` in a fresh folder."""
    made = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "s.sqlite3")
    yield made
    made.close()
