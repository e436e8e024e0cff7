"""Response templates: `{slot}` fields filled from the session's slots.

Only plain slot names are fields (`{name}`); `{{` and `}}` are literal braces.
Attribute access, indexing and format specs are rejected when the file loads,
so rendering never evaluates anything.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Mapping, Sequence

from chatbot.intents.schema import Response
from chatbot.intents.text import clean

_FORMATTER = string.Formatter()
_SLOT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def template_slots(template: str) -> tuple[str, ...]:
    """The slot names a template uses, in order of first use.

    Raises:
        ValueError: on unbalanced braces, or a field that is not a plain slot name.
    """
    names: dict[str, None] = {}
    for _, field_name, spec, conversion in _FORMATTER.parse(template):
        if field_name is None:
            continue
        if not _SLOT_NAME.match(field_name):
            raise ValueError(f"field {{{field_name}}} must be a slot name such as {{name}}")
        if spec or conversion:
            raise ValueError(f"field {{{field_name}}} may not have a format spec or conversion")
        names[field_name] = None
    return tuple(names)


def render(template: str, slots: Mapping[str, str]) -> str:
    """Fills a validated template; every slot it names must be in `slots`."""
    parts = []
    for literal, field_name, _, _ in _FORMATTER.parse(template):
        parts.append(literal)
        if field_name is not None:
            parts.append(slots[field_name])
    return "".join(parts)


def usable(response: Response, slots: Mapping[str, str]) -> bool:
    """Whether a variant can be said now: its slots are set, its `unless_slots` are not."""
    return all(s in slots for s in response.slots) and not any(
        s in slots for s in response.unless_slots
    )


def choose(
    responses: Sequence[Response],
    slots: Mapping[str, str],
    *,
    avoid: str | None,
    rng: random.Random,
) -> str | None:
    """Renders (and cleans) one usable variant, preferring one that is not `avoid`.

    Returns None when no variant is usable.
    """
    rendered = [clean(render(r.text, slots)) for r in responses if usable(r, slots)]
    fresh = [text for text in rendered if text != avoid]
    pool = fresh or rendered
    return rng.choice(pool) if pool else None
