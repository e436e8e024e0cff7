"""A scripted stand-in for `chatbot.generator.Generator`: deterministic and fast.

Its state is a few floats mixed from every utterance observed, and its reply
depends on the state, so a lost or doubled update changes later replies.
"""

from __future__ import annotations

import struct
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

REPLIES = (
    "that sounds fun",
    "tell me more about it",
    "i like that too",
    "really? why?",
    "i have never tried that",
    "what happened next?",
)


@dataclass(frozen=True)
class FakeState:
    values: tuple[float, ...]

    def to_bytes(self) -> bytes:
        return struct.pack(f"<{len(self.values)}f", *self.values)

    @classmethod
    def from_bytes(cls, data: bytes, size: int) -> FakeState:
        if len(data) != 4 * size:
            raise ValueError(f"expected {4 * size} bytes, got {len(data)}")
        return cls(struct.unpack(f"<{size}f", data))


@dataclass(frozen=True)
class FakeGeneration:
    text: str
    confidence: float
    flags: tuple[str, ...] = ()


class FakeGenerator:
    """Replies from `REPLIES` by a hash of (state, text); `script` fixes some replies.

    Args:
        script: user text -> (reply, confidence, flags) to return for it.
        confidence: the confidence of unscripted replies.
    """

    state_size = 4

    def __init__(
        self,
        *,
        script: dict[str, tuple[str, float, tuple[str, ...]]] | None = None,
        confidence: float = 0.5,
    ) -> None:
        self.script = script or {}
        self.confidence = confidence
        self.respond_calls: list[int] = []
        self.decodes: list[object] = []
        self.observed: list[str] = []
        self._lock = threading.Lock()

    def initial_state(self) -> FakeState:
        return FakeState((0.0,) * self.state_size)

    def _mix(self, state: FakeState, text: str) -> FakeState:
        digest = zlib.crc32(state.to_bytes() + text.encode("utf-8", "surrogatepass"))
        values = tuple(((digest >> (8 * i)) & 0xFF) / 255.0 for i in range(self.state_size))
        return FakeState(values)

    def observe(self, states: Sequence[FakeState], texts: Sequence[str]) -> list[FakeState]:
        with self._lock:
            self.observed.extend(texts)
        return [self._mix(s, t) for s, t in zip(states, texts, strict=True)]

    def respond(
        self,
        items: Sequence[tuple[FakeState, str, str | None]],
        *,
        decode: object = None,
        seed: int | None = None,
    ) -> list[tuple[FakeGeneration, FakeState]]:
        with self._lock:
            self.respond_calls.append(len(items))
            self.decodes.append(decode)
        results = []
        for state, text, _previous in items:
            after = self._mix(state, text)
            if text in self.script:
                reply, confidence, flags = self.script[text]
            else:
                pick = zlib.crc32(after.to_bytes()) % len(REPLIES)
                reply, confidence, flags = REPLIES[pick], self.confidence, ()
            results.append((FakeGeneration(reply, confidence, flags), after))
        return results
