"""A blind sheet for a judge: every distinct (context, reply) of several systems, shuffled.

Each system's replies (`judged_replies.py` output) contribute their final
replies and the model's candidates (`neural`); a pair said by several systems
appears once. The sheet names no system; the key (kept from the judge) maps
each item back.

    python benchmarks/make_sheet.py --out judged/round1 before=before.jsonl after=after.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, help="writes OUT.sheet.jsonl and OUT.key.json")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("systems", nargs="+", metavar="NAME=REPLIES.jsonl")
    args = parser.parse_args()
    pairs: dict[tuple[str, str], dict[str, object]] = {}
    for spec in args.systems:
        name, _, path = spec.partition("=")
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            for text in {row["reply"], row.get("neural", row["reply"])}:
                entry = pairs.setdefault((row["id"], text.strip()),
                                         {"turns": row["turns"], "systems": []})
                entry["systems"].append(name)  # type: ignore[attr-defined]
    items = list(pairs.items())
    random.Random(args.seed).shuffle(items)
    key = {}
    with open(f"{args.out}.sheet.jsonl", "w", encoding="utf-8") as sheet:
        for number, ((cid, reply), entry) in enumerate(items, start=1):
            item = f"r{number:03d}"
            turns = entry["turns"]
            assert isinstance(turns, list)
            lines = [("A: " if i % 2 == 0 else "B: ") + t for i, t in enumerate(turns)]
            sheet.write(json.dumps({"item": item, "conversation": lines, "reply_by_B": reply})
                        + "\n")
            key[item] = {"id": cid, "reply": reply, "systems": entry["systems"]}
    Path(f"{args.out}.key.json").write_text(json.dumps(key, indent=1) + "\n", encoding="utf-8")
    print(f"{len(items)} items")


if __name__ == "__main__":
    main()
