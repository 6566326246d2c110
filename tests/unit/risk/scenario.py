"""A whole trading day for the risk core: a fake clock, a scripted P&L path, restarts on the same file.

``Day.step("10:30", pnl=...)`` moves market time to that hour and sets our day's P&L (one open position of
ours floating at it, and the account's equity showing it); ``Day.close`` realises it with an exit deal.
Both return the events it caused in a short
form that a test compares whole: ("regime", symbol, old, new, reason), ("lock", symbol, reason),
("day", day, previous day, previous P&L).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from services.risk.core import Outgoing, RiskCore
from shared import topics
from shared.clock import FakeClock
from shared.config import LoadedConfig
from shared.messages import DayStarted, RegimeChanged, TradingLocked
from tests.unit.risk.helpers import SPECS, XAU, closing_deal, new_core, ready, set_pnl

Event = tuple[str | float | None, ...]
WED = 1_752_019_200  # Wed 2025-07-09 00:00 UTC
FRI = WED + 2 * 86_400


def at(day_start: float, hhmm: str, days: int = 0) -> float:
    hours, minutes = hhmm.split(":")
    return day_start + days * 86_400 + int(hours) * 3600 + int(minutes) * 60


def events(out: list[Outgoing]) -> list[Event]:
    """The regime, lock and new-day events of ``out`` in order, each checked to go out on its own topic."""
    found: list[Event] = []
    for item in out:
        message = item.message
        if isinstance(message, RegimeChanged):
            assert item.topic == topics.RISK_REGIME
            found.append(("regime", message.symbol, message.old, message.new, message.reason))
        elif isinstance(message, TradingLocked):
            assert item.topic == topics.RISK_LOCK
            found.append(("lock", message.symbol, message.reason))
        elif isinstance(message, DayStarted):
            assert item.topic == topics.RISK_DAY
            found.append(("day", message.day, message.previous_day, round(message.previous_pnl, 2)))
    return found


@dataclass
class Day:
    """One risk core on its SQLite file, driven through a day by a script."""

    config: LoadedConfig
    start: float = WED
    balance: float = 4000.0
    path: Path | None = None  # the SQLite file; default: the config's state_dir
    clock: FakeClock = field(init=False)
    core: RiskCore = field(init=False)
    now: float = field(init=False)
    pnl: float = 0.0
    external: float = 0.0

    def __post_init__(self) -> None:
        self.clock = FakeClock(self.start)
        self.now = self.start
        self.core = ready(new_core(self.config, self.clock, self.path), ts=self.start, balance=self.balance)

    def step(self, hhmm: str, pnl: float, *, days: int = 0, external: float = 0.0) -> list[Event]:
        ts = at(self.start, hhmm, days)
        assert ts >= self.now, "a script goes forward in time"
        self.clock.set(ts)
        self.now = ts
        self.pnl, self.external = pnl, external
        return events(set_pnl(self.core, ts, pnl, balance=self.balance, external=external))

    def close(self, hhmm: str, *, days: int = 0) -> list[Event]:
        """Our position closes at its floating P&L (a day without earlier closes): realised, no longer floating."""
        ts = at(self.start, hhmm, days)
        self.now = ts
        deal = closing_deal(ts, XAU, position_id=900, profit=self.pnl, ticket=int(ts))
        self.pnl = 0.0
        return events(self.core.handle(deal))

    def restart(self) -> list[Event]:
        """A new core on the same file, as after a SIGKILL: the broker still shows the last step's P&L."""
        self.core = new_core(self.config, self.clock, self.path)
        for spec in SPECS.values():
            self.core.set_symbol_spec(spec)
        return events(set_pnl(self.core, self.now, self.pnl, balance=self.balance, external=self.external))

    def regimes(self) -> dict[str, str]:
        return {symbol: state.regime for symbol, state in self.core.status().symbols.items()}


@pytest.fixture
def day(config: LoadedConfig) -> Day:
    return Day(config)
