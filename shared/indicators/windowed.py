"""Windowed indicators one closed bar at a time: Bollinger bands and Z-volume.

Both need the mean and variance of a fixed window; ``_RollingMoments`` keeps them in amortised O(1)
per bar without the cancellation of naive running sums, so they match ``batch.py`` to ~1e-12.
"""

from __future__ import annotations

import math

from shared.indicators._checks import check_multiple, check_period
from shared.indicators.batch import ZVOLUME_FLAT_REL

NAN = math.nan
_INF = math.inf
_NAN4 = (NAN, NAN, NAN, NAN)


class _RollingMoments:
    """Mean and population variance of the last ``period`` values, amortised O(1) per value.

    Keeps running sums of deviations from a reference ``ref`` (the window mean at the last exact
    pass), so they stay small and E[d^2] - E[d]^2 loses no digits to the price level. An exact
    two-pass recomputation from the ring buffer (O(period)) resets rounding error each time the
    ring wraps, and also whenever the window's sum of squared deviations has fallen below
    ``EXACT_BELOW`` times the largest running sum since the last exact pass (a quiet window after
    a move, where subtracting the big old terms would leave too few correct digits).
    """

    EXACT_BELOW = 1e-4

    __slots__ = ("_buf", "_i", "_peak", "_period", "_ref", "_s1", "_s2", "full")

    def __init__(self, period: int) -> None:
        self._period = period
        self._buf = [0.0] * period
        self._i = 0
        self._ref = self._s1 = self._s2 = self._peak = 0.0
        self.full = False

    def push(self, x: float) -> tuple[float, float]:
        """Add ``x`` (dropping the oldest when full); return (mean, variance), NaN until full."""
        buf, i, period = self._buf, self._i, self._period
        if not self.full:
            buf[i] = x
            self._i = i + 1
            if i + 1 < period:
                return (NAN, NAN)
            self.full = True
            self._i = 0
            return self._exact()
        ref = self._ref
        d, old = x - ref, buf[i] - ref
        buf[i] = x
        i += 1
        if i == period:
            self._i = 0
            return self._exact()
        self._i = i
        s1 = self._s1 + (d - old)
        s2 = self._s2 + (d * d - old * old)
        m1 = s1 / period
        m2 = s2 - s1 * m1  # period * variance
        peak = self._peak if self._peak > s2 else s2
        if m2 < self.EXACT_BELOW * peak:
            return self._exact()
        self._s1, self._s2, self._peak = s1, s2, peak
        return (ref + m1, m2 / period)

    def _exact(self) -> tuple[float, float]:
        """Two-pass over the buffer: re-centre ``ref`` on the mean and rebuild the sums."""
        buf, period = self._buf, self._period
        ref = math.fsum(buf) / period
        s1 = s2 = 0.0
        for value in buf:
            d = value - ref
            s1 += d
            s2 += d * d
        self._ref, self._s1, self._s2, self._peak = ref, s1, s2, s2
        m1 = s1 / period
        return (ref + m1, (s2 - s1 * m1) / period)


class BollingerState:
    """Bollinger bands over a fixed window: (upper, middle, lower, width), width = (u - l) / m."""

    __slots__ = ("_moments", "_nbdev", "_value")

    def __init__(self, period: int = 20, nbdev: float = 2.0) -> None:
        self._moments = _RollingMoments(check_period("period", period))
        self._nbdev = check_multiple("nbdev", nbdev)
        self._value = _NAN4

    def update(self, close: float) -> tuple[float, float, float, float]:
        """Add one close; return (upper, middle, lower, width), NaN for the first ``period - 1``."""
        middle, var = self._moments.push(close)
        if not self._moments.full:
            return _NAN4
        std = math.sqrt(var) if var > 0.0 else 0.0
        band = self._nbdev * std
        upper, lower = middle + band, middle - band
        width = (2.0 * self._nbdev) * std / middle if middle != 0.0 else NAN
        value = self._value = (upper, middle, lower, width)
        return value

    @property
    def value(self) -> tuple[float, float, float, float]:
        """(upper, middle, lower, width) now."""
        return self._value

    @property
    def ready(self) -> bool:
        """True once the window is full."""
        return self._moments.full


class ZVolumeState:
    """Z-score of volume over the last ``lookback`` bars (this one included), as ``batch.zvolume``:
    missing volume (NaN/inf) counts as 0; a flat window (all zero, constant) gives 0.0."""

    __slots__ = ("_moments", "_value")

    def __init__(self, lookback: int = 80) -> None:
        self._moments = _RollingMoments(check_period("lookback", lookback))
        self._value = NAN

    def update(self, volume: float) -> float:
        """Add one bar's volume; return its z-score (NaN for the first ``lookback - 1`` bars)."""
        if not 0.0 <= volume < _INF:
            if math.isfinite(volume):
                raise ValueError(f"volume must be >= 0, got {volume!r}")
            volume = 0.0
        mean, var = self._moments.push(volume)
        if not self._moments.full:
            return NAN
        flat = ZVOLUME_FLAT_REL * mean
        value = 0.0 if var <= flat * flat else (volume - mean) / math.sqrt(var)
        self._value = value
        return value

    @property
    def value(self) -> float:
        """The current z-score, NaN until ready."""
        return self._value

    @property
    def ready(self) -> bool:
        """True once the window is full."""
        return self._moments.full
