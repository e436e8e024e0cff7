"""Rankers judged offline: every labelled candidate of the development contexts.

`judged/candidates.jsonl` holds one judge's sensible/specific label for 2,075
(context, reply) pairs: about 17 candidates for each of the 120 development
contexts (`dev_contexts.yml` and `dev_contexts_2.yml`), drawn from the
shipped selector's pool (40 retrieved replies, the greedy reply, and the 300
most frequent short corpus replies) by several rankers at once. With labels on
the pool rather than on one winner, any ranker's top-1 judged rate can be
computed without judging again.

    python benchmarks/rank_offline.py pools --out runs/pools.jsonl      # features, ~1 min
    python benchmarks/rank_offline.py eval --pools runs/pools.jsonl

`eval` reports, over the contexts, the judged rates of the top-1 labelled
candidate for: an oracle, the model's ranker (`ranker.json`), each feature
alone, and logistic regressions fitted to the labels (5-fold, by context,
averaged over seeds). Only labelled candidates compete, so a ranker is judged
on the candidates the judges saw.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import math
import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
CONTEXTS = [HERE / "judged" / "dev_contexts.yml", HERE / "judged" / "dev_contexts_2.yml"]
LABELS = HERE / "judged" / "candidates.jsonl"
SHORT_WORDS = 8
EXTRA = ["short", "log_words", "question", "frequency", "addressed"]
WORD = re.compile(r"[a-z']+")


def normal(text: str) -> str:
    return " ".join(WORD.findall(text.casefold()))


def pools(args: argparse.Namespace) -> None:
    """Each context's candidates with the model's ranker features, and the frequent
    short corpus replies as extra candidates."""
    import torch
    import yaml

    import chatbot.generator as generator_module
    from chatbot import Chatbot, DecodeConfig, MemoryStore
    from chatbot.replies.select import ReplyCandidate
    from chatbot.session.events import BotSaid, UserSaid, event_to_dict

    torch.set_num_threads(2)
    bot = Chatbot.load(args.bot, store=MemoryStore())
    generator = bot.dialogue.generator
    assert generator is not None and generator.index is not None and generator.weights
    # A tiny pmi weight makes the ranker compute log-likelihoods; no winner changes.
    generator.weights = dataclasses.replace(generator.weights, pmi=generator.weights.pmi or 1e-9)
    index = generator.index
    counts: collections.Counter[str] = collections.Counter()
    spelled: dict[str, collections.Counter[str]] = {}
    for entry in range(len(index)):
        reply = index.reply(entry)
        key = normal(reply)
        if 0 < len(key.split()) <= SHORT_WORDS:
            counts[key] += 1
            spelled.setdefault(key, collections.Counter())[reply] += 1
    short = [spelled[key].most_common(1)[0][0] for key, _ in counts.most_common(args.short)]
    gather = generator_module.gather

    def with_short(generated: Any, hits: Any, idx: Any, **kw: Any) -> list[ReplyCandidate]:
        pool = gather(generated, hits, idx, **kw)
        seen = {" ".join(c.text.casefold().split()) for c in pool}
        for text in short:
            if " ".join(text.casefold().split()) not in seen:
                dropped = "degenerate" if kw["flags"](text) else (
                    "blocked" if kw["reply_filter"].blocked(text) else None)
                pool.append(ReplyCandidate(text, "retrieved", origin="short", dropped=dropped))
        return pool

    generator_module.gather = with_short  # type: ignore[assignment]
    decode = (bot.dialogue.decode or DecodeConfig()).replace(retrieve=args.retrieve)
    with open(args.out, "w", encoding="utf-8") as out:
        for path in CONTEXTS:
            for context in yaml.safe_load(path.read_text(encoding="utf-8"))["contexts"]:
                turns = context["turns"]
                events = [UserSaid(t) if i % 2 == 0 else BotSaid(t, "neural", None)
                          for i, t in enumerate(turns[:-1])]
                session = bot.restore({"version": 1, "id": f"offline-{context['id']}",
                                       "events": [event_to_dict(e) for e in events],
                                       "state": None})
                neural = session.send(turns[-1], decode=decode).trace.neural
                assert neural is not None
                candidates = [
                    {"text": o.text, "origin": o.origin, "score": o.score,
                     "features": list(o.features),
                     "frequency": counts.get(normal(o.text), 0)}
                    for o in neural.options if o.dropped is None
                ]
                out.write(json.dumps({"id": context["id"], "turns": turns,
                                      "candidates": candidates}) + "\n")


def features(candidate: dict[str, Any]) -> list[float]:
    text = candidate["text"]
    return [*candidate["features"], float(candidate["origin"] == "short"),
            math.log1p(len(text.split())), float(text.rstrip().endswith("?")),
            math.log1p(candidate["frequency"]),
            float(bool(re.search(r"\b(you|u|hbu|wbu)\b", text.casefold())))]


def evaluate(args: argparse.Namespace) -> None:
    import numpy as np
    import torch
    from sklearn.linear_model import LogisticRegression

    from chatbot.replies.rank import FEATURES, RankerWeights

    weights = RankerWeights.from_json(Path(args.ranker).read_text(encoding="utf-8"))
    labels = {}
    for line in LABELS.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        labels[(row["context"], row["reply"])] = (row["sensible"], row["specific"])
    rows, groups, sensible, specific, shipped = [], [], [], [], []
    for line in Path(args.pools).read_text(encoding="utf-8").splitlines():
        pool = json.loads(line)
        for c in pool["candidates"]:
            label = labels.get((pool["id"], c["text"]))
            if label is None:
                continue
            rows.append(features(c))
            groups.append(pool["id"])
            sensible.append(label[0])
            specific.append(label[0] and label[1])
            extra = c["origin"] == "short"
            shipped.append(-math.inf if extra else float(
                weights.score(torch.tensor([c["features"]]))[0]))
    x, g = np.array(rows), np.array(groups)
    y, z = np.array(sensible, dtype=float), np.array(specific, dtype=float)
    ids = sorted(set(groups))
    members = [np.flatnonzero(g == i) for i in ids]
    names = [*FEATURES, *EXTRA]
    print(f"{len(y)} labelled candidates of {len(ids)} contexts; "
          f"{y.mean():.1%} sensible, {z.mean():.1%} sensible and specific")

    def top1(score: Sequence[float]) -> tuple[float, float]:
        s = np.asarray(score)
        chosen = [m[np.argmax(s[m])] for m in members]
        return float(y[chosen].mean()), float(z[chosen].mean())

    def report(name: str, rates: tuple[float, float]) -> None:
        print(f"| {name} | {rates[0]:.1%} | {rates[1]:.1%} |")

    print("\n| top-1 of the labelled candidates | sensible | sensible and specific |")
    print("|---|---|---|")
    report("oracle: the best labelled candidate", top1(y + z))
    report("the model's ranker (retrieved and generated only)", top1(shipped))
    for j, name in enumerate(names):
        report(f"{name} alone", top1(x[:, j]))
    for target, label in ((y, "sensible"), (z, "sensible and specific")):
        rates = []
        for seed in range(args.seeds):
            order = ids[:]
            random.Random(seed).shuffle(order)
            score = np.zeros(len(y))
            for fold in range(5):
                held = np.isin(g, order[fold::5])
                mu, sd = x[~held].mean(0), x[~held].std(0) + 1e-9
                fit = LogisticRegression(max_iter=5000).fit((x[~held] - mu) / sd, target[~held])
                score[held] = fit.decision_function((x[held] - mu) / sd)
            rates.append(top1(score))
        report(f"logistic regression on all features, fitted to '{label}' (5-fold by context)",
               (float(np.mean([r[0] for r in rates])), float(np.mean([r[1] for r in rates]))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pools", help="candidate pools with features, from the packaged model")
    p.add_argument("--out", required=True)
    p.add_argument("--retrieve", type=int, default=40)
    p.add_argument("--short", type=int, default=300, help="frequent short replies added")
    p.add_argument("--bot", default=None,
                   help="bot directory whose model answers (default: the packaged bot)")
    e = sub.add_parser("eval", help="judged top-1 rates of rankers over labelled candidates")
    e.add_argument("--pools", required=True)
    e.add_argument("--ranker", default=str(HERE.parent / "chatbot/models/default/ranker.json"))
    e.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    (pools if args.command == "pools" else evaluate)(args)


if __name__ == "__main__":
    main()
