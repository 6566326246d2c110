"""One timeframe's state and votes on hand-built bar sequences whose answer is known."""

from __future__ import annotations

import random

import pytest

from shared.strategy.timeframe import RollingExtremes, TimeframeState
from shared.strategy.votes import StructureEvent, VoteParams, structure_vote, volume_vote
from tests.unit.strategy.helpers import BTC, CONFIG, T0, bar, trend_bars

BTC_CONFIG = CONFIG.symbols[BTC]
PARAMS = VoteParams.from_config(BTC_CONFIG)


def state_after(drift: float, count: int = 260, volume: int = 0) -> TimeframeState:
    tf = TimeframeState("M1", BTC_CONFIG, PARAMS)
    for one in trend_bars(BTC, range(count), drift, 115_000.0):
        assert tf.update(one.model_copy(update={"tick_volume": volume}))
    return tf


def test_votes_wait_for_every_indicator_and_the_minimum_bar_count() -> None:
    tf = state_after(20.0, count=199)
    before = (tf.ready, tf.votes)
    tf.update(bar(BTC, 199, 120_000.0))
    assert before == (False, None), "EMA 200 needs 200 bars"
    assert tf.ready and tf.votes is not None


@pytest.mark.parametrize(("drift", "sign"), [(20.0, 1), (-20.0, -1)])
def test_trend_and_momentum_follow_a_steady_move(drift: float, sign: int) -> None:
    votes = state_after(drift).votes
    assert votes is not None
    assert sign * votes.trend > 0.5 and sign * votes.momentum > 0.5
    assert sign * votes.meanrev < 0, "a steady move is stretched: mean reversion votes against it"
    assert votes.volume is None, "no volume in the window: no volume vote"


def test_a_spike_beyond_the_bands_gets_a_mean_reversion_vote_against_it() -> None:
    tf = state_after(0.5)  # a flat market
    tf.update(bar(BTC, 260, 115_300.0, open_=115_130.0, span=5.0))
    assert tf.votes is not None and tf.votes.meanrev <= -0.5


def test_volume_votes_the_bar_colour_when_volume_is_hot() -> None:
    tf = state_after(20.0, volume=100)
    tf.update(bar(BTC, 260, 120_300.0, open_=120_200.0, volume=1000, span=20.0))
    assert tf.has_volume and tf.votes is not None and tf.votes.volume == 1.0
    assert volume_vote(1.1, -5.0, 2.2) == -0.5  # half of z_vol_hot on a falling bar
    assert volume_vote(-1.0, 5.0, 2.2) == 0.0  # a quiet bar says nothing
    assert volume_vote(3.0, 0.0, 2.2) == 0.0  # neither colour


def test_structure_events_fade_with_age_and_are_forgotten() -> None:
    events = [StructureEvent(10, "sweep", 1), StructureEvent(8, "FVG", -1)]
    # sweep at age 0: 1.0; FVG at age 2 of 5: -0.6 x 0.6
    assert structure_vote(events, 10, 5) == pytest.approx(1.0 - 0.36)
    assert structure_vote(events[:1] * 3, 10, 5) == 1.0, "clipped"
    tf = state_after(20.0)
    tf.events.append(StructureEvent(tf.bars - 1, "sweep", -1, 1.0))
    for n in range(5):
        tf.update(bar(BTC, 260 + n, 120_200.0 + n))
    assert not tf.events, "an event older than structure_memory_bars is dropped"


def test_gaps_and_reopens_are_measured_from_the_bars() -> None:
    tf = TimeframeState("M1", BTC_CONFIG, PARAMS)
    tf.update(bar(BTC, 0, 100.0))
    tf.update(bar(BTC, 1, 100.0))
    assert (tf.gap_s, tf.resumed_at) == (0, -1)
    tf.update(bar(BTC, 4, 100.0))  # two bars missing
    assert (tf.gap_s, tf.resumed_at) == (120, -1)
    tf.update(bar(BTC, 70, 100.0))  # a market break
    assert tf.resumed_at == T0 + 70 * 60
    assert not tf.update(bar(BTC, 70, 100.0)) and tf.bars == 4


def test_freshness_allows_one_bar_of_lag() -> None:
    m5 = TimeframeState("M5", BTC_CONFIG, PARAMS)
    assert not m5.fresh_at(T0)
    m5.update(bar(BTC, 0, 100.0, timeframe="M5"))  # closes at T0 + 300
    assert m5.fresh_at(T0 + 300) and m5.fresh_at(T0 + 600)
    assert not m5.fresh_at(T0 + 660)


def test_rolling_extremes_match_a_brute_force_window() -> None:
    rng = random.Random(7)
    extremes = RollingExtremes(12)
    highs: list[float] = []
    lows: list[float] = []
    for i in range(500):
        low = rng.uniform(90, 110)
        high = low + rng.uniform(0, 5)
        highs.append(high)
        lows.append(low)
        extremes.update(i, high, low)
        assert extremes.high == max(highs[-12:]) and extremes.low == min(lows[-12:])
