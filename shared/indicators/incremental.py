"""Classic indicators one closed bar at a time: O(1) ``update`` in plain float arithmetic.

Each state gives, bar for bar, the same numbers as its batch twin in ``batch.py`` (tested to 1e-9 on
the shipped data), NaN during the same warm-up, and says when it is ``ready``. They run on every
closed bar of every timeframe in live trading, so they keep no numpy and no per-bar allocation
beyond the returned tuple. The windowed ones (Bollinger, Z-volume) are in ``windowed.py``.

Inputs must be finite floats: the states do not re-check them (a NaN would poison the smoothing
from then on). ``IndicatorSet.update`` checks each bar once for all of them.
"""

from __future__ import annotations

import math

from shared.indicators._checks import check_period

NAN = math.nan
_NAN3 = (NAN, NAN, NAN)


class EmaState:
    """EMA with TA-Lib's seeding: the SMA of the first ``period`` values, then x*k + prev*(1-k)."""

    __slots__ = ("_k", "_n", "_period", "_ready", "_sum", "_value")

    def __init__(self, period: int) -> None:
        self._period = check_period("period", period)
        self._k = 2.0 / (self._period + 1)
        self._n = 0
        self._sum = 0.0
        self._value = NAN
        self._ready = False

    def update(self, x: float) -> float:
        """Add one value; return the EMA (NaN for the first ``period - 1`` values)."""
        if self._ready:
            prev = self._value
            value = (x - prev) * self._k + prev
            self._value = value
            return value
        self._n += 1
        self._sum += x
        if self._n == self._period:
            self._value = self._sum / self._period
            self._ready = True
        return self._value

    @property
    def value(self) -> float:
        """The current EMA, NaN until ready."""
        return self._value

    @property
    def ready(self) -> bool:
        """True once ``period`` values have been seen."""
        return self._ready


class AtrState:
    """Wilder's ATR: the mean of the first ``period`` true ranges, then (atr*(p-1) + tr) / p."""

    __slots__ = ("_n", "_period", "_prev_close", "_ready", "_sum", "_value")

    def __init__(self, period: int = 14) -> None:
        self._period = check_period("period", period)
        self._n = 0
        self._sum = 0.0
        self._prev_close = NAN
        self._value = NAN
        self._ready = False

    def update(self, high: float, low: float, close: float) -> float:
        """Add one bar; return the ATR (NaN for the first ``period`` bars, the first has no TR)."""
        pc = self._prev_close
        self._prev_close = close
        tr = high - low
        gap = abs(high - pc)
        tr = gap if gap > tr else tr  # not max(): a call costs more, and NaN (bar 0) must lose
        gap = abs(low - pc)
        tr = gap if gap > tr else tr
        if self._ready:
            value = (self._value * (self._period - 1) + tr) / self._period
            self._value = value
            return value
        if self._n > 0:
            self._sum += tr
            if self._n == self._period:
                self._value = self._sum / self._period
                self._ready = True
        self._n += 1
        return self._value

    @property
    def value(self) -> float:
        """The current ATR, NaN until ready."""
        return self._value

    @property
    def ready(self) -> bool:
        """True from bar ``period`` (0-based) on."""
        return self._ready


class RsiState:
    """Wilder's RSI; 50.0 when there has been no price change at all (TA-Lib says 0.0, see batch)."""

    __slots__ = ("_gain", "_loss", "_n", "_period", "_prev", "_ready", "_value")

    def __init__(self, period: int = 14) -> None:
        self._period = check_period("period", period)
        self._n = 0
        self._gain = 0.0
        self._loss = 0.0
        self._prev = NAN
        self._value = NAN
        self._ready = False

    def update(self, close: float) -> float:
        """Add one close; return the RSI 0..100 (NaN for the first ``period`` closes)."""
        change = close - self._prev
        self._prev = close
        period = self._period
        if self._ready:
            gain = self._gain * (period - 1)
            loss = self._loss * (period - 1)
            if change < 0.0:
                loss -= change
            else:
                gain += change
            gain /= period
            loss /= period
            self._gain = gain
            self._loss = loss
        else:
            n = self._n
            self._n = n + 1
            if n == 0:
                return NAN
            if change < 0.0:
                self._loss -= change
            else:
                self._gain += change
            if n < period:
                return NAN
            gain = self._gain = self._gain / period
            loss = self._loss = self._loss / period
            self._ready = True
        total = gain + loss
        value = 100.0 * (gain / total) if total != 0.0 else 50.0
        self._value = value
        return value

    @property
    def value(self) -> float:
        """The current RSI, NaN until ready."""
        return self._value

    @property
    def ready(self) -> bool:
        """True from close ``period`` (0-based) on."""
        return self._ready


