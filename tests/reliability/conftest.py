"""Fixtures: copies of a model directory and a checkpoint folder to damage, and small bots."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from fakegen import FakeGenerator

from chatbot.bot import Chatbot
from chatbot.botdir import load_bot
from chatbot.checkpoint import load_model, save_checkpoint
from chatbot.session import MemoryStore


@pytest.fixture(scope="session")
def checkpoint_root(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """A training folder holding `step-00000001` and `step-00000002` of the tiny model."""
    root = tmp_path_factory.mktemp("checkpoints") / "run"
    loaded = load_model(tiny_model_dir)
    optimizer = torch.optim.Adam(loaded.model.parameters(), lr=1e-3)
    for step in (1, 2):
        loss = sum(p.square().sum() for p in loaded.model.parameters())
        optimizer.zero_grad()
        loss.backward()  # type: ignore[union-attr]
        optimizer.step()
        save_checkpoint(root, step=step, model=loaded.model, optimizer=optimizer,
                        config=loaded.config, tokenizer=loaded.tokenizer,
                        state={"step": step})
    return root


@pytest.fixture
def model_copy(tmp_path: Path, tiny_model_dir: Path) -> Path:
    """A fresh copy of the tiny model directory."""
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))


@pytest.fixture
def checkpoints_copy(tmp_path: Path, checkpoint_root: Path) -> Path:
    """A fresh copy of `checkpoint_root`."""
    return Path(shutil.copytree(checkpoint_root, tmp_path / "run"))


@pytest.fixture(scope="module")
def fake_bot() -> Chatbot:
    """The packaged default intents with the scripted fake generator (as tests/test_bot.py)."""
    return Chatbot(load_bot().intents, generator=FakeGenerator(), store=MemoryStore())
