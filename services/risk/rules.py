"""Every gate a signal must pass before it becomes an order plan, listed in ONE place: ``RULES``.

A rule is a small object with a ``name`` (the ``rule`` of the ``SignalRejected`` event) and one
``check(ctx)`` returning None to let the signal through or a short detail saying why not. Rules never
raise and never change state; the core builds a ``SignalContext`` (a snapshot of what risk knows when
the signal arrives) and asks each rule in order, the first refusal wins.

Besides ``RULES``, two refusals come from the core itself: "unknown_symbol" (a signal for a symbol
without a config file, before any context can exist) and "sizing" (the spec or balance cannot give a
valid order, see ``sizing.SizingError``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from services.risk.regimes import confidence_threshold
from shared.messages import Regime, Signal
from shared.symbol_config import SymbolConfig

HOUR_S = 3600.0
M1_SECONDS = 60


@dataclass(frozen=True, slots=True)
class SignalContext:
    """What risk knows at the moment a signal arrives, all in market time."""

    signal: Signal
    config: SymbolConfig
    market_now: float
    trading_enabled: bool
    regime: Regime
    data_ok: bool  # gateway alive and connected, and its latest heartbeat says this symbol is ok
    data_reason: str  # why not (or "ok")
    market_open: bool | None  # the latest heartbeat's word on the symbol's market; None = no word yet
    spec_known: bool
    account_known: bool
    signal_max_age_s: float
    cooldown_until: float
    last_plan_bar_time: int
    open_positions: int
    signals_today: int
    fills_last_hour: int


class Rule(Protocol):
    """One gate: None lets the signal pass, a string says why it may not."""

    name: str

    def check(self, ctx: SignalContext) -> str | None: ...


class TradingSwitch:
    """The owner's Start/Stop switch (persisted: a restart never resumes trading the owner stopped)."""

    name = "trading_switch"

    def check(self, ctx: SignalContext) -> str | None:
        return None if ctx.trading_enabled else "trading is stopped by the owner"


class HardStop:
    """Regime C: no orders until the next UTC day."""

    name = "regime"

    def check(self, ctx: SignalContext) -> str | None:
        return "regime C (hard stop for the day)" if ctx.regime == "C" else None


class Confidence:
    """The regime's confidence threshold: A min_confidence_signal, B ultra_confidence_min."""

    name = "confidence"

    def check(self, ctx: SignalContext) -> str | None:
        needed = confidence_threshold(ctx.regime, ctx.config)
        if ctx.signal.confidence >= needed:
            return None
        return f"confidence {ctx.signal.confidence:.3f} < {needed:.3f} needed in regime {ctx.regime}"


class Strength:
    """|net_norm| >= signal.net_norm_signal_threshold."""

    name = "strength"

    def check(self, ctx: SignalContext) -> str | None:
        needed = ctx.config.signal.net_norm_signal_threshold
        strength = abs(ctx.signal.net_norm)
        return None if strength >= needed else f"|net_norm| {strength:.3f} < {needed:.3f}"


class SignalFresh:
    """The signal's bar closed at most risk.signal_max_age_s market seconds ago."""

    name = "stale_signal"

    def check(self, ctx: SignalContext) -> str | None:
        age = ctx.market_now - (ctx.signal.bar_time + M1_SECONDS)
        if age <= ctx.signal_max_age_s:
            return None
        return f"bar closed {age:.0f}s ago (> {ctx.signal_max_age_s:.0f}s)"


class MarketOpen:
    """The gateway says the symbol's market is open (gold: Mon-Fri outside its daily break). Asked
    before DataFresh, so a closed market is named as such rather than as stale data; no word at all is
    DataFresh's refusal."""

    name = "market_closed"

    def check(self, ctx: SignalContext) -> str | None:
        return "market closed" if ctx.market_open is False else None


class DataFresh:
    """The gateway is alive and connected, and its latest heartbeat says this symbol's data is ok
    (unknown = not ok)."""

    name = "data_stale"

    def check(self, ctx: SignalContext) -> str | None:
        return None if ctx.data_ok else ctx.data_reason


class BrokerInfoKnown:
    """No order before the symbol spec and the account are known (sizing needs both)."""

    name = "broker_info"

    def check(self, ctx: SignalContext) -> str | None:
        if not ctx.spec_known:
            return "symbol spec not yet received from the gateway"
        return None if ctx.account_known else "account not yet received from the gateway"


class NewBar:
    """One plan per symbol and bar: a signal for a bar at or before the last planned one is refused."""

    name = "duplicate"

    def check(self, ctx: SignalContext) -> str | None:
        if ctx.signal.bar_time > ctx.last_plan_bar_time:
            return None
        return f"bar {ctx.signal.bar_time} not after the last planned bar {ctx.last_plan_bar_time}"


class Cooldown:
    """limits.cooldown_seconds of market time after a fill on this symbol."""

    name = "cooldown"

    def check(self, ctx: SignalContext) -> str | None:
        left = ctx.cooldown_until - ctx.market_now
        return None if left <= 0 else f"cooling down after a fill, {left:.0f}s left"


class MaxPositions:
    """At most risk.max_positions open positions of ours on the symbol."""

    name = "max_positions"

    def check(self, ctx: SignalContext) -> str | None:
        cap = ctx.config.risk.max_positions
        return None if ctx.open_positions < cap else f"{ctx.open_positions} open >= max {cap}"


class SignalsPerDay:
    """At most limits.max_signals_per_day plans a UTC day (0 = unlimited)."""

    name = "max_signals_per_day"

    def check(self, ctx: SignalContext) -> str | None:
        cap = ctx.config.limits.max_signals_per_day
        if cap == 0 or ctx.signals_today < cap:
            return None
        return f"{ctx.signals_today} signals today >= max {cap}"


class TradesPerHour:
    """At most limits.max_trades_per_hour filled legs in the last hour of market time (0 = unlimited)."""

    name = "max_trades_per_hour"

    def check(self, ctx: SignalContext) -> str | None:
        cap = ctx.config.limits.max_trades_per_hour
        if cap == 0 or ctx.fills_last_hour < cap:
            return None
        return f"{ctx.fills_last_hour} fills in the last hour >= max {cap}"


RULES: tuple[Rule, ...] = (
    TradingSwitch(),
    HardStop(),
    Confidence(),
    Strength(),
    SignalFresh(),
    MarketOpen(),
    DataFresh(),
    BrokerInfoKnown(),
    NewBar(),
    Cooldown(),
    MaxPositions(),
    SignalsPerDay(),
    TradesPerHour(),
)
"""Every rule that can block an order, in the order they are asked."""


def first_refusal(ctx: SignalContext, rules: tuple[Rule, ...] = RULES) -> tuple[str, str] | None:
    """(rule name, detail) of the first rule that refuses, or None when every rule lets it pass."""
    for rule in rules:
        detail = rule.check(ctx)
        if detail is not None:
            return rule.name, detail
    return None