class AdxState:
    """Wilder's ADX with +DI/-DI, smoothing and seeds exactly as ``batch.adx`` (and TA-Lib)."""

    __slots__ = (
        "_adx", "_mdi", "_n", "_pdi", "_period", "_prev_close", "_prev_high", "_prev_low",
        "_ready", "_s_minus", "_s_plus", "_s_tr", "_sum_dx",
    )  # fmt: skip

    def __init__(self, period: int = 14) -> None:
        self._period = check_period("period", period)
        self._n = 0
        self._prev_high = self._prev_low = self._prev_close = NAN
        self._s_plus = self._s_minus = self._s_tr = self._sum_dx = 0.0
        self._adx = self._pdi = self._mdi = NAN
        self._ready = False

    def update(self, high: float, low: float, close: float) -> tuple[float, float, float]:
        """Add one bar; return (adx, plus_di, minus_di). DI from bar ``period``, ADX from bar
        ``2*period - 1`` (0-based); NaN before."""
        up = high - self._prev_high
        down = self._prev_low - low
        pc = self._prev_close
        self._prev_high, self._prev_low, self._prev_close = high, low, close
        plus_dm = up if (up > 0.0 and up > down) else 0.0
        minus_dm = down if (down > 0.0 and down > up) else 0.0
        tr = high - low
        gap = abs(high - pc)
        tr = gap if gap > tr else tr  # not max(): a call costs more, and NaN (bar 0) must lose
        gap = abs(low - pc)
        tr = gap if gap > tr else tr
        period = self._period
        n = self._n
        if n < period:  # bars 0..period-1: plain sums (bar 0 has no move)
            self._n = n + 1
            if n > 0:
                self._s_plus += plus_dm
                self._s_minus += minus_dm
                self._s_tr += tr
            return _NAN3
        s_plus = self._s_plus
        s_plus = self._s_plus = s_plus - s_plus / period + plus_dm
        s_minus = self._s_minus
        s_minus = self._s_minus = s_minus - s_minus / period + minus_dm
        s_tr = self._s_tr
        s_tr = self._s_tr = s_tr - s_tr / period + tr
        if s_tr != 0.0:
            pdi = 100.0 * (s_plus / s_tr)
            mdi = 100.0 * (s_minus / s_tr)
        else:
            pdi = mdi = 0.0
        self._pdi, self._mdi = pdi, mdi
        di_sum = pdi + mdi
        if self._ready:
            if di_sum != 0.0:
                self._adx = (self._adx * (period - 1) + 100.0 * (abs(mdi - pdi) / di_sum)) / period
            return (self._adx, pdi, mdi)
        self._n = n + 1
        if di_sum != 0.0:
            self._sum_dx += 100.0 * (abs(mdi - pdi) / di_sum)
        if n < 2 * period - 1:
            return (NAN, pdi, mdi)
        self._adx = self._sum_dx / period
        self._ready = True
        return (self._adx, pdi, mdi)

    @property
    def value(self) -> tuple[float, float, float]:
        """(adx, plus_di, minus_di) now."""
        return (self._adx, self._pdi, self._mdi)

    @property
    def adx(self) -> float:
        """The current ADX, NaN until ready."""
        return self._adx

    @property
    def plus_di(self) -> float:
        """The current +DI, NaN for the first ``period`` bars."""
        return self._pdi

    @property
    def minus_di(self) -> float:
        """The current -DI, NaN for the first ``period`` bars."""
        return self._mdi

    @property
    def ready(self) -> bool:
        """True once the ADX exists (bar ``2*period - 1``, 0-based)."""
        return self._ready


class MacdState:
    """MACD with TA-Lib's seeding (both EMAs seeded at bar ``slow - 1``; see ``batch.macd``)."""

    __slots__ = (
        "_fast", "_fast_ema", "_fast_sum", "_hist", "_k_fast", "_k_signal", "_k_slow", "_line", "_n",
        "_ready", "_signal", "_signal_ema", "_signal_sum", "_slow", "_slow_ema", "_slow_sum",
    )  # fmt: skip

    def __init__(self, fast: int = 12, slow: int = 26, signal: int = 9) -> None:
        self._fast, self._slow = check_period("fast", fast), check_period("slow", slow)
        self._signal = check_period("signal", signal)
        if fast >= slow:
            raise ValueError(f"fast must be < slow, got fast={fast} slow={slow}")
        self._k_fast, self._k_slow = 2.0 / (fast + 1), 2.0 / (slow + 1)
        self._k_signal = 2.0 / (signal + 1)
        self._n = 0
        self._fast_sum = self._slow_sum = self._signal_sum = 0.0
        self._fast_ema = self._slow_ema = self._signal_ema = NAN
        self._line = self._hist = NAN
        self._ready = False

    def update(self, close: float) -> tuple[float, float, float]:
        """Add one close; return (macd, signal, hist), NaN for the first ``slow + signal - 2``."""
        if self._ready:
            fast = self._fast_ema
            fast = self._fast_ema = (close - fast) * self._k_fast + fast
            slow = self._slow_ema
            slow = self._slow_ema = (close - slow) * self._k_slow + slow
            line = fast - slow
            sig = self._signal_ema
            sig = self._signal_ema = (line - sig) * self._k_signal + sig
            hist = line - sig
            self._line, self._hist = line, hist
            return (line, sig, hist)
        n = self._n = self._n + 1
        if n <= self._slow:
            self._slow_sum += close
            if n > self._slow - self._fast:
                self._fast_sum += close
            if n < self._slow:
                return _NAN3
            self._fast_ema = self._fast_sum / self._fast
            self._slow_ema = self._slow_sum / self._slow
        else:
            self._fast_ema = (close - self._fast_ema) * self._k_fast + self._fast_ema
            self._slow_ema = (close - self._slow_ema) * self._k_slow + self._slow_ema
        self._signal_sum += self._fast_ema - self._slow_ema
        if n - self._slow + 1 < self._signal:
            return _NAN3
        line = self._line = self._fast_ema - self._slow_ema
        sig = self._signal_ema = self._signal_sum / self._signal
        self._hist = line - sig
        self._ready = True
        return (line, sig, self._hist)

    @property
    def value(self) -> tuple[float, float, float]:
        """(macd, signal, hist) now."""
        return (self._line, self._signal_ema, self._hist)

    @property
    def ready(self) -> bool:
        """True once the signal line exists."""
        return self._ready
