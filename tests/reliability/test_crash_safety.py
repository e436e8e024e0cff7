"""Item 3: SIGKILL at random points while saving, and a full disk, lose nothing saved before."""

from __future__ import annotations

import errno
import io
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from chatbot import checkpoint, fsutil
from chatbot.checkpoint import (
    MODEL_FILES,
    TRAINER_FILES,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    load_model,
    save_checkpoint,
    save_model,
    verify,
)
from chatbot.model import HRED
from chatbot.session import Session, SQLiteStore

WRITER = Path(__file__).with_name("crash_writer.py")
KINDS = ("model", "checkpoint", "session")


def _kill_while_saving(kind: str, target: Path, delay: float) -> None:
    """Starts `crash_writer.py`, lets it save for `delay` seconds after version 0, SIGKILLs it."""
    child = subprocess.Popen(
        [sys.executable, str(WRITER), kind, str(target)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line == "ready\n", child.stderr.read() if child.stderr else ""
        time.sleep(delay)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
        if child.stdout:
            child.stdout.close()
        if child.stderr:
            child.stderr.close()
    assert child.returncode == -signal.SIGKILL


def _check_model(target: Path) -> None:
    loaded = load_model(target)
    verify(loaded.path)
    version = loaded.info["version"]
    for name, param in loaded.model.named_parameters():
        assert torch.all(param == version / 1000), name


def _check_checkpoint(root: Path) -> None:
    latest = latest_checkpoint(root)
    assert latest is not None
    verify(latest, MODEL_FILES + TRAINER_FILES)
    assert all(p.name.startswith("step-") for p in list_checkpoints(root))
    newer = [p for p in list_checkpoints(root) if p.name > latest.name]
    for partial in newer:  # anything newer than the pick must be one that fails to verify
        with pytest.raises(checkpoint.CheckpointError):
            verify(partial, MODEL_FILES + TRAINER_FILES)
    loaded = load_model(latest)
    model = HRED(loaded.config.model, vocab_size=loaded.model.vocab_size,
                 pad_id=loaded.model.pad_id)
    state = load_checkpoint(latest, model, torch.optim.SGD(model.parameters(), lr=0.1))
    assert f"step-{state['version']:08d}" == latest.name
    for name, param in model.named_parameters():
        assert torch.all(param == state["version"] / 1000), name


def _check_session(path: Path) -> None:
    stored = SQLiteStore(path).load("s")
    assert stored is not None
    turns = len(stored["events"]) // 2
    assert turns >= 1 and len(stored["events"]) == 2 * turns
    assert [e["text"] for e in stored["events"]] == [
        text for k in range(turns) for text in (f"u{k}", f"b{k}")
    ]
    assert stored["state"] == f"s{turns - 1}"
    session = Session.from_dict({**stored, "state": None}, decode_state=bytes)
    assert session.turn == turns


CHECKS = {"model": _check_model, "checkpoint": _check_checkpoint, "session": _check_session}
TARGETS = {"model": "model", "checkpoint": "run", "session": "sessions.sqlite3"}


def _trials(tmp_path: Path, count: int, seed: int) -> None:
    rng = random.Random(seed)
    for trial in range(count):
        kind = KINDS[trial % len(KINDS)]
        target = tmp_path / kind / TARGETS[kind]
        target.parent.mkdir(exist_ok=True)
        _kill_while_saving(kind, target, delay=rng.uniform(0.0, 0.25))
        CHECKS[kind](target)


def test_sigkill_while_saving_leaves_a_verified_version(tmp_path: Path) -> None:
    _trials(tmp_path, count=12, seed=0)


@pytest.mark.slow
def test_sigkill_while_saving_over_fifty_one_trials(tmp_path: Path) -> None:
    _trials(tmp_path, count=51, seed=1)


# A full disk -----------------------------------------------------------------


class _FullDisk(io.RawIOBase):
    """A writable file on a disk with no space left."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), getattr(self.inner, "name", None))

    def fileno(self) -> int:
        return int(self.inner.fileno())

    def close(self) -> None:
        self.inner.close()
        super().close()


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every file opened for writing under `tmp_path` fails with ENOSPC."""
    real_open, real_fdopen = io.open, os.fdopen

    def opener(real: Any) -> Any:
        def open_(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            handle = real(file, mode, *args, **kwargs)
            name = str(getattr(handle, "name", file))
            if any(c in mode for c in "wax+") and name.startswith(str(tmp_path)):
                return _FullDisk(handle)
            return handle

        return open_

    def fdopen(fd: int, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = real_fdopen(fd, mode, *args, **kwargs)
        return _FullDisk(handle) if any(c in mode for c in "wax+") else handle

    monkeypatch.setattr(io, "open", opener(real_open))
    monkeypatch.setattr("builtins.open", opener(real_open))
    monkeypatch.setattr(os, "fdopen", fdopen)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_full_disk_while_saving_a_model_keeps_the_old_one(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, request: Any
) -> None:
    loaded = load_model(tiny_model_dir)
    target = save_model(tmp_path / "model", loaded.model, config=loaded.config,
                        tokenizer=loaded.tokenizer, info={"version": 1})
    before = _snapshot(tmp_path)
    request.getfixturevalue("full_disk")
    with torch.no_grad():
        loaded.model.bridge.bias.add_(1.0)
    with pytest.raises(OSError) as caught:
        save_model(target, loaded.model, config=loaded.config, tokenizer=loaded.tokenizer)
    assert caught.value.errno == errno.ENOSPC
    assert "No space left on device" in str(caught.value)
    monkeypatch.undo()
    assert _snapshot(tmp_path) == before  # no staging folder left, old files untouched
    assert load_model(target).info["version"] == 1


def test_full_disk_while_checkpointing_keeps_the_last_checkpoint(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, request: Any
) -> None:
    loaded = load_model(tiny_model_dir)
    optimizer = torch.optim.SGD(loaded.model.parameters(), lr=0.1)
    kwargs: Any = {"model": loaded.model, "optimizer": optimizer, "config": loaded.config,
                   "tokenizer": loaded.tokenizer, "state": {}}
    first = save_checkpoint(tmp_path / "run", step=1, **kwargs)
    before = _snapshot(tmp_path)
    request.getfixturevalue("full_disk")
    with pytest.raises(OSError) as caught:
        save_checkpoint(tmp_path / "run", step=2, **kwargs)
    assert caught.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert _snapshot(tmp_path) == before
    assert latest_checkpoint(tmp_path / "run") == first


def test_full_disk_in_an_atomic_write_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: Any
) -> None:
    path = tmp_path / "bot.yml"
    fsutil.write_text(path, "version: 1\n")
    request.getfixturevalue("full_disk")
    with pytest.raises(OSError) as caught:
        fsutil.write_text(path, "version: 2\n")
    assert caught.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bot.yml"]
    assert path.read_text() == "version: 1\n"
