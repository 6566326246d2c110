"""Every gate a signal must pass before it becomes an order plan, listed in ONE place: ``RULES``.

A rule is a small object with a ``name`` (the ``rule`` of the ``SignalRejected`` event) and one
``check(ctx)`` returning None to let the signal through or a short detail saying why not. Rules never
raise and never change state; the core builds a ``SignalContext`` (a snapshot of what risk knows when
the signal arrives, in market time) and asks each rule in order, the first refusal wins. Every limit
comes from the symbol's own config file.

Besides ``RULES``, two refusals come from the core itself: "unknown_symbol" (a signal for a symbol
without a config file, before any context can exist) and "sizing" (the spec or balance cannot give a
valid order, see ``sizing.SizingError``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from services.risk.regimes import confidence_threshold, trading_locked
from services.risk.store import SymbolBook
from shared.messages import Regime, Signal, SymbolSpec
from shared.symbol_config import SymbolConfig

HOUR_S = 3600.0
M1_SECONDS = 60
# Gold's weekend on Exness (MT5-FACTS): about Friday 21:00 to Sunday 22:00-23:00 UTC. The calendar is a
# coarse second guard beside the gateway's word (which also knows the daily break and the DST shift).
FRIDAY, SATURDAY, SUNDAY = 4, 5, 6
WEEKEND_FROM_HOUR = 21  # Friday
WEEKEND_UNTIL_HOUR = 22  # Sunday


@dataclass(frozen=True, slots=True)
class SignalContext:
    """What risk knows at the moment a signal arrives, all in market time."""

    signal: Signal
    config: SymbolConfig
    book: SymbolBook  # read only here
    market_now: float
    trading_enabled: bool
    data_ok: bool  # gateway alive and connected, and its latest heartbeat says this symbol is ok
    data_reason: str  # why not (or "ok")
    market_open: bool | None  # the latest heartbeat's word on the symbol's market; None = no word yet
    spec: SymbolSpec | None
    account_known: bool
    signal_max_age_s: float
    open_positions: int
    fills_last_hour: int
    plans_last_hour: int

    @property
    def regime(self) -> Regime:
        return self.book.regime


class Rule(Protocol):
    """One gate: None lets the signal pass, a string says why it may not."""

    name: str

    def check(self, ctx: SignalContext) -> str | None: ...


def _wait(until: float, now: float) -> float:
    """Whole seconds left until ``until`` (0 once it has passed)."""
    return max(0.0, math.ceil(until - now))


class TradingSwitch:
    """The owner's Start/Stop switch (persisted: a restart never resumes trading the owner stopped)."""

    name = "trading_switch"

    def check(self, ctx: SignalContext) -> str | None:
        return None if ctx.trading_enabled else "trading is stopped by the owner"


class HardStop:
    """Regime C locks trading until the next UTC day (not with risk.ignore_daily_stop_for_trading)."""

    name = "regime"

    def check(self, ctx: SignalContext) -> str | None:
        return "regime C (hard stop for the day)" if trading_locked(ctx.regime, ctx.config) else None


def weekend_closed(ts: float) -> bool:
    """Friday 21:00 UTC to Sunday 22:00 UTC."""
    moment = datetime.fromtimestamp(ts, UTC)
    weekday, hour = moment.weekday(), moment.hour
    return (weekday == SATURDAY or (weekday == FRIDAY and hour >= WEEKEND_FROM_HOUR)
            or (weekday == SUNDAY and hour < WEEKEND_UNTIL_HOUR))


class MarketHours:
    """symbol.market_open_24_5 (gold): no orders over the weekend by the calendar; 24/7 symbols always pass."""

    name = "market_hours"

    def check(self, ctx: SignalContext) -> str | None:
        if ctx.config.symbol.market_open_24_5 and weekend_closed(ctx.market_now):
            return "weekend: the symbol trades Monday to Friday"
        return None


class MarketOpen:
    """The gateway says the symbol's market is open (gold's daily break too). Asked before DataFresh, so a
    closed market is named as such rather than as stale data; no word at all is DataFresh's refusal."""

    name = "market_closed"

    def check(self, ctx: SignalContext) -> str | None:
        return "market closed" if ctx.market_open is False else None


class DataFresh:
    """The gateway is alive and connected, and its latest heartbeat says this symbol's data is ok
    (unknown = not ok)."""

    name = "data_stale"

    def check(self, ctx: SignalContext) -> str | None:
        return None if ctx.data_ok else ctx.data_reason


def in_sessions(ts: float, sessions: tuple[tuple[int, int], ...]) -> bool:
    """Whether the UTC hour of ``ts`` is in one of the [start, end) ranges; start > end wraps midnight."""
    hour = datetime.fromtimestamp(ts, UTC).hour
    return any(start <= hour < end if start <= end else (hour >= start or hour < end) for start, end in sessions)


class Session:
    """symbol.active_sessions, unless symbol.ignore_sessions."""

    name = "session"

    def check(self, ctx: SignalContext) -> str | None:
        symbol = ctx.config.symbol
        if symbol.ignore_sessions or in_sessions(ctx.market_now, symbol.active_sessions):
            return None
        return f"outside the active sessions {[list(s) for s in symbol.active_sessions]} (UTC hours)"


