"""Writes `chatbot/intents/words.txt`: the words said at least `--min-count` times
in the chitchat corpus (normalised as the matcher does, 3+ characters), one a line,
sorted. The intent matcher never reads such a word as a typo of another.

    python scripts/common_words.py
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from chatbot.data import load_corpus
from chatbot.intents.text import normalize

OUT = Path(__file__).resolve().parent.parent / "chatbot" / "intents" / "words.txt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--min-count", type=int, default=30)
    args = parser.parse_args()
    counts: Counter[str] = Counter()
    for conversation in load_corpus("chitchat"):
        for turn in conversation.turns:
            counts.update(normalize(turn).split())
    words = sorted(w for w, n in counts.items()
                   if n >= args.min_count and len(w) >= 3 and w.isascii() and w.isalpha())
    header = (f"# Words said at least {args.min_count} times in the chitchat corpus "
              "(scripts/common_words.py); never read as typos.\n")
    OUT.write_text(header + "\n".join(words) + "\n", encoding="utf-8")
    print(f"{len(words)} words -> {OUT}")


if __name__ == "__main__":
    main()
