"""Clocks. Decisions use market time carried in messages; a Clock serves pacing, timeouts and cadence.

The live clock reads the machine; the fake clock is set by tests, so a core driven with a FakeClock
behaves the same at any replay speed.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Wall time (epoch seconds) and a monotonic counter for measuring intervals."""

    def now(self) -> float: ...

    def monotonic(self) -> float: ...


class LiveClock:
    """The machine's clock."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class FakeClock:
    """A clock that moves only when told to; ``now`` and ``monotonic`` advance together."""

    def __init__(self, start: float = 1_752_080_400.0) -> None:
        self._now = start
        self._mono = 0.0

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self._now += seconds
        self._mono += seconds

    def set(self, epoch_seconds: float) -> None:
        self.advance(epoch_seconds - self._now)
