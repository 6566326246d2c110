"""Structure filters on hand-built bars whose answer is known, positive and negative cases.

Each case runs through the batch function AND its live detector, which must agree.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from shared.indicators import (
    BITCOIN_ROUND_STEP,
    GOLD_ROUND_STEP,
    DivergenceDetector,
    FvgDetector,
    OrderBlockDetector,
    Sweep,
    SweepDetector,
    Zone,
    divergences,
    fair_value_gaps,
    is_near_round_number,
    liquidity_sweeps,
    macd,
    macd_divergences,
    near_round_number,
    order_blocks,
    pivots,
    rsi,
    rsi_divergences,
)

NAN = math.nan


def fvg_both(high: list[float], low: list[float], atr: list[float], mult: float = 0.35) -> list[Zone | None]:
    """Batch result as Zones, after checking the live detector gives the same."""
    batch = fair_value_gaps(high, low, atr, mult)
    detector = FvgDetector(mult)
    live = [detector.update(h, lo, a) for h, lo, a in zip(high, low, atr, strict=True)]
    as_zones = [
        Zone(int(d), float(t), float(b)) if d else None
        for d, t, b in zip(batch.direction, batch.top, batch.bottom, strict=True)
    ]
    assert live == as_zones
    return live


class TestFairValueGap:
    def test_bullish_gap_reported_on_third_bar_with_its_zone(self) -> None:
        # low[2] = 11 > high[0] = 10: gap 1.0 >= 0.35 * 2.0
        result = fvg_both([10.0, 12.0, 13.0], [9.0, 10.0, 11.0], [2.0, 2.0, 2.0])
        assert result == [None, None, Zone(1, top=11.0, bottom=10.0)]

    def test_bearish_gap(self) -> None:
        result = fvg_both([13.0, 12.0, 10.0], [11.0, 9.5, 9.0], [2.0, 2.0, 2.0])
        assert result == [None, None, Zone(-1, top=11.0, bottom=10.0)]

    def test_gap_smaller_than_the_atr_multiple_is_ignored(self) -> None:
        # gap 1.0 < 0.35 * 3.0 = 1.05
        assert fvg_both([10.0, 12.0, 13.0], [9.0, 10.0, 11.0], [3.0, 3.0, 3.0]) == [None] * 3
        # exactly at the threshold counts: 1.0 >= 0.5 * 2.0
        assert fvg_both([10.0, 12.0, 13.0], [9.0, 10.0, 11.0], [2.0] * 3, mult=0.5)[2] == Zone(1, 11.0, 10.0)

    def test_touching_or_overlapping_bars_are_no_gap(self) -> None:
        assert fvg_both([10.0, 12.0, 13.0], [9.0, 10.0, 10.0], [1.0] * 3, mult=0.0) == [None] * 3
        assert fvg_both([10.0, 12.0, 13.0], [9.0, 10.0, 9.9], [1.0] * 3, mult=0.0) == [None] * 3

    def test_no_gap_while_atr_warms_up(self) -> None:
        assert fvg_both([10.0, 12.0, 13.0], [9.0, 10.0, 11.0], [NAN, NAN, NAN]) == [None] * 3

    def test_middle_bar_and_bar_four_use_the_right_pair(self) -> None:
        # bar 3 compares with bar 1 (high 12): low 12.5 > 12 -> gap 0.5 >= 0.35
        result = fvg_both([10.0, 12.0, 13.0, 14.0], [9.0, 10.0, 10.0, 12.5], [1.0] * 4)
        assert result == [None, None, None, Zone(1, 12.5, 12.0)]


def sweep_both(
    high: list[float], low: list[float], close: list[float], atr: list[float], lookback: int = 3
) -> list[Sweep | None]:
    batch = liquidity_sweeps(high, low, close, atr, lookback=lookback, min_atr_mult=0.15)
    detector = SweepDetector(lookback, 0.15)
    live = [detector.update(*bar) for bar in zip(high, low, close, atr, strict=True)]
    assert live == [Sweep(int(d), float(lv)) if d else None for d, lv in zip(*batch, strict=True)]
    return live


class TestLiquiditySweep:
    HIGH = (10.0, 11.0, 10.5)
    LOW = (9.0, 9.5, 9.2)
    CLOSE = (9.5, 10.5, 10.0)

    def test_wick_above_prior_high_closing_back_inside_is_bearish(self) -> None:
        result = sweep_both([*self.HIGH, 11.5], [*self.LOW, 10.0], [*self.CLOSE, 10.8], [1.0] * 4)
        assert result == [None, None, None, Sweep(-1, 11.0)]

    def test_wick_below_prior_low_closing_back_inside_is_bullish(self) -> None:
        result = sweep_both([*self.HIGH, 10.0], [*self.LOW, 8.7], [*self.CLOSE, 9.4], [1.0] * 4)
        assert result == [None, None, None, Sweep(1, 9.0)]

    def test_close_beyond_the_level_is_a_breakout_not_a_sweep(self) -> None:
        assert sweep_both([*self.HIGH, 11.5], [*self.LOW, 10.0], [*self.CLOSE, 11.2], [1.0] * 4)[3] is None

    def test_wick_shorter_than_the_atr_multiple_is_ignored(self) -> None:
        # 0.1 beyond 11.0, needs 0.15 * 1.0
        assert sweep_both([*self.HIGH, 11.1], [*self.LOW, 10.0], [*self.CLOSE, 10.8], [1.0] * 4)[3] is None

    def test_only_the_previous_lookback_bars_count(self) -> None:
        # 12.0 four bars back is outside a lookback of 3, so 11.5 still sweeps 11.0
        result = sweep_both([12.0, *self.HIGH, 11.5], [9.0, *self.LOW, 10.0], [9.5, *self.CLOSE, 10.8], [1.0] * 5)
        assert result[4] == Sweep(-1, 11.0)

    def test_bar_sweeping_both_sides_is_ambiguous(self) -> None:
        assert sweep_both([*self.HIGH, 11.5], [*self.LOW, 8.5], [*self.CLOSE, 10.0], [1.0] * 4)[3] is None

    def test_nothing_before_lookback_bars_or_without_atr(self) -> None:
        assert sweep_both([10.0, 11.0], [9.0, 8.0], [9.5, 9.5], [1.0, 1.0]) == [None, None]
        assert sweep_both([*self.HIGH, 11.5], [*self.LOW, 10.0], [*self.CLOSE, 10.8], [NAN] * 4)[3] is None


def ob_both(bars: list[tuple[float, float, float, float]], atr: float = 1.0, max_bars: int = 3) -> list[Zone | None]:
    o, h, lo, c = (list(col) for col in zip(*bars, strict=True))
    atrs = [atr] * len(bars)
    batch = order_blocks(o, h, lo, c, atrs, impulse_atr_mult=1.5, max_bars=max_bars)
    detector = OrderBlockDetector(1.5, max_bars)
    live = [detector.update(*bar, a) for bar, a in zip(bars, atrs, strict=True)]
    assert live == [Zone(int(d), float(t), float(b)) if d else None for d, t, b in zip(*batch, strict=True)]
    return live


BEAR_CANDLE = (10.5, 10.6, 9.9, 10.0)  # (open, high, low, close)
BULL_CANDLE = (10.0, 10.6, 9.9, 10.5)


class TestOrderBlock:
    def test_last_bearish_candle_before_an_up_impulse_is_a_bullish_block(self) -> None:
        bars = [BULL_CANDLE, BEAR_CANDLE, (10.0, 11.1, 10.0, 11.0), (11.0, 12.6, 11.0, 12.5), (12.5, 13.6, 12.5, 13.5)]
        # bar 2 clears the high by 0.4 (< 1.5), bar 3 by 1.9: reported there, once
        assert ob_both(bars) == [None, None, None, Zone(1, top=10.6, bottom=9.9), None]

    def test_last_bullish_candle_before_a_down_impulse_is_a_bearish_block(self) -> None:
        bars = [BEAR_CANDLE, BULL_CANDLE, (10.5, 10.5, 9.4, 9.5), (9.5, 9.5, 8.3, 8.4)]
        assert ob_both(bars) == [None, None, None, Zone(-1, top=10.6, bottom=9.9)]

    def test_an_opposite_candle_inside_the_move_becomes_the_block(self) -> None:
        # bar 2 is bearish: the block is bar 2 (high 11.1), not bar 1
        bars = [BULL_CANDLE, BEAR_CANDLE, (11.0, 11.1, 10.4, 10.5), (10.5, 12.7, 10.5, 12.6)]
        assert ob_both(bars)[3] == Zone(1, top=11.1, bottom=10.4)

    def test_a_slow_move_is_no_impulse(self) -> None:
        slow = [(10.0, 10.5, 10.0, 10.4), (10.4, 10.9, 10.4, 10.8), (10.8, 11.3, 10.8, 11.2), (11.2, 12.3, 11.2, 12.2)]
        assert ob_both([BEAR_CANDLE, *slow], max_bars=3) == [None] * 5
        assert ob_both([BEAR_CANDLE, *slow], max_bars=4)[4] == Zone(1, 10.6, 9.9)

    def test_doji_neither_is_a_block_nor_breaks_the_impulse(self) -> None:
        doji = (10.3, 10.5, 10.1, 10.3)
        assert ob_both([BEAR_CANDLE, doji, (10.3, 12.3, 10.3, 12.2)])[2] == Zone(1, 10.6, 9.9)
        assert ob_both([doji, (10.3, 12.3, 10.3, 12.2)]) == [None, None]

    def test_no_block_without_atr(self) -> None:
        assert ob_both([BEAR_CANDLE, (10.0, 12.3, 10.0, 12.2)], atr=NAN) == [None, None]


# Lows with pivot lows (left=right=2) at bar 2 (3.0) and bar 8 (2.0), a lower low.
LOWS = [5.0, 4.0, 3.0, 4.0, 5.0, 6.0, 5.0, 4.0, 2.0, 4.0, 5.0, 6.0]
HIGHS_FLAT = [x + 1.0 for x in LOWS]


def div_both(high: list[float], low: list[float], osc: list[float], lookback: int = 60) -> list[int]:
    batch = divergences(high, low, osc, left=2, right=2, lookback=lookback)
    detector = DivergenceDetector(2, 2, lookback)
    live = [detector.update(h, lo, o) for h, lo, o in zip(high, low, osc, strict=True)]
    assert live == batch.tolist()
    return live


def osc_at(values: dict[int, float], n: int = 12) -> list[float]:
    return [values.get(i, 50.0) for i in range(n)]


class TestDivergence:
    def test_pivots_are_strict_on_the_left_and_first_of_a_flat_run(self) -> None:
        is_high, is_low = pivots(HIGHS_FLAT, LOWS, 2, 2)
        assert np.flatnonzero(is_low).tolist() == [2, 8]
        assert np.flatnonzero(is_high).tolist() == [5]
        flat = [5.0, 4.0, 3.0, 3.0, 4.0, 5.0]
        assert np.flatnonzero(pivots([x + 1 for x in flat], flat, 2, 2)[1]).tolist() == [2]

    def test_lower_low_in_price_with_higher_oscillator_is_bullish_on_confirmation(self) -> None:
        result = div_both(HIGHS_FLAT, LOWS, osc_at({2: 20.0, 8: 25.0}))
        assert result == [0] * 10 + [1, 0]  # pivot 8 confirmed at bar 10

    def test_equal_oscillator_low_also_counts_as_not_lower(self) -> None:
        assert div_both(HIGHS_FLAT, LOWS, osc_at({2: 20.0, 8: 20.0}))[10] == 1

    def test_oscillator_confirming_the_low_is_no_divergence(self) -> None:
        assert div_both(HIGHS_FLAT, LOWS, osc_at({2: 20.0, 8: 15.0})) == [0] * 12

    def test_higher_low_in_price_is_no_divergence(self) -> None:
        lows = LOWS.copy()
        lows[8] = 3.5
        assert div_both([x + 1 for x in lows], lows, osc_at({2: 20.0, 8: 25.0})) == [0] * 12

    def test_pivots_further_apart_than_lookback_do_not_pair(self) -> None:
        assert div_both(HIGHS_FLAT, LOWS, osc_at({2: 20.0, 8: 25.0}), lookback=5) == [0] * 12
        assert div_both(HIGHS_FLAT, LOWS, osc_at({2: 20.0, 8: 25.0}), lookback=6)[10] == 1

    def test_oscillator_still_warming_up_gives_nothing(self) -> None:
        assert div_both(HIGHS_FLAT, LOWS, osc_at({2: NAN, 8: 25.0})) == [0] * 12

    def test_higher_high_in_price_with_lower_oscillator_is_bearish(self) -> None:
        highs = [-x for x in LOWS]  # the mirror: pivot highs at 2 (-3) and 8 (-2), a higher high
        lows = [x - 1.0 for x in highs]
        assert div_both(highs, lows, osc_at({2: 80.0, 8: 75.0})) == [0] * 10 + [-1, 0]
        assert div_both(highs, lows, osc_at({2: 80.0, 8: 85.0})) == [0] * 12

    def test_rsi_and_macd_wrappers_read_those_oscillators(self) -> None:
        rng = np.random.default_rng(3)
        close = 3300.0 + np.cumsum(rng.normal(0.0, 1.0, 2000))
        high, low = close + 0.5, close - 0.5
        expected_rsi = divergences(high, low, rsi(close, 9), left=2, right=2, lookback=40)
        assert (rsi_divergences(high, low, close, period=9, left=2, right=2, lookback=40) == expected_rsi).all()
        expected_macd = divergences(high, low, macd(close, 5, 13, 4).macd, left=2, right=2, lookback=40)
        got = macd_divergences(high, low, close, fast=5, slow=13, signal=4, left=2, right=2, lookback=40)
        assert (got == expected_macd).all()
        assert (expected_rsi != 0).sum() > 10 and (expected_macd != 0).sum() > 10


class TestRoundNumber:
    @pytest.mark.parametrize(
        ("price", "step", "near"),
        [
            (3300.03, GOLD_ROUND_STEP, True),  # buffer 0.0012 % of 3300 = 0.0396
            (3299.97, GOLD_ROUND_STEP, True),
            (3304.97, GOLD_ROUND_STEP, True),
            (3300.05, GOLD_ROUND_STEP, False),
            (3302.50, GOLD_ROUND_STEP, False),
            (115_001.3, BITCOIN_ROUND_STEP, True),  # buffer 1.38
            (114_998.7, BITCOIN_ROUND_STEP, True),
            (115_002.0, BITCOIN_ROUND_STEP, False),
            (115_050.0, BITCOIN_ROUND_STEP, False),
        ],
    )
    def test_within_buffer_percent_of_a_multiple(self, price: float, step: float, near: bool) -> None:
        assert is_near_round_number(price, step) is near
        assert near_round_number([price], step).tolist() == [near]

    def test_buffer_is_a_percentage_not_a_fraction(self) -> None:
        # as a fraction, 0.0012 of 3302.5 (3.96) would exceed half the step and flag every price
        assert not is_near_round_number(3302.5, 5.0, 0.0012)
        assert is_near_round_number(3302.5, 5.0, 0.12)

    def test_bad_step_is_refused(self) -> None:
        with pytest.raises(ValueError, match="step"):
            is_near_round_number(3300.0, 0.0)
        with pytest.raises(ValueError, match="step"):
            near_round_number([3300.0], 0.0)
