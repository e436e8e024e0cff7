"""Model directories and training checkpoints on disk.

A model directory holds `model.safetensors`, `config.json`, `tokenizer.json` and,
written last, `manifest.json` (format version, library versions, sha256 and size
of each file). Loading verifies the manifest before parsing anything, and
nothing is ever unpickled. A training checkpoint is a model directory plus
`trainer.safetensors` (optimizer state, RNG state) and `trainer.json` (scalars).
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from chatbot import fsutil, jsonio
from chatbot.config import Config, ModelConfig, from_json_dict
from chatbot.errors import (
    CheckpointError,
    FormatError,
    IntegrityError,
    MissingFileError,
    ShapeError,
)
from chatbot.jsonio import JsonError
from chatbot.model import HRED
from chatbot.paths import MANIFEST as MANIFEST
from chatbot.paths import packaged_model_dir as packaged_model_dir
from chatbot.paths import resolve_model_dir as resolve_model_dir
from chatbot.text import Tokenizer

FORMAT = "chatbot-model"
FORMAT_VERSION = 1
MAX_JSON_BYTES = 10_000_000
MAX_HEADER_BYTES = 10_000_000
MODEL_FILES = ("model.safetensors", "config.json", "tokenizer.json")
TRAINER_FILES = ("trainer.safetensors", "trainer.json")
_STEP_DIR = re.compile(r"^step-(\d{8})$")


@dataclass
class LoadedModel:
    """A verified model directory, ready to use (fp32, eval mode)."""

    model: HRED
    tokenizer: Tokenizer
    config: Config
    info: dict[str, Any]
    path: Path


def library_versions() -> dict[str, str]:
    import safetensors
    import tokenizers

    from chatbot import __version__

    return {
        "chatbot": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "safetensors": safetensors.__version__,
        "tokenizers": tokenizers.__version__,
    }


def model_tensors(model: HRED, *, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """Unique parameters by name (the tied embedding appears once)."""
    return {
        name: param.detach().to("cpu", dtype).contiguous()
        for name, param in model.named_parameters()
    }


def save_model(
    path: str | Path,
    model: HRED,
    *,
    config: Config,
    tokenizer: Tokenizer,
    info: dict[str, Any] | None = None,
    dtype: str = "float32",
    extra: dict[str, bytes] | None = None,
) -> Path:
    """Writes a model directory atomically (staged, manifest last, renamed)."""
    target = Path(path)
    tensors = model_tensors(model, dtype=getattr(torch, dtype))
    for name, value in tensors.items():
        if not bool(torch.isfinite(value).all()):
            raise ShapeError(
                target / "model.safetensors", f"{name} holds NaN or Inf values in {dtype}"
            )
    files = {
        "model.safetensors": save_safetensors(tensors),
        "config.json": _json_bytes(
            {
                "format": FORMAT,
                "version": FORMAT_VERSION,
                "vocab_size": model.vocab_size,
                "pad_id": model.pad_id,
                "config": config.to_dict(),
                "info": info or {},
            }
        ),
        "tokenizer.json": tokenizer.to_json().encode("utf-8"),
        **(extra or {}),
    }
    return _publish(target, files)


def add_files(path: str | Path, files: dict[str, bytes]) -> Path:
    """Rewrites a verified model directory with `files` added or replaced, atomically
    (staged beside it with a new manifest, then renamed over it)."""
    target = fsutil.resolve_dir(path)
    kept = [name for name in verify(target)["files"] if name not in files]
    return _publish(target, files, copied={name: target / name for name in kept})


def _publish(
    target: Path, files: dict[str, bytes], *, copied: dict[str, Path] | None = None
) -> Path:
    """Stages `files` and copies of `copied` beside `target`, writes the manifest
    last, and renames the folder over `target`."""
    staged = fsutil.staging_dir(target)
    try:
        for name, source in (copied or {}).items():
            shutil.copyfile(source, staged / name)
        for name, data in files.items():
            (staged / name).write_bytes(data)
        manifest = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "libraries": library_versions(),
            "files": {
                name: {"sha256": fsutil.sha256_file(staged / name),
                       "size": (staged / name).stat().st_size}
                for name in [*(copied or {}), *files]
            },
        }
        fsutil.write_bytes(staged / MANIFEST, _json_bytes(manifest))
        fsutil.publish_dir(staged, target)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return target


def verify(path: str | Path, required: tuple[str, ...] = MODEL_FILES) -> dict[str, Any]:
    """Checks the manifest and every file's size and sha256; returns the manifest.

    Raises:
        CheckpointError: a subclass naming the offending file.
    """
    folder = Path(path)
    manifest_path = folder / MANIFEST
    if not folder.is_dir():
        raise MissingFileError(folder, "no such model directory")
    manifest = read_json(manifest_path)
    if manifest.get("format") != FORMAT or not isinstance(manifest.get("files"), dict):
        raise FormatError(manifest_path, f"not a {FORMAT} manifest")
    if manifest.get("version") != FORMAT_VERSION:
        raise FormatError(
            manifest_path, f"format version {manifest.get('version')} is not supported"
        )
    entries: dict[str, Any] = manifest["files"]
    for name in required:
        if name not in entries:
            raise MissingFileError(folder / name, "not listed in the manifest")
    for name, entry in entries.items():
        file = folder / name
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise FormatError(manifest_path, f"invalid file name {name!r}")
        if not isinstance(entry, dict):
            raise FormatError(manifest_path, f"entry of {name!r} is not an object")
        if not file.is_file():
            raise MissingFileError(file, "missing")
        size = file.stat().st_size
        if size != entry.get("size"):
            raise IntegrityError(
                file, f"size {size} differs from the manifest's {entry.get('size')}"
            )
        if fsutil.sha256_file(file) != entry.get("sha256"):
            raise IntegrityError(file, "sha256 differs from the manifest (file corrupted)")
    return manifest


def load_model(path: str | Path) -> LoadedModel:
    """Verifies, then loads a model directory; weights are restored to fp32."""
    folder = fsutil.resolve_dir(path)
    manifest = verify(folder)
    meta = read_json(folder / "config.json")
    try:
        config = _config_from_json(meta["config"])
        vocab_size, pad_id = int(meta["vocab_size"]), int(meta["pad_id"])
        info = dict(meta.get("info") or {})
    except (KeyError, TypeError, ValueError) as exc:
        raise FormatError(folder / "config.json", f"invalid model config: {exc}") from None
    tokenizer = Tokenizer.load(folder / "tokenizer.json")
    if tokenizer.vocab_size != vocab_size:
        raise ShapeError(
            folder / "tokenizer.json",
            f"vocabulary of {tokenizer.vocab_size} does not match the model's {vocab_size}",
        )
    _check_shapes(config, vocab_size, pad_id, folder / "model.safetensors")
    model = HRED(config.model, vocab_size=vocab_size, pad_id=pad_id)
    tensors = read_safetensors(folder / "model.safetensors")
    load_weights(model, tensors, folder / "model.safetensors")
    model.eval()
    info["manifest"] = manifest
    return LoadedModel(model, tokenizer, config, info, folder)


def _check_shapes(config: Config, vocab_size: int, pad_id: int, weights: Path) -> None:
    """Compares the shapes `config` implies with the weights file's header before
    anything is allocated: a config edited to an absurd size is refused, not
    given 100 GB of memory. The model is built on the meta device (no storage)."""
    try:
        with torch.device("meta"):
            skeleton = HRED(config.model, vocab_size=vocab_size, pad_id=pad_id)
    except (ValueError, RuntimeError, TypeError, OverflowError) as exc:
        raise ShapeError(weights.with_name("config.json"), f"invalid model shapes: {exc}") from None
    expected = {name: list(p.shape) for name, p in skeleton.named_parameters()}
    found = _header_shapes(weights)
    missing, unexpected = sorted(expected.keys() - found.keys()), sorted(found.keys() - expected)
    if missing or unexpected:
        raise ShapeError(
            weights, f"missing weights {missing[:5]}, unexpected weights {unexpected[:5]}"
        )
    if found != expected:
        wrong = sorted(n for n in expected.keys() | found.keys() if expected.get(n) != found.get(n))
        name = wrong[0]
        raise ShapeError(weights, f"config.json implies {name} of shape {expected.get(name)}, "
                                  f"the weights hold {found.get(name)}")


def _header_shapes(path: Path) -> dict[str, list[int]]:
    """Each tensor's shape, from a safetensors file's header alone."""
    with open(path, "rb") as handle:
        length = os.fstat(handle.fileno()).st_size
        head = handle.read(8)
        if len(head) < 8:
            raise FormatError(path, "truncated safetensors file")
        (size,) = struct.unpack("<Q", head)
        if size > MAX_HEADER_BYTES:
            raise FormatError(path, f"safetensors header of {size} bytes is invalid")
        raw = handle.read(size)
    try:
        header = jsonio.loads(raw)
    except JsonError as exc:
        raise FormatError(path, f"invalid safetensors header: {exc.message}") from None
    if not isinstance(header, dict):
        raise FormatError(path, "invalid safetensors header")
    try:
        entries = {n: e for n, e in header.items() if n != "__metadata__"}
        end = max((int(e["data_offsets"][1]) for e in entries.values()), default=0)
        shapes = {n: [int(d) for d in e["shape"]] for n, e in entries.items()}
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise FormatError(path, f"invalid safetensors header: {exc!r}") from None
    if 8 + size + end > length:
        described = 8 + size + end
        raise FormatError(path, f"the header describes {described} bytes, the file has {length}")
    return shapes


def load_weights(model: HRED, tensors: dict[str, torch.Tensor], path: Path) -> None:
    """Copies `tensors` into `model` after checking names, shapes and finiteness."""
    checked = _check_weights(model, tensors, path)
    with torch.no_grad():
        for name, param in model.named_parameters():
            param.copy_(checked[name])


def _check_weights(
    model: HRED, tensors: dict[str, torch.Tensor], path: Path
) -> dict[str, torch.Tensor]:
    """`tensors` in the model's dtypes, or a `ShapeError` naming `path`; changes nothing."""
    expected = dict(model.named_parameters())
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise ShapeError(
            path, f"missing weights {missing[:5]}, unexpected weights {unexpected[:5]}"
        )
    checked = {}
    for name, param in expected.items():
        value = tensors[name]
        if value.shape != param.shape:
            raise ShapeError(
                path, f"{name} has shape {tuple(value.shape)}, expected {tuple(param.shape)}"
            )
        if not value.is_floating_point():
            raise ShapeError(path, f"{name} has dtype {value.dtype}, expected a float")
        value = value.to(param.dtype)
        if not bool(torch.isfinite(value).all()):
            raise ShapeError(path, f"{name} holds NaN or Inf values")
        checked[name] = value
    return checked


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """Parses a safetensors file after bounding its header."""
    data = path.read_bytes()
    if len(data) < 8:
        raise FormatError(path, "truncated safetensors file")
    (header_size,) = struct.unpack("<Q", data[:8])
    if header_size > MAX_HEADER_BYTES or 8 + header_size > len(data):
        raise FormatError(path, f"safetensors header of {header_size} bytes is invalid")
    if data[8:9] != b"{":
        raise FormatError(path, "not a safetensors file (a pickle or other format?)")
    try:
        tensors: dict[str, torch.Tensor] = load_safetensors(data)
    except Exception as exc:
        raise FormatError(path, f"invalid safetensors data: {exc}") from None
    return tensors


