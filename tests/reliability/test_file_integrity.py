"""Items 1 and 2: damaged, forged or pickled model and checkpoint files are refused, typed,
naming the file, before anything is used; nothing is ever unpickled."""

from __future__ import annotations

import hashlib
import json
import pickle  # noqa: TID251 - only to build hostile payloads the library must refuse
import random
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save as save_safetensors

from chatbot.checkpoint import (
    MANIFEST,
    MAX_HEADER_BYTES,
    MAX_JSON_BYTES,
    MODEL_FILES,
    TRAINER_FILES,
    latest_checkpoint,
    load_checkpoint,
    load_model,
    model_tensors,
    verify,
)
from chatbot.errors import CheckpointError, FormatError, ShapeError
from chatbot.model import HRED

ALL_FILES = (*MODEL_FILES, MANIFEST)
CHECKPOINT_FILES = (*MODEL_FILES, *TRAINER_FILES, MANIFEST)


def _params(model: HRED) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def _rewrite(folder: Path, name: str, data: bytes) -> None:
    """Replaces `name` and updates the manifest to match (a consistent forgery)."""
    (folder / name).write_bytes(data)
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    (folder / MANIFEST).write_text(json.dumps(manifest))


def _damages(data: bytes, rng: random.Random, count: int) -> list[tuple[str, bytes]]:
    """`count` truncations at random offsets and `count` random single-byte changes."""
    out = []
    for _ in range(count):
        cut = rng.randrange(len(data))
        out.append((f"truncated at {cut}", data[:cut]))
        offset, mask = rng.randrange(len(data)), rng.randrange(1, 256)
        flipped = bytearray(data)
        flipped[offset] ^= mask
        out.append((f"byte {offset} ^ {mask:#x}", bytes(flipped)))
    return out


def _refused_or_identical(folder: Path, name: str, reference: dict[str, torch.Tensor]) -> None:
    """Loading raises a typed error naming `folder/name` (or, for the manifest, any file
    of the folder), or - only for an unchecked manifest field - loads the very same model."""
    try:
        loaded = load_model(folder)
    except CheckpointError as exc:
        if name == MANIFEST:
            assert Path(exc.path).parent == folder, exc
        else:
            assert Path(exc.path) == folder / name, exc
        assert exc.path in str(exc)
        return
    assert name == MANIFEST, f"damaged {name} loaded"
    params = _params(loaded.model)
    assert all(torch.equal(params[k], reference[k]) for k in reference)


@pytest.mark.parametrize("name", ALL_FILES)
def test_random_damage_to_any_model_file_is_detected(
    model_copy: Path, tiny_model_dir: Path, name: str
) -> None:
    reference = _params(load_model(tiny_model_dir).model)
    original = (model_copy / name).read_bytes()
    rng = random.Random(f"model/{name}")
    for label, data in _damages(original, rng, count=12):
        (model_copy / name).write_bytes(data)
        try:
            _refused_or_identical(model_copy, name, reference)
        except AssertionError as exc:
            raise AssertionError(f"{name} {label}: {exc}") from None
    (model_copy / name).write_bytes(original)
    load_model(model_copy)


@pytest.mark.parametrize("name", CHECKPOINT_FILES)
def test_random_damage_to_any_checkpoint_file_is_detected(
    checkpoints_copy: Path, name: str
) -> None:
    newest, older = checkpoints_copy / "step-00000002", checkpoints_copy / "step-00000001"
    original = (newest / name).read_bytes()
    rng = random.Random(f"checkpoint/{name}")
    model = load_model(older).model
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = _params(model)
    for label, data in _damages(original, rng, count=8):
        (newest / name).write_bytes(data)
        try:
            verify(newest, MODEL_FILES + TRAINER_FILES)
        except CheckpointError as exc:
            if name == MANIFEST:
                assert Path(exc.path).parent == newest, label
            else:
                assert Path(exc.path) == newest / name, label
            assert latest_checkpoint(checkpoints_copy) == older, label
            with pytest.raises(CheckpointError):
                load_checkpoint(newest, model, optimizer)
            assert all(torch.equal(v, _params(model)[k]) for k, v in before.items()), label
            assert optimizer.state_dict()["state"] == {}, label
            continue
        assert name == MANIFEST, f"damaged {name} verified ({label})"
    (newest / name).write_bytes(original)
    assert latest_checkpoint(checkpoints_copy) == newest


