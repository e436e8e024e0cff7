"""The bot's replies to the judged contexts (`benchmarks/judged/contexts.yml`).

Each context's earlier turns are replayed into a session as said (the user's
and the other speaker's lines alike), and the bot answers the last user turn
through its whole policy (intents, neural, fallback). Writes one JSON object a
line: id, turns, reply, source, intent, confidence, and the model's candidate
(`neural`, `confidence_neural`) whether or not the policy let it through.

    python benchmarks/judged_replies.py --out after.jsonl
    python benchmarks/judged_replies.py --model /tmp/old-model --ranker none --out before.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import yaml

from chatbot import Chatbot, DecodeConfig, MemoryStore
from chatbot.botdir import load_bot
from chatbot.session.events import BotSaid, UserSaid, event_to_dict

HERE = Path(__file__).parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contexts", default=str(HERE / "judged" / "contexts.yml"))
    parser.add_argument("--bot", default=None, help="bot directory (default: the packaged bot)")
    parser.add_argument("--model", default=None, help="use this model directory instead")
    parser.add_argument("--ranker", default=None, choices=["model", "mmi", "none"])
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(2)
    contexts = yaml.safe_load(Path(args.contexts).read_text(encoding="utf-8"))["contexts"]
    definition = load_bot(args.bot)
    if args.model:
        definition = type(definition)(definition.root, definition.name, definition.intents,
                                      Path(args.model), definition.decode)
    bot = Chatbot.from_definition(definition, store=MemoryStore())
    decode = None
    if args.ranker:
        base = bot.dialogue.decode or DecodeConfig()
        decode = base.replace(ranker=args.ranker)
    with open(args.out, "w", encoding="utf-8") as out:
        for context in contexts:
            turns = context["turns"]
            events = [UserSaid(t) if i % 2 == 0 else BotSaid(t, "neural", None)
                      for i, t in enumerate(turns[:-1])]
            session = bot.restore({"version": 1, "id": f"judge-{context['id']}",
                                   "events": [event_to_dict(e) for e in events], "state": None})
            reply = session.send(turns[-1], decode=decode)
            record = {"id": context["id"], "turns": turns, "reply": reply.text,
                      "source": reply.source, "intent": reply.intent,
                      "confidence": round(reply.confidence, 4)}
            neural = reply.trace.neural
            if neural is not None:
                record.update(neural=neural.text, confidence_neural=round(neural.confidence, 4))
            out.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
