"""Reads and validates transcript files, reporting every problem as `file:line:col: message`.

Validation reads every file before it gives up: YAML errors, unknown keys (with a
suggestion), wrong types, invalid regexes and decode settings, a `bot` without
a `user`, and a `restore` of a session no earlier turn saved.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode

from chatbot import yamlio
from chatbot.config import DecodeConfig
from chatbot.errors import BotValidationError, ConfigError, LocatedError, YamlError
from chatbot.intents.nodes import Reader
from chatbot.transcripts import matchers as m
from chatbot.transcripts.schema import SCHEMA_VERSION, TextSpan, Transcript, Turn

FILE_KEYS = ("version", "name", "description", "seed", "decode", "turns")
TURN_KEYS = ("user", "bot", "state", "reset", "restore", "save")
MATCHER_KEYS = (
    "text", "contains", "regex", "one_of", "not", "all", "any", "intent", "source", "action",
    "confidence", "similar", "min_words", "max_words",
)
STATE_KEYS = ("slots", "contexts", "form")
SOURCES = ("intent", "neural", "fallback", "form")
SUFFIXES = (".yml", ".yaml")
SESSION_SUFFIX = ".json"
DEFAULT_SIMILARITY = 0.8


def transcript_files(folder: str | Path) -> list[Path]:
    """The `.yml` / `.yaml` files under `folder`, in a stable order."""
    root = Path(folder)
    return sorted(p for p in root.rglob("*") if p.suffix in SUFFIXES and p.is_file())


def is_transcript(path: str | Path) -> bool:
    """Whether a YAML file looks like a transcript: a mapping with `version` and `turns`.

    A file that does not parse counts as one, so that loading reports its errors.
    """
    try:
        root = yamlio.compose_file(path)
    except YamlError:
        return True
    if not isinstance(root, MappingNode):
        return False
    keys = {yamlio.scalar(k) for k, _ in root.value if isinstance(k, ScalarNode)}
    return {"version", "turns"} <= keys


def load_transcript(path: str | Path) -> Transcript:
    """Reads one transcript file.

    Raises:
        BotValidationError: listing every problem in the file.
    """
    return load_transcripts([path])[0]


def load_transcripts(paths: Iterable[str | Path]) -> list[Transcript]:
    """Reads transcript files, in order.

    Raises:
        BotValidationError: listing every problem in every file.
    """
    problems: list[LocatedError] = []
    found = [read_transcript(path, problems) for path in paths]
    if problems:
        raise BotValidationError(problems)
    return [t for t in found if t is not None]


def read_transcript(path: str | Path, problems: list[LocatedError]) -> Transcript | None:
    """Like `load_transcript`, but appends problems to `problems`; None when unusable."""
    file = Path(path)
    before = len(problems)
    try:
        text = _read_text(file)
        root = yamlio.compose(text, path=str(file))
    except YamlError as exc:
        problems.append(exc)
        return None
    if root is None:
        problems.append(LocatedError(file, 0, 0, "file is empty (expected 'version: 1')"))
        return None
    transcript = _FileReader(file, text, problems).read(root)
    return transcript if len(problems) == before else None


def _read_text(file: Path) -> str:
    """The file's text; an unreadable, oversized or non-UTF-8 file raises yamlio's located error."""
    try:
        if file.stat().st_size <= yamlio.MAX_BYTES:
            return file.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        pass
    yamlio.compose_file(file)
    raise YamlError(file, 0, 0, "cannot read")


class _FileReader:
    """Reads one file's node tree into a `Transcript`."""

    def __init__(self, file: Path, text: str, problems: list[LocatedError]) -> None:
        self.file = file
        self.text = text
        self.reader = Reader(str(file), problems)
        self.saved: set[str] = set()

    def read(self, root: Node) -> Transcript | None:
        r = self.reader
        top = r.mapping(root, what="a transcript", keys=FILE_KEYS, required=("version", "turns"))
        if top is None:
            return None
        if "version" in top:
            version = r.integer(top["version"][1], what="'version'")
            if version is not None and version != SCHEMA_VERSION:
                r.error(top["version"][1], f"unsupported version {version} "
                        f"(this chatbot reads version {SCHEMA_VERSION})")
        name = self.file.stem
        if "name" in top:
            name = r.string(top["name"][1], what="'name'") or name
        description = ""
        if "description" in top:
            description = r.string(top["description"][1], what="'description'", empty=True) or ""
        seed = 0
        if "seed" in top:
            seed = r.integer(top["seed"][1], what="'seed'", minimum=0) or 0
        decode = self._decode(top["decode"][1]) if "decode" in top else {}
        turns: list[Turn] = []
        if "turns" in top:
            items = r.sequence(top["turns"][1], what="'turns'")
            if not items and top["turns"][1].tag == "tag:yaml.org,2002:seq":
                r.error(top["turns"][1], "'turns' must not be empty")
            found = [self._turn(item, index) for index, item in enumerate(items, start=1)]
            turns = [turn for turn in found if turn is not None]
        return Transcript(self.file, name, seed, tuple(turns), decode, description)

    def _decode(self, node: Node) -> dict[str, Any]:
        names = list(DecodeConfig.__dataclass_fields__)
        entries = self.reader.mapping(node, what="'decode'", keys=names) or {}
        settings = {k: self.reader.value(v) for k, (_, v) in entries.items() if k in names}
        try:
            DecodeConfig(**settings)
        except (ConfigError, TypeError, ValueError) as exc:
            self.reader.error(node, f"invalid decode settings: {exc}")
            return {}
        return settings

    def _turn(self, node: Node, index: int) -> Turn | None:
        r = self.reader
        entries = r.mapping(node, what="a turn", keys=TURN_KEYS)
        if entries is None:
            return None
        if not {"user", "reset", "restore", "save"} & set(entries):
            r.error(node, "a turn needs 'user', 'reset', 'restore' or 'save'")
        user = None
        if "user" in entries:
            user = r.string(entries["user"][1], what="'user'", empty=True)
        bot = span = None
        if "bot" in entries:
            key_node, bot_node = entries["bot"]
            if "user" not in entries:
                r.error(key_node, "'bot' needs a 'user' message in the same turn")
            bot = self.matcher(bot_node)
            span = self._text_span(bot_node)
        state = self._state(entries["state"][1]) if "state" in entries else None
        reset = False
        if "reset" in entries:
            reset = bool(r.boolean(entries["reset"][1], what="'reset'"))
        restore, restore_file = self._restore(entries["restore"][1]) if "restore" in entries \
            else (None, None)
        save = None
        if "save" in entries:
            save = r.string(entries["save"][1], what="'save'")
            if save is not None:
                self.saved.add(save)
        line = node.start_mark.line + 1
        return Turn(index, line, user, bot, state, reset, restore, restore_file, save, span)

    def _restore(self, node: Node) -> tuple[str | None, Path | None]:
        name = self.reader.string(node, what="'restore'")
        if name is None or name in self.saved:
            return name, None
        if not name.endswith(SESSION_SUFFIX):
            saved = ", ".join(repr(s) for s in sorted(self.saved)) or "none"
            self.reader.error(node, f"no earlier turn saved a session as {name!r} "
                              f"(saved so far: {saved}); or name a {SESSION_SUFFIX} session file")
            return None, None
        file = self.file.parent / name
        if not file.is_file():
            self.reader.error(node, f"session file {str(file)!r} not found")
        return None, file

    def _text_span(self, node: Node) -> TextSpan | None:
        if isinstance(node, MappingNode):
            found = [v for k, v in node.value if isinstance(k, ScalarNode) and k.value == "text"]
            if len(found) != 1:
                return None
            node = found[0]
        if not isinstance(node, ScalarNode) or not isinstance(yamlio.scalar(node), str):
            return None
        start, end = node.start_mark.index, node.end_mark.index
        return TextSpan(start, end, self.text[start:end], node.style or "", str(node.value))

    def matcher(self, node: Node) -> m.Matcher | None:
        """A reply expectation: a mapping of matchers (all must hold), or a string (`text`)."""
        r = self.reader
        line = node.start_mark.line + 1
        if isinstance(node, ScalarNode):
            text = r.string(node, what="an expected reply", empty=True)
            return None if text is None else m.Text(text, line)
        entries = r.mapping(node, what="a reply expectation", keys=MATCHER_KEYS)
        if entries is None:
            return None
        if not entries:
            r.error(node, "a reply expectation must not be empty")
            return None
        items = []
        for key, (_, value) in entries.items():
            read = _MATCHERS.get(key)
            found = read(self, value, value.start_mark.line + 1) if read else None
            if found is not None:
                items.append(found)
        return items[0] if len(items) == 1 else m.All(tuple(items), line)

    def _state(self, node: Node) -> m.Matcher | None:
        r = self.reader
        entries = r.mapping(node, what="'state'", keys=STATE_KEYS)
        if entries is None:
            return None
        items: list[m.Matcher] = []
        if "slots" in entries:
            slots = r.mapping(entries["slots"][1], what="'state.slots'") or {}
            for name, (_, value_node) in slots.items():
                value = r.value(value_node)
                if not isinstance(value_node, ScalarNode) or (
                    value is not None and not isinstance(value, str)
                ):
                    r.error(value_node, f"slot {name!r} must be expected as a string, "
                            "or null for unset")
                    continue
                items.append(m.Slot(name, value, value_node.start_mark.line + 1))
        if "contexts" in entries:
            items += self._contexts(entries["contexts"][1])
        if "form" in entries:
            form_node = entries["form"][1]
            form = None if _is_null(form_node) else r.string(form_node, what="'state.form'")
            if form is not None or _is_null(form_node):
                items.append(m.FormIs(form, form_node.start_mark.line + 1))
        return m.All(tuple(items), node.start_mark.line + 1)

    def _contexts(self, node: Node) -> list[m.Matcher]:
        r = self.reader
        if not isinstance(node, MappingNode):
            names = r.strings(node, what="'state.contexts'")
            return [m.Context(name, line=item.start_mark.line + 1) for name, item in names]
        found: list[m.Matcher] = []
        for name, (_, value_node) in (r.mapping(node, what="'state.contexts'") or {}).items():
            value = r.value(value_node)
            line = value_node.start_mark.line + 1
            if value is None or value is False:
                found.append(m.Context(name, active=False, line=line))
            elif value is True:
                found.append(m.Context(name, line=line))
            else:
                turns = r.integer(value_node, what=f"the turns left of context {name!r}",
                                  minimum=0)
                if turns is not None:
                    found.append(m.Context(name, active=turns > 0, turns=turns or None,
                                           line=line))
        return found


