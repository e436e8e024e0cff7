"""The judged development data in `benchmarks/judged/` is consistent and apart from
the held-out contexts."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

JUDGED = Path(__file__).resolve().parent.parent / "benchmarks" / "judged"


def _contexts(name: str) -> dict[str, list[str]]:
    data = yaml.safe_load((JUDGED / name).read_text(encoding="utf-8"))
    return {c["id"]: c["turns"] for c in data["contexts"]}


def test_labelled_candidates_name_development_contexts_only() -> None:
    dev = {**_contexts("dev_contexts.yml"), **_contexts("dev_contexts_2.yml")}
    held_out = _contexts("contexts.yml")
    assert len(dev) == 120
    assert not set(dev) & set(held_out)
    # Common openers ("do you have any pets?") recur; no line the bot answers does.
    held_last = {turns[-1].casefold() for turns in held_out.values()}
    assert not {turns[-1].casefold() for turns in dev.values()} & held_last
    rows = [json.loads(line) for line in
            (JUDGED / "candidates.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 2075
    assert {r["context"] for r in rows} == set(dev)
    assert len({(r["context"], r["reply"]) for r in rows}) == len(rows)
    assert all(isinstance(r["sensible"], bool) and isinstance(r["specific"], bool) for r in rows)
    assert not [r for r in rows if r["specific"] and not r["sensible"]]
    assert sum(r["sensible"] for r in rows) == 479
    assert sum(r["specific"] for r in rows) == 180
