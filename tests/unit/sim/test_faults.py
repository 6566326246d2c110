"""Injected faults: seeded order_send outcomes, IPC disconnect windows, stale feeds."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.gateway_mt5.broker import BrokerUnavailable
from services.gateway_mt5.sim.broker import SimBroker
from services.gateway_mt5.sim.config import FaultConfig
from tests.unit.sim.helpers import T0, Row, broker, deal, filled, flat

BID, ASK = 3300.0, 3300.2


def when(minutes: float) -> datetime:
    return datetime.fromtimestamp(T0 + minutes * 60, UTC)


def faulty(tmp_path: Path, xau: list[Row] | None = None, **faults: Any) -> SimBroker:
    return broker(tmp_path, xau=xau or flat(BID, 30), btc=flat(100_000.0, 30), faults=faults,
                  initial_balance=1e7)


def outcomes(sim: SimBroker, count: int) -> list[object]:
    seen: list[object] = []
    for _ in range(count):
        result = sim.order_send(deal("XAUUSDm", "buy", 0.01, price=ASK, deviation=10))
        seen.append(result.retcode if result else sim.last_error())
    return seen


def test_faults_repeat_with_the_seed(tmp_path: Path) -> None:
    mix: dict[str, Any] = {"requote": 0.1, "price_changed": 0.1, "price_off": 0.1, "timeout": 0.1,
           "none_filled": 0.1, "none_not_filled": 0.1}
    first = outcomes(faulty(tmp_path, seed=5, **mix), 200)
    again = outcomes(faulty(tmp_path, seed=5, **mix), 200)
    other = outcomes(faulty(tmp_path, seed=6, **mix), 200)
    assert first == again != other
    kinds = {str(x) for x in first}
    assert {"10009", "10004", "10020", "10021", "10012", "(-10005, 'IPC timeout')"} <= kinds


def test_faults_are_off_by_default(tmp_path: Path) -> None:
    assert set(outcomes(faulty(tmp_path), 50)) == {10009}


def test_none_but_filled_leaves_a_position(tmp_path: Path) -> None:
    sim = faulty(tmp_path, none_filled=1.0)
    assert sim.order_send(deal("XAUUSDm", "buy", 0.1, comment="leg-7")) is None
    assert sim.last_error() == (-10005, "IPC timeout")
    [position] = sim.positions()
    assert position.comment == "leg-7" and position.volume == 0.1


def test_none_not_filled_leaves_nothing(tmp_path: Path) -> None:
    sim = faulty(tmp_path, none_not_filled=1.0)
    assert sim.order_send(deal("XAUUSDm", "buy", 0.1)) is None
    assert sim.last_error() == (-10005, "IPC timeout")
    assert sim.positions() == []


@pytest.mark.parametrize(("fault", "retcode"), [("timeout", 10012), ("price_changed", 10020), ("price_off", 10021)])
def test_refusing_faults_leave_nothing(tmp_path: Path, fault: str, retcode: int) -> None:
    probabilities: dict[str, Any] = {fault: 1.0}
    sim = faulty(tmp_path, **probabilities)
    result = sim.order_send(deal("XAUUSDm", "buy", 0.1))
    assert result is not None and result.retcode == retcode
    assert sim.positions() == []


def test_requote_fills_within_the_deviation_and_requotes_beyond_it(tmp_path: Path) -> None:
    sim = faulty(tmp_path, requote=1.0, requote_shift_points=40)
    refused = sim.order_send(deal("XAUUSDm", "buy", 0.1, price=ASK, deviation=0))
    assert refused is not None and refused.retcode == 10004
    assert ASK < refused.ask <= ASK + 0.04 and round(refused.ask - refused.bid, 3) == 0.2
    slipped = filled(sim.order_send(deal("XAUUSDm", "buy", 0.1, price=ASK, deviation=40)))
    assert ASK < slipped.price <= ASK + 0.04
    assert sim.positions()[0].price_open == slipped.price
    no_price = sim.order_send(deal("XAUUSDm", "sell", 0.1, deviation=1000))
    assert no_price is not None and no_price.retcode == 10004


def test_a_disconnect_window_fails_every_call_but_the_market_runs_on(tmp_path: Path) -> None:
    rows: list[Row] = [*flat(BID, 5), (3300.0, 3300.5, 3298.0, 3299.0), *flat(3299.0, 20)]
    sim = faulty(tmp_path, rows, disconnects=[{"start": when(3), "end": when(8)}])
    ticket = filled(sim.order_send(deal("XAUUSDm", "buy", 0.1, sl=3299.0))).order
    with pytest.raises(BrokerUnavailable):
        sim.poll()  # speed 0 stops at the window start, so the window is always seen
    assert sim.now == T0 + 180
    for call in (sim.account, sim.positions, lambda: sim.history("XAUUSDm", "M1", 5), sim.symbols):
        with pytest.raises(BrokerUnavailable):
            call()
    assert sim.order_send(deal("XAUUSDm", "sell", 0.1, position=ticket)) is None
    assert sim.last_error() == (-10004, "No IPC connection")
    with pytest.raises(BrokerUnavailable):
        sim.advance_to(T0 + 7 * 60)
    after = sim.advance_to(T0 + 9 * 60)
    assert [(b.symbol, b.time) for b in after.bars] == [
        (s, T0 + 60 * k) for k in range(1, 9) for s in ("XAUUSDm", "BTCUSDm")
    ]
    [stopped] = after.deals  # the SL hit at 00:05:30 while the terminal was unreachable
    assert (stopped.position_id, stopped.reason, stopped.time) == (ticket, 4, T0 + 5 * 60 + 30)
    assert sim.positions() == []


def test_a_stale_window_holds_one_symbol_back(tmp_path: Path) -> None:
    rows: list[Row] = [*flat(BID, 5), *flat(3305.0, 25)]
    sim = faulty(tmp_path, rows, stale=[{"symbol": "XAUUSDm", "start": when(3), "end": when(8)}])
    before = sim.advance_to(T0 + 3 * 60)
    assert [b.time for b in before.bars if b.symbol == "XAUUSDm"] == [T0 + 60, T0 + 120]
    during = sim.advance_to(T0 + 7 * 60)
    assert {b.symbol for b in during.bars} == {"BTCUSDm"} and {t.symbol for t in during.ticks} == {"BTCUSDm"}
    assert sim.history("XAUUSDm", "M1", 1)[0].close_time == T0 + 3 * 60
    fill = filled(sim.order_send(deal("XAUUSDm", "sell", 0.1)))
    assert fill.price == 3305.0  # the server trades at the real price the client has not seen
    after = sim.advance_to(T0 + 9 * 60)
    gold = [b.time for b in after.bars if b.symbol == "XAUUSDm"]
    assert gold == [T0 + 60 * k for k in range(3, 9)]
    assert [t.symbol for t in after.ticks] == ["XAUUSDm", "BTCUSDm"]
    assert after.bars == sorted(after.bars, key=lambda b: (b.time, b.symbol != "XAUUSDm"))


def test_probabilities_above_one_are_refused() -> None:
    with pytest.raises(ValueError, match=r"sum to 1\.2 > 1"):
        FaultConfig(timeout=0.6, requote=0.6)


def test_connect_is_required(tmp_path: Path) -> None:
    sim = faulty(tmp_path)
    sim.shutdown()
    with pytest.raises(BrokerUnavailable):
        sim.poll()
    assert sim.order_send(deal("XAUUSDm", "buy", 0.1)) is None
    assert sim.last_error() == (-10004, "No IPC connection")
    sim.connect()
    filled(sim.order_send(deal("XAUUSDm", "buy", 0.1)))
