"""Model directories and training checkpoints: round trips, and every way a file can lie."""

from __future__ import annotations

import hashlib
import json
import os
import pickle  # noqa: TID251 - only to build a hostile payload the library must refuse
import struct
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from chatbot import checkpoint, fsutil
from chatbot.checkpoint import (
    MANIFEST,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    load_model,
    model_tensors,
    resolve_model_dir,
    save_checkpoint,
    save_model,
    verify,
)
from chatbot.config import Config
from chatbot.data import WindowBatcher
from chatbot.errors import (
    CheckpointError,
    FormatError,
    IntegrityError,
    MissingFileError,
    ShapeError,
)
from chatbot.model import HRED
from chatbot.text import Tokenizer

TEXTS = ["hello there, how are you?", "i am fine thanks", "what do you like to do?"] * 5
CONFIG = Config.preset("tiny")


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer.train(TEXTS, vocab_size=300, min_frequency=1)


def _model(tokenizer: Tokenizer, seed: int = 0) -> HRED:
    torch.manual_seed(seed)
    return HRED(CONFIG.model, vocab_size=tokenizer.vocab_size, pad_id=tokenizer.pad_id)


@pytest.fixture
def saved(tmp_path: Path, tokenizer: Tokenizer) -> tuple[Path, HRED]:
    model = _model(tokenizer)
    path = save_model(
        tmp_path / "model", model, config=CONFIG, tokenizer=tokenizer, info={"step": 7}
    )
    return path, model


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def _rewrite(folder: Path, name: str, data: bytes) -> None:
    """Replaces `name` and updates the manifest to match it (a consistent forgery)."""
    (folder / name).write_bytes(data)
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    (folder / MANIFEST).write_text(json.dumps(manifest))


def _params(model: HRED) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def _assert_same_params(a: HRED | dict[str, torch.Tensor], b: HRED) -> None:
    left = _params(a) if isinstance(a, HRED) else a
    right = _params(b)
    assert left.keys() == right.keys()
    for name in left:
        assert torch.equal(left[name], right[name]), name


def _raises(kind: type[CheckpointError], folder: Path, name: str) -> CheckpointError:
    with pytest.raises(kind) as info:
        load_model(folder)
    assert Path(info.value.path) == folder / name
    assert str(folder / name) in str(info.value)
    return info.value


# Model directories ----------------------------------------------------------


def test_round_trip_is_exact_in_fp32(saved: tuple[Path, HRED], tokenizer: Tokenizer) -> None:
    path, model = saved
    loaded = load_model(path)
    _assert_same_params(model, loaded.model)
    assert not loaded.model.training
    assert loaded.config == CONFIG
    assert loaded.info["step"] == 7
    assert loaded.path == path
    assert loaded.tokenizer.to_json() == tokenizer.to_json()
    assert loaded.model.decoder.embedding.weight is loaded.model.encoder.embedding.weight
    assert sorted(p.name for p in path.iterdir()) == [
        "config.json",
        "manifest.json",
        "model.safetensors",
        "tokenizer.json",
    ]
    assert sorted(p.name for p in path.parent.iterdir()) == ["model"]


def test_round_trip_in_fp16_is_within_rounding(tmp_path: Path, tokenizer: Tokenizer) -> None:
    model = _model(tokenizer)
    path = save_model(tmp_path / "m", model, config=CONFIG, tokenizer=tokenizer, dtype="float16")
    stored = checkpoint.read_safetensors(path / "model.safetensors")
    assert {t.dtype for t in stored.values()} == {torch.float16}
    loaded = load_model(path).model
    for name, param in loaded.named_parameters():
        original = dict(model.named_parameters())[name].detach()
        assert param.dtype == torch.float32
        assert torch.equal(param.detach(), original.half().float()), name
        torch.testing.assert_close(param.detach(), original, rtol=1e-3, atol=1e-4)


def test_tied_embedding_is_stored_once(tokenizer: Tokenizer) -> None:
    names = sorted(model_tensors(_model(tokenizer)))
    assert names.count("embedding.weight") == 1
    assert not any(n.endswith(".embedding.weight") for n in names)