Read = Callable[[_FileReader, Node, int], m.Matcher | None]


def _text(f: _FileReader, node: Node, line: int) -> m.Matcher | None:
    text = f.reader.string(node, what="'text'", empty=True)
    return None if text is None else m.Text(text, line)


def _contains(f: _FileReader, node: Node, line: int) -> m.Matcher | None:
    text = f.reader.string(node, what="'contains'")
    return None if text is None else m.Contains(text, line)


def _regex(f: _FileReader, node: Node, line: int) -> m.Matcher | None:
    text = f.reader.string(node, what="'regex'")
    if text is None:
        return None
    try:
        return m.Regex(re.compile(text), line)
    except re.error as exc:
        where = f" at position {exc.pos}" if exc.pos is not None else ""
        f.reader.error(node, f"invalid regex {text!r}: {exc.msg}{where}")
        return None


def _one_of(f: _FileReader, node: Node, line: int) -> m.Matcher | None:
    options = [text for text, _ in f.reader.strings(node, what="'one_of'")]
    if not options:
        f.reader.error(node, "'one_of' must list at least one reply")
        return None
    return m.OneOf(tuple(options), line)


def _not(f: _FileReader, node: Node, line: int) -> m.Matcher | None:
    inner = f.matcher(node)
    return None if inner is None else m.Not(inner, line)


