"""Print the everyday corpus's statistics (the datasheet's figures come from here).

usage: python scripts/corpus/stats.py [CONVERSATIONS.jsonl.gz]
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path

from chatbot.data import everyday
from chatbot.data.variety import variety, words


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else everyday.CONVERSATIONS
    records = everyday.records(path)
    topics = everyday.topics()
    convs = [r.turns for r in records]
    v = variety(convs)
    print(f"conversations {v.conversations}, turns {v.turns}, "
          f"turns per conversation {v.turns / max(1, v.conversations):.2f}")
    splits = collections.Counter(r.split for r in records)
    print("splits: " + ", ".join(f"{s} {splits[s]}" for s in everyday.SPLITS))
    per_topic = collections.Counter(r.topic for r in records)
    print(f"topics written {len(per_topic)} of {len(topics)} listed; "
          f"held out {sum(t.split == 'heldout' for t in topics.values())}; "
          f"largest topic {per_topic.most_common(1)[0][0]} "
          f"{per_topic.most_common(1)[0][1] / len(records):.2%} of conversations")
    categories = collections.Counter(topics[r.topic].category for r in records)
    print("categories: " + ", ".join(f"{c} {k}" for c, k in sorted(categories.items())))
    user = [t for c in convs for t in c[0::2]]
    short = sum(3 <= len(words(t)) <= 20 for t in user) / len(user)
    lower = sum(t == t.lower() for t in user) / len(user)
    one_word = sum(len(words(t)) <= 1 for t in user) / len(user)
    print(f"user turns: median {v.user_words_median} words; 3-20 words {short:.1%}; "
          f"all lower case {lower:.1%}; one word {one_word:.1%}")
    print(f"bot turns {v.bot_turns}: median {v.bot_words_median} words; "
          f"ending in '?' {v.question_rate:.1%}")
    print("top bot openers: " + ", ".join(f"{o!r} {s:.2%}" for o, s in v.top_openers[:8]))
    print(f"bot distinct-1 {v.distinct_1:.3f}, distinct-2 {v.distinct_2:.3f}")
    print(f"bot turns of 4+ words said more than 3 times: {v.repeated_rate:.2%}")
    print(f"near-duplicate conversations: {v.near_duplicates}")


if __name__ == "__main__":
    main()
