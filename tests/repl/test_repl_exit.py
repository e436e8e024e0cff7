"""Quitting `chatbot chat` while the reply table is still being computed exits 0
(issue 24: it aborted with "terminate called without an active exception")."""

from __future__ import annotations

import os
import pty
import random
import select
import signal
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a pty")


def _read_until(fd: int, marker: bytes, timeout: float) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                seen += os.read(fd, 4096)
            except OSError:
                break
    return seen


def _chat_and_quit(cache: Path, delay: float, key: bytes) -> tuple[int, bytes]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "XDG_DATA_HOME": str(cache / "data"),
           "TERM": "xterm", "COLUMNS": "80", "LINES": "24"}
    pid, fd = pty.fork()
    if pid == 0:  # the child: the command itself
        os.execvpe(sys.executable, [sys.executable, "-m", "chatbot", "chat"], env)
    output = _read_until(fd, b"you>", 60)
    time.sleep(delay)
    os.write(fd, key)
    output += _read_until(fd, b"\x00never", 30)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), output


@pytest.mark.parametrize("trial", range(2))
def test_ctrl_d_during_the_first_runs_table_exits_0(tmp_path: Path, trial: int) -> None:
    delay = random.Random(trial).uniform(3.0, 8.0)
    code, output = _chat_and_quit(tmp_path, delay, b"\x04")
    assert code == 0, output.decode(errors="replace")[-2000:]
    assert b"terminate called" not in output
    assert not list(tmp_path.rglob("reply-vectors-*.safetensors.tmp*"))


@pytest.mark.slow
def test_the_interrupted_table_is_computed_and_written_by_a_later_run(tmp_path: Path) -> None:
    code, _ = _chat_and_quit(tmp_path, 0.2, b"\x04")
    assert code == 0
    start = time.monotonic()
    pid, fd = pty.fork()
    if pid == 0:
        env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path),
               "XDG_DATA_HOME": str(tmp_path / "data"), "TERM": "xterm"}
        os.execvpe(sys.executable, [sys.executable, "-m", "chatbot", "chat"], env)
    _read_until(fd, b"you>", 60)
    while not list(tmp_path.glob("chatbot/reply-vectors-*.safetensors")):
        assert time.monotonic() - start < 120, "the table was never written"
        _read_until(fd, b"\x00never", 0.5)
    os.kill(pid, signal.SIGTERM)
    os.waitpid(pid, 0)
    os.close(fd)
