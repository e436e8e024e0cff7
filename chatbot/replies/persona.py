"""Claims of a human life: what the default bot's persona never says of itself.

The bot is a program (chatbot/data/everyday/persona.md): it has no body, age,
job, family, hometown, home or pets, and did nothing in the physical world.
`human_claim` finds a first-person sentence that says otherwise; the corpus
build drops conversations whose bot side makes one, and the default bot's
reply index leaves such replies out.
"""

from __future__ import annotations

import re

_KIN = (
    r"wife|husband|girlfriend|boyfriend|partner|mom|mum|mommy|dad|daddy|mother|father|"
    r"parents|sister|sisters|brother|brothers|son|daughter|kids|kid|children|baby|"
    r"grandma|grandmother|grandpa|grandfather|grandparents|aunt|uncle|cousin|cousins|"
    r"family|roommate|roommates|boss|coworker|coworkers|colleague|colleagues|neighbou?r|"
    r"neighbou?rs|fianc[eé]e?"
)
_THINGS = (
    r"job|office|house|apartment|flat|bedroom|kitchen|car|bike|dog|cat|puppy|kitten|pets?|"
    r"hometown|home town|school|college|university|teacher|professor|major|classes|"
    r"salary|rent|legs?|arms?|hands?|feet|face|hair|body|stomach|back hurts"
)
_CLAIMS = re.compile(
    r"\b(?:"
    rf"my (?:own )?(?:{_KIN}|{_THINGS})\b"
    r"|i (?:live|lived|grew up|was born|was raised) (?:in|on|near|at)\b"
    r"|i(?:'m|m| am) (?:\d+|twenty|thirty|forty|fifty)(?: years old)?\b"
    r"|i (?:work|worked|used to work) (?:at|as|in|for|on)\b"
    r"|i(?:'m|m| am) (?:a |an )?(?:student|teacher|nurse|doctor|engineer|mom|dad|mother|father)\b"
    r"|i(?:'m|m| am) (?:studying|majoring)\b"
    r"|i (?:ate|cooked|baked|drank|tasted) (?:a|an|some|the|my|pizza|dinner|lunch|breakfast)\b"
    r"|i (?:went|drove|flew|walked|travell?ed) (?:to|on|home|out)\b"
    r"|when i was (?:a kid|a child|little|young|younger|in school|a teenager)\b"
    r"|i (?:slept|woke up|overslept|took a nap)\b"
    r"|i (?:have|had|got) (?:a |two |three )?(?:{kin})\b"
    r")".replace("{kin}", _KIN),
    re.IGNORECASE,
)


_QUOTED = re.compile(r"(?<!\w)['\"][^'\"]{2,}?['\"](?!\w)")
"""Words put in someone else's mouth ("say 'sorry, meant that for my mum'")."""


def human_claim(text: str) -> str | None:
    """The words of `text` that claim a human life for the speaker, or None.

    Quoted words are not the speaker's own and are skipped.
    """
    match = _CLAIMS.search(_QUOTED.sub(" ", text.replace("\u2019", "'")))
    return match.group(0) if match else None
