"""The executor core's retcode policy, one request at a time, against scripted gateway replies.

The replies are wire messages as the gateway sends them (the edge is faked, not our classes), so every
retcode MT5 can answer is reachable, including those the simulated broker never produces.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from services.executor.core import ExecutorCore
from services.executor.journal import Journal
from shared import mt5
from shared.clock import FakeClock
from shared.messages import (
    AccountRequest,
    AnyMessage,
    DealsReply,
    DealsRequest,
    ErrorReply,
    ExecutionReport,
    Message,
    OrderSendReply,
    OrderSendRequest,
    PositionData,
    PositionsReply,
    PositionsRequest,
    SymbolSpec,
    TradeResult,
)
from tests.unit.executor.helpers import RULES, SETTINGS, START, plan

XAU = SymbolSpec(name="XAUUSDm", digits=3, point=0.001, trade_tick_size=0.001, trade_tick_value=0.1,
                 trade_contract_size=100, volume_min=0.01, volume_max=200, volume_step=0.01,
                 trade_stops_level=0, trade_freeze_level=0, trade_mode=4, filling_mode=3, spread=200)
PRICE = 3300.2


def started(tmp_path: Path, **settings: float) -> tuple[ExecutorCore, FakeClock]:
    """A core past its start-up reconciliation (the broker showed no position)."""
    clock = FakeClock()
    core = ExecutorCore(clock, Journal(tmp_path / "executor.sqlite"), SETTINGS.model_copy(update=settings), RULES)
    core.set_spec(XAU)
    assert core.start() == []
    while not core.ready:
        request = core.next_request()
        if isinstance(request, PositionsRequest):
            core.on_reply(PositionsReply(ts=START, parent=request.id, positions=()))
        else:
            assert isinstance(request, DealsRequest), request
            core.on_reply(DealsReply(ts=START, parent=request.id, deals=()))
    return core, clock


def send(core: ExecutorCore) -> OrderSendRequest:
    request = core.next_request()
    assert isinstance(request, OrderSendRequest), request
    return request


def reply_to(request: Message, retcode: int | None, *, price: float = 3300.22, bid: float = 0.0,
             ask: float = 0.0) -> OrderSendReply:
    result = None if retcode is None else TradeResult(retcode=retcode, deal=8, order=7, volume=0.1, price=price,
                                                      bid=bid, ask=ask)
    return OrderSendReply(ts=START, parent=request.id, result=result, last_error_code=1 if result else -10005,
                          last_error_text="" if result else "IPC timeout")


def only_report(messages: Sequence[object]) -> ExecutionReport:
    reports = [m for m in messages if isinstance(m, ExecutionReport)]
    assert len(reports) == 1, messages
    return reports[0]


def position(comment: str, ticket: int = 4242) -> PositionData:
    return PositionData(ticket=ticket, symbol="XAUUSDm", side="buy", volume=0.1, price_open=3300.25, sl=3290.0,
                        tp=3310.0, price_current=3300.0, profit=-2.5, magic=777001, comment=comment, time=START)


def test_a_leg_becomes_an_mt5_deal_request_with_its_id_in_the_comment(tmp_path: Path) -> None:
    core, _ = started(tmp_path)
    assert core.accept(plan(legs=2)) == []
    request = send(core)
    trade = request.request
    assert (trade.action, trade.type, trade.symbol, trade.volume) == (mt5.TRADE_ACTION_DEAL, mt5.ORDER_TYPE_BUY,
                                                                       "XAUUSDm", 0.1)
    assert (trade.sl, trade.tp, trade.magic, trade.comment) == (3290.0, 3310.0, 777001, "XAU1b-1")
    assert trade.type_filling == mt5.ORDER_FILLING_FOK  # filling_mode 3 allows FOK first
    assert core.next_request() is request  # one in flight until its reply
    assert core.queue_len == 2


def test_a_fill_is_reported_with_latency_and_slippage_in_points_and_money(tmp_path: Path) -> None:
    core, clock = started(tmp_path)
    core.accept(plan())
    request = send(core)
    clock.advance(0.035)
    report = only_report(core.on_reply(reply_to(request, 10009, price=3300.22)))
    assert report.status == "filled" and report.ticket == 7 and report.fill_price == 3300.22
    assert round(report.latency_ms, 3) == 35.0
    assert report.slippage_points == 20.0  # 0.020 above the requested ask; a point is 0.001
    assert report.slippage_usd == pytest.approx(0.2)  # 20 ticks x 0.1 USD per tick and lot x 0.1 lot
    assert core.next_request() is None and core.queue_len == 0


def test_a_plan_or_leg_seen_before_is_refused_even_after_a_restart(tmp_path: Path) -> None:
    core, _ = started(tmp_path)
    core.accept(plan(legs=2))
    core.accept(plan(legs=2))
    assert core.queue_len == 2 and core.refused_duplicates == 1
    again, _ = started(tmp_path)  # a restart: the two unsent legs are queued again by the reconciliation
    assert again.queue_len == 2
    again.accept(plan(legs=2))
    again.accept(plan("other", legs=1).model_copy(update={"legs": plan(legs=1).legs}))  # leg XAU1b-1 again
    assert again.queue_len == 2 and again.refused_duplicates == 2


@pytest.mark.parametrize("retcode", [10004, 10020, 10021, 10024, 10028, 10031])
def test_price_retcodes_are_retried_with_a_fresh_price_a_bounded_number_of_times(tmp_path: Path,
                                                                                 retcode: int) -> None:
    core, clock = started(tmp_path)
    core.accept(plan())
    prices = []
    for n in range(SETTINGS.max_retries):
        request = send(core)
        prices.append(request.request.price)
        assert core.on_reply(reply_to(request, retcode, bid=3300.0 + n, ask=3300.3 + n)) == []
        if retcode not in {10004, 10020}:  # the others back off before the resend
            assert core.next_request() is None
            clock.advance(SETTINGS.retry_backoff_s * (n + 1))
            core.on_timer()
    request = send(core)
    prices.append(request.request.price)
    report = only_report(core.on_reply(reply_to(request, retcode)))
    assert report.status == "rejected" and report.retries == SETTINGS.max_retries
    assert mt5.RETCODES[retcode][0] in report.retcode_text
    assert prices == [PRICE, 3300.3, 3301.3, 3302.3]  # each resend at the ask the refusal carried


def test_retries_are_bounded_in_time_too(tmp_path: Path) -> None:
    core, clock = started(tmp_path, max_retries=10, retry_window_s=1.0)
    core.accept(plan())
    sends = 0
    while True:
        request = send(core)
        sends += 1
        clock.advance(0.6)  # a slow broker
        out = core.on_reply(reply_to(request, 10004))
        if out:
            break
    report = only_report(out)
    assert report.status == "rejected" and sends == 2 and "retry budget spent" in report.retcode_text


def test_invalid_fill_is_retried_once_with_the_other_filling_mode(tmp_path: Path) -> None:
    core, _ = started(tmp_path)
    core.accept(plan())
    first = send(core)
    assert core.on_reply(reply_to(first, 10030)) == []
    second = send(core)
    assert second.request.type_filling == mt5.ORDER_FILLING_IOC
    report = only_report(core.on_reply(reply_to(second, 10030)))
    assert report.status == "rejected" and report.retcode == 10030 and report.retries == 1


@pytest.mark.parametrize("retcode", [10008, 10009, 10010])
def test_every_success_retcode_is_a_fill(tmp_path: Path, retcode: int) -> None:
    core, _ = started(tmp_path)
    core.accept(plan())
    report = only_report(core.on_reply(reply_to(send(core), retcode)))
    assert report.status == "filled" and report.retcode == retcode and report.ticket == 7


@pytest.mark.parametrize("retcode", [10006, 10013, 10014, 10015, 10016, 10017, 10018, 10019, 10026, 10027, 10029,
                                     10033, 10034, 10036, 10040, 10044, 99999])
def test_a_final_retcode_is_reported_by_name_and_meaning_without_a_resend(tmp_path: Path, retcode: int) -> None:
    core, _ = started(tmp_path)
    core.accept(plan())
    report = only_report(core.on_reply(reply_to(send(core), retcode)))
    assert report.status == "rejected" and report.retcode == retcode and report.retries == 0
    assert report.retcode_text == mt5.describe_retcode(retcode)
    assert core.next_request() is None


def unknown_replies(request: Message) -> dict[str, AnyMessage | None]:
    return {
        "none": reply_to(request, None), "10011": reply_to(request, 10011), "10012": reply_to(request, 10012),
        "no_reply": None, "gateway_error": ErrorReply(ts=START, parent=request.id, code="x", text="boom"),
    }


@pytest.mark.parametrize("kind", ["none", "10011", "10012", "no_reply", "gateway_error"])
def test_an_unknown_outcome_asks_the_broker_and_a_found_order_is_not_resent(tmp_path: Path, kind: str) -> None:
    core, _ = started(tmp_path)
    core.accept(plan(legs=2))
    first = send(core)
    assert core.on_reply(unknown_replies(first)[kind]) == []
    check = core.next_request()
    assert isinstance(check, PositionsRequest) and check.magic == 777001  # asked, not resent
    deals = core.on_reply(PositionsReply(ts=START, parent=check.id, positions=(position("XAU1b-1"),)))
    ask = core.next_request()
    assert deals == [] and isinstance(ask, DealsRequest)
    report = only_report(core.on_reply(DealsReply(ts=START, parent=ask.id, deals=())))
    assert report.status == "filled" and report.ticket == 4242 and report.fill_price == 3300.25
    assert send(core).request.comment == "XAU1b-2"  # moved on to the next leg


def test_an_order_the_broker_does_not_show_is_sent_again_after_the_check(tmp_path: Path) -> None:
    core, _ = started(tmp_path)
    core.accept(plan())
    first = send(core)
    core.on_reply(reply_to(first, None))
    check = core.next_request()
    assert isinstance(check, PositionsRequest)
    core.on_reply(PositionsReply(ts=START, parent=check.id, positions=(position("another-leg", 9),)))
    ask = core.next_request()
    assert isinstance(ask, DealsRequest)
    core.on_reply(DealsReply(ts=START, parent=ask.id, deals=()))
    again = send(core)
    assert again.request.comment == "XAU1b-1" and again.id != first.id
    report = only_report(core.on_reply(reply_to(again, 10009)))
    assert report.status == "filled" and report.retries == 1


def test_while_the_gateway_is_silent_the_owner_hears_of_the_unknown_once_and_the_check_repeats(
    tmp_path: Path,
) -> None:
    core, clock = started(tmp_path)
    core.accept(plan())
    core.on_reply(None)  # the send
    check = core.next_request()
    assert isinstance(check, PositionsRequest)
    report = only_report(core.on_reply(None))
    assert report.status == "unknown" and "no reply" in report.retcode_text
    assert core.next_request() is None
    clock.advance(SETTINGS.verify_retry_s)
    assert core.on_timer() == []
    check = core.next_request()
    assert isinstance(check, PositionsRequest)
    assert core.on_reply(None) == []  # told once
    assert core.queue_len == 1


def test_an_expired_plan_is_refused_without_sending(tmp_path: Path) -> None:
    core, _ = started(tmp_path)
    report = only_report(core.accept(plan(expires_at=START - 1)))
    assert report.status == "rejected" and "expired" in report.retcode_text and core.next_request() is None


def test_plans_wait_for_the_reconciliation(tmp_path: Path) -> None:
    core = ExecutorCore(FakeClock(), Journal(tmp_path / "executor.sqlite"), SETTINGS, RULES)
    core.set_spec(XAU)
    core.start()
    reconciling = core.next_request()
    assert isinstance(reconciling, PositionsRequest)
    assert core.accept(plan()) == [] and core.next_request() is reconciling and core.queue_len == 2
    core.on_reply(PositionsReply(ts=START, parent=reconciling.id, positions=()))
    assert core.ready and send(core).request.comment == "XAU1b-1"


def test_any_request_but_the_owner_commands_is_refused(tmp_path: Path) -> None:
    core, _ = started(tmp_path)
    [reply] = core.command(AccountRequest(ts=START))
    assert isinstance(reply, ErrorReply) and reply.code == "unsupported" and core.queue_len == 0
