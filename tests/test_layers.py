"""The import direction of DESIGN.md's layers, and the public surface."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import chatbot

PACKAGE = Path(chatbot.__file__).parent

LAYERS = {
    "errors": 0, "config": 0, "yamlio": 0, "jsonio": 0, "fsutil": 0, "paths": 0,
    "text": 1, "data": 1,
    "model": 2,
    "decoding": 3, "quality": 3, "replies": 3, "checkpoint": 3, "train": 3, "evaluate": 3,
    "generator": 3,
    "intents": 4, "dialogue": 4, "actions": 4, "session": 4, "botdir": 4,
    "bot": 5, "transcripts": 5, "pytest_plugin": 5, "teaching": 5,
    "render": 6, "repl": 6, "bots": 6, "serve": 6, "cli": 6, "__main__": 6, "replay_report": 6,
}


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "chatbot":
        return None
    if len(parts) == 1:
        return 5
    return LAYERS.get(parts[1])


def _module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names
                      if node.module == "chatbot"]
    return found


def test_every_module_has_a_layer() -> None:
    for path in PACKAGE.rglob("*.py"):
        name = _module_name(path)
        assert _layer(name) is not None, f"{name} is missing from LAYERS"


def test_imports_go_downward_only() -> None:
    violations = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = _module_name(path)
        own = _layer(name)
        if name == "chatbot":
            continue
        for line, target in _imports(path):
            layer = _layer(target)
            if layer is not None and own is not None and layer > own and target != "chatbot":
                violations.append(f"{path.name}:{line}: {name} (layer {own}) imports "
                                  f"{target} (layer {layer})")
    assert violations == []


def test_all_is_sorted_and_every_name_exists() -> None:
    assert chatbot.__all__ == sorted(chatbot.__all__)
    for name in chatbot.__all__:
        assert hasattr(chatbot, name), name


def test_importing_chatbot_loads_no_terminal_ui_library() -> None:
    code = (
        "import sys, chatbot; "
        "print(sorted(m for m in ('rich', 'prompt_toolkit') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_reading_and_checking_a_bot_loads_no_torch() -> None:
    """`chatbot check` and intent-only bots pay no torch import (about 0.8 s)."""
    code = (
        "import sys; from chatbot.botdir import check_bot, default_bot_dir, load_bot; "
        "bot = load_bot(); problems = check_bot(default_bot_dir()); "
        "print(bot.model.name, len(problems), 'torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["default", "0", "False"]


def test_nothing_in_the_package_unpickles() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for banned in ("import pickle", "torch.load(", "pickle.load", "weights_only"):
            if banned in text:
                offenders.append(f"{path.name}: {banned}")
    assert offenders == []