def test_manifest_lists_size_and_sha256_of_each_file(saved: tuple[Path, HRED]) -> None:
    path, _ = saved
    manifest = json.loads((path / MANIFEST).read_text())
    assert manifest["format"] == "chatbot-model"
    assert manifest["version"] == 1
    assert set(manifest["libraries"]) >= {"chatbot", "python", "torch", "safetensors", "tokenizers"}
    assert sorted(manifest["files"]) == ["config.json", "model.safetensors", "tokenizer.json"]
    for name, entry in manifest["files"].items():
        data = (path / name).read_bytes()
        assert entry == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    assert verify(path) == manifest


def test_manifest_is_checked_before_anything_is_parsed(saved: tuple[Path, HRED]) -> None:
    path, _ = saved
    (path / "config.json").write_text("not json at all")
    _raises(IntegrityError, path, "config.json")


def test_truncated_weights(saved: tuple[Path, HRED]) -> None:
    path, _ = saved
    file = path / "model.safetensors"
    file.write_bytes(file.read_bytes()[:-100])
    error = _raises(IntegrityError, path, "model.safetensors")
    assert "size" in error.message


@pytest.mark.parametrize("where", ["size", "header", "data", "last"])
def test_one_flipped_byte(saved: tuple[Path, HRED], where: str) -> None:
    path, _ = saved
    file = path / "model.safetensors"
    (header_size,) = struct.unpack("<Q", file.read_bytes()[:8])
    offset = {"size": 0, "header": 8 + header_size // 2, "data": 8 + header_size + 40, "last": -1}
    _flip(file, offset[where])
    error = _raises(IntegrityError, path, "model.safetensors")
    assert "sha256" in error.message


@pytest.mark.parametrize("name", ["config.json", "tokenizer.json"])
def test_flipped_byte_in_other_files(saved: tuple[Path, HRED], name: str) -> None:
    path, _ = saved
    _flip(path / name, 10)
    _raises(IntegrityError, path, name)


@pytest.mark.parametrize("name", ["model.safetensors", "config.json", "tokenizer.json", MANIFEST])
def test_missing_file(saved: tuple[Path, HRED], name: str) -> None:
    path, _ = saved
    (path / name).unlink()
    _raises(MissingFileError, path, name)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match="no such model directory"):
        load_model(tmp_path / "nowhere")


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_pickle_payload_is_never_unpickled(
    saved: tuple[Path, HRED], tmp_path: Path, protocol: int
) -> None:
    path, _ = saved
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"embedding.weight": _Payload(marker)}, protocol=protocol)
    _rewrite(path, "model.safetensors", payload)
    verify(path)  # the forgery is consistent with its manifest
    _raises(FormatError, path, "model.safetensors")
    assert not marker.exists()


def test_pickle_payload_without_manifest_update_fails_integrity(
    saved: tuple[Path, HRED], tmp_path: Path
) -> None:
    path, _ = saved
    marker = tmp_path / "pwned"
    (path / "model.safetensors").write_bytes(pickle.dumps(_Payload(marker)))
    _raises(IntegrityError, path, "model.safetensors")
    assert not marker.exists()


def _forged_tensors(model: HRED, name: str, value: torch.Tensor) -> bytes:
    tensors = model_tensors(model)
    tensors[name] = value
    return save_safetensors(tensors)


def test_weights_of_the_wrong_shape(saved: tuple[Path, HRED]) -> None:
    path, model = saved
    _rewrite(path, "model.safetensors", _forged_tensors(model, "bridge.weight", torch.zeros(3, 4)))
    error = _raises(ShapeError, path, "model.safetensors")
    assert "bridge.weight" in error.message


def test_missing_and_unexpected_weights(saved: tuple[Path, HRED]) -> None:
    path, model = saved
    tensors = model_tensors(model)
    tensors["extra"] = tensors.pop("bridge.bias")
    _rewrite(path, "model.safetensors", save_safetensors(tensors))
    error = _raises(ShapeError, path, "model.safetensors")
    assert "bridge.bias" in error.message and "extra" in error.message


