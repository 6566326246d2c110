"""Start-up reconciliation: the journal against the broker, before any plan or command is served.

The executor may have died anywhere; the broker is the truth. Rules, in order:

1. Reports that were final in the journal but never handed to risk are sent now.
2. The broker is asked for every open position and, if any leg was left open, the exit deals since its
   first send, until the gateway answers (nothing else runs meanwhile: plans and commands queue).
3. Each leg left ``intended``, ``sending`` or ``unknown`` is looked for (``legs.match_leg``). Found:
   filled, with the broker's ticket and open price. Not found: ``intended`` never left, ``sending`` /
   ``unknown`` did not happen (the gateway answers in order, so a request sent before the crash was
   served before this question); either way it is sent again if its plan has not expired (the check
   came first, so the resend is not blind), and rejected as expired otherwise.
4. A position with our magic that no journal row explains is adopted: written to the journal once and
   reported (``PositionAdopted``), so owner commands act on it. One whose comment names a leg the
   journal holds as rejected is that leg, filled late: the leg is corrected to filled and reported.
   One naming a leg already filled under another ticket is a second fill, adopted and logged as an error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from services.executor.desk import Desk, Job, Wait
from services.executor.journal import LegRecord, Telemetry
from services.executor.legs import DEALS_LOOKBACK_S, finish_filled, finish_rejected, leg_report, match_leg, open_leg
from shared.messages import DealClosed, OrderPlan, PositionAdopted, PositionData

log = logging.getLogger(__name__)
# Logged when the start-up reconciliation is done and plans are taken: the chaos test reads it as "the
# restarted executor is back at work".
RECONCILED_MARKER = "reconciled"


def reconcile(desk: Desk, open_legs: list[LegRecord], unreported: list[LegRecord]) -> Job:
    """The first job of every start; sets ``desk.reconciled`` when done."""
    journal = desk.journal
    plans: dict[str, OrderPlan] = {}

    def plan_of(record: LegRecord) -> OrderPlan:
        if record.plan_id not in plans:
            plans[record.plan_id] = journal.plan(record.plan_id)
        return plans[record.plan_id]

    for record in unreported:
        log.info("sending again the report of leg %s (%s), lost in the last stop", record.leg_id, record.state)
        desk.emit(leg_report(desk, record, plan_of(record)))
    for record in open_legs:
        desk.observe(plan_of(record).ts)
    since = min((r.market_sent_at or plan_of(r).ts for r in open_legs), default=None)
    positions: tuple[PositionData, ...] | None = None
    deals: tuple[DealClosed, ...] | None = () if since is None else None
    while positions is None or deals is None:
        positions = yield from desk.positions()
        if positions is not None and since is not None:
            deals = yield from desk.deals(since - DEALS_LOOKBACK_S)
        if positions is None or deals is None:
            log.warning("reconciliation: the gateway does not answer; asking again in %g s",
                        desk.settings.verify_retry_s)
            yield Wait(desk.settings.verify_retry_s)
    ours = [p for p in positions if desk.ours(p)]
    for record in open_legs:
        _resolve(desk, record, plan_of(record), ours, deals)
    _adopt(desk, ours, plan_of)
    desk.reconciled = True
    log.info("%s: %d open leg(s) resolved, %d position(s) of ours at the broker", RECONCILED_MARKER,
             len(open_legs), len(ours))


def _resolve(desk: Desk, record: LegRecord, plan: OrderPlan, positions: list[PositionData],
             deals: tuple[DealClosed, ...]) -> None:
    leg = next(item for item in plan.legs if item.leg_id == record.leg_id)
    located = match_leg(leg.leg_id, plan, leg.volume, positions=positions, deals=deals,
                        known=desk.journal.known_tickets())
    if located is not None:
        log.warning("leg %s was %s before the stop: %s", leg.leg_id, record.state, located.how)
        finish_filled(desk, plan, leg, ticket=located.ticket, price=located.price,
                      volume=located.volume or leg.volume, retcode=record.retcode,
                      text=f"{record.detail or record.state}; on restart {located.how}".lstrip("; "),
                      telemetry=Telemetry(retries=max(0, record.attempts - 1)))
        return
    if desk.market_now > plan.expires_at:
        text = f"not at the broker after a restart (was {record.state}); plan expired, not sent"
        finish_rejected(desk, plan, leg, retcode=record.retcode, text=text,
                        telemetry=Telemetry(retries=max(0, record.attempts - 1)))
        return
    log.warning("leg %s was %s before the stop and is not at the broker: sending it", leg.leg_id, record.state)
    if record.state != "intended":
        desk.journal.mark_intended(leg.leg_id, retcode=record.retcode,
                                   detail=f"not at the broker after a restart (was {record.state})")
    desk.spawn_first(leg.leg_id, open_leg(desk, plan, leg, attempts_before=record.attempts))


def _adopt(desk: Desk, positions: list[PositionData], plan_of: Callable[[LegRecord], OrderPlan]) -> None:
    journal = desk.journal
    known = journal.known_tickets()
    for pos in positions:
        if pos.ticket in known:
            continue
        record = journal.leg(pos.comment) if pos.comment else None
        if record is not None and record.state == "rejected":
            plan = plan_of(record)
            leg = next(item for item in plan.legs if item.leg_id == record.leg_id)
            log.error("leg %s was journaled as not filled but is open at the broker as #%d: corrected",
                      record.leg_id, pos.ticket)
            finish_filled(desk, plan, leg, ticket=pos.ticket, price=pos.price_open, volume=pos.volume,
                          retcode=record.retcode, text=f"filled late: found open at the broker as #{pos.ticket} "
                          f"after '{record.detail}'", telemetry=Telemetry(retries=record.retries))
            known.add(pos.ticket)
            continue
        if record is not None and record.state == "filled":
            reason = f"a second position for leg {record.leg_id} (filled as #{record.ticket})"
            log.error("position #%d is %s: an order reached the broker twice", pos.ticket, reason)
        else:
            reason = "position with our magic unknown to the journal"
        if journal.adopt(pos, reason, desk.clock.now()):
            known.add(pos.ticket)
            log.warning("adopted position #%d %s %s %g (%s)", pos.ticket, pos.symbol, pos.side, pos.volume, reason)
            desk.emit(PositionAdopted(
                ts=desk.market_now, ticket=pos.ticket, symbol=pos.symbol, side=pos.side, volume=pos.volume,
                price_open=pos.price_open, sl=pos.sl, tp=pos.tp, magic=pos.magic, comment=pos.comment,
                reason=reason))
