"""Price-structure and pattern filters over whole arrays, one result per bar.

Every result is reported on the bar that COMPLETES the pattern, using only that bar and earlier
ones, so a backtest reading bar i never looks ahead. Directions are +1 bullish, -1 bearish, 0 none.
ATR inputs may hold NaN (warm-up): no pattern that needs the ATR is reported on such a bar.
``structure_live.py`` has the bar-by-bar twins, tested to give identical results.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from shared.indicators._checks import (
    BoolArray,
    FloatArray,
    Int8Array,
    as_series,
    check_multiple,
    check_period,
    same_length,
)
from shared.indicators.batch import macd, rsi

#: Round-number steps of the two symbols traded (USD).
GOLD_ROUND_STEP = 5.0
BITCOIN_ROUND_STEP = 100.0


class ZoneSeries(NamedTuple):
    """Per bar: the direction of a zone completed there and its price bounds (NaN when none)."""

    direction: Int8Array
    top: FloatArray
    bottom: FloatArray


class SweepSeries(NamedTuple):
    """Per bar: the direction of a liquidity sweep and the swept level (NaN when none)."""

    direction: Int8Array
    level: FloatArray


def _direction(bullish: BoolArray, bearish: BoolArray) -> Int8Array:
    """+1 / -1 / 0 per bar; a bar that is both is ambiguous and reports 0."""
    return (bullish & ~bearish).astype(np.int8) - (bearish & ~bullish).astype(np.int8)


def fair_value_gaps(
    high: npt.ArrayLike, low: npt.ArrayLike, atr: npt.ArrayLike, min_atr_mult: float = 0.35
) -> ZoneSeries:
    """Fair value gaps: 3-bar imbalances, reported on the third bar i (i >= 2).

    Bullish when low[i] > high[i-2] and the gap low[i] - high[i-2] >= ``min_atr_mult`` * atr[i];
    the zone is [high[i-2], low[i]]. Bearish when high[i] < low[i-2] and low[i-2] - high[i] >=
    ``min_atr_mult`` * atr[i]; the zone is [high[i], low[i-2]]. The middle bar is not constrained.
    """
    h, lo = as_series("high", high), as_series("low", low)
    a = as_series("atr", atr, allow_nan=True)
    n = same_length(high=h, low=lo, atr=a)
    mult = check_multiple("min_atr_mult", min_atr_mult)
    bull, bear = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    top, bottom = np.full(n, np.nan), np.full(n, np.nan)
    if n >= 3:
        need = mult * a[2:]
        up_gap, down_gap = lo[2:] - h[:-2], lo[:-2] - h[2:]
        bull[2:] = (up_gap > 0.0) & (up_gap >= need)
        bear[2:] = (down_gap > 0.0) & (down_gap >= need)
        top[2:] = np.where(bull[2:], lo[2:], np.where(bear[2:], lo[:-2], np.nan))
        bottom[2:] = np.where(bull[2:], h[:-2], np.where(bear[2:], h[2:], np.nan))
    return ZoneSeries(_direction(bull, bear), top, bottom)


def liquidity_sweeps(
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    close: npt.ArrayLike,
    atr: npt.ArrayLike,
    *,
    lookback: int = 20,
    min_atr_mult: float = 0.15,
) -> SweepSeries:
    """Liquidity sweeps: a wick beyond the extreme of the previous ``lookback`` bars that closes
    back inside, reported on that bar i (i >= lookback).

    With H = max(high[i-lookback : i]) and L = min(low[i-lookback : i]) (bar i excluded):
    bearish (-1, buy-side liquidity taken) when high[i] > H, high[i] - H >= ``min_atr_mult`` *
    atr[i] and close[i] < H; bullish (+1) when low[i] < L, L - low[i] >= ``min_atr_mult`` * atr[i]
    and close[i] > L. ``level`` is the swept H or L. A bar sweeping both sides reports 0.
    """
    h, lo, c = as_series("high", high), as_series("low", low), as_series("close", close)
    a = as_series("atr", atr, allow_nan=True)
    n = same_length(high=h, low=lo, close=c, atr=a)
    lookback = check_period("lookback", lookback)
    mult = check_multiple("min_atr_mult", min_atr_mult)
    bull, bear = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    prior_high, prior_low = np.full(n, np.nan), np.full(n, np.nan)
    if n > lookback:
        prior_high[lookback:] = sliding_window_view(h[:-1], lookback).max(axis=1)
        prior_low[lookback:] = sliding_window_view(lo[:-1], lookback).min(axis=1)
        need = mult * a
        with np.errstate(invalid="ignore"):
            beyond_high, beyond_low = h - prior_high, prior_low - lo
            bear = (beyond_high > 0.0) & (beyond_high >= need) & (c < prior_high)
            bull = (beyond_low > 0.0) & (beyond_low >= need) & (c > prior_low)
    direction = _direction(bull, bear)
    level = np.where(direction == 1, prior_low, np.where(direction == -1, prior_high, np.nan))
    return SweepSeries(direction, level)


def order_blocks(
    open_: npt.ArrayLike,
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    close: npt.ArrayLike,
    atr: npt.ArrayLike,
    *,
    impulse_atr_mult: float = 1.5,
    max_bars: int = 3,
) -> ZoneSeries:
    """Order blocks: the last opposite-colour candle before an impulsive move, reported on the bar
    i that completes the impulse. Zone = that candle's full range [low[j], high[j]].

    Bullish: j is the most recent bearish candle (close < open) before i, so bars j+1..i-1 are not
    bearish; bar i is not bearish either (close >= open); i - j <= ``max_bars``; and close[i] has
    cleared the candle's high by at least ``impulse_atr_mult`` * atr[i] (close[i] > high[j] and
    close[i] - high[j] >= mult * atr[i]). Bearish mirrors it (last bullish candle, bars after it
    not bullish, low[j] - close[i] >= mult * atr[i]). Each candle j is reported at most once, on the
    first bar that qualifies. Doji (close == open) have no colour: they are never the block and
    never break the impulse. A bar qualifying both ways (only possible for a doji) reports 0.
    """
    o, h = as_series("open", open_), as_series("high", high)
    lo, c = as_series("low", low), as_series("close", close)
    a = as_series("atr", atr, allow_nan=True)
    n = same_length(open=o, high=h, low=lo, close=c, atr=a)
    mult = check_multiple("impulse_atr_mult", impulse_atr_mult)
    max_bars = check_period("max_bars", max_bars)
    direction = np.zeros(n, dtype=np.int8)
    top, bottom = np.full(n, np.nan), np.full(n, np.nan)
    os_, hs, ls, cs, atrs = o.tolist(), h.tolist(), lo.tolist(), c.tolist(), a.tolist()
    last_bear = last_bull = -1
    used_bear = used_bull = -1
    for i in range(n):
        ci, need = cs[i], mult * atrs[i]
        j_bull = last_bear
        bull = (
            j_bull >= 0 and j_bull != used_bear and i - j_bull <= max_bars and ci >= os_[i]
            and ci > hs[j_bull] and ci - hs[j_bull] >= need
        )  # fmt: skip
        j_bear = last_bull
        bear = (
            j_bear >= 0 and j_bear != used_bull and i - j_bear <= max_bars and ci <= os_[i]
            and ci < ls[j_bear] and ls[j_bear] - ci >= need
        )  # fmt: skip
        if bull != bear:
            j = j_bull if bull else j_bear
            direction[i] = 1 if bull else -1
            top[i], bottom[i] = hs[j], ls[j]
            if bull:
                used_bear = j
            else:
                used_bull = j
        if ci < os_[i]:
            last_bear = i
        elif ci > os_[i]:
            last_bull = i
    return ZoneSeries(direction, top, bottom)


def pivots(high: npt.ArrayLike, low: npt.ArrayLike, left: int = 3, right: int = 3) -> tuple[BoolArray, BoolArray]:
    """(pivot_high, pivot_low) flags at the pivot bar p itself, known only at bar p + ``right``.

    Pivot high: high[p] > every high of the ``left`` bars before it and >= every high of the
    ``right`` bars after it (so a flat top counts once, at its first bar). Pivot low mirrors it.
    """
    h, lo = as_series("high", high), as_series("low", low)
    n = same_length(high=h, low=lo)
    left, right = check_period("left", left), check_period("right", right)
    is_high, is_low = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    size = left + right + 1
    if n >= size:
        hw, lw = sliding_window_view(h, size), sliding_window_view(lo, size)
        hp, lp = hw[:, left], lw[:, left]
        is_high[left : n - right] = (hp > hw[:, :left].max(axis=1)) & (hp >= hw[:, left + 1 :].max(axis=1))
        is_low[left : n - right] = (lp < lw[:, :left].min(axis=1)) & (lp <= lw[:, left + 1 :].min(axis=1))
    return is_high, is_low


def divergences(
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    oscillator: npt.ArrayLike,
    *,
    left: int = 3,
    right: int = 3,
    lookback: int = 60,
) -> Int8Array:
    """Regular divergences between price pivots and an oscillator, reported on the bar t = p +
    ``right`` that confirms pivot p (see ``pivots``).

    Bullish (+1): p is a pivot low, q the previous pivot low, p - q <= ``lookback``, price made a
    lower low (low[p] < low[q]) and the oscillator did not (osc[p] >= osc[q]). Bearish (-1): pivot
    highs, high[p] > high[q] and osc[p] <= osc[q]. Oscillator values are read at the pivot bars;
    a NaN there (warm-up) means no divergence. Both on one bar is ambiguous and reports 0.
    """
    osc = as_series("oscillator", oscillator, allow_nan=True)
    h, lo = as_series("high", high), as_series("low", low)
    n = same_length(high=h, low=lo, oscillator=osc)
    lookback = check_period("lookback", lookback)
    is_high, is_low = pivots(h, lo, left, right)
    bull, bear = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    for flags, price, out, sign in ((is_low, lo, bull, -1.0), (is_high, h, bear, 1.0)):
        p = np.flatnonzero(flags)
        if len(p) < 2:
            continue
        cur, prev = p[1:], p[:-1]
        # sign turns "lower low, osc not lower" and "higher high, osc not higher" into one test
        hit = (
            (cur - prev <= lookback)
            & (sign * (price[cur] - price[prev]) > 0.0)
            & (sign * (osc[cur] - osc[prev]) <= 0.0)
        )
        out[cur[hit] + right] = True
    return _direction(bull, bear)


def rsi_divergences(
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    close: npt.ArrayLike,
    *,
    period: int = 14,
    left: int = 3,
    right: int = 3,
    lookback: int = 60,
) -> Int8Array:
    """``divergences`` against Wilder's RSI(``period``) of ``close``."""
    return divergences(high, low, rsi(close, period), left=left, right=right, lookback=lookback)