def test_integer_weights(saved: tuple[Path, HRED]) -> None:
    path, model = saved
    shape = model.bridge.bias.shape
    forged = _forged_tensors(model, "bridge.bias", torch.zeros(shape, dtype=torch.int32))
    _rewrite(path, "model.safetensors", forged)
    _raises(ShapeError, path, "model.safetensors")


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights(saved: tuple[Path, HRED], bad: float) -> None:
    path, model = saved
    value = model.bridge.weight.detach().clone()
    value[1, 2] = bad
    _rewrite(path, "model.safetensors", _forged_tensors(model, "bridge.weight", value))
    error = _raises(ShapeError, path, "model.safetensors")
    assert "NaN or Inf" in error.message


def test_fp64_weights_that_overflow_fp32(saved: tuple[Path, HRED]) -> None:
    path, model = saved
    value = model.bridge.bias.detach().double()
    value[0] = 1e300
    _rewrite(path, "model.safetensors", _forged_tensors(model, "bridge.bias", value))
    _raises(ShapeError, path, "model.safetensors")


@pytest.mark.parametrize("forge", ["huge", "past_end", "short", "long"])
def test_forged_header_size(saved: tuple[Path, HRED], forge: str) -> None:
    path, _ = saved
    data = (path / "model.safetensors").read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    new = {"huge": 2**63, "past_end": len(data), "short": size - 5, "long": size + 16}[forge]
    _rewrite(path, "model.safetensors", struct.pack("<Q", new) + data[8:])
    _raises(FormatError, path, "model.safetensors")


@pytest.mark.parametrize("data", [b"", b"1234567", b"\x02\x00\x00\x00\x00\x00\x00\x00[]"])
def test_not_safetensors(saved: tuple[Path, HRED], data: bytes) -> None:
    path, _ = saved
    _rewrite(path, "model.safetensors", data)
    _raises(FormatError, path, "model.safetensors")


def test_forged_config(saved: tuple[Path, HRED]) -> None:
    path, _ = saved
    meta = json.loads((path / "config.json").read_text())
    meta["config"]["model"]["hidden_size"] = -3
    _rewrite(path, "config.json", json.dumps(meta).encode())
    _raises(FormatError, path, "config.json")
    del meta["config"]
    _rewrite(path, "config.json", json.dumps(meta).encode())
    _raises(FormatError, path, "config.json")


def test_config_of_another_shape(saved: tuple[Path, HRED]) -> None:
    path, _ = saved
    meta = json.loads((path / "config.json").read_text())
    meta["config"]["model"]["hidden_size"] = 64
    _rewrite(path, "config.json", json.dumps(meta).encode())
    _raises(ShapeError, path, "model.safetensors")


def test_tokenizer_of_another_vocabulary(saved: tuple[Path, HRED]) -> None:
    path, _ = saved
    other = Tokenizer.train(TEXTS[:1], vocab_size=300, min_frequency=1)
    _rewrite(path, "tokenizer.json", other.to_json().encode())
    _raises(ShapeError, path, "tokenizer.json")


@pytest.mark.parametrize(
    "edit",
    [
        {"format": "something-else"},
        {"version": 2},
        {"files": []},
        {"files": {"../outside": {"sha256": "0", "size": 0}}},
        {"files": {"model.safetensors": "abc", "config.json": 1, "tokenizer.json": None}},
    ],
)
def test_invalid_manifest(saved: tuple[Path, HRED], edit: dict[str, Any]) -> None:
    path, _ = saved
    manifest = json.loads((path / MANIFEST).read_text())
    if "../outside" in edit.get("files", {}):
        edit = {"files": {**manifest["files"], **edit["files"]}}
    manifest.update(edit)
    (path / MANIFEST).write_text(json.dumps(manifest))
    _raises(FormatError, path, MANIFEST)


def test_manifest_that_omits_a_file(saved: tuple[Path, HRED]) -> None:
    path, _ = saved
    manifest = json.loads((path / MANIFEST).read_text())
    del manifest["files"]["tokenizer.json"]
    (path / MANIFEST).write_text(json.dumps(manifest))
    _raises(MissingFileError, path, "tokenizer.json")


def test_manifest_that_is_not_json(saved: tuple[Path, HRED]) -> None:
    path, _ = saved
    (path / MANIFEST).write_bytes(b"\xff\xfe{")
    _raises(FormatError, path, MANIFEST)


