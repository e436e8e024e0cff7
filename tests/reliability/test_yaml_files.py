"""Item 4: hostile YAML in intent files, transcripts and bot.yml, through their real loaders."""

from __future__ import annotations

import re
import shutil
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from chatbot.botdir import default_bot_dir, load_bot
from chatbot.errors import BotValidationError, LocatedError
from chatbot.intents import load_intents
from chatbot.transcripts.loading import load_transcript


def _bot_dir(root: Path) -> Path:
    shutil.copytree(default_bot_dir() / "intents", root / "intents")
    (root / "bot.yml").write_text("version: 1\nmodel: null\n", encoding="utf-8")
    return root


# Each kind of file: where a test writes it and how it is loaded.
KINDS: dict[str, tuple[str, Callable[[Path], object]]] = {
    "intents": ("intents/extra.yml", lambda root: load_intents(root / "intents")),
    "transcript": ("transcripts/t.yml", lambda root: load_transcript(root / "transcripts/t.yml")),
    "bot.yml": ("bot.yml", lambda root: load_bot(root)),
}


def _problems(tmp_path: Path, kind: str, text: str) -> tuple[list[str], float, int]:
    """The located problems loading `text` as a `kind` file gives, the seconds and peak bytes."""
    root = _bot_dir(tmp_path / "bot")
    name, load = KINDS[kind]
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(text, encoding="utf-8")
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(BotValidationError) as caught:
            load(root)
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert all(isinstance(p, LocatedError) for p in caught.value.problems)
    prefix = f"{root}/"
    return [str(p).removeprefix(prefix) for p in caught.value.problems], elapsed, peak


# Where each kind of file holds a string value to put a tag on, and its column.
TAGGED = {
    "intents": ("version: 1\nfallback: [{value}]\n", 12),
    "transcript": ("version: 1\nname: {value}\nturns: [{{user: hi}}]\n", 7),
    "bot.yml": ("version: 1\nname: {value}\n", 7),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("tag", ["!!python/object/apply:os.system", "!!python/object/new:os.system",
                                 "!!python/object:os.system", "!!python/name:os.system"])
def test_a_python_tag_is_an_error_with_no_side_effect(tmp_path: Path, kind: str, tag: str) -> None:
    marker = tmp_path / "pwned"
    template, col = TAGGED[kind]
    for i, value in enumerate([f"{tag} [touch {marker}]", f"{tag} 'touch {marker}'"]):
        problems, _, _ = _problems(tmp_path / str(i), kind, template.format(value=value))
        assert problems and all(p.startswith(f"{KINDS[kind][0]}:2:{col}: ") for p in problems)
        assert not marker.exists()


BILLION_LAUGHS = "version: 1\na: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n"
    for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)


@pytest.mark.parametrize("kind", KINDS)
def test_an_alias_bomb_is_refused_within_a_second_and_bounded_memory(
    tmp_path: Path, kind: str
) -> None:
    problems, elapsed, peak = _problems(tmp_path, kind, BILLION_LAUGHS)
    assert elapsed < 1.0 and peak < 50_000_000
    assert len(problems) == 1
    assert re.fullmatch(rf"{KINDS[kind][0]}:\d+:4: aliases expand to more than 1000000 nodes",
                        problems[0])


@pytest.mark.parametrize("style", ["flow", "block", "mapping"])
@pytest.mark.parametrize("kind", KINDS)
def test_ten_thousand_deep_nesting_is_refused_within_a_second(
    tmp_path: Path, kind: str, style: str
) -> None:
    depth = 10_000
    body = {
        "flow": "[" * depth + "]" * depth,
        "block": "\n  " + "- " * depth,
        "mapping": "{a: " * depth + "}" * depth,
    }[style]
    problems, elapsed, peak = _problems(tmp_path, kind, f"version: 1\nx: {body}\n")
    assert elapsed < 1.0 and peak < 50_000_000
    assert len(problems) == 1 and "nesting deeper than 100 levels" in problems[0]
    assert problems[0].startswith(f"{KINDS[kind][0]}:")


DUPLICATES = {
    "intents": "version: 1\nintents:\n  - name: a\n    examples: [x]\n    examples: [y]\n"
               "    responses: [z]\n",
    "transcript": "version: 1\nname: t\nturns:\n  - user: hi\n    user: hello\n",
    "bot.yml": "version: 1\nmodel: null\nname: a\nname: b\n",
}
WHERE = {"intents": "5:5", "transcript": "5:5", "bot.yml": "4:1"}


@pytest.mark.parametrize("kind", KINDS)
def test_duplicate_keys_are_errors_with_line_and_column(tmp_path: Path, kind: str) -> None:
    problems, _, _ = _problems(tmp_path, kind, DUPLICATES[kind])
    assert any(p.startswith(f"{KINDS[kind][0]}:{WHERE[kind]}: duplicate key") for p in problems), \
        problems
