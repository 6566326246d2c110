"""Broken market data, caught where it enters: gaps, duplicate bars, impossible bars, zero or frozen prices.

The gateway feeds every M1 rate the broker gives it through ``DataQuality.check`` (raw numbers, before a
``Bar`` is built: a zero or NaN price or a high below the low cannot even become a ``Bar``) and puts
``reason`` into the heartbeat: ``SymbolHealth(ok=False, reason=...)``. Risk refuses every signal while a
symbol's data is not ok, so nothing is traded on a broken stream.

A missing minute is a gap only if the market was open then: gold's daily break and the weekend are not
gaps. A problem is sticky: the symbol stays not ok until ``clean_bars_to_recover`` good bars in a row
have followed it, so the strategies' indicators see clean data again before an order can.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

M1 = 60
REASONS = ("gap", "duplicate_bar", "bad_bar", "zero_price", "frozen")


@dataclass
class _Stream:
    last_time: int | None = None
    last_close: float | None = None
    flat_run: int = 0  # consecutive bars with high == low at the same price
    problem: str = ""
    clean_since: int = 0
    counts: dict[str, int] | None = None


class DataQuality:
    """Per symbol: the last problem seen in its M1 stream and whether it has recovered.

    ``is_open(symbol, t)`` says whether the symbol's market trades at epoch second ``t`` (the gateway's
    market schedule); ``frozen_bars`` identical flat bars in a row while open count as a frozen feed.
    """

    def __init__(self, is_open: Callable[[str, float], bool], *, frozen_bars: int = 5,
                 clean_bars_to_recover: int = 3) -> None:
        self.is_open = is_open
        self.frozen_bars = frozen_bars
        self.clean_bars_to_recover = clean_bars_to_recover
        self._streams: dict[str, _Stream] = {}

    def check(self, symbol: str, time: int, ohlc: tuple[float, float, float, float]) -> str | None:
        """Take one M1 rate; the problem it shows (one of ``REASONS``), or None for a good bar to publish.

        A rate with a problem other than a gap must not be published (it is impossible or a repeat); a bar
        after a gap is real and is published, but the symbol is not ok until the stream has recovered."""
        stream = self._streams.setdefault(symbol, _Stream(counts={}))
        problem = self._problem(symbol, stream, time, ohlc)
        if problem is None:
            stream.clean_since += 1
        else:
            assert stream.counts is not None
            stream.counts[problem] = stream.counts.get(problem, 0) + 1
            if stream.problem != problem or stream.clean_since:
                log.warning("%s: %s at M1 %d (ohlc %r)", symbol, problem, time, ohlc)
            stream.problem, stream.clean_since = problem, 0
        if problem in (None, "gap", "frozen"):
            stream.last_time, stream.last_close = time, ohlc[3]
        return problem

    def status(self, symbol: str) -> tuple[bool, str]:
        """(ok, reason) for the heartbeat: the last problem until enough clean bars followed it."""
        stream = self._streams.get(symbol)
        if stream is None or not stream.problem or stream.clean_since >= self.clean_bars_to_recover:
            return True, "ok"
        return False, stream.problem

    def counts(self, symbol: str) -> dict[str, int]:
        """How many rates of each problem the symbol's stream has shown (for the drop-counter log)."""
        stream = self._streams.get(symbol)
        return dict(stream.counts or {}) if stream else {}

    def _problem(self, symbol: str, stream: _Stream, time: int, ohlc: tuple[float, float, float, float]) -> str | None:
        open_, high, low, close = prices = ohlc
        if not all(math.isfinite(p) for p in prices) or time % M1:
            return "bad_bar"
        if min(prices) <= 0:
            return "zero_price"
        if high < low or high < max(open_, close) or low > min(open_, close):
            return "bad_bar"
        if stream.last_time is not None and time <= stream.last_time:
            return "duplicate_bar"
        flat = high == low and close == stream.last_close
        stream.flat_run = stream.flat_run + 1 if flat else 0
        if stream.flat_run >= self.frozen_bars:
            return "frozen"
        if stream.last_time is not None and any(self.is_open(symbol, t)
                                                for t in range(stream.last_time + M1, time, M1)):
            return "gap"
        return None
