"""The pytest plugin: `pytest` in a bot directory replays its transcripts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from transcript_helpers import WriteTranscript

GOOD = "version: 1\nname: good\nturns:\n  - user: hello\n    bot: Hello!\n"
BAD = "version: 1\nname: bad one\nturns:\n  - user: hello\n    bot: Bye!\n"


def test_pytest_in_a_bot_directory_replays_its_transcripts(
    write: WriteTranscript, bot_dir: Path
) -> None:
    write("good", GOOD)
    write("sub/bad", BAD)
    write("notes", "version: 1\ntitle: not a transcript\n")
    write("broken", "version: 1\nturns:\n  - usr: hi\n")
    (bot_dir / "elsewhere.yml").write_text(GOOD)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA",
         "--continue-on-collection-errors", "-o", "console_output_style=classic"],
        cwd=bot_dir, capture_output=True, text=True, timeout=120,
    )
    out = done.stdout
    assert done.returncode == 1, out
    assert "\nERROR transcripts/broken.yml\n" in out
    assert "transcripts/broken.yml:3:5: unknown key 'usr' (did you mean 'user'?)" in out
    assert "\nPASSED transcripts/good.yml::good\n" in out
    assert "\nFAILED transcripts/sub/bad.yml::bad one - FAILED bad one" in out
    report = out[out.index(" transcript: bad one "):]
    assert report.splitlines()[1:7] == [
        "FAILED bad one (transcripts/sub/bad.yml)",
        "  turn 1 at transcripts/sub/bad.yml:4",
        "    user:  'hello'",
        "    reply: 'Hello!' (intent greet, confidence 1.000)",
        "",
        "    expected    | actual",
    ]
    assert "elsewhere" not in out
    assert "1 failed, 1 passed, 1 error" in out.splitlines()[-1]
