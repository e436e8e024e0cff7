"""Replies to judge for fitting the confidence gate (`chatbot index --gate FILE`).

Held-out chit-chat turns (the model's validation split: up to two turns of
context and the user's turn) and the unservable inputs of
`judged/unservable.yml` (gibberish, requests a chit-chat bot cannot serve),
each answered by the selector's winner (gate not applied). Writes JSON lines
with `turns`, `reply` and `acceptable: null` for a judge to fill in.

    python benchmarks/calibration_sheet.py runs/rank --turns 150 --out calibration.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
import string
from pathlib import Path

import torch
import yaml

from chatbot.checkpoint import load_model, resolve_model_dir
from chatbot.data import load_corpus, split_for
from chatbot.generator import Generator

HERE = Path(__file__).parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model")
    parser.add_argument("--turns", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    parser.add_argument("--user-first", action="store_true", help="contexts end at a user "
                        "turn only (corpora where the user speaks first, e.g. everyday)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    loaded = load_model(resolve_model_dir(args.model))
    generator = Generator.from_loaded(loaded)
    split = split_for(load_corpus(loaded.config.data.source), loaded.config.data)
    rng = random.Random(args.seed)
    step = 2 if args.user_first else 1
    places = [(c, t) for c, conv in enumerate(split.valid)
              for t in range(0, len(conv.turns) - 1, step)]
    contexts = [list(split.valid[c].turns[max(0, t - 2) : t + 1])
                for c, t in rng.sample(places, args.turns)]
    junk = yaml.safe_load((HERE / "judged" / "unservable.yml").read_text())["inputs"]
    symbols = string.ascii_letters + string.digits + string.punctuation
    junk += ["".join(rng.choice(symbols) for _ in range(40)) for _ in range(3)]
    contexts += [[text] for text in junk]
    decode = generator.decode.replace(ranker="model")
    with open(args.out, "w", encoding="utf-8") as out:
        for turns in contexts:
            state = generator.initial_state()
            for text in turns[:-1]:
                [state] = generator.observe([state], [text])
            previous = turns[-2] if len(turns) > 1 else None
            [(generation, _)] = generator.respond([(state, turns[-1], previous)], decode=decode)
            out.write(json.dumps({"turns": turns, "reply": generation.text,
                                  "acceptable": None}) + "\n")


if __name__ == "__main__":
    main()
