"""The batch indicators against TA-Lib on the shipped gold and bitcoin M1 history.

Tolerance: RELATIVE 1e-9 (|ours - talib| <= 1e-9 * |talib|) on every bar after the warm-up, and
the warm-up itself must be identical (NaN on exactly the same bars). Nothing in these series sits
at exactly zero where a relative test would be unfair: MACD and its histogram cross zero, but we
reproduce TA-Lib's arithmetic, so they agree to the last bits even there.

Deliberate differences from TA-Lib, each with its own test below:
- RSI when there was no price change at all: 50.0 (neutral) where TA-Lib gives 0.0.
- TA-Lib's +DI/-DI for period 1 are fractions, not percentages (a TA-Lib quirk); ours are always
  percentages.
Bollinger has the same definition as TA-Lib (population std); we only compute the width as
2 * nbdev * std / middle rather than by subtracting the bands, which is the same number with more
digits kept.
"""

from __future__ import annotations

import statistics

import numpy as np
import pytest
import talib

from shared.indicators import BollingerState, adx, atr, bollinger, ema, macd, rsi
from tests.unit.indicators.conftest import ROWS, Bars, load_bars
from tests.unit.indicators.helpers import assert_close

REL = 1e-9


def test_shipped_files_load_whole(bars: Bars) -> None:
    assert len(bars) == ROWS[bars.symbol]
    assert np.isfinite(bars.close).all()
    if bars.symbol == "XAUUSDm":
        assert np.isnan(bars.volume).all()  # the gold file has no volume
    else:
        assert (bars.volume >= 0.0).all()


@pytest.mark.parametrize("period", [9, 21, 50, 200])
def test_ema_matches_talib(bars: Bars, period: int) -> None:
    assert_close(f"EMA{period}", ema(bars.close, period), talib.EMA(bars.close, period), rel=REL)


def test_atr_matches_talib(bars: Bars) -> None:
    expected = talib.ATR(bars.high, bars.low, bars.close, 14)
    assert_close("ATR", atr(bars.high, bars.low, bars.close, 14), expected, rel=REL)


def test_rsi_matches_talib(bars: Bars) -> None:
    assert_close("RSI", rsi(bars.close, 14), talib.RSI(bars.close, 14), rel=REL)


def test_adx_and_di_match_talib(bars: Bars) -> None:
    ours = adx(bars.high, bars.low, bars.close, 14)
    args = (bars.high, bars.low, bars.close, 14)
    assert_close("ADX", ours.adx, talib.ADX(*args), rel=REL)
    assert_close("PLUS_DI", ours.plus_di, talib.PLUS_DI(*args), rel=REL)
    assert_close("MINUS_DI", ours.minus_di, talib.MINUS_DI(*args), rel=REL)


def test_macd_matches_talib_including_its_seeding(bars: Bars) -> None:
    ours = macd(bars.close, 12, 26, 9)
    line, signal, hist = talib.MACD(bars.close, 12, 26, 9)
    assert_close("MACD", ours.macd, line, rel=REL)
    assert_close("MACD signal", ours.signal, signal, rel=REL)
    assert_close("MACD hist", ours.hist, hist, rel=REL)


def test_macd_fast_ema_is_seeded_at_the_slow_seed_bar() -> None:
    """What TA-Lib's MACD does and a plain EMA(12) - EMA(26) does not: the fast EMA starts at bar
    slow-1 from the SMA of the 12 closes ending there, so the two differ (decaying) at first."""
    close = load_bars("XAUUSDm").close[:400]
    naive = ema(close, 12) - ema(close, 26)
    ours = macd(close).macd
    assert abs(ours[33] - naive[33]) > 1e-6
    assert_close("MACD vs naive late", ours[300:], naive[300:], abs_=1e-9)


def test_bollinger_matches_talib(bars: Bars) -> None:
    ours = bollinger(bars.close, 20, 2.0)
    upper, middle, lower = talib.BBANDS(bars.close, 20, 2.0, 2.0)  # matype SMA
    assert_close("BB upper", ours.upper, upper, rel=REL)
    assert_close("BB middle", ours.middle, middle, rel=REL)
    assert_close("BB lower", ours.lower, lower, rel=REL)
    assert_close("BB width", ours.width, (upper - lower) / middle, rel=REL)
    assert_close("BB std", (ours.upper - ours.middle) / 2.0, talib.STDDEV(bars.close, 20, 1.0), rel=REL)


@pytest.mark.parametrize("period", [1, 2, 7, 30])
def test_other_periods_match_talib(period: int) -> None:
    """Seeds depend on the period; a second set of periods catches off-by-one seeding."""
    b = load_bars("BTCUSDm")
    h, lo, c = b.high[:6000], b.low[:6000], b.close[:6000]
    if period >= 2:  # TA-Lib refuses period 1 for these
        assert_close("EMA", ema(c, period), talib.EMA(c, period), rel=REL)
        assert_close("RSI", rsi(c, period), talib.RSI(c, period), rel=REL)
        assert_close("ADX", adx(h, lo, c, period).adx, talib.ADX(h, lo, c, period), rel=REL)
        assert_close("BB", bollinger(c, period, 2.5).upper, talib.BBANDS(c, period, 2.5, 2.5)[0], rel=REL)
    assert_close("ATR", atr(h, lo, c, period), talib.ATR(h, lo, c, period), rel=REL)
    # TA-Lib's DI for period 1 is a fraction (it skips the x100 there); ours is a percentage throughout
    di_scale = 100.0 if period == 1 else 1.0
    plus_di = talib.PLUS_DI(h, lo, c, period) * di_scale
    assert_close("+DI", adx(h, lo, c, period).plus_di, plus_di, rel=REL)
    fast, slow = period + 1, period + 10  # TA-Lib needs fast >= 2
    assert_close("MACD", macd(c, fast, slow, period).hist, talib.MACD(c, fast, slow, period)[2], rel=REL)


def test_rsi_of_a_flat_market_is_neutral_not_zero() -> None:
    """Deliberate difference: no movement at all gives 50 (neutral); TA-Lib says 0 (oversold)."""
    close = np.full(40, 3300.0)
    assert np.all(rsi(close, 14)[14:] == 50.0)
    assert np.all(talib.RSI(close, 14)[14:] == 0.0)
    one_move = np.r_[close, 3301.0]  # as soon as anything moves, both agree again
    assert rsi(one_move, 14)[-1] == talib.RSI(one_move, 14)[-1] == 100.0


def test_bollinger_std_is_exact_at_a_high_price_with_a_tiny_spread() -> None:
    """Bitcoin at 1e5 moving by 1e-4: E[x^2] - E[x]^2 from raw running sums would keep no digits.
    Both forms must give the stdlib's exact pstdev (std recovered from the width)."""
    rng = np.random.default_rng(7)
    close = 100_000.0 + np.cumsum(rng.choice([-1e-4, 1e-4], size=3000))
    exact = np.array([statistics.pstdev(close[i : i + 20].tolist()) for i in range(len(close) - 19)])
    batch = bollinger(close, 20, 1.0)
    np.testing.assert_allclose((batch.width * batch.middle / 2.0)[19:], exact, rtol=1e-9)
    state = BollingerState(20, 1.0)
    live = np.array([state.update(x) for x in close.tolist()])
    np.testing.assert_allclose((live[:, 3] * live[:, 1] / 2.0)[19:], exact, rtol=1e-9)
