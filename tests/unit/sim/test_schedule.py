"""Market hours: gold's daily break follows US daylight saving; weekends; bitcoin never closes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from services.gateway_mt5.hours import MarketHours, MarketSchedule, summer_time


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


GOLD = MarketSchedule(MarketHours())


@pytest.mark.parametrize(
    ("moment", "is_open"),
    [
        ("2025-07-15 20:59:59", True), ("2025-07-15 21:00:00", False), ("2025-07-15 21:59:59", False),
        ("2025-07-15 22:00:00", True),
        ("2025-01-14 21:30:00", True), ("2025-01-14 22:00:00", False), ("2025-01-14 23:00:00", True),
        ("2025-07-18 20:59:00", True), ("2025-07-18 21:00:00", False), ("2025-07-19 12:00:00", False),
        ("2025-07-20 21:59:00", False), ("2025-07-20 22:00:00", True),
        ("2025-01-17 21:30:00", True), ("2025-01-17 22:00:00", False), ("2025-01-19 22:30:00", False),
        ("2025-01-19 23:00:00", True),
        ("2025-03-09 22:30:00", True),   # US clocks went forward that morning: summer break 21-22 is over
        ("2025-03-08 22:30:00", False),  # Saturday
        ("2025-11-02 21:30:00", False),  # first Sunday of November: winter again, reopens at 23:00
    ],
)
def test_gold_hours(moment: str, is_open: bool) -> None:
    assert GOLD.is_open(at(moment)) is is_open


def test_bitcoin_is_always_open() -> None:
    btc = MarketSchedule(MarketHours(always_open=True))
    assert all(btc.is_open(at("2025-07-19 00:00:00") + 3600 * k) for k in range(24 * 7))


def test_the_rule_is_configurable() -> None:
    eu = MarketSchedule(MarketHours(dst="eu", break_start_summer=time(20, 0), break_minutes=30))
    assert not eu.is_open(at("2025-03-31 20:10:00")) and eu.is_open(at("2025-03-31 20:30:00"))
    assert summer_time(date(2025, 3, 30), "eu") and not summer_time(date(2025, 3, 29), "eu")
    assert summer_time(date(2025, 3, 9), "us") and not summer_time(date(2025, 11, 2), "us")
    assert not summer_time(date(2025, 7, 1), "none")


def test_a_break_crossing_midnight_is_refused() -> None:
    with pytest.raises(ValueError, match="crosses midnight"):
        MarketHours(break_start_winter=time(23, 30), break_minutes=60)
