"""The executor against the simulated broker with fault injection, in one process on a fake clock.

After every scenario the broker holds exactly the legs the journal says are filled, each once.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.executor.desk import CHECKPOINTS
from services.executor.telemetry import ORDER_LOG_FILE, order_log, setup_order_log
from services.gateway_mt5.broker import BrokerUnavailable
from shared import mt5
from shared.messages import (
    DealsRequest,
    ExecutionReport,
    Message,
    OrderPlan,
    OrderSendRequest,
    PositionAdopted,
    PositionsRequest,
    SymbolSpecRequest,
    TradeRequest,
)
from tests.unit.executor.helpers import MAGIC, START, Bench, plan, sim_broker


def reports(messages: list[Message]) -> dict[str, ExecutionReport]:
    """The last report of each leg."""
    return {m.leg_id: m for m in messages if isinstance(m, ExecutionReport)}


def bench(tmp_path: Path, **faults: Any) -> Bench:
    setup = Bench(tmp_path, sim_broker(tmp_path, faults=faults))
    setup.start()
    setup.drive()
    assert setup.core.ready
    return setup


@pytest.fixture
def order_file(tmp_path: Path) -> Iterator[Path]:
    handler = setup_order_log(tmp_path / "Logs", [])
    yield tmp_path / "Logs" / ORDER_LOG_FILE
    order_log.removeHandler(handler)
    handler.close()


def fields(line: str) -> dict[str, str]:
    pairs = [part.split("=", 1) for part in line.split(" ")[1:] if "=" in part]
    return {key: value for key, value in pairs}


def test_legs_of_both_symbols_are_filled_once_and_each_order_is_logged(tmp_path: Path, order_file: Path) -> None:
    setup = bench(tmp_path)
    setup.accept(plan("XAU1b", legs=3))
    setup.accept(plan("BTC1s", symbol="BTCUSDm", side="sell", legs=2, volume=0.05))
    done = reports(setup.drive())
    assert {leg: r.status for leg, r in done.items()} == {
        "XAU1b-1": "filled", "XAU1b-2": "filled", "XAU1b-3": "filled", "BTC1s-1": "filled", "BTC1s-2": "filled"}
    assert done["BTC1s-1"].fill_price == 100_000.0 and done["XAU1b-1"].fill_price == 3300.2
    setup.assert_broker_matches_journal()
    assert len(setup.positions()) == 5
    lines = [fields(line) for line in order_file.read_text().splitlines()]
    assert [(f["leg"], f["status"], f["retcode"]) for f in lines] == [
        (leg, "filled", "10009") for leg in ("XAU1b-1", "XAU1b-2", "XAU1b-3", "BTC1s-1", "BTC1s-2")]
    assert {"latency_ms", "slippage_points", "slippage_usd", "retries", "ticket", "fill"} <= set(lines[0])


@pytest.mark.parametrize(("fault", "retcode"), [("requote", 10004), ("price_changed", 10020), ("price_off", 10021)])
def test_a_broker_that_keeps_refusing_the_price_gets_a_bounded_number_of_resends(
    tmp_path: Path, fault: str, retcode: int,
) -> None:
    setup = bench(tmp_path, **{fault: 1.0})
    setup.accept(plan().model_copy(update={"deviation_points": 0}))  # no requote is within a deviation of 0
    report = reports(setup.drive())["XAU1b-1"]
    assert report.status == "rejected" and report.retcode == retcode and report.retries == 3
    sends = [m for m in setup.link.seen if isinstance(m, OrderSendRequest)]
    assert len(sends) == 4 and setup.positions() == []
    setup.assert_broker_matches_journal()


def test_a_requote_within_the_deviation_fills_with_its_slippage_measured(tmp_path: Path) -> None:
    setup = bench(tmp_path, requote=1.0, requote_shift_points=30)
    setup.accept(plan())
    report = reports(setup.drive())["XAU1b-1"]
    assert report.status == "filled" and report.fill_price is not None
    assert 1 <= report.slippage_points <= 30
    assert report.slippage_usd == pytest.approx(report.slippage_points * 0.1 * 0.1)  # tick value 0.1, 0.1 lot
    setup.assert_broker_matches_journal()


def test_seeded_faults_of_every_kind_still_fill_each_leg_at_most_once(tmp_path: Path) -> None:
    setup = bench(tmp_path, seed=11, requote=0.12, price_changed=0.12, price_off=0.12, timeout=0.12,
                  none_filled=0.12, none_not_filled=0.12)
    for n in range(8):
        setup.accept(plan(f"P{n}", side="buy" if n % 2 else "sell", legs=3, volume=0.01))
    done = reports(setup.drive(limit=3000))
    assert len(done) == 24 and all(r.status in ("filled", "rejected") for r in done.values())
    assert sum(r.status == "filled" for r in done.values()) >= 20 and any(r.retries for r in done.values())
    setup.assert_broker_matches_journal()


def test_an_order_filled_behind_a_none_result_is_found_and_not_resent(tmp_path: Path) -> None:
    setup = bench(tmp_path, none_filled=1.0)
    setup.accept(plan(legs=2))
    done = reports(setup.drive())
    assert [r.status for r in done.values()] == ["filled", "filled"]
    assert all(r.retries == 0 and "found open" in r.retcode_text for r in done.values())
    assert len([m for m in setup.link.seen if isinstance(m, OrderSendRequest)]) == 2
    setup.assert_broker_matches_journal()


@pytest.mark.parametrize("fault", ["none_not_filled", "timeout"])
def test_an_unknown_outcome_where_nothing_was_filled_is_checked_then_sent_again_within_budget(
    tmp_path: Path, fault: str,
) -> None:
    setup = bench(tmp_path, **{fault: 1.0})
    before = len(setup.link.seen)
    setup.accept(plan())
    report = reports(setup.drive())["XAU1b-1"]
    assert report.status == "rejected" and "not at the broker" in report.retcode_text and report.retries == 3
    kinds = [type(m) for m in setup.link.seen[before:] if not isinstance(m, SymbolSpecRequest)]
    assert kinds == [OrderSendRequest, PositionsRequest, DealsRequest] * 4  # never a blind resend
    assert setup.positions() == []
    setup.assert_broker_matches_journal()


@pytest.mark.parametrize("mode", ["down", "lose_replies"])
def test_gateway_down_during_a_send(tmp_path: Path, mode: str) -> None:
    """'down': the request never reached the broker; 'lose_replies': the broker filled it, the answer was lost."""
    setup = bench(tmp_path)
    setup.core.set_spec(setup.sim.symbol_spec("XAUUSDm"))
    setup.link.mode = mode  # type: ignore[assignment]
    setup.accept(plan())
    for _ in range(6):  # the send, then the check, which stays unanswered while the gateway is down
        request = setup.core.next_request()
        if request is None:
            setup.clock.advance(0.5)
            setup.core.on_timer()
        else:
            setup.take(setup.core.on_reply(setup.link(request)))
    assert [r.status for r in setup.out if isinstance(r, ExecutionReport)] == ["unknown"]
    setup.link.mode = "up"
    report = reports(setup.drive())["XAU1b-1"]
    assert report.status == "filled"
    assert report.retries == (1 if mode == "down" else 0)
    assert len(setup.positions()) == 1
    setup.assert_broker_matches_journal()


def test_an_ipc_disconnect_window_at_the_broker(tmp_path: Path) -> None:
    """The terminal loses its IPC link (order_send None, -10004); the check waits until it is back."""
    window = {"start": datetime.fromtimestamp(START + 30, UTC), "end": datetime.fromtimestamp(START + 150, UTC)}
    setup = bench(tmp_path, disconnects=[window])
    setup.core.set_spec(setup.sim.symbol_spec("XAUUSDm"))
    with pytest.raises(BrokerUnavailable):
        setup.sim.advance_to(START + 60)
    setup.accept(plan())
    setup.drive(limit=8, settle=False)  # unknown; the check meets 'broker unavailable' and pauses
    statuses = [r.status for r in setup.out if isinstance(r, ExecutionReport)]
    assert statuses == ["unknown"] and setup.core.queue_len == 1
    setup.sim.advance_to(START + 151)  # the window is over (the gateway alone cannot leave it: see the report)
    report = reports(setup.drive())["XAU1b-1"]
    assert report.status == "filled" and report.retries == 1
    setup.assert_broker_matches_journal()


def test_a_stale_filling_mode_is_retried_once_with_the_other(tmp_path: Path) -> None:
    setup = Bench(tmp_path, sim_broker(tmp_path, symbols={"XAUUSDm": {"spec": {"filling_mode": 2}}}))
    setup.link.spec_overrides = {"XAUUSDm": {"filling_mode": 3}}  # the executor still believes FOK is allowed
    setup.start()
    setup.accept(plan())
    report = reports(setup.drive())["XAU1b-1"]
    fillings = [m.request.type_filling for m in setup.link.seen if isinstance(m, OrderSendRequest)]
    assert report.status == "filled" and fillings == [mt5.ORDER_FILLING_FOK, mt5.ORDER_FILLING_IOC]


@pytest.mark.parametrize("step", CHECKPOINTS)
@pytest.mark.parametrize("leg", [1, 3])
def test_a_crash_at_any_journal_step_neither_loses_nor_repeats_a_leg(tmp_path: Path, step: str, leg: int) -> None:
    setup = bench(tmp_path, none_filled=1.0 if step == "unknown" else 0.0)
    setup.crash_at, setup.crash_skip = step, 0 if step == "intended" else leg - 1
    setup.accept(plan(legs=3))
    done = reports(setup.drive())
    assert setup.crashes == 1
    assert {r.leg_id: r.status for r in done.values()} == {"XAU1b-1": "filled", "XAU1b-2": "filled",
                                                          "XAU1b-3": "filled"}
    assert sorted(p.comment for p in setup.positions()) == ["XAU1b-1", "XAU1b-2", "XAU1b-3"]
    setup.assert_broker_matches_journal()
    again = len(setup.out)
    setup.restart()
    setup.drive()
    assert [m for m in setup.out[again:] if isinstance(m, ExecutionReport | PositionAdopted)] == []


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), crash_after=st.integers(0, 40), legs=st.integers(1, 3))
def test_a_crash_anywhere_under_any_faults_leaves_the_broker_as_the_journal_says(
    tmp_path_factory: pytest.TempPathFactory, seed: int, crash_after: int, legs: int,
) -> None:
    setup = bench(tmp_path_factory.mktemp("any"), seed=seed, requote=0.1, price_changed=0.1, price_off=0.05,
                  timeout=0.1, none_filled=0.1, none_not_filled=0.1)
    setup.crash_countdown = crash_after
    orders = [plan(f"H{n}", side="sell" if n else "buy", legs=legs, volume=0.01) for n in range(2)]
    for order in orders:
        setup.accept(order)
    done = reports(setup.drive(limit=3000))
    assert set(done) == {leg.leg_id for order in orders for leg in order.legs}
    assert all(r.status in ("filled", "rejected") for r in done.values())
    setup.assert_broker_matches_journal()


def test_a_position_no_leg_explains_is_adopted_once(tmp_path: Path) -> None:
    sim = sim_broker(tmp_path)
    sim.connect()
    manual = TradeRequest(action=mt5.TRADE_ACTION_DEAL, symbol="BTCUSDm", volume=0.02, type=mt5.ORDER_TYPE_BUY,
                          magic=MAGIC, comment="by hand", type_filling=mt5.ORDER_FILLING_FOK)
    foreign = manual.model_copy(update={"magic": 1, "comment": "another EA"})
    assert sim.order_send(manual) is not None and sim.order_send(foreign) is not None
    setup = Bench(tmp_path, sim)
    setup.start()
    setup.drive()
    [adopted] = [m for m in setup.out if isinstance(m, PositionAdopted)]
    assert adopted.comment == "by hand" and adopted.symbol == "BTCUSDm" and adopted.volume == 0.02
    setup.restart()
    setup.drive()
    assert [m for m in setup.out if isinstance(m, PositionAdopted)] == [adopted]
    setup.assert_broker_matches_journal()


def test_a_leg_journaled_as_rejected_but_open_at_the_broker_is_corrected(tmp_path: Path) -> None:
    setup = bench(tmp_path)
    late: OrderPlan = plan(expires_at=START - 1)
    assert reports(setup.accept(late))["XAU1b-1"].status == "rejected"
    leg = late.legs[0]
    setup.sim.order_send(TradeRequest(action=mt5.TRADE_ACTION_DEAL, symbol="XAUUSDm", volume=leg.volume,
                                      type=mt5.ORDER_TYPE_BUY, magic=MAGIC, comment=leg.leg_id,
                                      type_filling=mt5.ORDER_FILLING_FOK))
    setup.restart()
    report = reports(setup.drive())["XAU1b-1"]
    assert report.status == "filled" and "filled late" in report.retcode_text
    setup.assert_broker_matches_journal()


def test_a_report_lost_in_a_crash_is_sent_on_restart_and_only_then(tmp_path: Path) -> None:
    setup = bench(tmp_path)
    setup.deliver = False  # the push to risk never happened
    setup.accept(plan())
    setup.drive()
    setup.deliver = True
    resent = setup.restart()
    assert [(r.leg_id, r.status) for r in resent if isinstance(r, ExecutionReport)] == [("XAU1b-1", "filled")]
    assert [m for m in setup.restart() if isinstance(m, ExecutionReport)] == []


@pytest.mark.parametrize("step", ["intended", "sending", "replied"])
def test_a_leg_written_sending_with_its_plan_is_sent_exactly_once_across_a_crash(tmp_path: Path, step: str) -> None:
    """Nothing in flight and the spec known: the first leg leaves at once, so the plan's own transaction records it
    'sending' (one commit before the order goes, not two). A crash right after that commit, or after the send,
    still ends with the leg filled once; the second leg waits its turn as 'intended'."""
    setup = bench(tmp_path)
    setup.core.set_spec(setup.sim.symbol_spec("XAUUSDm"))
    setup.crash_at = step
    setup.accept(plan(legs=2))
    if step != "replied":
        assert setup.crashes == 1
        states = {leg.leg_id: (leg.state, leg.attempts, leg.sent_at is not None) for leg in setup.legs()}
        assert states == {"XAU1b-1": ("sending", 1, True), "XAU1b-2": ("intended", 0, False)}
    done = reports(setup.drive())
    assert setup.crashes == 1
    assert {r.leg_id: r.status for r in done.values()} == {"XAU1b-1": "filled", "XAU1b-2": "filled"}
    assert sorted(p.comment for p in setup.positions()) == ["XAU1b-1", "XAU1b-2"]
    setup.assert_broker_matches_journal()


def test_a_plan_arriving_while_a_leg_is_in_flight_is_written_intended(tmp_path: Path) -> None:
    setup = bench(tmp_path)
    setup.core.set_spec(setup.sim.symbol_spec("XAUUSDm"))
    setup.accept(plan(legs=1))
    setup.accept(plan("XAU2b", legs=1))
    assert {leg.leg_id: leg.state for leg in setup.legs()} == {"XAU1b-1": "sending", "XAU2b-1": "intended"}
    setup.drive()
    assert {leg.leg_id: (leg.state, leg.attempts) for leg in setup.legs()} == {
        "XAU1b-1": ("filled", 1), "XAU2b-1": ("filled", 1)}