def read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise MissingFileError(path, "missing")
    if path.stat().st_size > MAX_JSON_BYTES:
        raise FormatError(path, f"larger than {MAX_JSON_BYTES} bytes")
    try:
        value = jsonio.loads(path.read_bytes())
    except JsonError as exc:
        raise FormatError(path, exc.message) from None
    if not isinstance(value, dict):
        raise FormatError(path, "expected a JSON object")
    return value


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, allow_nan=False) + "\n").encode("utf-8")


def _config_from_json(data: dict[str, Any]) -> Config:
    from chatbot.config import DataConfig, TokenizerConfig, TrainConfig

    config = Config(
        model=from_json_dict(data["model"], ModelConfig),
        tokenizer=from_json_dict(data["tokenizer"], TokenizerConfig),
        data=from_json_dict(data["data"], DataConfig),
        train=from_json_dict(data["train"], TrainConfig),
    )
    config.validate()
    return config


# Training checkpoints -------------------------------------------------------


def save_checkpoint(
    folder: str | Path,
    *,
    step: int,
    model: HRED,
    optimizer: torch.optim.Optimizer,
    config: Config,
    tokenizer: Tokenizer,
    state: dict[str, Any],
    keep: int = 2,
) -> Path:
    """Writes `folder/step-NNNNNNNN` atomically and prunes all but the newest `keep`,
    and the staging folders of saves that were killed part-way."""
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    tensors, groups = _optimizer_tensors(optimizer)
    tensors["rng.torch"] = torch.get_rng_state()
    trainer = {"step": step, "state": state, "param_groups": groups}
    target = save_model(
        root / f"step-{step:08d}",
        model,
        config=config,
        tokenizer=tokenizer,
        info={"step": step},
        extra={
            "trainer.safetensors": save_safetensors(tensors),
            "trainer.json": _json_bytes(trainer),
        },
    )
    for old in list_checkpoints(root)[max(keep, 1) :]:
        shutil.rmtree(old, ignore_errors=True)
    # Only one process writes a run's checkpoints, one at a time, so any staging
    # folder left here now is the remains of a save killed part-way.
    for stale in root.glob(".step-*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    return target


def list_checkpoints(folder: str | Path) -> list[Path]:
    """Complete-looking checkpoint folders, newest first (staging folders are skipped)."""
    root = Path(folder)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and _STEP_DIR.match(p.name)]
    return sorted(found, key=lambda p: p.name, reverse=True)


