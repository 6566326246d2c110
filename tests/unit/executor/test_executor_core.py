"""The executor core's retcode policy and its one-leg-at-a-time, never-twice sending."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from services.executor.core import MAX_PRICE_RETRIES, ExecutorCore
from shared import mt5
from shared.clock import FakeClock
from shared.messages import (
    ExecutionReport,
    OrderLeg,
    OrderPlan,
    OrderSendReply,
    OrderSendRequest,
    SymbolSpec,
    TradeResult,
)

XAU = SymbolSpec(name="XAUUSDm", digits=3, point=0.001, trade_tick_size=0.001, trade_tick_value=0.1,
                 trade_contract_size=100, volume_min=0.01, volume_max=200, volume_step=0.01,
                 trade_stops_level=0, trade_freeze_level=0, trade_mode=4, filling_mode=3, spread=200)


def plan(legs: int = 1, side: Literal["buy", "sell"] = "buy", expires_at: float = 10_000.0) -> OrderPlan:
    return OrderPlan(
        ts=1_000.0, plan_id="XAU960b", signal_id="XAUUSDm-960-buy", symbol="XAUUSDm", side=side,
        price=3311.5, deviation_points=50, magic=777001,
        legs=tuple(OrderLeg(leg_id=f"XAU960b-{n}", volume=0.11, sl=3309.0, tp=3312.5) for n in range(1, legs + 1)),
        confidence=0.91, regime="A", reasons=("M1 up",), expires_at=expires_at,
    )


def core() -> tuple[ExecutorCore, FakeClock]:
    clock = FakeClock()
    executor = ExecutorCore(clock)
    executor.set_spec(XAU)
    return executor, clock


def reply_to(request: OrderSendRequest, retcode: int | None, price: float = 3311.52) -> OrderSendReply:
    result = None if retcode is None else TradeResult(retcode=retcode, deal=7, order=7, volume=0.11, price=price)
    return OrderSendReply(ts=1_000.0, parent=request.id, result=result,
                          last_error_code=1 if result else -10005, last_error_text="" if result else "IPC timeout")


def only_report(messages: Sequence[object]) -> ExecutionReport:
    assert len(messages) == 1 and isinstance(messages[0], ExecutionReport)
    return messages[0]


def test_a_leg_becomes_an_mt5_deal_request_with_its_id_in_the_comment() -> None:
    executor, _ = core()
    assert executor.accept(plan()) == []
    request = executor.next_request()
    assert request is not None
    trade = request.request
    assert (trade.action, trade.type, trade.symbol, trade.volume) == (mt5.TRADE_ACTION_DEAL, mt5.ORDER_TYPE_BUY,
                                                                       "XAUUSDm", 0.11)
    assert (trade.sl, trade.tp, trade.magic, trade.comment) == (3309.0, 3312.5, 777001, "XAU960b-1")
    assert trade.type_filling == mt5.ORDER_FILLING_FOK  # filling_mode 3 allows FOK first
    assert executor.next_request() is request  # one in flight until its reply
    assert executor.queue_len == 1


def test_a_fill_is_reported_with_latency_and_slippage() -> None:
    executor, clock = core()
    executor.accept(plan())
    request = executor.next_request()
    assert request is not None
    clock.advance(0.035)
    report = only_report(executor.on_reply(reply_to(request, 10009, price=3311.52)))
    assert report.status == "filled" and report.ticket == 7 and report.fill_price == 3311.52
    assert round(report.latency_ms, 3) == 35.0
    assert report.slippage_points == 20.0  # bought 0.020 above the requested price, 1 point = 0.001
    assert executor.next_request() is None and executor.queue_len == 0


def test_a_duplicate_leg_is_never_queued_twice() -> None:
    executor, _ = core()
    executor.accept(plan(legs=2))
    executor.accept(plan(legs=2))
    assert executor.queue_len == 2


def test_requotes_are_retried_a_bounded_number_of_times() -> None:
    executor, _ = core()
    executor.accept(plan())
    for _ in range(MAX_PRICE_RETRIES):
        request = executor.next_request()
        assert request is not None
        assert executor.on_reply(reply_to(request, 10004)) == []
    request = executor.next_request()
    assert request is not None
    report = only_report(executor.on_reply(reply_to(request, 10004)))
    assert report.status == "rejected" and report.retries == MAX_PRICE_RETRIES
    assert "REQUOTE" in report.retcode_text


def test_invalid_fill_is_retried_once_with_the_other_filling_mode() -> None:
    executor, _ = core()
    executor.accept(plan())
    first = executor.next_request()
    assert first is not None
    assert executor.on_reply(reply_to(first, 10030)) == []
    second = executor.next_request()
    assert second is not None and second.request.type_filling == mt5.ORDER_FILLING_IOC
    report = only_report(executor.on_reply(reply_to(second, 10030)))
    assert report.status == "rejected" and report.retcode == 10030


def test_an_unknown_outcome_is_never_resent() -> None:
    executor, _ = core()
    executor.accept(plan(legs=2))
    first = executor.next_request()
    assert first is not None
    report = only_report(executor.on_reply(reply_to(first, None)))
    assert report.status == "unknown" and "-10005" in report.retcode_text
    second = executor.next_request()
    assert second is not None and second.request.comment == "XAU960b-2"  # moved on, did not resend leg 1
    assert only_report(executor.on_reply(None)).status == "unknown"  # no reply at all: unknown too


def test_a_final_retcode_is_reported_by_name() -> None:
    executor, _ = core()
    executor.accept(plan())
    request = executor.next_request()
    assert request is not None
    report = only_report(executor.on_reply(reply_to(request, 10016)))
    assert report.status == "rejected" and "TRADE_RETCODE_INVALID_STOPS" in report.retcode_text


def test_an_expired_plan_is_refused_without_sending() -> None:
    executor, _ = core()
    report = only_report(executor.accept(plan(expires_at=999.0)))
    assert report.status == "rejected" and executor.next_request() is None
