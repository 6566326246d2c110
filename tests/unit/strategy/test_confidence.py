"""The confidence model and the tick-quality penalty, on numbers worked out by hand."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.messages import SymbolHealth
from shared.strategy.confidence import ConfidenceModel, TickQuality
from tests.unit.strategy.helpers import BTC, CONFIG, XAU

BTC_SIGNAL = CONFIG.symbols[BTC].signal  # bias 50, gain 120
XAU_SIGNAL = CONFIG.symbols[XAU].signal  # bias 50, gain 70


@pytest.mark.parametrize(
    ("strength", "expected"),
    [
        (0.0, 0.70),  # 50 % raised to the floor
        (0.20, 0.74),  # 50 + 120 x 0.2
        (0.25, 0.80),  # 80, tier [0.25, 0.45) caps at 88
        (0.30, 0.86),
        (0.50, 0.92),  # 110, the [0.45, 0.60) tier caps at 92
        (0.70, 0.95),  # [0.60, 0.75) caps at 95
        (0.80, 0.96),  # past the last tier: confidence_cap
        (1.00, 0.96),
    ],
)
def test_bias_plus_gain_times_strength_within_the_tiers_and_caps(strength: float, expected: float) -> None:
    assert ConfidenceModel(BTC_SIGNAL).compute(strength).value == pytest.approx(expected)


def test_gold_with_its_lower_gain() -> None:
    model = ConfidenceModel(XAU_SIGNAL)
    assert model.compute(0.40).value == pytest.approx(0.78)  # 50 + 70 x 0.4
    assert model.compute(0.28).value == pytest.approx(0.70)  # 69.6 raised to the floor


def test_penalties_come_after_the_tier_cap_so_they_always_cost() -> None:
    model = ConfidenceModel(BTC_SIGNAL)
    result = model.compute(0.50, spread_penalty=3.0, tick_penalty=2.0)  # min(110, 92) - 5
    assert result.value == pytest.approx(0.87)
    assert result.raw_pct == pytest.approx(110.0) and result.tier_cap == 0.92
    assert model.compute(0.10, spread_penalty=10.0).value == 0.70  # never below the floor


@given(strength=st.floats(0.0, 0.2499), gain=st.floats(0.0, 500.0), bias=st.floats(0.0, 100.0))
def test_a_weak_signal_never_shows_high_confidence(strength: float, gain: float, bias: float) -> None:
    signal = BTC_SIGNAL.model_copy(update={"confidence_gain": gain, "confidence_bias": bias})
    assert 0.70 <= ConfidenceModel(signal).compute(strength).value <= 0.80


@pytest.mark.parametrize(
    ("spread", "atr", "points"),
    [(5.0, 100.0, 0.0), (10.0, 100.0, 0.0), (35.0, 100.0, 5.0), (200.0, 100.0, 10.0), (1.0, 0.0, 0.0)],
)
def test_the_spread_penalty_grows_with_the_spread_in_atrs(spread: float, atr: float, points: float) -> None:
    # free up to 0.10 ATR, then 20 points per ATR, at most 10
    assert ConfidenceModel(BTC_SIGNAL).spread_penalty(spread, atr) == pytest.approx(points)


def test_tick_quality_penalties_add_up_to_their_cap() -> None:
    ticks = TickQuality(BTC_SIGNAL, volume_lookback=80)
    for _ in range(10):
        ticks.observe(100)
    ticks.observe(10)  # compared with the average before it: 100
    quiet = SymbolHealth(ok=True, market_open=True)
    assert ticks.penalty(gap_s=0, volume=100, flat=False, has_volume=True, health=quiet)[0] == 0.0
    thin, notes = ticks.penalty(gap_s=0, volume=10, flat=False, has_volume=True, health=quiet)
    assert thin == pytest.approx(4.0 * (1 - 10 / 25)) and len(notes) == 1  # thin below 0.25 x 100
    assert ticks.penalty(gap_s=120, volume=100, flat=False, has_volume=True, health=None)[0] == 4.0
    stale = SymbolHealth(ok=False, reason="stale", market_open=True)
    assert ticks.penalty(gap_s=0, volume=100, flat=False, has_volume=True, health=stale)[0] == 8.0
    closed = SymbolHealth(ok=False, reason="market_closed", market_open=False)
    assert ticks.penalty(gap_s=0, volume=100, flat=False, has_volume=True, health=closed)[0] == 0.0
    everything, notes = ticks.penalty(gap_s=60, volume=0, flat=True, has_volume=True, health=stale)
    assert everything == 10.0 and len(notes) == 3  # 4 + 4 + 8, capped at tick_penalty_max


def test_without_volume_data_only_a_flat_bar_counts_as_thin() -> None:
    ticks = TickQuality(XAU_SIGNAL, volume_lookback=80)
    ticks.observe(0)
    assert ticks.penalty(gap_s=0, volume=0, flat=False, has_volume=False, health=None)[0] == 0.0
    assert ticks.penalty(gap_s=0, volume=0, flat=True, has_volume=False, health=None)[0] == 4.0
