"""The runnable blocks of README.md and docs/ run, as written, so the docs cannot drift.

A fenced `bash` or `python` block preceded by the line `<!-- test: run -->` is
run in a fresh folder (its own data directory for the default session store),
with this interpreter's `chatbot` and `python` first on PATH. When the block is
followed by a line `It prints:` and a fenced `text` block, its standard output
must be exactly that text.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
MARKER = "<!-- test: run -->"
_FENCE = re.compile(r"^```(\w+)\s*$")


def runnable_blocks() -> list[tuple[str, int, str, str, str | None]]:
    """(file, line, language, code, printed) of every marked block, in file order
    (`printed`: the output the doc says it prints, or None)."""
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines):
            if line.strip() != MARKER:
                continue
            fence = _FENCE.match(lines[number + 1])
            assert fence, f"{path.name}:{number + 1}: {MARKER} must precede a fenced block"
            end = lines.index("```", number + 2)
            code = "\n".join(lines[number + 2 : end]) + "\n"
            rest = [line for line in lines[end + 1 : end + 6] if line.strip()]
            printed = None
            if rest[:2] == ["It prints:", "```text"]:
                start = lines.index("```text", end + 1) + 1
                printed = "\n".join(lines[start : lines.index("```", start)]) + "\n"
            found.append((path.relative_to(ROOT).as_posix(), number + 2, fence.group(1), code,
                          printed))
    return found


BLOCKS = runnable_blocks()


def test_the_docs_mark_their_runnable_blocks() -> None:
    assert [(file, lang) for file, _, lang, _, _ in BLOCKS] == [
        ("README.md", "python"), ("docs/actions.md", "bash"), ("docs/api.md", "python"),
        ("docs/forms.md", "bash"), ("docs/intents.md", "bash"),
    ]


@pytest.mark.parametrize(("file", "line", "language", "code", "printed"), BLOCKS,
                         ids=[f"{f}:{n}" for f, n, _, _, _ in BLOCKS])
def test_a_runnable_block_runs(
    tmp_path: Path, file: str, line: int, language: str, code: str, printed: str | None
) -> None:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    command = ([sys.executable, "-c", code] if language == "python"
               else ["bash", "-euo", "pipefail", "-c", code])
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, f"{file}:{line}\n{done.stdout}\n{done.stderr}"
    if printed is not None:
        assert done.stdout == printed, f"{file}:{line}: the output differs from 'It prints:'"
