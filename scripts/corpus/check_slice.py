"""Check one writer's slice of the everyday corpus against its plan.

usage: python3 scripts/corpus/check_slice.py SLICE.jsonl PLAN.tsv

Prints how many planned conversations are written, every malformed line, every
turn the reply filter blocks, and the slice's most repeated bot openers and
bot turns, so a writer can see their own habits. Standard library and PyYAML.
"""

from __future__ import annotations

import collections
import json
import re
import sys
import unicodedata
from pathlib import Path

import yaml

BLOCKED = Path(__file__).parents[2] / "chatbot" / "replies" / "blocked.yml"
WORD = re.compile(r"[a-z0-9']+")


def blocker():
    spec = yaml.safe_load(BLOCKED.read_text(encoding="utf-8"))
    words = sorted({" ".join(re.findall(r"\w+", w.casefold())) for w in spec["words"]}, key=len, reverse=True)
    alternation = re.compile(r"(?<!\w)(?:" + "|".join(r"\W+".join(map(re.escape, w.split())) for w in words) + r")(?!\w)")
    patterns = [(p["name"], re.compile(p["regex"], re.IGNORECASE)) for p in spec["patterns"]]

    def blocked(text: str) -> str | None:
        norm = unicodedata.normalize("NFKC", text).casefold()
        if m := alternation.search(norm):
            return f"word {m.group(0)!r}"
        for name, pattern in patterns:
            if m := pattern.search(norm):
                return f"{name} {m.group(0)!r}"
        return None

    return blocked


def main(slice_path: str, plan_path: str) -> int:
    plan = {}
    for line in Path(plan_path).read_text(encoding="utf-8").splitlines()[1:]:
        fields = line.split("\t")
        plan[fields[0]] = fields
    blocked = blocker()
    seen, problems, bot = set(), [], []
    for number, line in enumerate(Path(slice_path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{slice_path}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            problems.append(f"{where}: not JSON ({error})"); continue
        if not isinstance(row, dict) or set(row) != {"id", "topic", "turns"}:
            problems.append(f"{where}: want exactly the keys id, topic, turns"); continue
        if row["id"] not in plan:
            problems.append(f"{where}: id {row['id']!r} is not in the plan"); continue
        if row["id"] in seen:
            problems.append(f"{where}: id {row['id']!r} written twice")
        seen.add(row["id"])
        if row["topic"] != plan[row["id"]][1]:
            problems.append(f"{where}: topic should be {plan[row['id']][1]!r}")
        turns = row["turns"]
        if not isinstance(turns, list) or not all(isinstance(t, str) and t.strip() for t in turns):
            problems.append(f"{where}: turns must be a list of non-empty strings"); continue
        if not 4 <= len(turns) <= 16:
            problems.append(f"{where}: {len(turns)} turns (want 4 to 16)")
        for k, turn in enumerate(turns):
            if reason := blocked(turn):
                problems.append(f"{where}: turn {k + 1} blocked by the reply filter: {reason}")
        bot.extend(turns[1::2])
    print(f"written {len(seen)} of {len(plan)} planned conversations")
    missing = [i for i in plan if i not in seen]
    if missing:
        print(f"next unwritten: {missing[0]} ({len(missing)} left)")
    for p in problems[:50]:
        print("PROBLEM", p)
    if bot:
        openers = collections.Counter(" ".join(WORD.findall(t.lower())[:3]) for t in bot)
        print(f"bot turns {len(bot)}; most common bot openers (first 3 words):")
        for o, k in openers.most_common(8):
            print(f"  {k:4d} {k / len(bot):6.2%}  {o!r}")
        firsts = collections.Counter(WORD.findall(t.lower())[:1][0] if WORD.findall(t.lower()) else "" for t in bot)
        print("  most common first words:", ", ".join(f"{w!r} {k / len(bot):.1%}" for w, k in firsts.most_common(6)))
        ends_q = sum(t.rstrip().endswith("?") for t in bot) / len(bot)
        print(f"  bot turns ending in '?': {ends_q:.0%}")
        repeated = [(t, k) for t, k in collections.Counter(t.lower() for t in bot).items() if k > 1]
        for t, k in sorted(repeated, key=lambda x: -x[1])[:5]:
            print(f"  repeated bot turn x{k}: {t!r}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