class BrokerInfoKnown:
    """No order before the symbol spec and the account are known (sizing needs both)."""

    name = "broker_info"

    def check(self, ctx: SignalContext) -> str | None:
        if ctx.spec is None:
            return "symbol spec not yet received from the gateway"
        return None if ctx.account_known else "account not yet received from the gateway"


class SignalFresh:
    """The signal's bar closed at most risk.signal_max_age_s market seconds ago."""

    name = "stale_signal"

    def check(self, ctx: SignalContext) -> str | None:
        age = ctx.market_now - (ctx.signal.bar_time + M1_SECONDS)
        if age <= ctx.signal_max_age_s:
            return None
        return f"bar closed {age:.0f}s ago (> {ctx.signal_max_age_s:.0f}s)"


class NewBar:
    """One plan per symbol and bar: a signal for a bar at or before the last planned one is refused."""

    name = "duplicate"

    def check(self, ctx: SignalContext) -> str | None:
        last = ctx.book.last_plan_bar_time
        return None if ctx.signal.bar_time > last else f"bar {ctx.signal.bar_time} not after the last planned {last}"


class Confidence:
    """The regime's threshold: A min_confidence_signal, B (and a C that trading ignores) ultra_confidence_min."""

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


class SpreadBreaker:
    """The signal's spread: spread / price <= execution.spread_cb_pct, and at most exec_max_spread_points and
    max_spread_points (0 = no fixed cap) points."""

    name = "spread"

    def check(self, ctx: SignalContext) -> str | None:
        execution, points = ctx.config.execution, ctx.signal.spread_points
        point = ctx.spec.point if ctx.spec else 0.0
        share = points * point / ctx.signal.price
        if share > execution.spread_cb_pct:
            return f"spread {share:.5%} of the price > {execution.spread_cb_pct:.5%}"
        if points > execution.exec_max_spread_points:
            return f"spread {points} points > exec_max_spread_points {execution.exec_max_spread_points:g}"
        if execution.max_spread_points and points > execution.max_spread_points:
            return f"spread {points} points > max_spread_points {execution.max_spread_points:g}"
        return None


class LatencyBreaker:
    """A leg slower than execution.rtt_cb_ms pauses the symbol for exec_breaker_sec."""

    name = "latency_breaker"

    def check(self, ctx: SignalContext) -> str | None:
        left = _wait(ctx.book.latency_breaker_until, ctx.market_now)
        return None if left <= 0 else f"a leg took >= {ctx.config.execution.rtt_cb_ms} ms; {left:.0f}s left"


class ExecutionQuality:
    """The execution-quality monitor's pause (p95 latency or slippage, slippage EWMA, reject rate)."""

    name = "exec_quality"

    def check(self, ctx: SignalContext) -> str | None:
        left = _wait(ctx.book.exec_paused_until, ctx.market_now)
        return None if left <= 0 else f"execution quality: {ctx.book.exec_pause_reason}; paused, {left:.0f}s left"


class Cooldown:
    """limits.cooldown_seconds of market time after a fill on this symbol."""

    name = "cooldown"

    def check(self, ctx: SignalContext) -> str | None:
        left = _wait(ctx.book.cooldown_until, ctx.market_now)
        return None if left <= 0 else f"cooling down after a fill, {left:.0f}s left"


class LatencyCooldown:
    """execution.cooldown_after_latency_s after a leg slower than latency_rtt_ms_limit."""

    name = "latency_cooldown"

    def check(self, ctx: SignalContext) -> str | None:
        left = _wait(ctx.book.latency_cooldown_until, ctx.market_now)
        limit = ctx.config.execution.latency_rtt_ms_limit
        return None if left <= 0 else f"cooling down after a leg slower than {limit} ms, {left:.0f}s left"


class MaxPositions:
    """At most risk.max_positions open positions of ours on the symbol."""

    name = "max_positions"

    def check(self, ctx: SignalContext) -> str | None:
        cap = ctx.config.risk.max_positions
        return None if ctx.open_positions < cap else f"{ctx.open_positions} open >= max {cap}"


class SignalsPerHour:
    """At most limits.max_signals_per_hour plans in the last hour of market time (0 = unlimited)."""

    name = "max_signals_per_hour"

    def check(self, ctx: SignalContext) -> str | None:
        cap = ctx.config.limits.max_signals_per_hour
        if cap == 0 or ctx.plans_last_hour < cap:
            return None
        return f"{ctx.plans_last_hour} plans in the last hour >= max {cap}"


class SignalsPerDay:
    """At most limits.max_signals_per_day plans a UTC day (0 = unlimited)."""

    name = "max_signals_per_day"

    def check(self, ctx: SignalContext) -> str | None:
        cap, today = ctx.config.limits.max_signals_per_day, ctx.book.signals_today
        return None if cap == 0 or today < cap else f"{today} signals today >= max {cap}"


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
    MarketHours(),
    MarketOpen(),
    DataFresh(),
    Session(),
    BrokerInfoKnown(),
    SignalFresh(),
    NewBar(),
    Confidence(),
    Strength(),
    SpreadBreaker(),
    LatencyBreaker(),
    ExecutionQuality(),
    Cooldown(),
    LatencyCooldown(),
    MaxPositions(),
    SignalsPerHour(),
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
