"""Helpers shared by the transcript tests: a small bot directory and a fake generator's script."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

INTENTS = r"""
version: 1
intents:
  - name: greet
    override: true
    examples: [hello, hi]
    patterns: ['^\W*(hello|hi)\W*$']
    responses: [Hello!]
  - name: user_name
    override: true
    examples: [my name is sam]
    patterns: ['\bmy name is (?P<name>\w+)']
    responses: ["Nice to meet you, {name}!"]
  - name: ask_name
    override: true
    examples: [what is my name]
    responses:
      - "Your name is {name}."
      - text: I don't know your name.
        unless_slots: [name]
  - name: how_are_you
    override: true
    examples: [how are you]
    responses: ["Fine, and you?"]
    sets: {context: {asked: 2}}
  - name: feels_good
    override: true
    requires: {context: [asked]}
    examples: [i am good]
    responses: [Glad to hear it!]
fallback:
  - Sorry, I did not get that.
"""

SCRIPT = {
    "tell me something": ("i like trains", 0.8, ()),
    "mumble": ("hmm hmm hmm", 0.1, ()),
}

WriteTranscript = Callable[[str, str], Path]


def make_bot_dir(root: Path, *, model: str | None) -> Path:
    """A bot directory at `root`: the intents above, and `model:` in bot.yml."""
    (root / "intents").mkdir(parents=True)
    (root / "intents" / "basics.yml").write_text(INTENTS.lstrip(), encoding="utf-8")
    (root / "transcripts").mkdir()
    model_line = "null" if model is None else repr(model)
    # Any reply of the tiny model is used, so that its replies show in transcripts.
    policy = "policy: {neural_min_confidence: 0.0}\n" if model else ""
    (root / "bot.yml").write_text(f"version: 1\nname: testbot\nmodel: {model_line}\n{policy}",
                                  encoding="utf-8")
    return root