def _combine(kind: type[m.All] | type[m.AnyOf]) -> Read:
    key = "all" if kind is m.All else "any"

    def read(f: _FileReader, node: Node, line: int) -> m.Matcher | None:
        nodes = f.reader.sequence(node, what=f"'{key}'")
        if not nodes and node.tag == "tag:yaml.org,2002:seq":
            f.reader.error(node, f"'{key}' must list at least one expectation")
        items = [found for item in nodes if (found := f.matcher(item)) is not None]
        return kind(tuple(items), line) if items and len(items) == len(nodes) else None

    return read


def _intent(f: _FileReader, node: Node, line: int) -> m.Matcher | None:
    if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null":
        return m.IntentIs(None, line)
    name = f.reader.string(node, what="'intent'")
    return None if name is None else m.IntentIs(name, line)


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _action(f: _FileReader, node: Node, line: int) -> m.Matcher | None:
    if _is_null(node):
        return m.ActionIs(None, line)
    name = f.reader.string(node, what="'action'")
    return None if name is None else m.ActionIs(name, line)


def _source(f: _FileReader, node: Node, line: int) -> m.Matcher | None:
    source = f.reader.string(node, what="'source'")
    if source is None:
        return None
    if source not in SOURCES:
        f.reader.error(node, f"unknown source {source!r} (sources: {', '.join(SOURCES)})")
        return None
    return m.SourceIs(source, line)


