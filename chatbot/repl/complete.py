"""Tab completion of slash commands and their arguments."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

Arguments = Callable[[Sequence[str]], Iterable[str]]
"""The words before the one being completed (after the command) -> its choices."""


class SlashCompleter(Completer):
    """Completes `/command` names, then each command's arguments.

    Args:
        commands: command name (`/set`) -> its argument choices.
    """

    def __init__(self, commands: Mapping[str, Arguments]) -> None:
        self.commands = commands

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        text = document.text_before_cursor
        if not text.startswith("/") or "\n" in text:
            return
        words = text.split(" ")
        current = words[-1]
        if len(words) == 1:
            choices: Iterable[str] = self.commands
        else:
            arguments = self.commands.get(words[0])
            choices = arguments([w for w in words[1:-1] if w]) if arguments else ()
        for choice in choices:
            if choice.startswith(current) and choice != current:
                yield Completion(choice, start_position=-len(current))