def macd_divergences(
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    close: npt.ArrayLike,
    *,
    fast: int = 12,
    slow: int = 26,
    signal: int = 9,
    left: int = 3,
    right: int = 3,
    lookback: int = 60,
) -> Int8Array:
    """``divergences`` against the MACD line (fast EMA - slow EMA, not the histogram)."""
    line = macd(close, fast, slow, signal).macd
    return divergences(high, low, line, left=left, right=right, lookback=lookback)


def near_round_number(price: npt.ArrayLike, step: float, buffer_pct: float = 0.0012) -> BoolArray:
    """Whether each price is within ``buffer_pct`` PERCENT of price of a multiple of ``step``:
    |price - step * round(price / step)| <= price * buffer_pct / 100.

    The buffer is a percentage, so the default 0.0012 means 0.0012 % (gold at 3,300: +/-0.040 of a
    multiple of 5; bitcoin at 115,000: +/-1.38 of a multiple of 100). Read as a fraction (0.12 %)
    it would exceed half the step at these prices and flag every bar.
    """
    p = as_series("price", price)
    step_value = check_multiple("step", step)
    if step_value == 0.0:
        raise ValueError("step must be > 0, got 0")
    buffer = check_multiple("buffer_pct", buffer_pct)
    distance = np.abs(p - step_value * np.round(p / step_value))
    result: BoolArray = distance <= np.abs(p) * (buffer / 100.0)
    return result