def test_a_partial_newer_checkpoint_is_skipped(checkpoints_copy: Path) -> None:
    newest = checkpoints_copy / "step-00000002"
    for missing in CHECKPOINT_FILES:
        partial = checkpoints_copy / "step-00000009"
        shutil.copytree(newest, partial)
        (partial / missing).unlink()
        staged = checkpoints_copy / ".step-00000010.abc.tmp"
        shutil.copytree(newest, staged)
        assert latest_checkpoint(checkpoints_copy) == newest, missing
        shutil.rmtree(partial)
        shutil.rmtree(staged)


# Pickles --------------------------------------------------------------------


class _Payload:
    """Unpickling it creates `marker`: the side effect the tests look for."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def _pickles(marker: Path) -> list[bytes]:
    tensors = {"embedding.weight": _Payload(marker)}
    return [pickle.dumps(tensors, protocol=p) for p in (0, 2, pickle.HIGHEST_PROTOCOL)]


@pytest.mark.parametrize("consistent", [True, False], ids=["manifest-updated", "plain"])
@pytest.mark.parametrize("name", CHECKPOINT_FILES)
def test_a_pickle_renamed_to_any_file_raises_and_runs_nothing(
    checkpoints_copy: Path, tmp_path: Path, name: str, consistent: bool
) -> None:
    folder = checkpoints_copy / "step-00000002"
    marker = tmp_path / "pwned"
    loaded = load_model(folder)
    model = loaded.model
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = _params(model)
    for payload in _pickles(marker):
        if consistent and name != MANIFEST:
            _rewrite(folder, name, payload)
        else:
            (folder / name).write_bytes(payload)
        # A forgery that matches its manifest verifies; each loader refuses it when it reads it.
        if not consistent or name in ALL_FILES:
            with pytest.raises(CheckpointError) as caught:
                load_model(folder)
            assert Path(caught.value.path).parent == folder
            if name != MANIFEST:
                assert Path(caught.value.path) == folder / name
        if not consistent or name in ("model.safetensors", *TRAINER_FILES):
            with pytest.raises(CheckpointError):
                load_checkpoint(folder, model, optimizer)
        if not consistent:
            assert latest_checkpoint(checkpoints_copy) == checkpoints_copy / "step-00000001"
        assert not marker.exists()
    assert all(torch.equal(v, _params(model)[k]) for k, v in before.items())


def test_nothing_on_the_load_path_calls_an_unpickler(
    checkpoints_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def spy(name: str) -> Any:
        def record(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            raise AssertionError(f"{name} called")

        return record

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, spy(f"pickle.{name}"))
    monkeypatch.setattr(torch, "load", spy("torch.load"))
    folder = checkpoints_copy / "step-00000002"
    loaded = load_model(folder)
    load_checkpoint(folder, loaded.model, torch.optim.Adam(loaded.model.parameters()))
    assert latest_checkpoint(checkpoints_copy) == folder
    assert calls == []


def test_the_lint_rule_keeps_pickle_and_torch_load_out() -> None:
    source = "import pickle\nimport torch\n\nx = torch.load('m.pt')\ny = pickle.loads(b'')\n"
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise",
         "--stdin-filename", "chatbot/loader.py", "-"],
        input=source, capture_output=True, text=True, cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.count("TID251") == 2, done.stdout
    assert "`pickle` is banned" in done.stdout and "`torch.load` is banned" in done.stdout


# Forged headers, sizes and values -------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_random_forged_header_sizes_are_refused(model_copy: Path, seed: int) -> None:
    data = (model_copy / "model.safetensors").read_bytes()
    (true_size,) = struct.unpack("<Q", data[:8])
    rng = random.Random(seed)
    sizes = [rng.randrange(2**64), rng.randrange(true_size), rng.randrange(true_size + 1, 2**20),
             MAX_HEADER_BYTES + 1, 2**64 - 1, 0]
    for size in sizes:
        if size == true_size:
            continue
        _rewrite(model_copy, "model.safetensors", struct.pack("<Q", size) + data[8:])
        with pytest.raises(FormatError) as caught:
            load_model(model_copy)
        assert Path(caught.value.path) == model_copy / "model.safetensors", size


def test_a_header_over_the_limit_is_refused_even_when_the_file_holds_it(
    model_copy: Path,
) -> None:
    header = b"{" + b" " * MAX_HEADER_BYTES + b"}"
    _rewrite(model_copy, "model.safetensors", struct.pack("<Q", len(header)) + header)
    with pytest.raises(FormatError, match="header of 10000002 bytes"):
        load_model(model_copy)


def test_a_header_claiming_tensors_past_the_end_is_refused(model_copy: Path) -> None:
    header = json.dumps({"bridge.bias": {"dtype": "F32", "shape": [1 << 40],
                                         "data_offsets": [0, 4 << 40]}}).encode()
    _rewrite(model_copy, "model.safetensors", struct.pack("<Q", len(header)) + header + b"\0" * 8)
    with pytest.raises(FormatError):
        load_model(model_copy)


@pytest.mark.parametrize("name", ["config.json", "tokenizer.json"])
def test_json_files_over_the_size_limit_are_refused(model_copy: Path, name: str) -> None:
    data = (model_copy / name).read_bytes()
    _rewrite(model_copy, name, data + b" " * (MAX_JSON_BYTES + 1 - len(data)))
    with pytest.raises(CheckpointError) as caught:
        load_model(model_copy)
    assert Path(caught.value.path) == model_copy / name


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_a_non_finite_value_in_any_weight_is_refused(
    model_copy: Path, tiny_model_dir: Path, bad: float
) -> None:
    model = load_model(tiny_model_dir).model
    rng = random.Random(str(bad))
    for name, value in model_tensors(model).items():
        forged = model_tensors(model)
        value = value.clone()
        value.view(-1)[rng.randrange(value.numel())] = bad
        forged[name] = value
        _rewrite(model_copy, "model.safetensors", save_safetensors(forged))
        with pytest.raises(ShapeError, match="NaN or Inf") as caught:
            load_model(model_copy)
        assert Path(caught.value.path) == model_copy / "model.safetensors"
        assert name in caught.value.message


def _edited_config(folder: Path, edit: Any) -> None:
    config = json.loads((folder / "config.json").read_text())
    edit(config)
    _rewrite(folder, "config.json", json.dumps(config).encode())


@pytest.mark.parametrize(("key", "value"), [("hidden_size", 10_000_000),
                                            ("embedding_size", 3_000_000),
                                            ("num_layers", 5_000)])
def test_an_absurd_model_shape_is_refused_before_anything_is_allocated(
        model_copy: Path, key: str, value: int) -> None:
    import tracemalloc

    _edited_config(model_copy, lambda c: c["config"]["model"].__setitem__(key, value))
    tracemalloc.start()
    with pytest.raises(ShapeError) as caught:
        load_model(model_copy)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert Path(caught.value.path) == model_copy / "model.safetensors"
    assert caught.value.message.startswith(("config.json implies ", "missing weights ["))
    assert peak < 50_000_000


@pytest.mark.parametrize("name", ["config.json", MANIFEST])
@pytest.mark.parametrize("payload", ["deep", "digits"])
def test_deep_json_or_a_huge_number_is_a_format_error(model_copy: Path, name: str,
                                                      payload: str) -> None:
    data = json.loads((model_copy / name).read_text())
    data["extra"] = json.loads("[" * 60 + "]" * 60) if payload == "deep" else 0
    text = json.dumps(data)
    text = (text.replace('"extra": ' + "[" * 60, '"extra": ' + "[" * 5000)
            .replace("]" * 60, "]" * 5000) if payload == "deep"
            else text.replace('"extra": 0', '"extra": ' + "9" * 5000))
    if name == MANIFEST:
        (model_copy / name).write_text(text)
    else:
        _rewrite(model_copy, name, text.encode())
    with pytest.raises(FormatError) as caught:
        load_model(model_copy)
    assert Path(caught.value.path) == model_copy / name
    assert ("nested" in caught.value.message) == (payload == "deep")


def test_chatbot_check_fails_on_a_tampered_model(model_copy: Path, tmp_path: Path) -> None:
    from chatbot.botdir import check_bot, scaffold

    bot = tmp_path / "bot"
    scaffold(bot)
    shutil.copytree(model_copy, bot / "model")
    settings = (bot / "bot.yml").read_text()
    (bot / "bot.yml").write_text(settings.replace("model: default", "model: model", 1))
    assert check_bot(bot) == []
    weights = bot / "model" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 1
    weights.write_bytes(bytes(data))
    [problem] = check_bot(bot)
    assert str(problem) == (f"{weights}: the model does not load: "
                            "sha256 differs from the manifest (file corrupted)")
    shutil.copy(model_copy / "model.safetensors", weights)
    _edited_config(bot / "model", lambda c: c["config"]["model"].__setitem__("hidden_size", 8))
    [problem] = check_bot(bot)
    assert "the model does not load: config.json implies" in str(problem)