def test_saving_refuses_weights_it_could_not_load(tmp_path: Path, tokenizer: Tokenizer) -> None:
    model = _model(tokenizer)
    with torch.no_grad():
        model.bridge.bias[0] = 1e5  # beyond float16
    save_model(tmp_path / "fp32", model, config=CONFIG, tokenizer=tokenizer)
    with pytest.raises(ShapeError, match="bridge.bias"):
        save_model(tmp_path / "fp16", model, config=CONFIG, tokenizer=tokenizer, dtype="float16")
    with torch.no_grad():
        model.bridge.bias[0] = float("nan")
    with pytest.raises(ShapeError, match="bridge.bias"):
        save_model(tmp_path / "fp32", model, config=CONFIG, tokenizer=tokenizer)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fp32"]
    assert torch.equal(load_model(tmp_path / "fp32").model.bridge.bias[0], torch.tensor(1e5))


def test_resave_replaces_the_model(saved: tuple[Path, HRED], tokenizer: Tokenizer) -> None:
    path, _ = saved
    new = _model(tokenizer, seed=1)
    save_model(path, new, config=CONFIG, tokenizer=tokenizer)
    _assert_same_params(new, load_model(path).model)
    assert sorted(p.name for p in path.parent.iterdir()) == ["model"]


def test_failed_resave_keeps_the_old_version(
    saved: tuple[Path, HRED], tokenizer: Tokenizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, old = saved

    def broken(path: str | Path, data: bytes) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(fsutil, "write_bytes", broken)
    with pytest.raises(OSError, match="disk full"):
        save_model(path, _model(tokenizer, seed=1), config=CONFIG, tokenizer=tokenizer)
    _assert_same_params(old, load_model(path).model)
    assert sorted(p.name for p in path.parent.iterdir()) == ["model"]


def test_failed_rename_keeps_the_old_version(
    saved: tuple[Path, HRED], tokenizer: Tokenizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, old = saved
    real_replace = os.replace

    def replace(src: str | Path, dst: str | Path) -> None:
        if Path(dst) == path and Path(src).name.startswith(".model."):  # staged -> target
            raise OSError("injected")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="injected"):
        save_model(path, _model(tokenizer, seed=1), config=CONFIG, tokenizer=tokenizer)
    monkeypatch.undo()
    _assert_same_params(old, load_model(path).model)
    assert sorted(p.name for p in path.parent.iterdir()) == ["model"]


def test_load_falls_back_to_old_after_a_crash(saved: tuple[Path, HRED], tmp_path: Path) -> None:
    path, model = saved
    os.replace(path, tmp_path / "model.old")  # crashed between the two renames
    loaded = load_model(path)
    assert loaded.path == tmp_path / "model.old"
    _assert_same_params(model, loaded.model)
    assert resolve_model_dir(tmp_path) == path  # a run folder whose model/ is now model.old
    assert load_model(resolve_model_dir(tmp_path)).path == tmp_path / "model.old"


def test_resolve_model_dir(saved: tuple[Path, HRED], tmp_path: Path) -> None:
    path, _ = saved
    assert resolve_model_dir(tmp_path) == path  # a run folder
    assert resolve_model_dir(path) == path
    assert resolve_model_dir(str(path)) == path
    assert resolve_model_dir("default") == checkpoint.packaged_model_dir()
    assert resolve_model_dir(tmp_path / "elsewhere") == tmp_path / "elsewhere"


# Training checkpoints -------------------------------------------------------


def _batch(tokenizer: Tokenizer) -> Any:
    convs = [[tokenizer.encode(t) for t in TEXTS[:3]], [tokenizer.encode(t) for t in TEXTS[1:4]]]
    batcher = WindowBatcher(convs, window_turns=3, batch_size=2, pad_id=0, bos_id=1, eos_id=2)
    return next(iter(batcher.batches(0, seed=0)))


def _train_step(model: HRED, optimizer: torch.optim.Optimizer, batch: Any) -> None:
    optimizer.zero_grad()
    loss = model(batch.utterances, batch.lengths, batch.turn_mask, batch.dec_in, batch.dec_out)
    loss.mean.backward()
    optimizer.step()


def _trained(tokenizer: Tokenizer, steps: int) -> tuple[HRED, torch.optim.Optimizer]:
    model = _model(tokenizer)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-4)
    batch = _batch(tokenizer)
    for _ in range(steps):
        _train_step(model, optimizer, batch)
    return model, optimizer


