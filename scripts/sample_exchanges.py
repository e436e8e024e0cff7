"""Prints multi-turn greedy exchanges of a model on held-out test conversations.

The user's side replays the real user turns (0, 2, 4, ...) of a test conversation;
the bot's side is the model's reply (chosen by its ranker; `--ranker none`: the
greedy reply), which joins the conversation state like any utterance. Used for
the README's verbatim samples:

    python scripts/sample_exchanges.py default --conversations 10 --turns 3
    python scripts/sample_exchanges.py runs/new --data chitchat   # the same inputs
"""

from __future__ import annotations

import argparse
import dataclasses

import torch

from chatbot.checkpoint import load_model, resolve_model_dir
from chatbot.data import load_corpus, split_for
from chatbot.generator import Generator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model", nargs="?", default="default")
    parser.add_argument("--conversations", type=int, default=10)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--skip", type=int, default=0, help="test conversations to skip first")
    parser.add_argument("--ranker", choices=["model", "mmi", "none"], default="model",
                        help="how the reply is chosen (none: pure greedy generation)")
    parser.add_argument("--data", help="the corpus whose test split gives the user turns "
                        "(default: the model's own)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    loaded = load_model(resolve_model_dir(args.model))
    data = loaded.config.data
    if args.data:
        data = dataclasses.replace(data, source=args.data)
    split = split_for(load_corpus(data.source), data)
    generator = Generator.from_loaded(loaded)
    decode = generator.decode.replace(ranker=args.ranker)
    chosen = [c for c in split.test if len(c.turns) >= 2 * args.turns][args.skip:]
    for number, conv in enumerate(chosen[: args.conversations], start=1):
        print(f"{number}.")
        state, previous = generator.initial_state(), None
        for user in conv.turns[0 : 2 * args.turns : 2]:
            [(generation, state)] = generator.respond([(state, user, previous)], decode=decode)
            [state] = generator.observe([state], [generation.text])
            previous = generation.text
            print(f"   user: {user}")
            print(f"   bot:  {generation.text}")
        print()


if __name__ == "__main__":
    main()
