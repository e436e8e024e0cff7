"""Safe YAML: the safe loader only, bounded, duplicate keys rejected, errors located."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from chatbot import yamlio
from chatbot.errors import ConfigError, YamlError


def _write(tmp_path: Path, text: str | bytes, name: str = "doc.yml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _error(path: Path) -> YamlError:
    with pytest.raises(YamlError) as info:
        yamlio.load(path)
    return info.value


def test_loads_plain_document(tmp_path: Path) -> None:
    path = _write(tmp_path, "name: greet\npatterns:\n  - hi\n  - hello\nscore: 0.5\nn: 3\n")
    assert yamlio.load(path) == {"name": "greet", "patterns": ["hi", "hello"], "score": 0.5, "n": 3}


def test_empty_document_is_none(tmp_path: Path) -> None:
    assert yamlio.load(_write(tmp_path, "")) is None
    assert yamlio.loads("# only a comment\n") is None


def test_duplicate_key(tmp_path: Path) -> None:
    path = _write(tmp_path, "a: 1\nb:\n  c: 2\n  c: 3\n")
    error = _error(path)
    assert str(error) == f"{path}:4:3: duplicate key 'c' (first defined at line 3)"
    assert (error.path, error.line, error.col) == (str(path), 4, 3)
    assert isinstance(error, ConfigError)


def test_merge_key_is_not_a_duplicate() -> None:
    text = "base: &base {a: 1, b: 2}\nchild:\n  <<: *base\n  b: 3\n"
    assert yamlio.loads(text) == {"base": {"a": 1, "b": 2}, "child": {"a": 1, "b": 3}}


def test_python_tag_is_refused_without_side_effect(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = _write(tmp_path, f"!!python/object/apply:os.system ['touch {marker}']\n")
    error = _error(path)
    assert str(error) == (
        f"{path}:1:1: could not determine a constructor for the tag "
        "'tag:yaml.org,2002:python/object/apply:os.system'"
    )
    assert not marker.exists()


def test_python_name_tag_is_refused() -> None:
    with pytest.raises(YamlError, match=r"^<string>:1:4: could not determine a constructor"):
        yamlio.loads("x: !!python/name:os.system\n")


def test_billion_laughs_is_refused_quickly() -> None:
    lines = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(1, 9):
        name, prev = chr(ord("a") + level), chr(ord("a") + level - 1)
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]")
    start = time.perf_counter()
    with pytest.raises(YamlError) as info:
        yamlio.loads("\n".join(lines) + "\n", path="lol.yml")
    assert time.perf_counter() - start < 1.0
    assert str(info.value) == "lol.yml:7:4: aliases expand to more than 1000000 nodes"


def test_too_many_aliases() -> None:
    text = "a: &a x\nb: [" + ", ".join(["*a"] * (yamlio.MAX_ALIASES + 1)) + "]\n"
    with pytest.raises(YamlError, match=r"^<string>:2:\d+: more than 100 aliases$"):
        yamlio.loads(text)


def test_recursive_alias_is_refused() -> None:
    with pytest.raises(YamlError) as info:
        yamlio.loads("a: &a [*a]\n")
    assert str(info.value) == "<string>:1:4: recursive alias"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("[" * 10_000 + "]" * 10_000, "1:101"),
        ("{a: " * 10_000 + "}" * 10_000, "1:401"),
        ("- " * 10_000 + "x\n", "1:201"),
    ],
)
def test_deep_nesting_is_refused_within_a_second(text: str, where: str) -> None:
    start = time.perf_counter()
    with pytest.raises(YamlError) as info:
        yamlio.loads(text, path="deep.yml")
    assert time.perf_counter() - start < 1.0
    assert str(info.value) == f"deep.yml:{where}: nesting deeper than 100 levels"


def test_nesting_at_the_limit_loads() -> None:
    value = yamlio.loads("[" * yamlio.MAX_DEPTH + "]" * yamlio.MAX_DEPTH)
    for _ in range(yamlio.MAX_DEPTH - 1):
        assert isinstance(value, list) and len(value) == 1
        value = value[0]
    assert value == []


def test_nesting_through_aliases_counts_expanded_depth() -> None:
    half = yamlio.MAX_DEPTH // 2 + 1
    text = "a: &a " + "[" * half + "]" * half + "\nb: " + "[" * half + "*a" + "]" * half + "\n"
    with pytest.raises(YamlError, match=r"nesting deeper than 100 levels$"):
        yamlio.loads(text)


def test_oversize_file_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "a: " + "x" * yamlio.MAX_BYTES + "\n")
    assert (
        str(_error(path)) == f"{path}: file is {yamlio.MAX_BYTES + 4} bytes, over the 1000000 limit"
    )


def test_oversize_text_is_refused() -> None:
    with pytest.raises(YamlError) as info:
        yamlio.loads("#" * (yamlio.MAX_BYTES + 1))
    assert str(info.value) == "<string>: file is larger than 1000000 bytes"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: [1, 2\nb: 3\n", "2:2: expected ',' or ']', but got ':'"),
        ("a: 1\n  b: 2\n", "2:4: mapping values are not allowed here"),
        ("a:\n\t- b\n", "2:1: found character '\\t' that cannot start any token"),
        ("a: 'open\n", "2:1: found unexpected end of stream"),
        ("a: *nope\n", "1:4: found undefined alias 'nope'"),
        ("a: 1\n---\nb: 2\n", "2:1: but found another document"),
        (
            "a: 1\nb: c\x00\n",
            "2:5: unacceptable character #x0000: special characters are not allowed",
        ),
    ],
)
def test_syntax_errors_carry_line_and_column(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    assert str(_error(path)) == f"{path}:{message}"


def test_non_utf8_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "a: 1\nname: caf\xe9\n".encode("latin-1"))
    error = _error(path)
    assert str(error) == f"{path}:2:10: not UTF-8 text (invalid continuation byte)"


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.yml"
    assert str(_error(path)) == f"{path}: cannot read: No such file or directory"
