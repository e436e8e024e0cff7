"""Atomic writes and directory publishing, with failures injected mid-way."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from chatbot import fsutil


def _version(folder: Path, text: str) -> Path:
    folder.mkdir()
    (folder / "a.txt").write_text(text)
    return folder


def test_write_bytes_replaces_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "file.bin"
    fsutil.write_bytes(target, b"one")
    fsutil.write_bytes(target, b"two")
    fsutil.write_text(tmp_path / "t.txt", "héllo")
    assert target.read_bytes() == b"two"
    assert (tmp_path / "t.txt").read_bytes() == "héllo".encode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.bin", "t.txt"]


def test_write_bytes_failure_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "file.bin"
    target.write_bytes(b"old")

    def broken_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        fsutil.write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.bin"]


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_written_files_and_staged_folders_follow_the_umask_without_touching_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mask: int
) -> None:
    old = os.umask(mask)
    try:
        def no_umask(mask: int) -> int:
            raise AssertionError("os.umask is process-wide: another thread may be creating a file")

        monkeypatch.setattr(os, "umask", no_umask)
        fsutil.write_bytes(tmp_path / "file.bin", b"x")
        staged = fsutil.staging_dir(tmp_path / "model")
        monkeypatch.undo()
    finally:
        os.umask(old)
    assert (tmp_path / "file.bin").stat().st_mode & 0o777 == 0o666 & ~mask
    assert staged.stat().st_mode & 0o777 == 0o777 & ~mask
    assert staged.name.startswith(".model.") and staged.name.endswith(".tmp")


def test_append_line(tmp_path: Path) -> None:
    log = tmp_path / "metrics.jsonl"
    fsutil.append_line(log, '{"a": 1}')
    fsutil.append_line(log, '{"b": 2}\n')
    assert log.read_text() == '{"a": 1}\n{"b": 2}\n'


def test_sha256_file(tmp_path: Path) -> None:
    data = os.urandom(3 << 20)  # several read chunks
    (tmp_path / "blob").write_bytes(data)
    assert fsutil.sha256_file(tmp_path / "blob") == hashlib.sha256(data).hexdigest()


def test_staging_dir_is_hidden_fresh_and_beside_the_target(tmp_path: Path) -> None:
    target = tmp_path / "runs" / "model"
    first, second = fsutil.staging_dir(target), fsutil.staging_dir(target)
    assert first != second
    assert first.parent == second.parent == target.parent
    assert first.name.startswith(".model.") and first.name.endswith(".tmp")
    assert list(first.iterdir()) == []


def test_publish_dir_replaces_a_previous_version(tmp_path: Path) -> None:
    target = _version(tmp_path / "model", "old")
    staged = _version(tmp_path / ".staged", "new")
    fsutil.publish_dir(staged, target)
    assert (target / "a.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_failed_publish_keeps_the_previous_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = _version(tmp_path / "model", "old")
    staged = _version(tmp_path / ".staged", "new")
    real_replace = os.replace

    def replace(src: str | Path, dst: str | Path) -> None:
        if Path(src) == staged:
            raise OSError("injected")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="injected"):
        fsutil.publish_dir(staged, target)
    assert (target / "a.txt").read_text() == "old"
    assert fsutil.resolve_dir(target) == target


def test_resolve_dir_falls_back_to_old(tmp_path: Path) -> None:
    target = tmp_path / "model"
    assert fsutil.resolve_dir(target) == target  # neither exists
    old = _version(tmp_path / "model.old", "old")
    assert fsutil.resolve_dir(target) == old  # crash between the two renames
    _version(target, "new")
    assert fsutil.resolve_dir(target) == target  # crash before `.old` was removed


def test_publish_after_a_crash_keeps_old_until_the_new_one_is_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "model"
    _version(tmp_path / "model.old", "old")  # the only complete version
    staged = _version(tmp_path / ".staged", "new")

    def replace(src: str | Path, dst: str | Path) -> None:
        raise OSError("injected")

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="injected"):
        fsutil.publish_dir(staged, target)
    assert (fsutil.resolve_dir(target) / "a.txt").read_text() == "old"
    monkeypatch.undo()
    fsutil.publish_dir(staged, target)
    assert (target / "a.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_publish_with_a_leftover_old_beside_a_complete_target(tmp_path: Path) -> None:
    target = _version(tmp_path / "model", "current")
    _version(tmp_path / "model.old", "stale")
    fsutil.publish_dir(_version(tmp_path / ".staged", "new"), target)
    assert (target / "a.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
