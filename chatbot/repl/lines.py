"""Line mode, for when standard input is not a terminal: one reply per input line.

    printf 'hi\nbye\n' | chatbot chat           # each reply's text on its own line
    printf 'hi\n' | chatbot chat --json         # {"text": ..., "source": ..., ...}

Blank lines are skipped; every other line is a message (no slash commands).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, Any

from chatbot.dialogue import Reply
from chatbot.render import one_line
from chatbot.repl.chat import Chat


def run_lines(
    chat: Chat,
    *,
    stdin: IO[str],
    stdout: IO[str],
    json_lines: bool = False,
) -> int:
    """Answers each line of `stdin` on `stdout`; returns the exit status (0).

    A recording (`chat.writer`) gets every turn and is closed at the end.
    """
    try:
        for line in read_lines(stdin):
            if not line.strip():
                continue
            reply, _ = chat.send(line)
            chat.add_to_recording(line, reply)
            stdout.write((reply_json(reply) if json_lines else one_line(reply.text)) + "\n")
            stdout.flush()
    finally:
        chat.stop_recording()
    return 0


def read_lines(stdin: IO[str]) -> Iterator[str]:
    """The lines of `stdin` without their line ends; bytes that are not UTF-8 become U+FFFD."""
    binary: IO[bytes] | None = getattr(stdin, "buffer", None)
    if binary is None:
        for line in stdin:
            yield line.rstrip("\r\n")
        return
    for raw in binary:
        yield raw.decode("utf-8", errors="replace").rstrip("\r\n")


def reply_json(reply: Reply) -> str:
    """The reply as one JSON object: text, source, intent, confidence."""
    data: dict[str, Any] = {
        "text": one_line(reply.text),
        "source": reply.source,
        "intent": reply.intent,
        "confidence": round(reply.confidence, 6),
    }
    return json.dumps(data, ensure_ascii=False)
