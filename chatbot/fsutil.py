"""Atomic, durable file writes: temp file in the same folder, fsync, `os.replace`."""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def write_bytes(path: str | Path, data: bytes) -> None:
    """Replaces `path` with `data` so a reader sees the old or the new file, never half."""
    target = Path(path)
    fd, tmp = _create(target, lambda p: os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def append_line(path: str | Path, line: str) -> None:
    """Appends one line and fsyncs (for logs such as metrics.jsonl)."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line.rstrip("\n") + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def fsync_dir(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: str | Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def staging_dir(target: str | Path) -> Path:
    """A fresh empty folder beside `target` to build its next version in."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _, staged = _create(target, lambda p: os.mkdir(p, 0o777))
    return staged


def publish_dir(staged: Path, target: str | Path) -> None:
    """Moves a complete staged folder to `target`, replacing any previous version.

    The previous version is renamed to `target.old` first and removed last, so a
    crash in between leaves one complete version on disk (see `resolve_dir`).
    """
    target = Path(target)
    old = target.with_name(target.name + ".old")
    for path in staged.iterdir():
        fsync_file(path)
    fsync_dir(staged)
    # Without `target`, a leftover `.old` is the only complete version: keep it
    # until the new one is in place.
    if target.exists():
        if old.exists():
            shutil.rmtree(old)
        os.replace(target, old)
    try:
        os.replace(staged, target)
    except BaseException:
        if old.exists() and not target.exists():
            os.replace(old, target)
        raise
    fsync_dir(target.parent)
    shutil.rmtree(old, ignore_errors=True)


def _create(target: Path, make: Callable[[Path], T]) -> tuple[T, Path]:
    """`make(p)` for a fresh hidden name `p` beside `target`, retried on a clash.

    Created with mode 0o666 (files) or 0o777 (folders), so the process umask
    applies as for any new file; unlike `tempfile`, whose 0o600 would need the
    umask read, and reading it means setting it, which races with other threads.
    """
    for _ in range(100):
        path = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
        try:
            return make(path), path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {target}")


def resolve_dir(target: str | Path) -> Path:
    """`target`, or its `.old` version when a crash interrupted `publish_dir`."""
    target = Path(target)
    old = target.with_name(target.name + ".old")
    if not target.exists() and old.exists():
        return old
    return target