def _confidence(f: _FileReader, node: Node, line: int) -> m.Matcher | None:
    entries = f.reader.mapping(node, what="'confidence'", keys=("gte", "lte"))
    if entries is None:
        return None
    if not entries:
        f.reader.error(node, "'confidence' needs 'gte' or 'lte'")
        return None
    bounds = {
        key: f.reader.number(value, what=f"'confidence.{key}'", low=0.0, high=1.0)
        for key, (_, value) in entries.items() if key in ("gte", "lte")
    }
    if None in bounds.values():
        return None
    gte, lte = bounds.get("gte"), bounds.get("lte")
    if gte is not None and lte is not None and gte > lte:
        f.reader.error(node, f"'confidence' range is empty (gte {gte:g} > lte {lte:g})")
        return None
    return m.Confidence(gte, lte, line)


def _similar(f: _FileReader, node: Node, line: int) -> m.Matcher | None:
    r = f.reader
    entries = r.mapping(node, what="'similar'", keys=("to", "min"), required=("to",))
    if entries is None:
        return None
    to = r.string(entries["to"][1], what="'similar.to'") if "to" in entries else None
    minimum: float | None = DEFAULT_SIMILARITY
    if "min" in entries:
        minimum = r.number(entries["min"][1], what="'similar.min'", low=0.0, high=1.0)
    if to is None or minimum is None:
        return None
    return m.Similar(to, minimum, line)


def _words(bound: str) -> Read:
    def read(f: _FileReader, node: Node, line: int) -> m.Matcher | None:
        count = f.reader.integer(node, what=f"'{bound}_words'", minimum=0)
        if count is None:
            return None
        if bound == "min":
            return m.WordCount(minimum=count, line=line)
        return m.WordCount(maximum=count, line=line)

    return read


_MATCHERS: dict[str, Read] = {
    "text": _text,
    "contains": _contains,
    "regex": _regex,
    "one_of": _one_of,
    "not": _not,
    "all": _combine(m.All),
    "any": _combine(m.AnyOf),
    "intent": _intent,
    "action": _action,
    "source": _source,
    "confidence": _confidence,
    "similar": _similar,
    "min_words": _words("min"),
    "max_words": _words("max"),
}
