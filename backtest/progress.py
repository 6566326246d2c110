"""A one-line progress bar for long runs: bars done, M1 bars per second, ETA; only on a terminal.

Wall time is read here for the display alone; nothing it reads reaches a decision.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from typing import TextIO

WIDTH = 28
REFRESH_S = 0.25


class ProgressBar:
    """Called after every step with the market time reached and the M1 bars replayed so far."""

    def __init__(self, total_bars: int, stream: TextIO | None = None) -> None:
        self.total = max(1, total_bars)
        self.stream = stream or sys.stdout
        self._started: float | None = None  # the first step: the rate leaves the start-up out
        self._shown = 0.0
        self.enabled = self.stream.isatty()

    def __call__(self, market_now: float, bars: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if self._started is None:
            self._started = self._shown = now
        if now - self._shown < REFRESH_S and bars < self.total:
            return
        self._shown = now
        self.stream.write("\r" + self.line(market_now, bars, now - self._started))
        self.stream.flush()

    def line(self, market_now: float, bars: int, elapsed: float) -> str:
        """The text of the bar (also what the tests read)."""
        done = min(1.0, bars / self.total)
        filled = int(done * WIDTH)
        rate = bars / elapsed if elapsed > 0 else 0.0
        eta = (self.total - bars) / rate if rate > 0 else 0.0
        when = datetime.fromtimestamp(market_now, UTC).strftime("%Y-%m-%d %H:%M")
        return (f"[{'#' * filled}{'.' * (WIDTH - filled)}] {done:6.1%}  {when}  {bars:,}/{self.total:,} M1 bars  "
                f"{rate:,.0f} bars/s  ETA {int(eta) // 60}:{int(eta) % 60:02d} ")

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
