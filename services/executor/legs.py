"""One leg of an order plan: journaled, sent under the retcode policy, reported exactly once.

The journal is written before each step (``intended`` by the core on accept, ``sending`` here just
before the request leaves, then the outcome), so a SIGKILL anywhere leaves a state the reconciliation
can finish from the broker's positions and deals (``reconcile.py``).

How the broker shows a leg (``match_leg``): a position with our magic whose comment is the leg id
(MT5 may cut a comment's tail, so a long enough prefix counts too); or an exit deal whose comment is
the leg id; or, for a leg filled and already closed by SL/TP before anyone looked (an SL exit carries
'[sl ...]', not our comment, and the gateway serves exit deals only), an exit deal of our magic on the
symbol, opposite side and same volume, of a position no journal row accounts for. Every ticket is
matched to one leg at most.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Iterable
from typing import Literal

from services.executor.desk import Desk, Job, Reply, Step, Wait
from services.executor.journal import LegRecord, Telemetry
from services.executor.policy import Located, execute
from services.executor.telemetry import log_order, slippage
from shared import mt5
from shared.messages import DealClosed, ExecutionReport, OrderLeg, OrderPlan, PositionData, TradeRequest

log = logging.getLogger(__name__)

MIN_PREFIX = 8  # a cut comment must keep at least this much of the leg id to count as the leg
DEALS_LOOKBACK_S = 60.0  # market seconds before the send from which exit deals are searched


def comment_is(comment: str, leg_id: str) -> bool:
    """Whether a broker comment names this leg (the server may have cut its tail)."""
    return comment == leg_id or (len(comment) >= MIN_PREFIX and leg_id.startswith(comment))


def match_leg(
    leg_id: str, plan: OrderPlan, volume: float, *, positions: Iterable[PositionData], deals: Iterable[DealClosed],
    known: set[int],
) -> Located | None:
    """Where the broker shows this leg, if anywhere; tickets in ``known`` belong to other rows."""
    positions, deals = list(positions), list(deals)
    for pos in positions:
        if pos.ticket not in known and pos.magic == plan.magic and pos.symbol == plan.symbol \
                and comment_is(pos.comment, leg_id):
            return Located(pos.ticket, pos.price_open, pos.volume, f"found open at the broker as #{pos.ticket}")
    exits = [d for d in deals if d.position_id not in known and d.magic == plan.magic and d.symbol == plan.symbol
             and d.entry in (mt5.DEAL_ENTRY_OUT, mt5.DEAL_ENTRY_OUT_BY)]
    for deal in exits:
        if comment_is(deal.comment, leg_id):
            return Located(deal.position_id, None, deal.volume, f"found closed at the broker (deal #{deal.ticket})")
    for deal in exits:
        if deal.side != plan.side and abs(deal.volume - volume) < 1e-9:
            return Located(deal.position_id, None, deal.volume,
                           f"found already closed at the broker (exit deal #{deal.ticket}, {deal.comment or '-'})")
    return None


def trade_request(plan: OrderPlan, leg: OrderLeg, price: float, filling: int) -> TradeRequest:
    """The MT5 market order of a leg; the comment carries the leg id (<= 31 ASCII characters)."""
    return TradeRequest(
        action=mt5.TRADE_ACTION_DEAL, symbol=plan.symbol, volume=leg.volume,
        type=mt5.ORDER_TYPE_BUY if plan.side == "buy" else mt5.ORDER_TYPE_SELL, price=price, sl=leg.sl, tp=leg.tp,
        deviation=plan.deviation_points, magic=plan.magic, comment=leg.leg_id, type_time=mt5.ORDER_TIME_GTC,
        type_filling=filling,
    )


def locate_leg(desk: Desk, plan: OrderPlan, leg: OrderLeg) -> Generator[Step, Reply, Located | None]:
    """Ask the broker (positions, then exit deals) until it answers; the owner hears once if it stays silent."""
    told = False
    while True:
        record = desk.journal.leg(leg.leg_id)
        since = (record.market_sent_at if record and record.market_sent_at else plan.ts) - DEALS_LOOKBACK_S
        positions = yield from desk.positions(plan.symbol, plan.magic)
        deals = (yield from desk.deals(since, plan.symbol, plan.magic)) if positions is not None else None
        if positions is not None and deals is not None:
            return match_leg(leg.leg_id, plan, leg.volume, positions=positions, deals=deals,
                             known=desk.journal.known_tickets())
        if not told and record is not None:
            told = True
            desk.emit(leg_report(desk, record, plan))
            log.warning("leg %s: outcome unknown and the gateway does not answer; asking again every %g s",
                        leg.leg_id, desk.settings.verify_retry_s)
        yield Wait(desk.settings.verify_retry_s)


def expired(desk: Desk, plan: OrderPlan) -> bool:
    """The plan's time is up: its legs are refused rather than sent (market time, not the wall clock)."""
    return desk.market_now > plan.expires_at