def latest_checkpoint(folder: str | Path) -> Path | None:
    """The newest checkpoint that verifies; partial or corrupt ones are skipped."""
    for candidate in list_checkpoints(folder):
        try:
            verify(candidate, MODEL_FILES + TRAINER_FILES)
        except CheckpointError:
            continue
        return candidate
    return None


def load_checkpoint(
    path: str | Path, model: HRED, optimizer: torch.optim.Optimizer
) -> dict[str, Any]:
    """Restores weights, optimizer and RNG state in place; returns the trainer state.

    Everything is read and checked first: on any error nothing has changed.
    """
    folder = Path(path)
    verify(folder, MODEL_FILES + TRAINER_FILES)
    weights = _check_weights(
        model, read_safetensors(folder / "model.safetensors"), folder / "model.safetensors"
    )
    trainer = read_json(folder / "trainer.json")
    tensors = read_safetensors(folder / "trainer.safetensors")
    rng = tensors.get("rng.torch")
    current = torch.get_rng_state()
    if rng is None or rng.dtype != current.dtype or rng.shape != current.shape:
        raise FormatError(folder / "trainer.safetensors", "missing or invalid rng.torch state")
    state = trainer.get("state")
    if not isinstance(state, dict):
        raise FormatError(folder / "trainer.json", "missing trainer state")
    optimizer_state = _optimizer_state(optimizer, tensors, folder / "trainer.safetensors")
    try:
        _restore_optimizer(optimizer, optimizer_state, trainer["param_groups"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise FormatError(folder / "trainer.json", f"invalid optimizer state: {exc}") from None
    torch.set_rng_state(rng)
    with torch.no_grad():
        for name, param in model.named_parameters():
            param.copy_(weights[name])
    return state


def _optimizer_tensors(
    optimizer: torch.optim.Optimizer,
) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    saved = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    for index, slots in saved["state"].items():
        for key, value in slots.items():
            tensor = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"optim.{index}.{key}"] = tensor.detach().cpu().contiguous()
    groups = [
        {k: (list(v) if isinstance(v, tuple) else v) for k, v in group.items()}
        for group in saved["param_groups"]
    ]
    for group in groups:
        for key, value in group.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise CheckpointError("trainer.json", f"optimizer {key} is not finite")
    return tensors, groups


def _optimizer_state(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], path: Path
) -> dict[int, dict[str, torch.Tensor]]:
    """The `optim.{index}.{key}` tensors as an optimizer's per-parameter state.

    Refuses state that names no parameter, holds NaN or Inf, or has the wrong
    shape: each per-parameter tensor (Adam's moments, a momentum buffer) has its
    parameter's shape; scalars (Adam's step) have none.
    """
    params = [p for group in optimizer.param_groups for p in group["params"]]
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, tensor in tensors.items():
        if not name.startswith("optim."):
            continue
        parts = name.split(".", 2)
        if len(parts) != 3 or not parts[1].isdigit() or int(parts[1]) >= len(params):
            raise FormatError(path, f"{name} names no parameter of this model")
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ShapeError(path, f"{name} holds NaN or Inf values")
        shape = tuple(params[int(parts[1])].shape)
        if tensor.dim() and tuple(tensor.shape) != shape:
            raise ShapeError(path, f"{name} has shape {tuple(tensor.shape)}, expected {shape}")
        state.setdefault(int(parts[1]), {})[parts[2]] = tensor
    return state


def _restore_optimizer(
    optimizer: torch.optim.Optimizer,
    state: dict[int, dict[str, torch.Tensor]],
    groups: list[dict[str, Any]],
) -> None:
    fixed = []
    for group in groups:
        fixed.append({k: (tuple(v) if k == "betas" else v) for k, v in group.items()})
    optimizer.load_state_dict({"state": state, "param_groups": fixed})
