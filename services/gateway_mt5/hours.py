"""Market hours: when a symbol trades. MT5 has no trading-hours call, so the schedule is configuration.

One model and one schedule for every backend: the simulated broker refuses orders (10018) and stays
silent outside these hours, and the real backends (mt5, mt5linux) report ``market_open`` from them, so
the heartbeat says "market_closed" the same way whatever sits behind the gateway.
"""

from __future__ import annotations

from datetime import date, time, timedelta
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

DAY = 86_400
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


class MarketHours(BaseModel):
    """When a symbol trades (MT5 has no trading-hours call, so the schedule is configuration).

    Gold: a daily one-hour break whose UTC start follows daylight saving (``dst``: "us" = second Sunday
    of March to first Sunday of November, by UTC date; "eu" = last Sunday of March to last Sunday of
    October; "none" = always the winter time), and a weekend from Friday's break start to Sunday's
    break end. ``always_open`` (bitcoin) ignores everything else.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    always_open: bool = False
    weekend_closed: bool = True
    daily_break: bool = True
    break_start_summer: time = time(21, 0)
    break_start_winter: time = time(22, 0)
    break_minutes: int = Field(default=60, ge=1, le=1439)
    dst: Literal["us", "eu", "none"] = "us"

    @model_validator(mode="after")
    def _break_within_day(self) -> Self:
        for name in ("break_start_summer", "break_start_winter"):
            start: time = getattr(self, name)
            if start.hour * 60 + start.minute + self.break_minutes > 1440:
                raise ValueError(f"{name} {start} + break_minutes {self.break_minutes} crosses midnight")
        return self


PRESET_HOURS: dict[str, MarketHours] = {"XAUUSDm": MarketHours(), "BTCUSDm": MarketHours(always_open=True)}
"""Exness hours of the shipped symbols (MT5-FACTS): gold Mon-Fri with its daily break, bitcoin 24/7."""


def _nth_sunday(year: int, month: int, n: int) -> date:
    first = date(year, month, 1)
    first_sunday = first + timedelta(days=(6 - first.weekday()) % 7)
    return first_sunday + timedelta(weeks=n - 1)


def _last_sunday(year: int, month: int) -> date:
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    last = nxt - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - 6) % 7)


def summer_time(day: date, rule: str) -> bool:
    """Whether daylight saving is in effect on a UTC date under ``rule`` ("us", "eu" or "none")."""
    if rule == "us":
        return _nth_sunday(day.year, 3, 2) <= day < _nth_sunday(day.year, 11, 1)
    if rule == "eu":
        return _last_sunday(day.year, 3) <= day < _last_sunday(day.year, 10)
    return False


class MarketSchedule:
    """Answers ``is_open(t)`` for one symbol; the per-day break is cached, so calls are cheap."""

    def __init__(self, hours: MarketHours) -> None:
        self._hours = hours
        self._days: dict[int, tuple[int, int, int]] = {}

    @property
    def always_open(self) -> bool:
        """True for a 24/7 symbol (bitcoin)."""
        return self._hours.always_open

    @property
    def weekend_closed(self) -> bool:
        """True when the symbol does not trade on Saturday and most of Sunday."""
        return self._hours.weekend_closed and not self._hours.always_open

    def _day(self, day_number: int) -> tuple[int, int, int]:
        """(weekday, break start, break end) in seconds of that UTC day."""
        cached = self._days.get(day_number)
        if cached is None:
            day = date.fromordinal(_EPOCH_ORDINAL + day_number)
            hours = self._hours
            start = hours.break_start_summer if summer_time(day, hours.dst) else hours.break_start_winter
            begin = start.hour * 3600 + start.minute * 60 + start.second
            cached = (day.weekday(), begin, begin + hours.break_minutes * 60)
            self._days[day_number] = cached
        return cached

    def is_open(self, t: float) -> bool:
        """Whether the symbol trades at market time ``t`` (epoch seconds, UTC)."""
        hours = self._hours
        if hours.always_open:
            return True
        day_number, second = divmod(int(t), DAY)
        weekday, begin, end = self._day(day_number)
        weekend = weekday == 5 or (weekday == 4 and second >= begin) or (weekday == 6 and second < end)
        if hours.weekend_closed and weekend:
            return False
        return not (hours.daily_break and begin <= second < end)
