"""Loading and validating intent folders: every problem, located, at once."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from chatbot.errors import BotValidationError
from chatbot.intents import Response, load_intents

GOOD = """\
version: 1
intents:
  - name: greet
    examples: [hi, hello]
    patterns: ['^(hi|hello)\\b']
    responses: ["Hello!", "Hi {name}!"]
    override: true
    priority: 2
    requires: {context: [], slots: []}
    sets: {context: {greeted: 3}, slots: {mood: happy}}
  - name: user_name
    examples: [my name is sam]
    patterns: ['my name is (?P<name>\\w+)']
    responses:
      - "Nice to meet you, {name}!"
      - text: What is your name?
        unless_slots: [name]
fallback: ["Sorry?"]
policy: {order: [override, intents, neural], intent_threshold: 0.6}
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / "intents" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(folder: Path) -> list[str]:
    with pytest.raises(BotValidationError) as caught:
        load_intents(folder / "intents")
    prefix = f"{folder}/"
    return [str(p).removeprefix(prefix) for p in caught.value.problems]


def test_a_valid_file_loads_into_typed_intents(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", GOOD)
    loaded = load_intents(tmp_path / "intents")
    greet = loaded.get("greet")
    assert greet.examples == ("hi", "hello")
    assert [p.pattern for p in greet.patterns] == ["^(hi|hello)\\b"]
    assert greet.responses == (Response("Hello!"), Response("Hi {name}!", ("name",)))
    assert (greet.override, greet.priority) == (True, 2)
    assert greet.sets.context == (("greeted", 3),)
    assert greet.sets.slots == (("mood", "happy"),)
    assert loaded.get("user_name").pattern_slots == ("name",)
    assert loaded.get("user_name").responses[1] == Response("What is your name?", (), ("name",))
    assert loaded.fallback == (Response("Sorry?"),)
    assert loaded.policy.order == ("override", "intents", "neural", "fallback")
    assert loaded.policy.intent_threshold == 0.6
    assert loaded.policy.ambiguity_margin == 0.1


def test_every_problem_is_reported_at_once_with_its_place(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.yml",
        """\
        version: 1
        intents:
          - name: greet
            examples: [hi, hello]
            respones: ["Hello!"]
          - name: greet
            examples: hey
            patterns: ['(unclosed']
            responses: ["Hi {nme}!"]
            override: yes please
            priority: high
        """,
    )
    write(
        tmp_path,
        "b.yml",
        """\
        version: 1
        intents:
          - name: wave
            examples: [Hi!, waves]
            responses: [hello]
            requires: {context: [waved]}
        policy: {intent_threshold: 2, order: [override, nueral]}
        """,
    )
    assert problems(tmp_path) == [
        "intents/a.yml:5:5: unknown key 'respones' (did you mean 'responses'?)",
        "intents/a.yml:3:5: intent 'greet' has no 'responses' or 'action'",
        "intents/a.yml:6:11: duplicate intent 'greet' (first defined at "
        f"{tmp_path}/intents/a.yml:3:11)",
        "intents/a.yml:8:16: invalid regex '(unclosed': missing ), unterminated subpattern "
        "at position 0",
        "intents/a.yml:10:15: 'override' must be true or false, not a string",
        "intents/a.yml:11:15: 'priority' must be an integer, not a string",
        f"intents/b.yml:4:16: example 'Hi!' is also an example of intent 'greet' (at "
        f"{tmp_path}/intents/a.yml:4:16)",
        "intents/b.yml:7:28: 'policy.intent_threshold' must be between 0.0 and 1.0 (got 2)",
        "intents/b.yml:7:49: unknown rule 'nueral' (rules: override, neural, intents, fallback)",
        "intents/a.yml:9:17: slot 'nme' is never set by a pattern group or 'sets.slots' of any "
        "intent",
        "intents/b.yml:6:26: context 'waved' is never set by 'sets.context' of any intent",
    ]


def test_yaml_errors_and_duplicate_keys_do_not_stop_other_files(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", "version: 1\nintents: [\n")
    write(tmp_path, "b.yml", "version: 1\nversion: 1\nfallback: [ok]\n")
    write(tmp_path, "c.yaml", "version: 2\nintents: {name: x}\n")
    write(tmp_path, "d.yml", "")
    write(tmp_path, "e.yml", "- just a list\n")
    assert problems(tmp_path) == [
        "intents/a.yml:3:1: expected the node content, but found '<stream end>'",
        "intents/b.yml:2:1: duplicate key 'version' in an intent file (first at "
        f"{tmp_path}/intents/b.yml:1:1)",
        "intents/c.yaml:1:10: unsupported version 2 (this chatbot reads version 1)",
        "intents/c.yaml:2:10: 'intents' must be a list, not a mapping",
        "intents/d.yml: file is empty (expected 'version: 1')",
        "intents/e.yml:1:1: an intent file must be a mapping, not a list",
    ]


def test_templates_examples_and_shapes_are_checked(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.yml",
        """\
        version: 1
        intents:
          - name: a
            examples: [one, One!, "???"]
            responses: ["{0}", "{name.upper}", "{x:>4}", "{oops", "fine {{braces}}"]
          - name: b
            patterns: ['(?P<x>\\d+)']
            responses: []
            sets: {context: {c: -1}, slots: {y: 3}}
          - name: c
            responses: [hi]
          - name: bad name!
            examples: [zzz]
            responses: [ok]
        fallback: ["{who}"]
        """,
    )
    assert problems(tmp_path) == [
        "intents/a.yml:4:21: duplicate example 'One!' (first at "
        f"{tmp_path}/intents/a.yml:4:16)",
        "intents/a.yml:4:27: example '???' has no words to match",
        "intents/a.yml:5:17: invalid template '{0}': field {0} must be a slot name such as {name}",
        "intents/a.yml:5:24: invalid template '{name.upper}': field {name.upper} must be a slot "
        "name such as {name}",
        "intents/a.yml:5:40: invalid template '{x:>4}': field {x} may not have a format spec or "
        "conversion",
        "intents/a.yml:5:50: invalid template '{oops': expected '}' before end of string",
        "intents/a.yml:8:16: 'responses' must not be empty",
        "intents/a.yml:9:25: the lifetime of context 'c' must be at least 0 (got -1)",
        "intents/a.yml:9:41: slot 'y' must be set to a string or null",
        "intents/a.yml:10:11: intent 'c' has no examples or patterns to match",
        "intents/a.yml:12:11: intent name 'bad name!' must be letters, digits, '_', '.' or '-'",
        "intents/a.yml:15:12: slot 'who' is never set by a pattern group or 'sets.slots' of any "
        "intent",
    ]


def test_unsafe_tags_are_refused(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.yml",
        "version: 1\nintents: !!python/object/apply:os.system [echo hi]\n",
    )
    assert problems(tmp_path) == [
        "intents/a.yml:2:10: unsupported tag 'tag:yaml.org,2002:python/object/apply:os.system' "
        "on 'intents'"
    ]


def test_an_empty_folder_gives_the_default_fallback(tmp_path: Path) -> None:
    (tmp_path / "intents").mkdir()
    loaded = load_intents(tmp_path / "intents")
    assert loaded.intents == ()
    assert loaded.fallback[0].text == "Sorry, I didn't catch that. Could you say it another way?"


def test_negative_examples_load_and_are_checked(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", """\
        version: 1
        intents:
          - name: how_are_you
            examples: [how are you]
            negative_examples: [how old are you, what's your age]
            responses: [Fine!]
        """)
    [intent] = load_intents(tmp_path / "intents").intents
    assert intent.negative_examples == ("how old are you", "what's your age")
    write(tmp_path, "a.yml", """\
        version: 1
        intents:
          - name: how_are_you
            examples: [how are you]
            negative_examples:
              - How are you?
              - how old are you
              - how old are you!
              - '...'
            responses: [Fine!]
          - name: rules_only
            patterns: ['^x$']
            negative_examples: [y]
            responses: [X]
        """)
    assert problems(tmp_path) == [
        "intents/a.yml:6:9: 'How are you?' is both an example and a negative example of "
        "'how_are_you'",
        "intents/a.yml:8:9: duplicate negative example 'how old are you!' "
        f"(first at {tmp_path}/intents/a.yml:7:9)",
        "intents/a.yml:9:9: negative example '...' has no words to match",
        "intents/a.yml:13:24: intent 'rules_only' has negative examples but no examples",
    ]


@pytest.mark.parametrize("word", ["yes", "No", "on", "off"])
def test_a_yaml_1_1_boolean_word_gets_a_hint(tmp_path: Path, word: str) -> None:
    write(tmp_path, "a.yml", f"""\
        version: 1
        intents:
          - name: greet
            override: {word}
            examples: [hi]
            responses: [Hello!]
        """)
    assert problems(tmp_path) == [
        f"intents/a.yml:4:15: 'override' must be true or false, not a string "
        f"(YAML 1.1's '{word}' is text here: use true or false)",
    ]


def test_other_text_for_a_boolean_gets_no_hint(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", """\
        version: 1
        intents:
          - name: greet
            override: sometimes
            examples: [hi]
            responses: [Hello!]
        """)
    assert problems(tmp_path) == ["intents/a.yml:4:15: 'override' must be true or false, "
                                  "not a string"]


def test_slot_normalisers_load_and_bad_ones_are_located(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", """\
        version: 1
        slots:
          name: {normalize: title}
          city: {normalize: upper}
        intents:
          - name: tell
            patterns: ['my name is (?P<name>\\\\w+ ?\\\\w*)', 'i live in (?P<city>\\\\w+)']
            responses: ['Hi {name} from {city}.']
        """)
    intents = load_intents(tmp_path / "intents")
    assert intents.slots == (("city", "upper"), ("name", "title"))
    assert intents.normalize("name", "  mary   JANE ") == "Mary Jane"
    assert intents.normalize("city", "oslo") == "OSLO"
    assert intents.normalize("other", " x ") == "x"
    assert intents.normalize("name", None) is None
    write(tmp_path, "a.yml", """\
        version: 1
        slots:
          name: {normalize: titel}
        intents:
          - name: tell
            patterns: ['my name is (?P<name>\\\\w+)']
            responses: ['Hi {name}.']
        """)
    write(tmp_path, "b.yml", """\
        version: 1
        slots:
          name: {normalise: lower}
        """)
    assert problems(tmp_path) == [
        "intents/a.yml:3:21: unknown normaliser 'titel' (did you mean 'title'?); use one of "
        "title, lower, upper, strip",
        "intents/b.yml:3:10: unknown key 'normalise' (did you mean 'normalize'?)",
    ]