def _save(
    root: Path,
    step: int,
    model: HRED,
    optimizer: torch.optim.Optimizer,
    tokenizer: Tokenizer,
    keep: int = 5,
) -> Path:
    return save_checkpoint(
        root,
        step=step,
        model=model,
        optimizer=optimizer,
        config=CONFIG,
        tokenizer=tokenizer,
        state={"progress": {"step": step, "best": 1.5}},
        keep=keep,
    )


def _assert_same_optimizer(a: torch.optim.Optimizer, b: torch.optim.Optimizer) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    assert sa["state"].keys() == sb["state"].keys()
    for index, slots in sa["state"].items():
        assert slots.keys() == sb["state"][index].keys()
        for key, value in slots.items():
            assert torch.equal(value, sb["state"][index][key]), (index, key)


def test_checkpoint_round_trip_restores_weights_adam_and_rng(
    tmp_path: Path, tokenizer: Tokenizer
) -> None:
    model, optimizer = _trained(tokenizer, steps=1)
    rng = torch.get_rng_state()
    path = _save(tmp_path, 2, model, optimizer, tokenizer)
    assert path == tmp_path / "step-00000002"

    torch.manual_seed(123)
    fresh = _model(tokenizer, seed=5)
    fresh_optimizer = torch.optim.Adam(fresh.parameters(), lr=0.5)
    state = load_checkpoint(path, fresh, fresh_optimizer)
    assert state == {"progress": {"step": 2, "best": 1.5}}
    _assert_same_params(model, fresh)
    _assert_same_optimizer(optimizer, fresh_optimizer)
    assert torch.equal(torch.get_rng_state(), rng)

    # the resumed run continues exactly as the original one does
    batch = _batch(tokenizer)
    _train_step(model, optimizer, batch)
    _train_step(fresh, fresh_optimizer, batch)
    _assert_same_params(model, fresh)


def test_checkpoint_is_a_loadable_model_directory(tmp_path: Path, tokenizer: Tokenizer) -> None:
    model, optimizer = _trained(tokenizer, steps=1)
    path = _save(tmp_path, 1, model, optimizer, tokenizer)
    loaded = load_model(path)
    _assert_same_params(model, loaded.model)
    assert loaded.info["step"] == 1
    assert set(loaded.info["manifest"]["files"]) >= {"trainer.safetensors", "trainer.json"}


def test_invalid_trainer_state_changes_nothing(tmp_path: Path, tokenizer: Tokenizer) -> None:
    model, optimizer = _trained(tokenizer, steps=1)
    path = _save(tmp_path, 1, model, optimizer, tokenizer)
    trainer = json.loads((path / "trainer.json").read_text())
    trainer["param_groups"][0]["params"] = trainer["param_groups"][0]["params"][:-1]
    _rewrite(path, "trainer.json", json.dumps(trainer).encode())

    fresh = _model(tokenizer, seed=5)
    fresh_optimizer = torch.optim.Adam(fresh.parameters(), lr=0.5)
    before, before_rng = _params(fresh), torch.get_rng_state()
    with pytest.raises(FormatError) as info:
        load_checkpoint(path, fresh, fresh_optimizer)
    assert Path(info.value.path) == path / "trainer.json"
    _assert_same_params(before, fresh)
    assert fresh_optimizer.state_dict()["state"] == {}
    assert torch.equal(torch.get_rng_state(), before_rng)


def test_corrupt_checkpoint_is_refused(tmp_path: Path, tokenizer: Tokenizer) -> None:
    model, optimizer = _trained(tokenizer, steps=1)
    path = _save(tmp_path, 1, model, optimizer, tokenizer)
    _flip(path / "trainer.safetensors", -1)
    fresh = _model(tokenizer, seed=5)
    before = _params(fresh)
    with pytest.raises(IntegrityError, match="trainer.safetensors"):
        load_checkpoint(path, fresh, torch.optim.Adam(fresh.parameters()))
    _assert_same_params(before, fresh)


