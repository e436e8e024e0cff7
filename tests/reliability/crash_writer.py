"""A child process that saves new versions of one thing in a loop until it is killed.

    python crash_writer.py model|checkpoint|session PATH

It saves a first version, prints `ready`, then saves versions 1, 2, ... forever.
Version k is recognizable after the fact: every weight of a model is `k / 1000`,
and session turn k is the events `u<k>`, `b<k>` with the state `s<k>` (a session
continues from the turns already stored).
"""

from __future__ import annotations

import sys
from pathlib import Path


def save_models(path: Path, *, checkpoints: bool) -> None:
    import torch

    from chatbot.checkpoint import save_checkpoint, save_model
    from chatbot.config import Config
    from chatbot.model import HRED
    from chatbot.text import Tokenizer

    torch.set_num_threads(1)
    config = Config.preset("tiny")
    tokenizer = Tokenizer.train(["hello there", "how are you", "fine thanks"] * 3,
                                vocab_size=120, min_frequency=1)
    model = HRED(config.model, vocab_size=tokenizer.vocab_size, pad_id=tokenizer.pad_id)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    version = 0
    while True:
        with torch.no_grad():
            for param in model.parameters():
                param.fill_(version / 1000)
        if checkpoints:
            save_checkpoint(path, step=version, model=model, optimizer=optimizer,
                            config=config, tokenizer=tokenizer, state={"version": version},
                            keep=2)
        else:
            save_model(path, model, config=config, tokenizer=tokenizer,
                       info={"version": version})
        if version == 0:
            print("ready", flush=True)
        version += 1


def save_session(path: Path) -> None:
    from chatbot.session import SQLiteStore

    store = SQLiteStore(path)
    stored = store.load("s")
    turn = first = 0 if stored is None else len(stored["events"]) // 2
    while True:
        store.save("s", start=2 * turn, state=f"s{turn}", events=[
            {"type": "user", "text": f"u{turn}"},
            {"type": "bot", "text": f"b{turn}", "source": "neural", "intent": None},
        ])
        if turn == first:
            print("ready", flush=True)
        turn += 1


if __name__ == "__main__":
    kind, target = sys.argv[1], Path(sys.argv[2])
    if kind == "session":
        save_session(target)
    else:
        save_models(target, checkpoints=kind == "checkpoint")
