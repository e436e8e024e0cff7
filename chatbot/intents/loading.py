"""Loads and validates a bot's `intents/` folder (schema version 1).

Validation reads every file before it gives up and reports every problem as
`file:line:col: message`: YAML errors, unknown keys (with a suggestion), wrong
types, duplicate keys and intent names, invalid regexes and templates, slots
and contexts that nothing sets, and an example shared by two intents.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from chatbot.errors import BotValidationError, LocatedError
from chatbot.intents.entities import BUILT_IN, Entity
from chatbot.intents.nodes import Reader, read_file
from chatbot.intents.schema import (
    DEFAULT_CANCELLED,
    DEFAULT_FALLBACK,
    FORM_SLOT_TYPES,
    NORMALIZERS,
    RULES,
    SCHEMA_VERSION,
    Form,
    FormSlot,
    FormSlotType,
    Intent,
    IntentSet,
    Policy,
    Requires,
    Response,
    Sets,
)
from chatbot.intents.templates import template_slots
from chatbot.intents.text import normalize

FILE_KEYS = ("version", "intents", "fallback", "policy", "slots", "entities", "forms",
             "examples")
FORM_KEYS = ("name", "description", "slots", "done", "action", "cancel_intent", "cancelled")
FORM_SLOT_KEYS = ("name", "type", "ask", "invalid", "choices", "pattern", "min", "max",
                  "validate", "remember")
SLOT_KEYS = ("normalize",)
INTENT_KEYS = (
    "name", "description", "examples", "negative_examples", "patterns", "responses",
    "override", "priority", "requires", "sets", "action", "form",
)
POLICY_KEYS = ("order", "intent_threshold", "ambiguity_margin", "neural_min_confidence")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")

PolicyValues = dict[str, tuple[Any, str]]
"""Policy settings read so far: field -> (value, `file:line:col` that set it)."""


@dataclass
class _Use:
    """A reference to a slot or context name, checked once every file is read."""

    kind: str
    name: str
    node: Node
    reader: Reader


@dataclass
class _Folder:
    """What the files of one folder define, gathered before the cross-file checks."""

    problems: list[LocatedError]
    intents: list[Intent] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    examples: dict[str, tuple[str, str]] = field(default_factory=dict)
    fallback: list[Response] = field(default_factory=list)
    policy: PolicyValues = field(default_factory=dict)
    uses: list[_Use] = field(default_factory=list)
    slots_set: set[str] = field(default_factory=set)
    contexts_set: set[str] = field(default_factory=set)
    slot_specs: dict[str, tuple[str, str]] = field(default_factory=dict)
    entities: dict[str, tuple[Entity, str]] = field(default_factory=dict)
    forms: dict[str, tuple[Form, str]] = field(default_factory=dict)
    form_uses: list[tuple[Reader, Node, str, str]] = field(default_factory=list)
    more_examples: list[tuple[Reader, Node, str]] = field(default_factory=list)
    action_refs: list[tuple[str, str, tuple[str, int, int]]] = field(default_factory=list)


def intent_files(folder: str | Path) -> list[Path]:
    """The `.yml` / `.yaml` files under `folder`, in a stable order."""
    root = Path(folder)
    return sorted(p for p in root.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())


def load_intents(folder: str | Path, *, policy: PolicyValues | None = None) -> IntentSet:
    """Reads an `intents/` folder.

    Args:
        folder: the folder of intent files.
        policy: policy settings made elsewhere (bot.yml); setting one again is a problem.

    Raises:
        BotValidationError: listing every problem found.
    """
    problems: list[LocatedError] = []
    intents = read_intents(folder, problems, policy=policy)
    if problems:
        raise BotValidationError(problems)
    return intents


def read_intents(
    folder: str | Path, problems: list[LocatedError], *, policy: PolicyValues | None = None
) -> IntentSet:
    """Like `load_intents`, but appends problems to `problems` instead of raising."""
    state = _Folder(problems, policy=dict(policy or {}))
    bot_root = Path(folder).resolve().parent
    for file in intent_files(folder):
        target = file.resolve()
        if not target.is_relative_to(bot_root):
            problems.append(LocatedError(file, 0, 0, f"a link to {target}, outside the bot "
                                         "directory: intent files must live inside it"))
            continue
        _read_file(state, file)
    _merge_examples(state)
    _check_uses(state)
    _check_form_uses(state)
    return IntentSet(
        intents=tuple(state.intents),
        fallback=tuple(state.fallback) or DEFAULT_FALLBACK,
        policy=make_policy(state.policy),
        slots=tuple(sorted((name, how) for name, (how, _) in state.slot_specs.items())),
        entities=tuple(entity for entity, _ in state.entities.values()),
        forms=tuple(form for form, _ in state.forms.values()),
        action_refs=tuple(state.action_refs),
    )


def _check_form_uses(state: _Folder) -> None:
    known = {"form": set(state.forms), "intent": set(state.names),
             "entity": set(state.entities)}
    for reader, node, kind, name in state.form_uses:
        if name in known[kind]:
            continue
        if kind == "entity":
            reader.error(node, f"slot {name!r} of type entity has no entity of that name")
        else:
            reader.error(node, f"no {kind} {name!r} is defined" + _closest(name, known[kind]))


def make_policy(values: PolicyValues) -> Policy:
    """A `Policy` from validated settings; `fallback` is kept last in the order."""
    settings = {key: value for key, (value, _) in values.items()}
    if "order" in settings:
        order = [rule for rule in settings["order"] if rule != "fallback"]
        settings["order"] = (*order, "fallback")
    return Policy(**settings)


def _read_file(state: _Folder, file: Path) -> None:
    reader, top = read_file(file, state.problems, what="an intent file", keys=FILE_KEYS)
    if top is None:
        return
    if "version" in top:
        read_version(reader, top["version"][1])
    if "intents" in top:
        for item in reader.sequence(top["intents"][1], what="'intents'"):
            _read_intent(state, reader, item)
    if "fallback" in top:
        state.fallback += _read_responses(state, reader, top["fallback"][1], what="'fallback'")
    if "policy" in top:
        read_policy(reader, top["policy"][1], state.policy)
    if "slots" in top:
        _read_slot_specs(state, reader, top["slots"][1])
    if "entities" in top:
        _read_entities(state, reader, top["entities"][1])
    if "forms" in top:
        for item in reader.sequence(top["forms"][1], what="'forms'"):
            _read_form(state, reader, item)
    if "examples" in top:
        # `examples: {INTENT: [...]}`: more examples of an intent defined anywhere
        # (how `/teach intent` records what it was taught).
        for name, (_, value_node) in (
                reader.mapping(top["examples"][1], what="'examples'") or {}).items():
            state.more_examples.append((reader, value_node, name))


def _merge_examples(state: _Folder) -> None:
    for reader, node, name in state.more_examples:
        index = next((i for i, intent in enumerate(state.intents) if intent.name == name), None)
        if index is None:
            reader.error(node, f"examples for intent {name!r}, which is not defined"
                         + _closest(name, set(state.names)))
            continue
        added = _read_examples(state, reader, node, name)
        intent = state.intents[index]
        state.intents[index] = dataclasses.replace(
            intent, examples=(*intent.examples, *added))


def _read_form(state: _Folder, reader: Reader, node: Node) -> None:
    entries = reader.mapping(node, what="a form", keys=FORM_KEYS, required=("name", "slots"))
    if entries is None or "name" not in entries or "slots" not in entries:
        return
    value = {key: item for key, (_, item) in entries.items()}
    name = reader.string(value["name"], what="the form's 'name'")
    if name is None:
        return
    if name in state.forms:
        reader.error(value["name"], f"duplicate form {name!r} (first defined at "
                                    f"{state.forms[name][1]})")
        return
    slots: list[FormSlot] = []
    for item in reader.sequence(value["slots"], what=f"the slots of form {name!r}"):
        slot = _read_form_slot(state, reader, item, name)
        if slot is None:
            continue
        if slot.name in {s.name for s in slots}:
            reader.error(item, f"form {name!r} asks for slot {slot.name!r} twice")
            continue
        slots.append(slot)
        state.slots_set.add(slot.name)
    if not slots:
        reader.error(value["slots"], f"form {name!r} has no slots")
        return
    done = _read_responses(state, reader, value["done"], what="'done'") \
        if "done" in value else []
    cancelled = _read_responses(state, reader, value["cancelled"], what="'cancelled'") \
        if "cancelled" in value else list(DEFAULT_CANCELLED)
    action = _action_name(reader, value["action"]) if "action" in value else None
    if action is not None:
        state.action_refs.append((f"form {name!r}", action, _at(reader, value["action"])))
    if not done and action is None:
        reader.error(value["name"], f"form {name!r} has no 'done' response or 'action'")
    cancel = None
    if "cancel_intent" in value:
        cancel = reader.string(value["cancel_intent"], what="'cancel_intent'")
        if cancel is not None:
            state.form_uses.append((reader, value["cancel_intent"], "intent", cancel))
    form = Form(name, tuple(slots), tuple(done), action, cancel, tuple(cancelled))
    state.forms[name] = (form, reader.where(value["name"]))


def _at(reader: Reader, node: Node) -> tuple[str, int, int]:
    return (str(reader.path), node.start_mark.line + 1, node.start_mark.column + 1)


def _action_name(reader: Reader, node: Node) -> str | None:
    name = reader.string(node, what="'action'")
    if name is not None and not _ACTION.match(name):
        reader.error(node, f"action name {name!r} must be a Python identifier")
        return None
    return name


def _read_form_slot(state: _Folder, reader: Reader, node: Node, form: str) -> FormSlot | None:
    entries = reader.mapping(node, what=f"a slot of form {form!r}", keys=FORM_SLOT_KEYS,
                             required=("name", "ask"))
    if entries is None or "name" not in entries or "ask" not in entries:
        return None
    value = {key: item for key, (_, item) in entries.items()}
    name = reader.string(value["name"], what="the slot's 'name'")
    if name is None:
        return None
    kind: FormSlotType = "text"
    if "type" in value:
        said = reader.string(value["type"], what="'type'")
        if said in FORM_SLOT_TYPES:
            kind = said
        elif said is not None:
            reader.error(value["type"], f"slot {name!r}: unknown type {said!r}; use one of "
                                        f"{', '.join(FORM_SLOT_TYPES)}")
    ask = _read_responses(state, reader, value["ask"], what="'ask'")
    invalid = _read_responses(state, reader, value["invalid"], what="'invalid'") \
        if "invalid" in value else []
    choices = [t for t, _ in reader.strings(value["choices"], what="'choices'")] \
        if "choices" in value else []
    if kind == "choice" and not choices:
        reader.error(value["name"], f"slot {name!r} of type choice has no 'choices'")
    if kind == "entity":
        state.form_uses.append((reader, value["name"], "entity", name))
    patterns = _read_patterns(reader, value["pattern"]) if "pattern" in value else []
    low = reader.number(value["min"], what="'min'") if "min" in value else None
    high = reader.number(value["max"], what="'max'") if "max" in value else None
    validate = _action_name(reader, value["validate"]) if "validate" in value else None
    if validate is not None:
        state.action_refs.append((f"slot {name!r} of form {form!r}", validate,
                                  _at(reader, value["validate"])))
    remember = _optional(reader.boolean, entries.get("remember"), "'remember'", True)
    return FormSlot(name, tuple(ask), kind, tuple(invalid), tuple(choices),
                    patterns[0] if patterns else None, low, high, validate, remember)


def _read_entities(state: _Folder, reader: Reader, node: Node) -> None:
    """`entities: {NAME: lookup | [values] | {pattern: REGEX} | {type: number|date|...}}`."""
    for name, (key_node, value_node) in (reader.mapping(node, what="'entities'") or {}).items():
        if name in state.entities:
            reader.error(key_node, f"entity {name!r} is already defined at "
                                   f"{state.entities[name][1]}")
            continue
        entity = _read_entity(reader, name, value_node)
        if entity is not None:
            state.entities[name] = (entity, reader.where(key_node))
            state.slots_set.add(name)


def _read_entity(reader: Reader, name: str, node: Node) -> Entity | None:
    what = f"entity {name!r}"
    if isinstance(node, SequenceNode):
        values: list[tuple[str, tuple[str, ...]]] = [
            (text, ()) for text, _ in reader.strings(node, what=what)]
        return Entity(name, "lookup", tuple(values)) if values else None
    entries = reader.mapping(node, what=what)
    if entries is None:
        return None
    special = {k: v for k, v in entries.items() if k in ("type", "pattern")
               and isinstance(v[1], ScalarNode)}
    if special:
        if len(entries) != 1:
            reader.error(node, f"{what}: 'type' or 'pattern' stands alone")
            return None
        key, (_, value_node) = next(iter(special.items()))
        text = reader.string(value_node, what=f"{what} {key}")
        if text is None:
            return None
        if key == "type":
            if text not in BUILT_IN:
                reader.error(value_node, f"{what}: unknown type {text!r}; use one of "
                                         f"{', '.join(BUILT_IN)}")
                return None
            return Entity(name, text)
        try:
            return Entity(name, "pattern", pattern=re.compile(text, re.IGNORECASE))
        except re.error as exc:
            reader.error(value_node, f"{what}: invalid regex {text!r}: {exc.msg}")
            return None
    values = []
    for value, (value_key, synonyms_node) in entries.items():
        synonyms: list[str] = []
        if not (isinstance(synonyms_node, ScalarNode) and synonyms_node.value in ("", "~", "null")):
            synonyms = [t for t, _ in reader.strings(synonyms_node, what=f"synonyms of {value!r}")]
        if not normalize(value):
            reader.error(value_key, f"{what}: value {value!r} has no words to match")
            continue
        values.append((value, tuple(synonyms)))
    return Entity(name, "lookup", tuple(values))


def _read_slot_specs(state: _Folder, reader: Reader, node: Node) -> None:
    """`slots: {name: {normalize: title}}`: how each slot's captured value is normalised.
    A slot described here counts as set (an action may set it)."""
    for name, (key_node, value_node) in (reader.mapping(node, what="'slots'") or {}).items():
        state.slots_set.add(name)
        if name in state.slot_specs:
            reader.error(key_node, f"slot {name!r} is already described at "
                                   f"{state.slot_specs[name][1]}")
            continue
        entries = reader.mapping(value_node, what=f"slot {name!r}", keys=SLOT_KEYS)
        if not entries or "normalize" not in entries:
            continue
        how_node = entries["normalize"][1]
        how = reader.string(how_node, what="'normalize'")
        if how is None:
            continue
        if how not in NORMALIZERS:
            hint = difflib.get_close_matches(how, NORMALIZERS, n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            reader.error(how_node, f"unknown normaliser {how!r}{suggestion}; use one of "
                                   f"{', '.join(NORMALIZERS)}")
            continue
        state.slot_specs[name] = (how, reader.where(key_node))


def read_version(reader: Reader, node: Node) -> None:
    """Reports a `version:` other than the supported one."""
    version = reader.integer(node, what="'version'")
    if version is not None and version != SCHEMA_VERSION:
        reader.error(node, f"unsupported version {version} (this chatbot reads version 1)")


def _read_intent(state: _Folder, reader: Reader, node: Node) -> None:
    entries = reader.mapping(node, what="an intent", keys=INTENT_KEYS, required=("name",))
    if entries is None or "name" not in entries:
        return
    name_node = entries["name"][1]
    name = reader.string(name_node, what="'name'")
    if name is None:
        return
    if not _NAME.match(name):
        reader.error(name_node, f"intent name {name!r} must be letters, digits, '_', '.' or '-'")
    if name in state.names:
        reader.error(name_node, f"duplicate intent {name!r} (first defined at {state.names[name]})")
    else:
        state.names[name] = reader.where(name_node)
    get = entries.get
    examples, patterns = [], []
    if "examples" in entries:
        examples = _read_examples(state, reader, entries["examples"][1], name)
    negatives: list[str] = []
    if "negative_examples" in entries:
        negatives = _read_negatives(reader, entries["negative_examples"][1], name, examples)
    if "patterns" in entries:
        patterns = _read_patterns(reader, entries["patterns"][1])
    responses: list[Response] = []
    if "responses" in entries:
        responses = _read_responses(state, reader, entries["responses"][1], what="'responses'")
    form = None
    if "form" in entries:
        form = reader.string(entries["form"][1], what="'form'")
        if form is not None:
            state.form_uses.append((reader, entries["form"][1], "form", form))
    action, action_at = None, None
    if "action" in entries:
        action_node = entries["action"][1]
        action = reader.string(action_node, what="'action'")
        if action is not None and not _ACTION.match(action):
            reader.error(action_node, f"action name {action!r} must be a Python identifier")
            action = None
        mark = action_node.start_mark
        action_at = (str(reader.path), mark.line + 1, mark.column + 1)
    if not {"responses", "action", "form"} & set(entries):
        reader.error(node, f"intent {name!r} has no 'responses' or 'action'")
    if not examples and not patterns:
        reader.error(name_node, f"intent {name!r} has no examples or patterns to match")
    for pattern in patterns:
        state.slots_set.update(pattern.groupindex)
    state.intents.append(
        Intent(
            name=name,
            examples=tuple(examples),
            patterns=tuple(patterns),
            negative_examples=tuple(negatives),
            responses=tuple(responses),
            override=_optional(reader.boolean, get("override"), "'override'", False),
            priority=_optional(reader.integer, get("priority"), "'priority'", 0),
            requires=_read_requires(state, reader, get("requires")),
            sets=_read_sets(state, reader, get("sets")),
            action=action,
            action_at=action_at,
            form=form,
        )
    )


_ACTION = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _optional(read: Any, entry: tuple[Node, Node] | None, what: str, default: Any) -> Any:
    if entry is None:
        return default
    value = read(entry[1], what=what)
    return default if value is None else value


def _read_examples(state: _Folder, reader: Reader, node: Node, intent: str) -> list[str]:
    examples = []
    for text, item in reader.strings(node, what="'examples'"):
        key = normalize(text)
        if not key:
            reader.error(item, f"example {text!r} has no words to match")
            continue
        owner = state.examples.get(key)
        if owner is not None and owner[0] == intent:
            reader.error(item, f"duplicate example {text!r} (first at {owner[1]})")
            continue
        if owner is not None:
            reader.error(
                item, f"example {text!r} is also an example of intent {owner[0]!r} (at {owner[1]})"
            )
            continue
        state.examples[key] = (intent, reader.where(item))
        examples.append(text)
    return examples


def _read_negatives(
    reader: Reader, node: Node, intent: str, examples: list[str]
) -> list[str]:
    """Utterances the intent must not take (see `IntentMatcher`). They may be
    another intent's examples, but not this intent's."""
    own = {normalize(text) for text in examples}
    where: dict[str, str] = {}
    negatives = []
    for text, item in reader.strings(node, what="'negative_examples'"):
        key = normalize(text)
        if not key:
            reader.error(item, f"negative example {text!r} has no words to match")
        elif key in own:
            reader.error(item, f"{text!r} is both an example and a negative example of {intent!r}")
        elif key in where:
            reader.error(item, f"duplicate negative example {text!r} (first at {where[key]})")
        else:
            where[key] = reader.where(item)
            negatives.append(text)
    if negatives and not examples:
        reader.error(node, f"intent {intent!r} has negative examples but no examples")
    return negatives


def _read_patterns(reader: Reader, node: Node) -> list[re.Pattern[str]]:
    patterns = []
    for text, item in reader.strings(node, what="'patterns'"):
        try:
            patterns.append(re.compile(text, re.IGNORECASE))
        except re.error as exc:
            where = f" at position {exc.pos}" if exc.pos is not None else ""
            reader.error(item, f"invalid regex {text!r}: {exc.msg}{where}")
    return patterns


def _read_responses(state: _Folder, reader: Reader, node: Node, *, what: str) -> list[Response]:
    responses = []
    items = reader.sequence(node, what=what, single=True)
    if not items and isinstance(node, SequenceNode):
        reader.error(node, f"{what} must not be empty")
    for item in items:
        unless: list[tuple[str, Node]] = []
        text_node = item
        if isinstance(item, MappingNode):
            entries = reader.mapping(
                item, what="a response", keys=("text", "unless_slots"), required=("text",)
            )
            if entries is None or "text" not in entries:
                continue
            text_node = entries["text"][1]
            if "unless_slots" in entries:
                unless = reader.strings(entries["unless_slots"][1], what="'unless_slots'")
        text = reader.string(text_node, what="a response")
        if text is None:
            continue
        try:
            slots = template_slots(text)
        except ValueError as exc:
            reader.error(text_node, f"invalid template {text!r}: {exc}")
            continue
        state.uses += [_Use("slot", slot, text_node, reader) for slot in slots]
        state.uses += [_Use("slot", slot, slot_node, reader) for slot, slot_node in unless]
        responses.append(Response(text, slots, tuple(slot for slot, _ in unless)))
    return responses


def _read_requires(state: _Folder, reader: Reader, entry: tuple[Node, Node] | None) -> Requires:
    if entry is None:
        return Requires()
    entries = reader.mapping(entry[1], what="'requires'", keys=("context", "slots"))
    if entries is None:
        return Requires()
    found: dict[str, tuple[str, ...]] = {}
    for kind, key in (("context", "context"), ("slot", "slots")):
        if key in entries:
            names = reader.strings(entries[key][1], what=f"'requires.{key}'")
            state.uses += [_Use(kind, name, node, reader) for name, node in names]
            found[key] = tuple(name for name, _ in names)
    return Requires(**found)


def _read_sets(state: _Folder, reader: Reader, entry: tuple[Node, Node] | None) -> Sets:
    if entry is None:
        return Sets()
    entries = reader.mapping(entry[1], what="'sets'", keys=("context", "slots"))
    if entries is None:
        return Sets()
    contexts: list[tuple[str, int]] = []
    slots: list[tuple[str, str | None]] = []
    if "context" in entries:
        mapping = reader.mapping(entries["context"][1], what="'sets.context'") or {}
        for name, (_, value_node) in mapping.items():
            turns = reader.integer(value_node, what=f"the lifetime of context {name!r}", minimum=0)
            if turns is not None:
                contexts.append((name, turns))
                state.contexts_set.add(name)
    if "slots" in entries:
        mapping = reader.mapping(entries["slots"][1], what="'sets.slots'") or {}
        for name, (_, value_node) in mapping.items():
            value = reader.value(value_node)
            if value is not None and not isinstance(value, str):
                reader.error(value_node, f"slot {name!r} must be set to a string or null")
                continue
            slots.append((name, value))
            state.slots_set.add(name)
    return Sets(context=tuple(contexts), slots=tuple(slots))


def read_policy(reader: Reader, node: Node, into: PolicyValues) -> None:
    """Reads a `policy:` mapping into `into`, reporting a setting made twice."""
    entries = reader.mapping(node, what="'policy'", keys=POLICY_KEYS)
    for key, (key_node, value_node) in (entries or {}).items():
        if key not in POLICY_KEYS:
            continue
        if key in into:
            reader.error(key_node, f"policy {key!r} is already set at {into[key][1]}")
            continue
        value = _policy_value(reader, key, value_node)
        if value is not None:
            into[key] = (value, reader.where(key_node))


def _policy_value(reader: Reader, key: str, node: Node) -> Any:
    if key != "order":
        return reader.number(node, what=f"'policy.{key}'", low=0.0, high=1.0)
    rules: list[str] = []
    for rule, item in reader.strings(node, what="'policy.order'"):
        if rule not in RULES:
            reader.error(item, f"unknown rule {rule!r} (rules: {', '.join(RULES)})")
        elif rule in rules:
            reader.error(item, f"rule {rule!r} appears twice")
        else:
            rules.append(rule)
    return tuple(rules)


def _check_uses(state: _Folder) -> None:
    known = {"slot": state.slots_set, "context": state.contexts_set}
    setter = {"slot": "a pattern group or 'sets.slots'", "context": "'sets.context'"}
    for use in state.uses:
        if use.name in known[use.kind]:
            continue
        hint = _closest(use.name, known[use.kind])
        message = f"{use.kind} {use.name!r} is never set by {setter[use.kind]} of any intent"
        use.reader.error(use.node, message + hint)


def _closest(name: str, names: set[str]) -> str:
    found = difflib.get_close_matches(name, sorted(names), n=1)
    return f" (did you mean {found[0]!r}?)" if found else ""
