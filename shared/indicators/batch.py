"""Classic indicators over whole float64 arrays: warm-up from history, research, and the reference
the incremental states in ``incremental.py`` are tested against.

Every function returns arrays as long as its input, NaN during the warm-up, with the same warm-up
length as TA-Lib (first value at index ``lookback``, given per function). The recursive ones (EMA and
Wilder smoothing) loop over Python floats in the same order of operations as TA-Lib's C code, so they
match it to rounding; the windowed ones (Bollinger, Z-volume) use an exact two-pass variance.
Where a definition deliberately differs from TA-Lib the docstring says so.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from shared.indicators._checks import FloatArray, as_series, check_multiple, check_period, same_length

NAN = math.nan
#: Z-volume is 0.0 when the window's standard deviation is at most this fraction of its mean.
ZVOLUME_FLAT_REL = 1e-9


class AdxSeries(NamedTuple):
    """ADX with the two directional indicators it is built from, each 0..100."""

    adx: FloatArray
    plus_di: FloatArray
    minus_di: FloatArray


class MacdSeries(NamedTuple):
    """MACD line (fast EMA - slow EMA), its signal EMA and the histogram (line - signal)."""

    macd: FloatArray
    signal: FloatArray
    hist: FloatArray


class BollingerSeries(NamedTuple):
    """Bollinger bands; ``width`` is (upper - lower) / middle, a fraction of price."""

    upper: FloatArray
    middle: FloatArray
    lower: FloatArray
    width: FloatArray


def _ema_tail(values: list[float], out: list[float], seed: float, start: int, k: float) -> None:
    """Continue an EMA seeded with ``seed`` at ``start`` over ``values[start+1:]`` into ``out``."""
    prev = seed
    out[start] = prev
    for i in range(start + 1, len(values)):
        prev = (values[i] - prev) * k + prev  # TA-Lib's order of operations
        out[i] = prev


def _mean_of(values: list[float], start: int, stop: int) -> float:
    """Left-to-right sum / count, as TA-Lib seeds (``sum()`` may compensate on newer Pythons)."""
    total = 0.0
    for i in range(start, stop):
        total += values[i]
    return total / (stop - start)


def ema(values: npt.ArrayLike, period: int) -> FloatArray:
    """Exponential moving average, k = 2 / (period + 1), seeded with the SMA of the first ``period``
    values (TA-Lib's default). First value at index ``period - 1``.
    """
    x = as_series("values", values)
    period = check_period("period", period)
    n = len(x)
    out = [NAN] * n
    if n >= period:
        xs = x.tolist()
        _ema_tail(xs, out, _mean_of(xs, 0, period), period - 1, 2.0 / (period + 1))
    return np.array(out, dtype=np.float64)


def true_range(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike) -> FloatArray:
    """max(high - low, |high - prev close|, |low - prev close|); NaN at index 0 (no previous close)."""
    h, lo, c = as_series("high", high), as_series("low", low), as_series("close", close)
    n = same_length(high=h, low=lo, close=c)
    out = np.full(n, NAN)
    if n > 1:
        prev = c[:-1]
        out[1:] = np.maximum(h[1:] - lo[1:], np.maximum(np.abs(h[1:] - prev), np.abs(lo[1:] - prev)))
    return out


def atr(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, period: int = 14) -> FloatArray:
    """Average true range, Wilder's smoothing: seed = mean of the first ``period`` true ranges (bars
    1..period), then atr = (atr * (period - 1) + tr) / period. First value at index ``period``.
    """
    period = check_period("period", period)
    tr = true_range(high, low, close).tolist()
    n = len(tr)
    out = [NAN] * n
    if n > period:
        prev = _mean_of(tr, 1, period + 1)
        out[period] = prev
        for i in range(period + 1, n):
            prev = (prev * (period - 1) + tr[i]) / period
            out[i] = prev
    return np.array(out, dtype=np.float64)


def rsi(close: npt.ArrayLike, period: int = 14) -> FloatArray:
    """Relative strength index, Wilder's smoothing: average gain and loss seeded with the plain mean
    of the first ``period`` changes, then avg = (avg * (period - 1) + change) / period;
    rsi = 100 * gain / (gain + loss). First value at index ``period``.

    Differs from TA-Lib on purpose in one case: when gain and loss are both zero (no price change
    over the whole smoothing memory, e.g. a stale feed) we return 50.0, neutral; TA-Lib returns 0.0,
    which would read as extremely oversold.
    """
    x = as_series("close", close).tolist()
    period = check_period("period", period)
    n = len(x)
    out = [NAN] * n
    if n <= period:
        return np.array(out, dtype=np.float64)
    gain = loss = 0.0
    for i in range(1, period + 1):
        change = x[i] - x[i - 1]
        if change < 0.0:
            loss -= change
        else:
            gain += change
    gain /= period
    loss /= period
    for i in range(period, n):
        if i > period:
            change = x[i] - x[i - 1]
            gain *= period - 1
            loss *= period - 1
            if change < 0.0:
                loss -= change
            else:
                gain += change
            gain /= period
            loss /= period
        total = gain + loss
        out[i] = 100.0 * (gain / total) if total != 0.0 else 50.0
    return np.array(out, dtype=np.float64)


def adx(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, period: int = 14) -> AdxSeries:
    """Wilder's ADX with +DI and -DI, as TA-Lib computes them.

    +DM = up move when up > down and up > 0, else 0 (-DM symmetrically; a tie gives neither).
    The DM and TR sums start as plain sums over bars 1..period-1; from bar ``period`` on each bar
    does S = S - S / period + new. DI = 100 * S_dm / S_tr (0 when S_tr is 0), first at index
    ``period``. DX = 100 * |+DI - -DI| / (+DI + -DI); ADX is the mean of the first ``period`` DX
    values (bars period..2*period-1), then ADX = (ADX * (period - 1) + DX) / period; first ADX at
    index ``2 * period - 1``. A bar whose DX is undefined (+DI + -DI = 0) leaves the ADX unchanged
    (and adds 0 to the seed sum), as in TA-Lib.
    """
    h, lo, c = as_series("high", high), as_series("low", low), as_series("close", close)
    n = same_length(high=h, low=lo, close=c)
    period = check_period("period", period)
    out_adx, out_pdi, out_mdi = [NAN] * n, [NAN] * n, [NAN] * n
    hs, ls, cs = h.tolist(), lo.tolist(), c.tolist()
    s_plus = s_minus = s_tr = sum_dx = adx_value = 0.0
    for i in range(1, n):
        up, down = hs[i] - hs[i - 1], ls[i - 1] - ls[i]
        plus_dm = up if (up > 0.0 and up > down) else 0.0
        minus_dm = down if (down > 0.0 and down > up) else 0.0
        pc = cs[i - 1]
        tr = max(hs[i] - ls[i], abs(hs[i] - pc), abs(ls[i] - pc))
        if i < period:
            s_plus += plus_dm
            s_minus += minus_dm
            s_tr += tr
            continue
        s_plus = s_plus - s_plus / period + plus_dm
        s_minus = s_minus - s_minus / period + minus_dm
        s_tr = s_tr - s_tr / period + tr
        if s_tr != 0.0:
            pdi, mdi = 100.0 * (s_plus / s_tr), 100.0 * (s_minus / s_tr)
        else:
            pdi = mdi = 0.0
        out_pdi[i], out_mdi[i] = pdi, mdi
        di_sum = pdi + mdi
        dx = 100.0 * (abs(mdi - pdi) / di_sum) if di_sum != 0.0 else NAN
        if i < 2 * period - 1:
            sum_dx += dx if di_sum != 0.0 else 0.0
            continue
        if i == 2 * period - 1:
            adx_value = (sum_dx + (dx if di_sum != 0.0 else 0.0)) / period
        elif di_sum != 0.0:
            adx_value = (adx_value * (period - 1) + dx) / period
        out_adx[i] = adx_value
    return AdxSeries(*(np.array(out, dtype=np.float64) for out in (out_adx, out_pdi, out_mdi)))


def macd(close: npt.ArrayLike, fast: int = 12, slow: int = 26, signal: int = 9) -> MacdSeries:
    """MACD as TA-Lib computes it, seeding included.

    Both EMAs are seeded at the same bar, ``slow - 1``: the slow one with the SMA of the first
    ``slow`` closes, the fast one with the SMA of the ``fast`` closes ending there (NOT the fast
    EMA run from bar ``fast - 1``; that is TA-Lib's MACD seeding, which we reproduce). The signal is
    an EMA of the line seeded with the SMA of its first ``signal`` values. All three outputs start
    at index ``slow + signal - 2`` (the line is NaN until the signal exists, as in TA-Lib).
    """
    x = as_series("close", close).tolist()
    fast, slow = check_period("fast", fast), check_period("slow", slow)
    signal = check_period("signal", signal)
    if fast >= slow:
        raise ValueError(f"fast must be < slow, got fast={fast} slow={slow}")
    n = len(x)
    first = slow + signal - 2
    line, sig = [NAN] * n, [NAN] * n
    if n > first:
        slow_ema, fast_ema = [NAN] * n, [NAN] * n
        _ema_tail(x, slow_ema, _mean_of(x, 0, slow), slow - 1, 2.0 / (slow + 1))
        _ema_tail(x, fast_ema, _mean_of(x, slow - fast, slow), slow - 1, 2.0 / (fast + 1))
        raw = [f - s for f, s in zip(fast_ema, slow_ema, strict=True)]
        _ema_tail(raw, sig, _mean_of(raw, slow - 1, first + 1), first, 2.0 / (signal + 1))
        line[first:] = raw[first:]
    line_a, sig_a = np.array(line, dtype=np.float64), np.array(sig, dtype=np.float64)
    return MacdSeries(line_a, sig_a, line_a - sig_a)


def _window_mean_std(x: FloatArray, period: int) -> tuple[FloatArray, FloatArray]:
    """Mean and population standard deviation of each full window, two-pass (exact to rounding);
    NaN for the first ``period - 1`` positions."""
    n = len(x)
    mean, std = np.full(n, NAN), np.full(n, NAN)
    if n >= period:
        windows = sliding_window_view(x, period)
        m = windows.mean(axis=1)
        mean[period - 1 :] = m
        std[period - 1 :] = np.sqrt(np.square(windows - m[:, None]).mean(axis=1))
    return mean, std


def bollinger(close: npt.ArrayLike, period: int = 20, nbdev: float = 2.0) -> BollingerSeries:
    """Bollinger bands: SMA(period) +/- nbdev * population std of the same window. First value at
    index ``period - 1``. ``width`` is NaN where the middle is 0.

    Same definition as TA-Lib (population std); the variance is taken two-pass, exact to rounding
    even at a high price level with a tiny spread. ``width`` is computed as 2 * nbdev * std /
    middle, equal to (upper - lower) / middle without the cancellation of subtracting the bands.
    """
    x = as_series("close", close)
    period = check_period("period", period)
    nbdev = check_multiple("nbdev", nbdev)
    middle, std = _window_mean_std(x, period)
    upper, lower = middle + nbdev * std, middle - nbdev * std
    with np.errstate(divide="ignore", invalid="ignore"):
        width = np.where(middle != 0.0, (2.0 * nbdev) * std / middle, NAN)
    return BollingerSeries(upper, middle, lower, width)


def clean_volume(volume: npt.ArrayLike) -> FloatArray:
    """Volume with missing values (NaN, e.g. the empty gold column) as 0.0; negative raises."""
    v = np.asarray(volume, dtype=np.float64)
    if v.ndim != 1:
        raise ValueError(f"volume must be one-dimensional, got shape {v.shape}")
    v = np.where(np.isfinite(v), v, 0.0)
    if (v < 0.0).any():
        index = int(np.argmax(v < 0.0))
        raise ValueError(f"volume must be >= 0; index {index} holds {v[index]!r}")
    return v


def zvolume(volume: npt.ArrayLike, lookback: int = 80) -> FloatArray:
    """Z-score of each bar's volume against the ``lookback`` bars ending at (and including) it:
    (v - mean) / population std. First value at index ``lookback - 1``.

    Degrades to 0.0, never a division by zero: a missing volume (NaN/inf, as in the gold file)
    counts as 0, and a window whose std is <= ``ZVOLUME_FLAT_REL`` * |mean| (all zero, constant)
    gives 0.0. Negative volume is an error.
    """
    v = clean_volume(volume)
    lookback = check_period("lookback", lookback)
    mean, std = _window_mean_std(v, lookback)
    flat = std <= ZVOLUME_FLAT_REL * np.abs(mean)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(flat, 0.0, (v - mean) / std)
    z[: lookback - 1] = NAN
    return z
