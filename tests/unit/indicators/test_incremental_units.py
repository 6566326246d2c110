"""Behaviour of the states and batch functions on tiny hand-computed inputs, degenerate input
(flat prices, missing or constant volume) and bad input (clear errors)."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from shared.indicators import (
    AdxState,
    AtrState,
    BollingerState,
    EmaState,
    IndicatorConfig,
    IndicatorSet,
    MacdState,
    RsiState,
    ZVolumeState,
    adx,
    atr,
    bollinger,
    ema,
    fair_value_gaps,
    rsi,
    zvolume,
)

NAN = math.nan


def test_ema_seeds_with_the_sma_then_smooths() -> None:
    state = EmaState(3)
    warming = [(state.update(x), state.ready) for x in (1.0, 2.0)]
    assert all(math.isnan(value) and not ready for value, ready in warming)
    assert state.update(3.0) == 2.0  # SMA of 1, 2, 3
    assert state.ready
    assert state.update(4.0) == 3.0  # 2 + (4 - 2) * 2 / (3 + 1)
    np.testing.assert_array_equal(ema([1.0, 2.0, 3.0, 4.0], 3), [NAN, NAN, 2.0, 3.0])


def test_atr_seeds_with_the_mean_true_range_then_wilder() -> None:
    high, low, close = [11.0, 12.0, 12.5, 13.0], [9.0, 10.0, 11.5, 11.0], [10.0, 11.5, 12.0, 11.5]
    # true ranges from bar 1: max(2, 2, 0) = 2; max(1, 1, 0) = 1; max(2, 1, 1) = 2
    expected = [NAN, NAN, 1.5, (1.5 * 1 + 2.0) / 2]
    np.testing.assert_array_equal(atr(high, low, close, 2), expected)
    state = AtrState(2)
    assert [state.update(*bar) for bar in zip(high, low, close, strict=True)][2:] == expected[2:]


def test_rsi_extremes_and_flat_market() -> None:
    assert rsi(np.arange(20.0), 14)[-1] == 100.0
    assert rsi(np.arange(20.0)[::-1].copy(), 14)[-1] == 0.0
    assert (rsi(np.full(30, 7.0), 14)[14:] == 50.0).all()
    state = RsiState(14)
    assert [state.update(7.0) for _ in range(30)][14:] == [50.0] * 16


def test_adx_of_a_steady_uptrend_is_100_and_of_a_flat_market_0() -> None:
    up = np.arange(40.0)
    trend = adx(up + 1.0, up, up + 0.5, 5)
    assert trend.plus_di[-1] > 0.0 and trend.minus_di[-1] == 0.0 and trend.adx[-1] == 100.0
    flat = adx(np.full(40, 2.0), np.full(40, 1.0), np.full(40, 1.5), 5)
    assert (flat.adx[9:] == 0.0).all() and (flat.plus_di[5:] == 0.0).all()
    state = AdxState(5)
    assert [state.update(h, lo, c) for h, lo, c in zip(up + 1.0, up, up + 0.5, strict=True)][-1][0] == 100.0


def test_bollinger_of_constant_prices_has_zero_width() -> None:
    bands = bollinger(np.full(30, 3300.0), 20, 2.0)
    assert (bands.upper[19:] == 3300.0).all() and (bands.width[19:] == 0.0).all()
    state = BollingerState(20, 2.0)
    assert [state.update(3300.0) for _ in range(30)][-1] == (3300.0, 3300.0, 3300.0, 0.0)


def test_bollinger_stays_exact_in_a_quiet_window_after_a_big_move() -> None:
    """The running sums once held terms ~1e10 times the final variance (a 500 swing, then 1e-3
    ripples); the swing leaves the window between two ring wraps (bars 59 and 79). Both forms must
    still give the exact population std (recovered from the width)."""
    close = [100_000.0 + 500.0 * (i % 2) for i in range(45)] + [100_250.0 + 1e-3 * (i % 3) for i in range(55)]
    state = BollingerState(20, 1.0)
    live = [state.update(x) for x in close]
    batch = bollinger(close, 20, 1.0)
    for end in (64, 65, 70, 78, 99):
        exact = statistics.pstdev(close[end - 19 : end + 1])
        assert live[end][3] * live[end][1] / 2.0 == pytest.approx(exact, rel=1e-9)
        assert batch.width[end] * batch.middle[end] / 2.0 == pytest.approx(exact, rel=1e-9)


def test_zvolume_hand_value() -> None:
    # window [1, 1, 1, 5]: mean 2, population std sqrt(3), z = 3 / sqrt(3)
    assert zvolume([1.0, 1.0, 1.0, 5.0], 4)[-1] == pytest.approx(math.sqrt(3.0), rel=1e-12)
    state = ZVolumeState(4)
    assert [state.update(v) for v in (1.0, 1.0, 1.0, 5.0)][-1] == pytest.approx(math.sqrt(3.0), rel=1e-12)


@pytest.mark.parametrize(
    "volume",
    [[0.0] * 100, [NAN] * 100, [37.0] * 100, [math.inf] * 100, [1.0] * 50 + [2.0] * 50, [0.1] * 100],
    ids=["zero", "nan", "constant", "inf", "step-then-constant", "inexact-constant"],
)
def test_zvolume_degrades_to_zero_without_variance(volume: list[float]) -> None:
    z = zvolume(volume, 20)
    assert np.isnan(z[:19]).all() and np.isfinite(z[19:]).all()
    assert (z[-30:] == 0.0).all()
    state = ZVolumeState(20)
    live = [state.update(v) for v in volume]
    assert live[-30:] == [0.0] * 30


def test_zvolume_counts_missing_volume_as_zero() -> None:
    with_gap = [5.0, 7.0, NAN, 6.0]
    np.testing.assert_array_equal(zvolume(with_gap, 4), zvolume([5.0, 7.0, 0.0, 6.0], 4))


def test_negative_volume_is_an_error() -> None:
    with pytest.raises(ValueError, match="volume must be >= 0"):
        zvolume([1.0, -2.0, 3.0], 2)
    with pytest.raises(ValueError, match="volume must be >= 0"):
        ZVolumeState(2).update(-1.0)


@pytest.mark.parametrize(
    "make",
    [
        lambda: EmaState(0),
        lambda: AtrState(-1),
        lambda: RsiState(0),
        lambda: AdxState(0),
        lambda: BollingerState(0),
        lambda: ZVolumeState(0),
        lambda: MacdState(12, 12, 9),
        lambda: BollingerState(20, -1.0),
        lambda: ema([1.0, 2.0], 0),
        lambda: EmaState(2.5),  # type: ignore[arg-type]
    ],
)
def test_bad_parameters_are_refused(make: object) -> None:
    with pytest.raises(ValueError, match=r"period|fast|nbdev|lookback"):
        make()  # type: ignore[operator]


def test_bad_batch_input_names_the_problem() -> None:
    with pytest.raises(ValueError, match="close must be finite; index 2"):
        rsi([1.0, 2.0, NAN, 3.0], 2)
    with pytest.raises(ValueError, match="one-dimensional"):
        ema(np.ones((3, 3)), 2)
    with pytest.raises(ValueError, match="same length"):
        atr([1.0, 2.0], [0.5], [1.0, 1.5], 1)
    with pytest.raises(ValueError, match="atr must be finite"):
        fair_value_gaps([1.0], [0.5], [math.inf])


def test_config_errors_name_the_key() -> None:
    with pytest.raises(ValueError, match="ema_short"):
        IndicatorConfig(ema_short=0)
    with pytest.raises(ValueError, match="ema_short < ema_mid"):
        IndicatorConfig(ema_long=300)
    with pytest.raises(ValueError, match="macd_fast must be < macd_slow"):
        IndicatorConfig(macd_fast=30)
    assert IndicatorConfig().warmup_bars == 200


@pytest.mark.parametrize(
    "bar",
    [
        (3300.0, 3301.0, 3299.0, NAN, 1.0),
        (3300.0, math.inf, 3299.0, 3300.0, 1.0),
        (3300.0, 3299.0, 3301.0, 3300.0, 1.0),  # high < low
        (3302.0, 3301.0, 3299.0, 3300.0, 1.0),  # open above high
        (0.0, 0.0, 0.0, 0.0, 1.0),
        (3300.0, 3301.0, 3299.0, 3300.0, -1.0),
    ],
)
def test_indicator_set_refuses_a_bad_bar_and_stays_unchanged(bar: tuple[float, ...]) -> None:
    indicators = IndicatorSet()
    indicators.update(3300.0, 3301.0, 3299.0, 3300.5, 10.0)
    before = indicators.snapshot()
    with pytest.raises(ValueError, match="bad bar after 1 bars"):
        indicators.update(*bar)
    assert indicators.bars == 1
    assert repr(indicators.snapshot()) == repr(before)


def test_indicator_set_ready_after_warmup_bars() -> None:
    cfg = IndicatorConfig(ema_long=25, ema_very_long=30, zvolume_lookback=10)
    assert cfg.warmup_bars == 34  # MACD: slow + signal - 1
    indicators = IndicatorSet(cfg)
    for i in range(34):
        assert not indicators.ready
        price = 3300.0 + math.sin(i)
        indicators.update(price, price + 1.0, price - 1.0, price, float(i % 7))
    snapshot = indicators.snapshot()
    assert indicators.ready and snapshot.ready
    assert all(math.isfinite(v) for v in (snapshot.macd_hist, snapshot.adx, snapshot.ema_very_long))
    assert indicators.atr.value == snapshot.atr and indicators.macd.ready
