"""Work in background threads whose result the REPL waits for, Ctrl-C aware.

The REPL shows its prompt at once and loads the model (importing torch is most
of the wait) in a `Loading` while the user types; the first message waits for it.
Replies are generated in a thread too, so Ctrl-C returns to the prompt at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

WAIT_SLICE_S = 0.05
T = TypeVar("T")


def wait_for(future: Future[T]) -> T:
    """`future.result()` in short slices, so a Ctrl-C in this thread is seen at once.

    Raises:
        the future's error.
    """
    while True:
        try:
            return future.result(timeout=WAIT_SLICE_S)
        except TimeoutError:
            continue


def in_thread(function: Callable[..., T], *args: Any, name: str = "chatbot-work") -> Future[T]:
    """Runs `function(*args)` in a daemon thread; its result or error lands in the future."""
    future: Future[T] = Future()

    def run() -> None:
        try:
            future.set_result(function(*args))
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future


class Loading(Generic[T]):
    """Something being loaded: in a background thread (`start`), or loaded already (`done`)."""

    def __init__(self, load: Callable[[], T]) -> None:
        self._load = load
        self._future: Future[T] | None = None

    @classmethod
    def done(cls, value: T) -> Loading[T]:
        """A loading that has finished with `value`."""
        loading = cls(lambda: value)
        loading._future = Future()
        loading._future.set_result(value)
        return loading

    def start(self) -> Loading[T]:
        """Starts the load in a daemon thread."""
        self._future = in_thread(self._load, name="chatbot-load")
        return self

    def ready(self) -> bool:
        """Whether the load has finished (successfully or not)."""
        return self._future is not None and self._future.done()

    def failed(self) -> BaseException | None:
        """The load's error, once it has finished with one."""
        return self._future.exception() if self.ready() and self._future else None

    def wait(self) -> T:
        """The loaded value; Ctrl-C interrupts the wait, not the load.

        Raises:
            the load's error.
        """
        if self._future is None:
            raise RuntimeError("the loading was never started")
        return wait_for(self._future)

    def on_done(self, callback: Callable[[], None]) -> None:
        """Calls `callback()` when the load finishes (at once if it has)."""
        if self._future is None:
            raise RuntimeError("the loading was never started")
        self._future.add_done_callback(lambda _: callback())

    def join(self) -> None:
        """Waits for the load to end, errors ignored (so the interpreter never exits
        in the middle of an import)."""
        if self._future is not None:
            self._future.exception()
