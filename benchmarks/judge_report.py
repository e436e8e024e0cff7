"""Sensible and specific rates of judged replies, and the gate's reliability.

Inputs: the replies of each system (`judged_replies.py` output, JSON lines with
`id`, `reply`, `source`, `confidence`), and the judge's labels joined to them
through the blind sheet's key (`make_sheet.py`).

    python benchmarks/judge_report.py --key sheet.key.json --labels labels.jsonl \
        before=before.jsonl after=after.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

BINS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0001)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--key", required=True)
    parser.add_argument("--labels", required=True)
    parser.add_argument("systems", nargs="+", metavar="NAME=REPLIES.jsonl")
    args = parser.parse_args()
    key = json.loads(Path(args.key).read_text())
    labels = {}
    for line in Path(args.labels).read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            labels[row["item"]] = row
    judged = {(v["id"], v["reply"]): labels[item] for item, v in key.items() if item in labels}
    for spec in args.systems:
        name, _, path = spec.partition("=")
        rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
        marks = [judged[(r["id"], r["reply"].strip())] for r in rows]
        sensible = sum(m["sensible"] for m in marks)
        specific = sum(m["sensible"] and m["specific"] for m in marks)
        sources = {s: sum(r["source"] == s for r in rows) for s in ("neural", "intent", "fallback")}
        n = len(rows)
        print(f"{name}: {n} replies; sensible {sensible} ({100 * sensible / n:.0f}%), "
              f"sensible and specific {specific} ({100 * specific / n:.0f}%); {sources}")
        if all("human_claim" in m for m in marks):
            claims = sum(bool(m["human_claim"]) for m in marks)
            print(f"  claims a human life: {claims} ({100 * claims / n:.0f}%)")
        neural = [(r, m) for r, m in zip(rows, marks, strict=True) if r["source"] == "neural"]
        if neural:
            ok = sum(m["sensible"] for _, m in neural)
            print(f"  neural replies sensible: {ok} of {len(neural)}")
        candidates = [(r["confidence_neural"], judged.get((r["id"], r["neural"].strip())))
                      for r in rows if "neural" in r]
        if not candidates or any(m is None for _, m in candidates):
            continue
        print("  the model's candidate, said or not: confidence bin | candidates | judged sensible")
        for low, high in zip(BINS, BINS[1:], strict=False):
            inside = [m for c, m in candidates if low <= c < high and m is not None]
            if inside:
                rate = sum(m["sensible"] for m in inside) / len(inside)
                print(f"  [{low:.1f}, {min(high, 1.0):.1f}) | {len(inside)} | {rate:.2f}")


if __name__ == "__main__":
    main()
