"""Micro-batching: the turns that arrive within a few milliseconds share one decode.

Requests queue on the event loop; one worker thread answers them, a batch at a
time, with `Chatbot.send_batch`, so the event loop stays free (`/healthz`
answers while a batch decodes). A batch starts when the first turn has waited
`window_s` or `max_batch` turns are waiting; turns that arrive while a batch
decodes form the next one. One session's turns keep their order: the worker
answers batches in arrival order, and `send_batch` answers a session's repeats
in later rounds.

A failure is the failing turn's alone: a session the store cannot read, or
any unexpected error, is logged once with the session id and answered as
that turn's `StoreUnavailableError`; the worker keeps going.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from chatbot.bot import Chatbot
from chatbot.dialogue import Reply
from chatbot.errors import BatchError, SessionDeletedError, SessionError, StoreUnavailableError
from chatbot.session import Session

log = logging.getLogger("chatbot.serve")
T = TypeVar("T")
MAX_SESSIONS = 4096
"""Session objects kept between turns (least recently used go; they reload from the store)."""


class UnknownSessionError(SessionError):
    """A turn for a session id the store does not hold."""


@dataclass
class _Turn:
    session_id: str
    text: str
    turn: int | None
    future: asyncio.Future[Reply | BaseException]
    loop: asyncio.AbstractEventLoop


class MicroBatcher:
    """Answers turns in batches on one worker thread.

    Args:
        bot: the bot; its store must exist for every session id sent.
        window_s: how long the first turn of a batch waits for others.
        max_batch: the largest batch.
        on_batch: called on the worker thread with each batch's size.
    """

    def __init__(self, bot: Chatbot, *, window_s: float = 0.005, max_batch: int = 64,
                 on_batch: Callable[[int], None] | None = None) -> None:
        self.bot = bot
        self.window_s = window_s
        self.max_batch = max_batch
        self.on_batch = on_batch
        self._queue: collections.deque[_Turn] = collections.deque()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor = concurrent.futures.ThreadPoolExecutor(1, "chatbot-batch")
        self._sessions: collections.OrderedDict[str, Session] = collections.OrderedDict()
        self._sessions_lock = threading.Lock()

    @property
    def alive(self) -> bool:
        """Whether the batching task is running (it only ends at `stop`)."""
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=True)

    async def send(self, session_id: str, text: str, *, turn: int | None = None) -> Reply:
        """The reply to `text` in the stored session `session_id`.

        Raises:
            UnknownSessionError: the store holds no such session.
            TurnMismatchError: `turn` is given and the session is not at it.
            SessionError: the turn could not be stored (the session is unchanged).
        """
        assert self._wake is not None, "start() the batcher first"
        loop = asyncio.get_running_loop()
        item = _Turn(session_id, text, turn, loop.create_future(), loop)
        self._queue.append(item)
        self._wake.set()
        result = await item.future
        if isinstance(result, BaseException):
            raise result
        return result

    async def call(self, function: Callable[..., T], *args: Any) -> T:
        """Runs `function(*args)` on the worker thread, between batches."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, function, *args)

    def session(self, session_id: str) -> Session:
        """The session object for a stored id (cached; it catches up by itself).

        Raises:
            UnknownSessionError: the store holds no such session.
        """
        with self._sessions_lock:
            found = self._sessions.get(session_id)
            if found is not None:
                self._sessions.move_to_end(session_id)
                return found
        session = self.bot.find(session_id)
        if session is None:
            raise UnknownSessionError(f"no session {session_id!r}")
        with self._sessions_lock:
            self._sessions[session_id] = session
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        return session

    def forget(self, session_id: str) -> None:
        with self._sessions_lock:
            self._sessions.pop(session_id, None)

    async def _run(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            if len(self._queue) < self.max_batch:
                await asyncio.sleep(self.window_s)
            batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
            if not self._queue:
                self._wake.clear()
            if batch:
                try:
                    await loop.run_in_executor(self._executor, self._answer, batch)
                except Exception as exc:  # noqa: BLE001 - the batcher outlives any batch
                    log.exception("a batch of %d turns failed", len(batch))
                    for item in batch:
                        _settle(item.future, StoreUnavailableError(f"the turn failed: {exc!r}"))

    def _answer(self, batch: list[_Turn]) -> None:
        """On the worker thread: one `send_batch` for the turns whose sessions exist;
        every turn's future gets its reply or its error."""
        results: dict[int, Reply | BaseException] = {}
        try:
            self._answer_into(batch, results)
        finally:
            for index, item in enumerate(batch):
                result = results.get(index) or StoreUnavailableError("the turn was not answered")
                item.loop.call_soon_threadsafe(_settle, item.future, result)

    def _answer_into(self, batch: list[_Turn], results: dict[int, Reply | BaseException]) -> None:
        ready: list[tuple[int, Session]] = []
        for index, item in enumerate(batch):
            try:
                ready.append((index, self.session(item.session_id)))
            except SessionError as exc:
                results[index] = exc
            except Exception as exc:  # noqa: BLE001 - one unreadable row harms its session only
                log.exception("session %r could not be loaded", item.session_id)
                results[index] = StoreUnavailableError(
                    f"session {item.session_id!r} could not be read from the store: {exc!r}")
        if ready:
            if self.on_batch is not None:
                self.on_batch(len(ready))
            answered = self._send([(s, batch[i].text, batch[i].turn) for i, s in ready])
            for (index, _), result in zip(ready, answered, strict=True):
                results[index] = result
                if isinstance(result, SessionDeletedError):
                    self.forget(batch[index].session_id)


    def _send(self, items: list[tuple[Session, str, int | None]]) -> list[Reply | BaseException]:
        """Each item's reply or error. A batch that fails unexpectedly is answered
        again one turn at a time, so only the turn that fails gets the error; each
        is pinned to the turn it was sent at, so a turn the failed batch stored
        is not answered twice (it gets `TurnMismatchError`, and its stored answer)."""
        if len(items) > 1:
            later: collections.Counter[str] = collections.Counter()
            pinned: list[tuple[Session, str, int | None]] = []
            for session, text, turn in items:
                pinned.append((session, text, session.turn + later[session.id] if turn is None
                               else turn))
                later[session.id] += 1
            items = pinned
        try:
            return list(self.bot.send_batch([(s, t) for s, t, _ in items],
                                            turns=[n for _, _, n in items]))
        except BatchError as exc:
            return [exc.errors.get(k, r) or exc for k, r in enumerate(exc.replies)]
        except SessionError as exc:  # a batch of one's error
            return [exc] * len(items)
        except Exception as exc:  # noqa: BLE001 - the model's or the store's
            if len(items) > 1:
                return [result for item in items for result in self._send([item])]
            log.exception("the turn of session %r failed", items[0][0].id)
            return [StoreUnavailableError(f"the turn failed: {exc!r}")]


def _settle(future: asyncio.Future[Reply | BaseException],
            result: Reply | BaseException) -> None:
    if not future.done():
        future.set_result(result)