class _LegOrder:
    """The policy hooks of an open leg: every step goes to the journal first."""

    def __init__(self, desk: Desk, plan: OrderPlan, leg: OrderLeg, attempts_before: int,
                 journaled_sending: bool) -> None:
        self.desk, self.plan, self.leg = desk, plan, leg
        self.attempts_before = attempts_before
        self.journaled_sending = journaled_sending  # attempt 1 was written 'sending' with the plan

    def refusal(self) -> str | None:
        return "plan expired before sending" if expired(self.desk, self.plan) else None

    def request(self, price: float, filling: int) -> TradeRequest:
        return trade_request(self.plan, self.leg, price, filling)

    def before_send(self, attempt: int) -> None:
        desk = self.desk
        if not (attempt == 1 and self.journaled_sending):
            desk.journal.mark_sending(self.leg.leg_id, attempt=self.attempts_before + attempt,
                                      market_ts=desk.market_now, now=desk.clock.now())
        desk.checkpoint("sending")

    def on_retry(self, retcode: int | None, text: str) -> None:
        self.desk.journal.mark_intended(self.leg.leg_id, retcode=retcode, detail=text)

    def on_unknown(self, retcode: int | None, text: str) -> None:
        self.desk.journal.mark_unknown(self.leg.leg_id, retcode=retcode, detail=text, now=self.desk.clock.now())
        self.desk.checkpoint("unknown")

    def locate(self) -> Generator[Step, Reply, Located | None]:
        return locate_leg(self.desk, self.plan, self.leg)


def open_leg(
    desk: Desk, plan: OrderPlan, leg: OrderLeg, attempts_before: int = 0, *, journaled_sending: bool = False,
) -> Job:
    """Send one leg until it is filled or finally refused, then journal and report the outcome
    (``journaled_sending``: the core wrote its first attempt 'sending' with the plan, see ``Journal.add_plan``)."""
    order = _LegOrder(desk, plan, leg, attempts_before, journaled_sending)
    spec = None
    while spec is None:
        refusal = order.refusal()
        if refusal is not None:
            finish_rejected(desk, plan, leg, retcode=None, text=refusal, telemetry=Telemetry())
            return
        spec = yield from desk.spec(plan.symbol)
        if spec is None:
            yield Wait(desk.settings.verify_retry_s)
    outcome = yield from execute(desk, order, side=plan.side, price=plan.price, filling_bits=spec.filling_mode)
    if not outcome.done:
        finish_rejected(desk, plan, leg, retcode=outcome.retcode, text=outcome.text,
                        telemetry=Telemetry(latency_ms=outcome.latency_ms, retries=outcome.retries))
        return
    result, located = outcome.result, outcome.located
    if located is not None:
        ticket, price, volume = located.ticket, located.price, located.volume or leg.volume
    else:
        assert result is not None
        ticket = result.order or result.deal
        price = result.price or None
        volume = result.volume or leg.volume
    points, money = slippage(plan.side, plan.price, price, spec, volume)
    telemetry = Telemetry(outcome.latency_ms, points, money, outcome.retries)
    finish_filled(desk, plan, leg, ticket=ticket, price=price, volume=volume, retcode=outcome.retcode,
                  text=outcome.text, telemetry=telemetry)


def finish_filled(
    desk: Desk, plan: OrderPlan, leg: OrderLeg, *, ticket: int, price: float | None, volume: float,
    retcode: int | None, text: str, telemetry: Telemetry,
) -> None:
    """Journal a fill, then report it (the report is re-sent on start if the process dies in between)."""
    desk.journal.mark_filled(leg.leg_id, ticket=ticket, price=price, volume=volume, retcode=retcode, detail=text,
                             telemetry=telemetry, now=desk.clock.now())
    desk.checkpoint("recorded")
    _report_final(desk, plan, leg.leg_id)


def finish_rejected(
    desk: Desk, plan: OrderPlan, leg: OrderLeg, *, retcode: int | None, text: str, telemetry: Telemetry,
) -> None:
    desk.journal.mark_rejected(leg.leg_id, retcode=retcode, detail=text, telemetry=telemetry, now=desk.clock.now())
    desk.checkpoint("recorded")
    _report_final(desk, plan, leg.leg_id)


def _report_final(desk: Desk, plan: OrderPlan, leg_id: str) -> None:
    record = desk.journal.leg(leg_id)
    assert record is not None
    report = leg_report(desk, record, plan)
    desk.emit(report)
    log_order(kind="open", leg=record.leg_id, plan=plan.plan_id, symbol=plan.symbol, side=plan.side,
              status=record.state, retcode=record.retcode, ticket=record.ticket,
              volume=record.fill_volume or record.volume, requested=plan.price, fill=record.fill_price,
              slippage_points=record.slippage_points, slippage_usd=record.slippage_usd,
              latency_ms=round(record.latency_ms, 1), retries=record.retries, attempts=record.attempts,
              text=record.detail)
    level = logging.INFO if record.state == "filled" else logging.WARNING
    log.log(level, "leg %s %s: %s", record.leg_id, record.state, record.detail)


def leg_report(desk: Desk, record: LegRecord, plan: OrderPlan) -> ExecutionReport:
    """The ExecutionReport of a journal row (final rows: filled / rejected; any other: unknown)."""
    leg = next(item for item in plan.legs if item.leg_id == record.leg_id)
    status: Literal["filled", "rejected", "unknown"] = (
        "filled" if record.state == "filled" else "rejected" if record.state == "rejected" else "unknown")
    return ExecutionReport(
        ts=max(desk.market_now, plan.ts), plan_id=plan.plan_id, leg_id=record.leg_id, symbol=plan.symbol,
        side=plan.side, status=status,
        retcode=record.retcode, retcode_text=record.detail, ticket=record.ticket,
        volume=record.fill_volume or leg.volume, requested_price=plan.price, fill_price=record.fill_price,
        sl=leg.sl, tp=leg.tp, latency_ms=record.latency_ms, slippage_points=record.slippage_points,
        slippage_usd=record.slippage_usd, retries=record.retries, confidence=plan.confidence, regime=plan.regime,
        reasons=plan.reasons,
    )
