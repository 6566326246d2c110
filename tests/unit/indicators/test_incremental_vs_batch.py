"""The incremental states give the batch functions' numbers, bar for bar, on the shipped history.

Tolerance: RELATIVE 1e-9 for every price-scaled or 0..100 series (EMA, ATR, RSI, ADX/DI, MACD,
Bollinger bands and width); ABSOLUTE 1e-9 for Z-volume, a dimensionless score around 0 where a
relative test means nothing. The warm-up must be identical: NaN on exactly the same bars, and each
state's ``ready`` turns true on the first bar with a value.
In practice the recursive indicators agree to the last bit (same arithmetic in the same order) and
the windowed ones to ~1e-12.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import FrozenInstanceError, fields
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.indicators import (
    AdxState,
    AtrState,
    BollingerState,
    EmaState,
    IndicatorConfig,
    IndicatorSet,
    IndicatorSnapshot,
    MacdState,
    RsiState,
    ZVolumeState,
    adx,
    atr,
    bollinger,
    ema,
    macd,
    rsi,
    zvolume,
)
from tests.unit.indicators.conftest import Bars, load_bars
from tests.unit.indicators.helpers import FloatArray, assert_close

REL = 1e-9
ABS_Z = 1e-9


def batch_reference(b: Bars, cfg: IndicatorConfig) -> dict[str, FloatArray]:
    """Every snapshot field computed by the batch functions."""
    a = adx(b.high, b.low, b.close, cfg.adx_period)
    m = macd(b.close, cfg.macd_fast, cfg.macd_slow, cfg.macd_signal)
    bb = bollinger(b.close, cfg.bb_period, cfg.bb_nbdev)
    return {
        "ema_short": ema(b.close, cfg.ema_short),
        "ema_mid": ema(b.close, cfg.ema_mid),
        "ema_long": ema(b.close, cfg.ema_long),
        "ema_very_long": ema(b.close, cfg.ema_very_long),
        "atr": atr(b.high, b.low, b.close, cfg.atr_period),
        "rsi": rsi(b.close, cfg.rsi_period),
        "adx": a.adx,
        "plus_di": a.plus_di,
        "minus_di": a.minus_di,
        "macd": m.macd,
        "macd_signal": m.signal,
        "macd_hist": m.hist,
        "bb_upper": bb.upper,
        "bb_middle": bb.middle,
        "bb_lower": bb.lower,
        "bb_width": bb.width,
        "zvolume": zvolume(b.volume, cfg.zvolume_lookback),
    }


def test_indicator_set_matches_batch_on_shipped_data(bars: Bars) -> None:
    cfg = IndicatorConfig()
    indicators = IndicatorSet(cfg)
    snapshots: list[IndicatorSnapshot] = []
    for bar in bars.rows():
        indicators.update(*bar)
        snapshots.append(indicators.snapshot())
    reference = batch_reference(bars, cfg)
    assert set(reference) == {f.name for f in fields(IndicatorSnapshot)} - {"bars", "ready"}
    for name, expected in reference.items():
        actual = np.array([getattr(s, name) for s in snapshots])
        tolerance = {"abs_": ABS_Z} if name == "zvolume" else {"rel": REL}
        assert_close(f"{bars.symbol} {name}", actual, expected, **tolerance)
    ready = np.array([s.ready for s in snapshots])
    assert not ready[: cfg.warmup_bars - 1].any() and ready[cfg.warmup_bars - 1 :].all()
    assert all(np.isfinite(getattr(snapshots[cfg.warmup_bars - 1], n)) for n in reference)
    assert snapshots[-1].bars == len(bars)


def test_zvolume_on_gold_without_volume_is_zero_after_warmup() -> None:
    gold = load_bars("XAUUSDm")
    z = zvolume(gold.volume, 80)
    assert np.isnan(z[:79]).all() and (z[79:] == 0.0).all()
    state = ZVolumeState(80)
    live = [state.update(v) for v in gold.volume[:500].tolist()]
    assert live[79:] == [0.0] * (500 - 79)


def run_state(state: Any, inputs: str, b: Bars) -> FloatArray:
    """Feed ``state`` the bars' close, (high, low, close) or volume; one row of outputs per bar,
    with the ``ready`` flag (1.0 / 0.0) as the last column."""
    rows = []
    for bar in b.rows():
        if inputs == "close":
            result = state.update(bar[3])
        elif inputs == "hlc":
            result = state.update(bar[1], bar[2], bar[3])
        else:
            result = state.update(bar[4])
        values = result if isinstance(result, tuple) else (result,)
        rows.append((*values, float(state.ready)))
    return np.array(rows)


# name -> (state factory, inputs, batch outputs); non-default periods, the degenerate 1 included
CASES: dict[str, tuple[Callable[[], Any], str, Callable[[Bars], list[FloatArray]]]] = {
    "ema1": (lambda: EmaState(1), "close", lambda b: [ema(b.close, 1)]),
    "ema7": (lambda: EmaState(7), "close", lambda b: [ema(b.close, 7)]),
    "atr1": (lambda: AtrState(1), "hlc", lambda b: [atr(b.high, b.low, b.close, 1)]),
    "atr5": (lambda: AtrState(5), "hlc", lambda b: [atr(b.high, b.low, b.close, 5)]),
    "rsi1": (lambda: RsiState(1), "close", lambda b: [rsi(b.close, 1)]),
    "rsi5": (lambda: RsiState(5), "close", lambda b: [rsi(b.close, 5)]),
    "adx1": (lambda: AdxState(1), "hlc", lambda b: list(adx(b.high, b.low, b.close, 1))),
    "adx5": (lambda: AdxState(5), "hlc", lambda b: list(adx(b.high, b.low, b.close, 5))),
    "macd": (lambda: MacdState(3, 4, 1), "close", lambda b: list(macd(b.close, 3, 4, 1))),
    "bb1": (lambda: BollingerState(1, 1.5), "close", lambda b: list(bollinger(b.close, 1, 1.5))),
    "bb7": (lambda: BollingerState(7, 3.0), "close", lambda b: list(bollinger(b.close, 7, 3.0))),
    "zv1": (lambda: ZVolumeState(1), "volume", lambda b: [zvolume(b.volume, 1)]),
    "zv9": (lambda: ZVolumeState(9), "volume", lambda b: [zvolume(b.volume, 9)]),
}


@pytest.mark.parametrize("name", CASES)
def test_single_states_match_batch_with_other_periods(name: str) -> None:
    make, inputs, reference = CASES[name]
    full = load_bars("BTCUSDm")
    b = Bars("BTCUSDm", *(getattr(full, c)[:5000] for c in ("open", "high", "low", "close", "volume")))
    rows = run_state(make(), inputs, b)
    expected = reference(b)
    for k, series in enumerate(expected):
        tolerance = {"abs_": ABS_Z} if name.startswith("zv") else {"rel": REL}
        assert_close(f"{name}[{k}]", rows[:, k], series, **tolerance)
    ready = rows[:, -1].astype(bool)
    first_value = int(np.argmax(~np.isnan(expected[0])))
    assert not ready[:first_value].any() and ready[first_value:].all()


@st.composite
def random_bars(draw: st.DrawFn) -> Bars:
    """A random walk of 40..300 bars with wicks, flat stretches and missing volume included."""
    n = draw(st.integers(40, 300))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, 1.0, n) * rng.choice([0.0, 1.0], n, p=[0.2, 0.8])
    close = 3300.0 + np.cumsum(steps)
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) + rng.exponential(0.3, n) * rng.choice([0.0, 1.0], n)
    low = np.minimum(open_, close) - rng.exponential(0.3, n) * rng.choice([0.0, 1.0], n)
    volume = np.where(rng.random(n) < 0.1, np.nan, rng.integers(0, 50, n).astype(np.float64))
    return Bars("random", open_, high, low, close, volume)


@settings(max_examples=40, deadline=None)
@given(b=random_bars())
def test_indicator_set_matches_batch_on_random_walks(b: Bars) -> None:
    cfg = IndicatorConfig(ema_long=25, ema_very_long=30, zvolume_lookback=12, macd_fast=5, macd_slow=11, macd_signal=4)
    indicators = IndicatorSet(cfg)
    snapshots = []
    for bar in b.rows():
        indicators.update(*bar)
        snapshots.append(indicators.snapshot())
    for name, expected in batch_reference(b, cfg).items():
        actual = np.array([getattr(s, name) for s in snapshots])
        tolerance = {"abs_": ABS_Z} if name == "zvolume" else {"rel": REL}
        assert_close(name, actual, expected, **tolerance)


def test_warm_up_equals_bar_by_bar_updates() -> None:
    gold = load_bars("XAUUSDm")
    cols = [getattr(gold, c)[:600] for c in ("open", "high", "low", "close", "volume")]
    warmed, stepped = IndicatorSet(), IndicatorSet()
    warmed.warm_up(*cols)
    for bar in zip(*(c.tolist() for c in cols), strict=True):
        stepped.update(*bar)
    assert warmed.snapshot() == stepped.snapshot()  # NaN-free after 600 bars, so == is exact
    assert warmed.ready and warmed.bars == 600


def test_snapshot_is_frozen() -> None:
    snapshot = IndicatorSet().snapshot()
    with pytest.raises(FrozenInstanceError):
        snapshot.rsi = 50.0  # type: ignore[misc]
    assert snapshot.bars == 0 and not snapshot.ready and np.isnan(snapshot.rsi)
