"""The pizza bot's actions: plain Python, run in process by the bot."""

from __future__ import annotations

import re

from chatbot import ActionResult, TurnView, action

PRICES = {"small": 8, "medium": 10, "large": 12}


@action
def check_address(turn: TurnView) -> str | None:
    """Validates the address slot: None accepts it, a string is the message to say."""
    address = turn.entities["address"]
    if not re.match(r"\d+\s+\w+", address):
        return "I need a street number and a street, e.g. 5 Main Street."
    return None


@action
def place_order(turn: TurnView) -> ActionResult:
    """Completes the order form: computes the price and confirms."""
    count = int(float(turn.slots["count"]))
    total = PRICES[turn.slots["size"]] * count
    order_id = f"P{len(turn.history) // 2 + 100}"
    text = (f"Order {order_id}: {count} x {turn.slots['size']} {turn.slots['pizza']} "
            f"to {turn.slots['address']}, {total} dollars. It will be there in 30 minutes.")
    return ActionResult(text, slots={"total": str(total), "order_id": order_id})


@action
def order_status(turn: TurnView) -> str:
    """Fails on purpose: the user gets the fallback, the log gets the traceback."""
    raise ConnectionError("the delivery tracker is down")
