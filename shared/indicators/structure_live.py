"""Bar-by-bar twins of the structure filters in ``structure.py``, for live strategies.

Each detector keeps only the few bars its pattern needs, takes one closed bar per ``update`` (with
the current ATR or oscillator value, from an ``IndicatorSet``) and returns what that bar completed,
by the same definitions as the batch functions (see their docstrings; tested to agree bar for bar).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from shared.indicators._checks import check_multiple, check_period

NAN = math.nan


@dataclass(frozen=True, slots=True)
class Zone:
    """A price zone completed on the last bar: direction +1 bullish / -1 bearish, and its bounds."""

    direction: int
    top: float
    bottom: float


@dataclass(frozen=True, slots=True)
class Sweep:
    """A liquidity sweep on the last bar: +1 lows swept (bullish), -1 highs swept; the level."""

    direction: int
    level: float


class FvgDetector:
    """Fair value gaps (``structure.fair_value_gaps``) from the last three bars."""

    __slots__ = ("_high1", "_high2", "_low1", "_low2", "_min_atr_mult")

    def __init__(self, min_atr_mult: float = 0.35) -> None:
        self._min_atr_mult = check_multiple("min_atr_mult", min_atr_mult)
        self._high1 = self._high2 = self._low1 = self._low2 = NAN

    def update(self, high: float, low: float, atr: float) -> Zone | None:
        """Add one bar; return the gap it completes, if any."""
        high2, low2 = self._high2, self._low2
        self._high2, self._low2 = self._high1, self._low1
        self._high1, self._low1 = high, low
        need = self._min_atr_mult * atr
        up_gap, down_gap = low - high2, low2 - high
        if up_gap > 0.0 and up_gap >= need:
            return Zone(1, low, high2)
        if down_gap > 0.0 and down_gap >= need:
            return Zone(-1, low2, high)
        return None


class SweepDetector:
    """Liquidity sweeps (``structure.liquidity_sweeps``) against the previous ``lookback`` bars."""

    __slots__ = ("_highs", "_lookback", "_lows", "_min_atr_mult")

    def __init__(self, lookback: int = 20, min_atr_mult: float = 0.15) -> None:
        self._lookback = check_period("lookback", lookback)
        self._min_atr_mult = check_multiple("min_atr_mult", min_atr_mult)
        self._highs: deque[float] = deque(maxlen=self._lookback)
        self._lows: deque[float] = deque(maxlen=self._lookback)

    def update(self, high: float, low: float, close: float, atr: float) -> Sweep | None:
        """Add one bar; return the sweep it makes, if any."""
        result = None
        if len(self._highs) == self._lookback:
            prior_high, prior_low = max(self._highs), min(self._lows)
            need = self._min_atr_mult * atr
            beyond_high, beyond_low = high - prior_high, prior_low - low
            bear = beyond_high > 0.0 and beyond_high >= need and close < prior_high
            bull = beyond_low > 0.0 and beyond_low >= need and close > prior_low
            if bull != bear:
                result = Sweep(1, prior_low) if bull else Sweep(-1, prior_high)
        self._highs.append(high)
        self._lows.append(low)
        return result


class OrderBlockDetector:
    """Order blocks (``structure.order_blocks``): tracks the last candle of each colour."""

    __slots__ = (
        "_bar", "_bear", "_bull", "_impulse_atr_mult", "_max_bars", "_used_bear", "_used_bull",
    )  # fmt: skip

    def __init__(self, impulse_atr_mult: float = 1.5, max_bars: int = 3) -> None:
        self._impulse_atr_mult = check_multiple("impulse_atr_mult", impulse_atr_mult)
        self._max_bars = check_period("max_bars", max_bars)
        self._bar = 0
        # (index, high, low) of the last bearish / bullish candle; index -1 = none yet
        self._bear: tuple[int, float, float] = (-1, NAN, NAN)
        self._bull: tuple[int, float, float] = (-1, NAN, NAN)
        self._used_bear = self._used_bull = -1

    def update(self, open_: float, high: float, low: float, close: float, atr: float) -> Zone | None:
        """Add one bar; return the order block whose impulse it completes, if any."""
        i = self._bar
        self._bar = i + 1
        need = self._impulse_atr_mult * atr
        j_bull, bull_high, bull_low = self._bear  # a bullish block is the last BEARISH candle
        bull = (
            j_bull >= 0 and j_bull != self._used_bear and i - j_bull <= self._max_bars
            and close >= open_ and close > bull_high and close - bull_high >= need
        )  # fmt: skip
        j_bear, bear_high, bear_low = self._bull
        bear = (
            j_bear >= 0 and j_bear != self._used_bull and i - j_bear <= self._max_bars
            and close <= open_ and close < bear_low and bear_low - close >= need
        )  # fmt: skip
        result = None
        if bull and not bear:
            self._used_bear = j_bull
            result = Zone(1, bull_high, bull_low)
        elif bear and not bull:
            self._used_bull = j_bear
            result = Zone(-1, bear_high, bear_low)
        if close < open_:
            self._bear = (i, high, low)
        elif close > open_:
            self._bull = (i, high, low)
        return result


class DivergenceDetector:
    """Regular divergences (``structure.divergences``) between price pivots and an oscillator.

    Feed it the RSI or the MACD line of the same bar; NaN (warm-up) is allowed.
    """

    __slots__ = (
        "_bar", "_highs", "_last_high", "_last_low", "_left", "_lookback", "_lows", "_oscs", "_right",
        "_size",
    )  # fmt: skip

    def __init__(self, left: int = 3, right: int = 3, lookback: int = 60) -> None:
        self._left, self._right = check_period("left", left), check_period("right", right)
        self._lookback = check_period("lookback", lookback)
        self._size = size = self._left + self._right + 1
        self._highs: deque[float] = deque(maxlen=size)
        self._lows: deque[float] = deque(maxlen=size)
        self._oscs: deque[float] = deque(maxlen=size)
        self._bar = 0
        # (index, price, oscillator) of the last pivot low / high; index -1 = none yet
        self._last_low: tuple[int, float, float] = (-1, NAN, NAN)
        self._last_high: tuple[int, float, float] = (-1, NAN, NAN)

    def update(self, high: float, low: float, oscillator: float) -> int:
        """Add one bar; return +1 / -1 if it confirms a bullish / bearish divergence, else 0."""
        self._highs.append(high)
        self._lows.append(low)
        self._oscs.append(oscillator)
        pivot = self._bar - self._right
        self._bar += 1
        if len(self._highs) < self._size:
            return 0
        left = self._left
        highs, lows = list(self._highs), list(self._lows)
        osc = self._oscs[left]
        bull = bear = False
        low_p = lows[left]
        if low_p < min(lows[:left]) and low_p <= min(lows[left + 1 :]):
            q, low_q, osc_q = self._last_low
            bull = q >= 0 and pivot - q <= self._lookback and low_p - low_q < 0.0 and osc - osc_q >= 0.0
            self._last_low = (pivot, low_p, osc)
        high_p = highs[left]
        if high_p > max(highs[:left]) and high_p >= max(highs[left + 1 :]):
            q, high_q, osc_q = self._last_high
            bear = q >= 0 and pivot - q <= self._lookback and high_p - high_q > 0.0 and osc - osc_q <= 0.0
            self._last_high = (pivot, high_p, osc)
        return 1 if bull and not bear else -1 if bear and not bull else 0


def is_near_round_number(price: float, step: float, buffer_pct: float = 0.0012) -> bool:
    """Scalar ``structure.near_round_number``: within ``buffer_pct`` PERCENT of price of a multiple
    of ``step`` (gold 5.0, bitcoin 100.0)."""
    if not step > 0.0:
        raise ValueError(f"step must be > 0, got {step!r}")
    return abs(price - step * round(price / step)) <= abs(price) * (buffer_pct / 100.0)
