"""Startup of `chatbot chat`: time to the first prompt, to the first reply, and peak memory.

Spawns `python -m chatbot chat [BOT_DIR]` under a pseudo-terminal, as a user
would run it, and measures for each run:

- prompt: from spawning the command to the first `you> ` on the terminal;
- reply: from spawning to the reply to one message, typed as soon as the
  prompt shows (the model loads in the background, so this includes the load);
- peak RSS of the process (its `ru_maxrss`, from `os.wait4`).

    python benchmarks/bench_startup.py                 # the packaged default bot
    python benchmarks/bench_startup.py path/to/bot --runs 7

Prints the median of each over the runs, the worst peak RSS, and one JSON line.
The 1-minute load average is printed too: on a busy machine every figure grows.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import resource
import select
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from dataclasses import asdict, dataclass
from pathlib import Path

PROMPT = b"you>"
TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Run:
    prompt_s: float
    reply_s: float
    peak_rss_mb: float


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bot", nargs="?", help="bot directory (default: the packaged bot)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--message", default="hello")
    args = parser.parse_args()

    from chatbot.botdir import load_bot

    name = load_bot(args.bot).name
    runs = [one_run(args.bot, name=name, message=args.message) for _ in range(args.runs)]
    children_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    report = {
        "runs": len(runs),
        "load_1min": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "prompt_s_median": round(statistics.median(r.prompt_s for r in runs), 3),
        "reply_s_median": round(statistics.median(r.reply_s for r in runs), 3),
        "peak_rss_mb_max": round(max(r.peak_rss_mb for r in runs), 1),
        "rusage_children_mb": round(children_mb, 1),
        "each": [asdict(r) for r in runs],
    }
    print(f"first prompt  median {report['prompt_s_median']:.3f} s")
    print(f"first reply   median {report['reply_s_median']:.3f} s (includes loading the model)")
    print(f"peak RSS      max    {report['peak_rss_mb_max']:.1f} MB")
    print(f"machine       {report['cpus']} CPUs, load average {report['load_1min']}")
    print(json.dumps(report))


def one_run(bot: str | None, *, name: str, message: str) -> Run:
    """One `chatbot chat` session: wait for the prompt, send `message`, wait, Ctrl-D."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "XDG_DATA_HOME": home, "PROMPT_TOOLKIT_NO_CPR": "1",
               "TERM": os.environ.get("TERM", "xterm"), "NO_COLOR": "1"}
        command = [sys.executable, "-m", "chatbot", "chat", *([bot] if bot else [])]
        reaped = False
        start = time.perf_counter()
        process = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave, env=env,
                                   start_new_session=True, cwd=Path(home))
        os.close(slave)
        try:
            terminal = _Terminal(master)
            terminal.expect(PROMPT)
            prompt_s = time.perf_counter() - start
            os.write(master, message.encode() + b"\r")
            terminal.expect(f"{name}> ".encode())
            reply_s = time.perf_counter() - start
            terminal.expect(PROMPT)
            os.write(master, b"\x04")
            status, usage = _wait(process.pid)
            reaped = True
        finally:
            if not reaped:
                process.kill()
                process.wait()
            os.close(master)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"chatbot chat exited with {os.waitstatus_to_exitcode(status)}")
    return Run(round(prompt_s, 3), round(reply_s, 3), round(usage.ru_maxrss / 1024, 1))


def _wait(pid: int) -> tuple[int, resource.struct_rusage]:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            return status, usage
        time.sleep(0.01)
    raise SystemExit(f"chatbot chat did not exit within {TIMEOUT_S:.0f} s of Ctrl-D")


class _Terminal:
    """The master side of the pseudo-terminal: what the command wrote, read in order."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.out = b""
        self.position = 0

    def expect(self, marker: bytes) -> None:
        """Reads until `marker` appears after the previous one."""
        deadline = time.monotonic() + TIMEOUT_S
        while (found := self.out.find(marker, self.position)) < 0:
            if time.monotonic() > deadline:
                raise SystemExit(f"no {marker!r} within {TIMEOUT_S:.0f} s: {self.out[-500:]!r}")
            ready, _, _ = select.select([self.fd], [], [], 0.01)
            if ready:
                try:
                    self.out += os.read(self.fd, 65536)
                except OSError as exc:
                    raise SystemExit(f"chatbot chat ended early: {self.out[-500:]!r}") from exc
        self.position = found + len(marker)


if __name__ == "__main__":
    main()
