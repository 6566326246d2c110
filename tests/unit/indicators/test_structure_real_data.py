"""Structure filters on the shipped history: the live detectors agree with the batch functions on
every bar (exactly: same comparisons on the same floats), and each filter actually fires, both
ways, so the agreement is not vacuous."""

from __future__ import annotations

import numpy as np
import pytest

from shared.indicators import (
    BITCOIN_ROUND_STEP,
    GOLD_ROUND_STEP,
    DivergenceDetector,
    FvgDetector,
    OrderBlockDetector,
    SweepDetector,
    Zone,
    atr,
    divergences,
    fair_value_gaps,
    is_near_round_number,
    liquidity_sweeps,
    macd,
    near_round_number,
    order_blocks,
    rsi,
)
from shared.indicators.structure import SweepSeries, ZoneSeries
from tests.unit.indicators.conftest import Bars
from tests.unit.indicators.helpers import FloatArray

MIN_EACH_WAY = 20


@pytest.fixture(scope="module")
def atr14(bars: Bars) -> FloatArray:
    return atr(bars.high, bars.low, bars.close, 14)


def assert_zones_agree(batch: ZoneSeries, live: list[Zone | None]) -> None:
    direction = np.array([z.direction if z else 0 for z in live], dtype=np.int8)
    np.testing.assert_array_equal(direction, batch.direction)
    hit = direction != 0
    np.testing.assert_array_equal([z.top for z in live if z], batch.top[hit])
    np.testing.assert_array_equal([z.bottom for z in live if z], batch.bottom[hit])
    assert np.isnan(batch.top[~hit]).all() and np.isnan(batch.bottom[~hit]).all()
    assert (direction == 1).sum() >= MIN_EACH_WAY and (direction == -1).sum() >= MIN_EACH_WAY


def test_fair_value_gaps_live_equals_batch(bars: Bars, atr14: FloatArray) -> None:
    batch = fair_value_gaps(bars.high, bars.low, atr14, 0.35)
    detector = FvgDetector(0.35)
    live = [
        detector.update(h, lo, a)
        for h, lo, a in zip(bars.high.tolist(), bars.low.tolist(), atr14.tolist(), strict=True)
    ]
    assert_zones_agree(batch, live)
    bull = batch.direction == 1
    assert (batch.top[bull] - batch.bottom[bull] >= 0.35 * atr14[bull]).all()


def test_order_blocks_live_equals_batch(bars: Bars, atr14: FloatArray) -> None:
    batch = order_blocks(bars.open, bars.high, bars.low, bars.close, atr14, impulse_atr_mult=1.5, max_bars=3)
    detector = OrderBlockDetector(1.5, 3)
    live = [detector.update(*bar[:4], a) for bar, a in zip(bars.rows(), atr14.tolist(), strict=True)]
    assert_zones_agree(batch, live)


def test_liquidity_sweeps_live_equals_batch(bars: Bars, atr14: FloatArray) -> None:
    batch: SweepSeries = liquidity_sweeps(bars.high, bars.low, bars.close, atr14, lookback=20, min_atr_mult=0.15)
    detector = SweepDetector(20, 0.15)
    live = [detector.update(*bar[1:4], a) for bar, a in zip(bars.rows(), atr14.tolist(), strict=True)]
    direction = np.array([s.direction if s else 0 for s in live], dtype=np.int8)
    np.testing.assert_array_equal(direction, batch.direction)
    np.testing.assert_array_equal([s.level for s in live if s], batch.level[direction != 0])
    assert (direction == 1).sum() >= MIN_EACH_WAY and (direction == -1).sum() >= MIN_EACH_WAY


@pytest.mark.parametrize("oscillator", ["rsi", "macd"])
def test_divergences_live_equal_batch(bars: Bars, oscillator: str) -> None:
    osc = rsi(bars.close, 14) if oscillator == "rsi" else macd(bars.close).macd
    batch = divergences(bars.high, bars.low, osc, left=3, right=3, lookback=60)
    detector = DivergenceDetector(3, 3, 60)
    live = [
        detector.update(h, lo, o) for h, lo, o in zip(bars.high.tolist(), bars.low.tolist(), osc.tolist(), strict=True)
    ]
    np.testing.assert_array_equal(np.array(live, dtype=np.int8), batch)
    assert (batch == 1).sum() >= MIN_EACH_WAY and (batch == -1).sum() >= MIN_EACH_WAY


def test_round_numbers_flag_a_few_percent_of_bars(bars: Bars) -> None:
    step = GOLD_ROUND_STEP if bars.symbol == "XAUUSDm" else BITCOIN_ROUND_STEP
    near = near_round_number(bars.close, step)
    assert 0.005 < near.mean() < 0.10
    assert [is_near_round_number(p, step) for p in bars.close[:3000].tolist()] == near[:3000].tolist()
