"""M5/M15 bars built from partial M1 data carry ``m1_count``; complete bars and every older message do not."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.gateway_mt5.aggregate import BarAggregator
from services.gateway_mt5.data_quality import DataQuality
from services.gateway_mt5.hours import MarketHours, MarketSchedule
from services.gateway_mt5.sim.trusted import construct
from shared.codec import decode, encode
from shared.messages import Bar

T = 1_752_483_600  # Mon 2025-07-14 09:00 UTC, gold open
BREAK = 1_752_526_800  # Mon 2025-07-14 21:00 UTC: gold's summer break starts
GOLD = MarketSchedule(MarketHours())


def m1(t: int, symbol: str = "XAUUSDm") -> Bar:
    return Bar(ts=t + 60, symbol=symbol, timeframe="M1", time=t, open=10, high=11, low=9, close=10,
               tick_volume=1, spread=5)


def aggregator(edge_minutes: int = 5) -> BarAggregator:
    quality = DataQuality(lambda symbol, t: GOLD.is_open(t), edge_minutes=edge_minutes)
    return BarAggregator(("M5", "M15"), expected=quality.expected)


def run(agg: BarAggregator, minutes: list[int], until: int) -> dict[tuple[str, int], int | None]:
    out = [b for k in minutes for b in agg.add(m1(T + 60 * k))] + agg.flush(T + 60 * until)
    return {(b.timeframe, (b.time - T) // 60): b.m1_count for b in out}


def test_complete_windows_are_unmarked_and_a_missing_open_minute_marks_its_windows() -> None:
    agg = aggregator()
    got = run(agg, [k for k in range(30) if k != 7], 30)
    assert got == {("M5", 0): None, ("M5", 5): 4, ("M5", 10): None, ("M5", 15): None, ("M5", 20): None,
                   ("M5", 25): None, ("M15", 0): 14, ("M15", 15): None}
    assert agg.partial == 2


def test_a_window_closed_by_time_without_its_last_minutes_is_partial() -> None:
    agg = aggregator()
    assert run(agg, [0, 1], 5) == {("M5", 0): 2}


def test_minutes_the_market_was_closed_never_make_a_bar_partial() -> None:
    """Gold's last window before the break and the broker closing a few minutes early (20:57)."""
    agg = aggregator()
    before = (BREAK - T) // 60
    got = run(agg, list(range(before - 15, before - 3)), before + 60)
    assert got == {("M5", before - 15): None, ("M5", before - 10): None, ("M5", before - 5): None,
                   ("M15", before - 15): None}
    strict = aggregator(edge_minutes=0)  # no tolerance: 20:57-20:59 were open by the schedule
    assert run(strict, list(range(before - 15, before - 3)), before + 60)[("M5", before - 5)] == 2


def test_without_a_schedule_nothing_is_marked() -> None:
    agg = BarAggregator(("M5",))
    assert [b.m1_count for b in agg.add(m1(T)) + agg.flush(T + 300)] == [None]


def test_an_unmarked_bar_is_the_bar_it_always_was() -> None:
    """Stored without the key, so it equals the simulator's unvalidated bars and encodes as before."""
    values = {"v": 1, "id": "XAUUSDm-M5-0", "ts": 300.0, "type": "bar", "symbol": "XAUUSDm", "timeframe": "M5",
              "time": 0, "open": 1.5, "high": 2.0, "low": 1.0, "close": 1.25, "tick_volume": 3, "spread": 200}
    validated = Bar.model_validate(values)
    assert validated == construct(Bar, dict(values)) and validated.m1_count is None
    assert construct(Bar, dict(values)).m1_count is None
    assert validated.model_dump() == values and decode(encode(validated)) == validated
    marked = Bar.model_validate({**values, "m1_count": 3})
    assert marked != validated and marked.model_dump()["m1_count"] == 3
    again = decode(encode(marked))
    assert again == marked and isinstance(again, Bar) and again.m1_count == 3


@pytest.mark.parametrize(("timeframe", "count"), [("M1", 1), ("M5", 5), ("M5", 0), ("M15", 15)])
def test_m1_count_marks_only_a_partial_higher_bar(timeframe: str, count: int) -> None:
    with pytest.raises(ValidationError):
        Bar(ts=900, symbol="X", timeframe=timeframe, time=0, open=1, high=1, low=1, close=1, tick_volume=0,
            spread=0, m1_count=count)
