"""What the report needs, gathered from the bus the way an outside listener sees the live system.

It watches the topics Telegram and the parity test watch live: the order plans risk hands the
executor, risk's forwarded execution reports (``risk.exec``), its regime changes and refusals, the
gateway's exit deals and account snapshots. It sends nothing back, so it cannot change a decision.

A trade is one filled leg: the fill's report (ticket, price, volume, SL, TP, confidence, regime) joined
by ticket with the exit deal(s) of its position (the sim's position ticket is the order ticket the
report carries). Its P&L is what the leg did to the balance: the exit deals' profit, swap, commission
and fee, and the entry commission (charged on the entry deal, which the gateway does not publish).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from backtest.report import EquityPoint, Trade, utc_day
from services.gateway_mt5.sim.ledger import money
from shared import mt5, topics
from shared.messages import (
    AccountSnapshot,
    DealClosed,
    ExecutionReport,
    Message,
    OrderPlan,
    PositionData,
    RegimeChanged,
    SignalRejected,
)

EXIT_REASONS = {mt5.DEAL_REASON_SL: "sl", mt5.DEAL_REASON_TP: "tp", mt5.DEAL_REASON_SO: "stop_out"}
WATCHED = (topics.RISK_EXECUTION, topics.RISK_REGIME, topics.RISK_REJECTED, topics.DEAL, topics.ACCOUNT)


@dataclass(slots=True)
class _OpenLeg:
    report: ExecutionReport
    plan: OrderPlan
    closed_volume: float = 0.0
    pnl: float = 0.0
    exit_time: float | None = None
    exit_price: float | None = None
    exit_reason: str = "open"


@dataclass
class Recorder:
    """Observer of the bus (``bus.watch(WATCHED, recorder)`` and the plan topic); builds trades and equity."""

    commission_per_lot: Mapping[str, float]
    plans: list[OrderPlan] = field(default_factory=list)
    equity: list[EquityPoint] = field(default_factory=list)
    regime_days: dict[str, set[str]] = field(default_factory=lambda: {"B": set(), "C": set()})
    refusals: Counter[str] = field(default_factory=Counter)
    legs_rejected: int = 0
    legs_unknown: int = 0
    _plans: dict[str, OrderPlan] = field(default_factory=dict)
    _legs: dict[int, _OpenLeg] = field(default_factory=dict)  # by position ticket
    _filled: list[int] = field(default_factory=list)  # tickets in fill order

    def __call__(self, topic: str, message: Message) -> None:
        if isinstance(message, AccountSnapshot):
            self.equity.append(EquityPoint(message.ts, message.balance, message.equity))
        elif isinstance(message, DealClosed):
            self._on_deal(message)
        elif isinstance(message, ExecutionReport):
            self._on_report(message)
        elif isinstance(message, OrderPlan):
            self.plans.append(message)
            self._plans[message.plan_id] = message
        elif isinstance(message, RegimeChanged):
            if message.new in self.regime_days:
                self.regime_days[message.new].add(utc_day(message.ts))
        elif isinstance(message, SignalRejected):
            self.refusals[message.rule] += 1

    def _on_report(self, report: ExecutionReport) -> None:
        if report.status == "rejected":
            self.legs_rejected += 1
        elif report.status == "unknown":
            self.legs_unknown += 1
        elif report.ticket is not None and report.ticket not in self._legs:
            self._legs[report.ticket] = _OpenLeg(report, self._plans[report.plan_id])
            self._filled.append(report.ticket)

    def _on_deal(self, deal: DealClosed) -> None:
        leg = self._legs.get(deal.position_id)
        if leg is None:
            return  # not a leg of ours (the sim holds nothing else in a backtest)
        leg.closed_volume = round(leg.closed_volume + deal.volume, 8)
        leg.pnl += deal.net
        if leg.closed_volume >= leg.report.volume - 1e-9:
            leg.exit_time, leg.exit_price = deal.time, deal.price
            leg.exit_reason = EXIT_REASONS.get(deal.reason, "closed")

    def trades(self, still_open: list[PositionData]) -> list[Trade]:
        """Every filled leg; those still open at the end count their floating P&L (``exit_reason`` "open")."""
        floating = {p.ticket: p.profit + p.swap for p in still_open}
        out = []
        for ticket in self._filled:
            leg = self._legs[ticket]
            report, plan = leg.report, leg.plan
            entry_cost = money(self.commission_per_lot.get(report.symbol, 0.0) * report.volume)
            pnl = leg.pnl - entry_cost + (floating.get(ticket, 0.0) if leg.exit_reason == "open" else 0.0)
            out.append(Trade(
                leg_id=report.leg_id, plan_id=report.plan_id, symbol=report.symbol, side=report.side,
                lots=report.volume, open_time=report.ts, entry=report.fill_price or report.requested_price,
                sl=report.sl, tp=report.tp, close_time=leg.exit_time, exit=leg.exit_price,
                exit_reason=leg.exit_reason, pnl=round(pnl, 2), confidence=report.confidence, regime=report.regime,
                legs_in_plan=len(plan.legs), latency_ms=report.latency_ms, slippage_points=report.slippage_points,
            ))
        return out
