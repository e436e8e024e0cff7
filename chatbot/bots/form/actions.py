"""This bot's actions: Python functions its intents and forms name (docs/actions.md)."""

from __future__ import annotations

from chatbot import ActionResult, TurnView, action

PRICES = {"espresso": 2.0, "latte": 3.0, "cappuccino": 3.0}


@action
def price(turn: TurnView) -> ActionResult:
    """Runs when the coffee_order form is complete: prices the order."""
    cost = PRICES[turn.slots["drink"]] + (1.0 if turn.slots["size"] == "large" else 0.0)
    return ActionResult(f"One {turn.slots['size']} {turn.slots['drink']}: {cost:.2f} dollars.")