def test_latest_checkpoint_skips_corrupt_and_staged_ones(
    tmp_path: Path, tokenizer: Tokenizer
) -> None:
    assert latest_checkpoint(tmp_path / "none") is None
    assert latest_checkpoint(tmp_path) is None
    model, optimizer = _trained(tokenizer, steps=1)
    for step in (10, 20, 30):
        _save(tmp_path, step, model, optimizer, tokenizer)
    assert latest_checkpoint(tmp_path) == tmp_path / "step-00000030"
    _flip(tmp_path / "step-00000030" / "model.safetensors", 100)
    staged = fsutil.staging_dir(tmp_path / "step-00000040")
    (staged / "model.safetensors").write_bytes(b"partial")
    (tmp_path / "step-00000050").mkdir()  # no manifest
    assert latest_checkpoint(tmp_path) == tmp_path / "step-00000020"
    assert [p.name for p in list_checkpoints(tmp_path)] == [
        "step-00000050",
        "step-00000030",
        "step-00000020",
        "step-00000010",
    ]


def test_keep_prunes_older_checkpoints(tmp_path: Path, tokenizer: Tokenizer) -> None:
    model, optimizer = _trained(tokenizer, steps=1)
    for step in (1, 2, 3):
        _save(tmp_path, step, model, optimizer, tokenizer, keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000002", "step-00000003"]
    _save(tmp_path, 4, model, optimizer, tokenizer, keep=0)  # never prunes the new one
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000004"]


def test_a_save_removes_staging_folders_left_by_a_killed_save(
    tmp_path: Path, tokenizer: Tokenizer
) -> None:
    model, optimizer = _trained(tokenizer, steps=1)
    _save(tmp_path, 1, model, optimizer, tokenizer)
    stale = tmp_path / ".step-00000002.abc123.tmp"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"half")
    other = tmp_path / "notes.txt"
    other.write_text("kept")
    _save(tmp_path, 2, model, optimizer, tokenizer)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "notes.txt", "step-00000001", "step-00000002"
    ]


@pytest.mark.parametrize(
    ("edit", "error", "message"),
    [
        ("nan", ShapeError, r"optim\.0\.exp_avg holds NaN or Inf values"),
        ("inf", ShapeError, r"optim\.0\.exp_avg_sq holds NaN or Inf values"),
        ("shape", ShapeError, r"optim\.0\.exp_avg has shape \(3,\), expected"),
        ("orphan", FormatError, r"optim\.9999\.exp_avg names no parameter"),
    ],
)
def test_optimizer_state_that_would_poison_training_is_refused(
    tmp_path: Path, tokenizer: Tokenizer, edit: str, error: type, message: str
) -> None:
    """A consistent forgery (manifest updated) of the optimizer's tensors."""
    model, optimizer = _trained(tokenizer, steps=1)
    path = _save(tmp_path, 1, model, optimizer, tokenizer)
    tensors = load_safetensors((path / "trainer.safetensors").read_bytes())
    if edit == "nan":
        tensors["optim.0.exp_avg"][0] = float("nan")
    elif edit == "inf":
        tensors["optim.0.exp_avg_sq"].view(-1)[-1] = float("inf")
    elif edit == "shape":
        tensors["optim.0.exp_avg"] = torch.zeros(3)
    else:
        tensors["optim.9999.exp_avg"] = torch.zeros(3)
    _rewrite(path, "trainer.safetensors", save_safetensors(tensors))

    fresh = _model(tokenizer, seed=5)
    fresh_optimizer = torch.optim.Adam(fresh.parameters(), lr=0.5)
    before, before_rng = _params(fresh), torch.get_rng_state()
    with pytest.raises(error, match=message) as info:
        load_checkpoint(path, fresh, fresh_optimizer)
    assert Path(info.value.path) == path / "trainer.safetensors"
    _assert_same_params(before, fresh)
    assert fresh_optimizer.state_dict()["state"] == {}
    assert torch.equal(torch.get_rng_state(), before_rng)
