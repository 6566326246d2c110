"""The executor's core: order plans in, one broker request at a time out, execution reports back.

It is a state machine so that it needs no sockets: ``accept(plan)`` queues the plan's legs,
``next_request()`` gives the single in-flight OrderSendRequest, and ``on_reply(reply)`` turns the
gateway's answer (or None: no answer in time) into a report, a retry, or nothing yet.

Retcode policy (MT5-FACTS): success -> filled; requote/price changed/off/too many/locked/connection ->
retry, bounded; 10030 -> once more with the other filling mode; None, 10011, 10012, IPC errors and
no reply -> UNKNOWN, never resent blindly (the journal and reconciliation of the executor issue
resolve those from the broker's positions and deals); anything else -> rejected, with its name.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import Literal

from shared import mt5
from shared.clock import Clock
from shared.messages import (
    ExecutionReport,
    ExecutorStatus,
    Message,
    OrderLeg,
    OrderPlan,
    OrderSendReply,
    OrderSendRequest,
    SymbolSpec,
    TradeRequest,
)

log = logging.getLogger(__name__)

MAX_PRICE_RETRIES = 3


@dataclass(slots=True)
class _Leg:
    plan: OrderPlan
    leg: OrderLeg
    filling: int
    retries: int = 0
    tried_other_filling: bool = False
    sent_at: float = 0.0
    first_sent_at: float = 0.0


class ExecutorCore:
    """Sends each leg of each plan once, one mutating request at a time; reports every outcome."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.specs: dict[str, SymbolSpec] = {}
        self.queue: deque[_Leg] = deque()
        self.inflight: _Leg | None = None
        self.inflight_request: OrderSendRequest | None = None
        self.seen_legs: set[str] = set()
        self.market_now = 0.0
        self.sent_total = 0

    def set_spec(self, spec: SymbolSpec) -> None:
        self.specs[spec.name] = spec

    def accept(self, plan: OrderPlan) -> list[Message]:
        """Queue a plan's legs. Duplicates and expired plans are refused with a report each."""
        self.market_now = max(self.market_now, plan.ts)
        spec = self.specs.get(plan.symbol)
        refusals: list[Message] = []
        for leg in plan.legs:
            if leg.leg_id in self.seen_legs:
                log.warning("refused duplicate leg %s of plan %s", leg.leg_id, plan.plan_id)
                continue
            self.seen_legs.add(leg.leg_id)
            if spec is None:
                refusal = "no symbol spec from the gateway"
            elif plan.expires_at < self.market_now:
                refusal = "plan expired before sending"
            else:
                self.queue.append(_Leg(plan, leg, mt5.filling_for(spec.filling_mode)))
                continue
            refusals.append(self._report(plan, leg, status="rejected", retcode=None, text=refusal))
        return refusals

    @property
    def queue_len(self) -> int:
        return len(self.queue) + (1 if self.inflight else 0)

    def status(self) -> ExecutorStatus:
        return ExecutorStatus(ts=self.market_now, queue_len=self.queue_len, sent_total=self.sent_total)

    def next_request(self) -> OrderSendRequest | None:
        """The request to send now, if none is in flight."""
        if self.inflight is None:
            if not self.queue:
                return None
            self.inflight = self.queue.popleft()
            self.inflight.first_sent_at = self.clock.monotonic()
        if self.inflight_request is None:
            item = self.inflight
            item.sent_at = self.clock.monotonic()
            self.inflight_request = OrderSendRequest(ts=self.market_now, request=self._trade_request(item))
            self.sent_total += 1
        return self.inflight_request

    def _trade_request(self, item: _Leg) -> TradeRequest:
        plan, leg = item.plan, item.leg
        return TradeRequest(
            action=mt5.TRADE_ACTION_DEAL,
            symbol=plan.symbol,
            volume=leg.volume,
            type=mt5.ORDER_TYPE_BUY if plan.side == "buy" else mt5.ORDER_TYPE_SELL,
            price=plan.price,
            sl=leg.sl,
            tp=leg.tp,
            deviation=plan.deviation_points,
            magic=plan.magic,
            comment=leg.leg_id,
            type_time=mt5.ORDER_TIME_GTC,
            type_filling=item.filling,
        )

    def on_reply(self, reply: Message | None) -> list[Message]:
        """Digest the gateway's answer to the in-flight request (None: no answer in time)."""
        item, request = self.inflight, self.inflight_request
        if item is None or request is None:
            return []
        self.inflight_request = None
        if not isinstance(reply, OrderSendReply):
            text = "no reply from the gateway" if reply is None else f"gateway error: {reply}"
            report = self._report(item.plan, item.leg, status="unknown", retcode=None, text=text, item=item)
            return self._finish(report)
        result = reply.result
        retcode = result.retcode if result else None
        verdict = mt5.classify_retcode(retcode)
        if result is not None and verdict is mt5.RetcodeClass.SUCCESS:
            return self._finish(self._report(item.plan, item.leg, status="filled", retcode=retcode,
                                             text=mt5.describe_retcode(retcode), item=item,
                                             fill_price=result.price, ticket=result.order or result.deal))
        if verdict is mt5.RetcodeClass.RETRY_FRESH_PRICE and item.retries < MAX_PRICE_RETRIES:
            item.retries += 1
            return []
        if verdict is mt5.RetcodeClass.RETRY_OTHER_FILLING and not item.tried_other_filling:
            other = mt5.other_filling(self.specs[item.plan.symbol].filling_mode, item.filling)
            if other is not None:
                item.tried_other_filling, item.filling = True, other
                item.retries += 1
                return []
        status: Literal["rejected", "unknown"] = "unknown" if verdict is mt5.RetcodeClass.UNKNOWN else "rejected"
        text = mt5.describe_retcode(retcode)
        if result is None:
            text += f"; last_error {reply.last_error_code} {reply.last_error_text}"
        report = self._report(item.plan, item.leg, status=status, retcode=retcode, text=text, item=item)
        return self._finish(report)

    def _finish(self, report: ExecutionReport) -> list[Message]:
        self.inflight = None
        level = logging.INFO if report.status == "filled" else logging.WARNING
        log.log(level, "leg %s %s: %s", report.leg_id, report.status, report.retcode_text)
        return [report]

    def _report(
        self,
        plan: OrderPlan,
        leg: OrderLeg,
        *,
        status: Literal["filled", "rejected", "unknown"],
        retcode: int | None,
        text: str,
        item: _Leg | None = None,
        fill_price: float | None = None,
        ticket: int | None = None,
    ) -> ExecutionReport:
        latency_ms = (self.clock.monotonic() - item.sent_at) * 1000 if item else 0.0
        spec = self.specs.get(plan.symbol)
        slippage = 0.0
        if fill_price is not None and spec is not None:
            worse = fill_price - plan.price if plan.side == "buy" else plan.price - fill_price
            slippage = round(worse / spec.point, 1)
        return ExecutionReport(
            ts=self.market_now, plan_id=plan.plan_id, leg_id=leg.leg_id, symbol=plan.symbol, side=plan.side,
            status=status,
            retcode=retcode, retcode_text=text, ticket=ticket, volume=leg.volume,
            requested_price=plan.price, fill_price=fill_price, sl=leg.sl, tp=leg.tp,
            latency_ms=max(0.0, latency_ms), slippage_points=slippage, retries=item.retries if item else 0,
            confidence=plan.confidence, regime=plan.regime, reasons=plan.reasons,
        )
