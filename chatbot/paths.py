"""Where models live: the packaged default and how a model argument is resolved.

No torch import, so that reading a bot directory (`botdir`) stays cheap.
"""

from __future__ import annotations

import os
from pathlib import Path

from chatbot import fsutil

MANIFEST = "manifest.json"


def packaged_model_dir() -> Path:
    """The default bot's model directory, shipped inside the package."""
    return Path(__file__).parent / "models" / "default"


def resolve_model_dir(name: str | Path) -> Path:
    """`default`, a model directory, or a training run folder (its `model/`)."""
    if str(name) == "default":
        return packaged_model_dir()
    path = Path(name)
    inner = path / "model"
    if not (path / MANIFEST).exists() and (fsutil.resolve_dir(inner) / MANIFEST).exists():
        return inner
    return path


def cache_dir() -> Path:
    """`$XDG_CACHE_HOME/chatbot` (`~/.cache/chatbot` when unset): files worth keeping
    but recomputed when missing, such as a model's table of reply embeddings."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "chatbot"
