"""What only the real adapter has to get right: IPC failures and recovery, hard deadlines, login, locks,
specs read from the terminal, and bars published on time around gold's break, through the gateway core.

The terminal is the fake MetaTrader5 module over the simulator; the clock is a FakeClock moved with the
market, so backoff delays are exact without sleeping. Only the deadline tests wait for real (0.3 s).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from services.gateway_mt5.broker import BrokerUnavailable
from services.gateway_mt5.core import GatewayCore
from services.gateway_mt5.terminal.adapter import TerminalBroker
from services.gateway_mt5.terminal.lock import LockHeld
from services.gateway_mt5.terminal.settings import Credentials
from shared.clock import FakeClock
from shared.config import GatewaySection
from shared.messages import (
    AccountReply,
    AccountRequest,
    Bar,
    DealsReply,
    DealsRequest,
    ErrorReply,
    GatewayHeartbeat,
    HistoryReply,
    HistoryRequest,
    OrderSendReply,
    OrderSendRequest,
    PositionsReply,
    PositionsRequest,
    SymbolSpecReply,
    SymbolSpecRequest,
)
from tests.fakes.fake_mt5 import FakeMetaTrader5
from tests.unit.gateway.venues import CREDENTIALS, make_terminal, settings
from tests.unit.sim.helpers import T0, Row, broker, deal, flat

GOLD, BTC = "XAUUSDm", "BTCUSDm"
Terminal = tuple[TerminalBroker, FakeMetaTrader5, FakeClock]


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Callable[..., Terminal]]:
    """``terminal(xau_rows, btc_rows, connect=True, sim={...}, **settings)`` -> (adapter, fake, clock)."""
    made: list[TerminalBroker] = []

    def factory(xau: list[Row] | None = None, btc: list[Row] | None = None, *, connect: bool = True,
                sim: dict[str, Any] | None = None, t0: int = T0, **overrides: Any) -> Terminal:
        market = broker(tmp_path, xau=xau if xau is not None else flat(3300.0, 30),
                        btc=btc if btc is not None else flat(100_000.0, 30), t0=t0, **(sim or {}))
        adapter, fake, clock = make_terminal(market, tmp_path, connect=connect, **overrides)
        made.append(adapter)
        return adapter, fake, clock

    yield factory
    for adapter in made:
        adapter.close()


def move(fake: FakeMetaTrader5, clock: FakeClock, t: float) -> None:
    fake.advance_to(t)
    clock.advance(max(0.0, t - clock.now()))


def bars_of(update_bars: list[Bar], symbol: str) -> list[int]:
    return [bar.time for bar in update_bars if bar.symbol == symbol]


def wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


@pytest.mark.parametrize("error", [(-10001, "IPC send failed"), (-10002, "IPC recv failed"),
                                   (-10004, "No IPC connection"), (-10005, "IPC timeout")])
def test_ipc_errors_lose_the_link_and_reconnection_backs_off_exponentially(
    terminal: Any, error: tuple[int, str],
) -> None:
    adapter, fake, clock = terminal()
    move(fake, clock, T0 + 120)
    assert bars_of(adapter.poll().bars, GOLD) == [T0 + 60]
    fake.fail_next(3, error)  # the next three calls, whichever they are
    move(fake, clock, T0 + 180)
    with pytest.raises(BrokerUnavailable):
        adapter.poll()
    assert not adapter.connected
    attempts = fake.calls["initialize"]
    for wait, tried in ((0.0, 1), (0.4, 1), (0.1, 2), (0.9, 2), (0.1, 3)):
        clock.advance(wait)
        try:
            adapter.connect()
        except BrokerUnavailable:
            assert tried < 3
        assert fake.calls["initialize"] == attempts + tried, (wait, tried)
    assert adapter.connected and adapter.reconnects == 1
    move(fake, clock, T0 + 360)
    update = adapter.poll()
    for symbol in (GOLD, BTC):  # everything missed, once, in order
        assert bars_of(update.bars, symbol) == [T0 + 120, T0 + 180, T0 + 240, T0 + 300]


def test_a_failed_read_without_an_ipc_error_skips_one_symbol_and_keeps_the_link(terminal: Any) -> None:
    adapter, fake, clock = terminal()
    fake.fail_next(1, (-1, "Terminal: Call failed"), calls={"copy_rates_from_pos"})
    move(fake, clock, T0 + 120)
    first = adapter.poll()
    assert bars_of(first.bars, GOLD) == [] and bars_of(first.bars, BTC) == [T0 + 60]
    move(fake, clock, T0 + 180)
    second = adapter.poll()
    assert bars_of(second.bars, GOLD) == [T0 + 60, T0 + 120] and bars_of(second.bars, BTC) == [T0 + 120]
    assert adapter.connected and fake.calls["initialize"] == 1


def test_a_hanging_initialize_cannot_hang_the_gateway(terminal: Any) -> None:
    adapter, fake, clock = terminal(connect=False, init_deadline_s=90.0, connect_wait_s=0.05)
    release = fake.hang_initialize()
    began = time.monotonic()
    with pytest.raises(BrokerUnavailable, match="connecting"):
        adapter.connect()  # the loop waits connect_wait_s, not the terminal
    assert time.monotonic() - began < 2.0 and adapter.busy == "connect"
    core = GatewayCore(adapter, GatewaySection(), clock)
    assert not core.connect()
    beat = core.heartbeat()[1]
    assert isinstance(beat, GatewayHeartbeat) and not beat.connected
    assert {name: health.reason for name, health in beat.symbols.items()} == {GOLD: "disconnected",
                                                                             BTC: "disconnected"}
    assert adapter.order_send(deal(GOLD, "buy", 0.1)) is None and adapter.last_error()[0] == -10004
    clock.advance(89)
    with pytest.raises(BrokerUnavailable, match="connecting"):
        adapter.connect()
    clock.advance(1)
    with pytest.raises(BrokerUnavailable, match="did not return within 90 s"):
        adapter.connect()  # abandoned; the next attempt after the backoff delay
    clock.advance(0.5)
    with pytest.raises(BrokerUnavailable, match="has not returned yet"):
        adapter.connect()  # the terminal thread is still stuck in it: nothing else is sent
    assert fake.calls["initialize"] == 1
    release.set()
    wait_until(lambda: adapter.busy is None)
    clock.advance(1.0)
    adapter.connect()
    assert fake.calls["initialize"] == 2 and adapter.reconnects == 1
    move(fake, clock, clock.now() + 120)
    adapter.poll()
    move(fake, clock, clock.now() + 60)
    assert len(bars_of(adapter.poll().bars, BTC)) == 1


def test_an_order_send_past_its_deadline_is_an_unknown_outcome_settled_by_reading(terminal: Any) -> None:
    adapter, fake, clock = terminal(call_deadline_s=0.3)
    release = fake.hang_order_send()
    assert adapter.order_send(deal(GOLD, "buy", 0.1, magic=777001)) is None
    code, _ = adapter.last_error()
    assert code == -10005 and not adapter.connected
    release.set()  # the terminal executes it after all
    wait_until(lambda: adapter.busy is None)
    clock.advance(1)
    adapter.connect()
    assert [p.volume for p in adapter.positions(magic=777001)] == [0.1]


def test_a_broken_bridge_is_a_lost_link_and_nothing_is_lost(terminal: Any) -> None:
    adapter, fake, clock = terminal()
    fake.raise_next(1, EOFError("stream has been closed"))
    move(fake, clock, T0 + 120)
    with pytest.raises(BrokerUnavailable, match="EOFError"):
        adapter.poll()
    move(fake, clock, T0 + 240)
    adapter.connect()
    assert bars_of(adapter.poll().bars, GOLD) == [T0 + 60, T0 + 120, T0 + 180]


def test_login_checks_never_reveal_the_secrets(terminal: Any, tmp_path: Path, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    adapter, fake, clock = terminal(connect=False)
    fake.account_login = 7770777
    with pytest.raises(BrokerUnavailable, match="another account") as other:
        adapter.connect()
    wrong = Credentials(login=CREDENTIALS.login, server=CREDENTIALS.server, password="Wr0ng-secret-pass")
    adapter.close()
    second = TerminalBroker(settings(tmp_path, "mt5"), wrong, lambda: fake, clock)
    try:
        with pytest.raises(BrokerUnavailable, match="-6") as refused:
            second.connect()
    finally:
        second.close()
    text = " ".join([str(other.value), str(refused.value), caplog.text, repr(wrong)])
    for secret in (str(CREDENTIALS.login), "7770777", CREDENTIALS.password, "Wr0ng-secret-pass"):
        assert secret not in text


def test_one_terminal_and_one_account_have_one_gateway(terminal: Any, tmp_path: Path) -> None:
    adapter, fake, clock = terminal()
    with pytest.raises(LockHeld, match="terminal"):
        TerminalBroker(settings(tmp_path, "mt5"), CREDENTIALS, lambda: fake, clock)
    with pytest.raises(LockHeld, match="trading account"):
        TerminalBroker(settings(tmp_path, "mt5", path="D:/other/terminal64.exe"), CREDENTIALS, lambda: fake, clock)
    adapter.close()
    again = TerminalBroker(settings(tmp_path, "mt5"), CREDENTIALS, lambda: fake, clock)
    again.close()


def test_specs_come_from_the_terminal_after_symbol_select(terminal: Any) -> None:
    spec = {"trade_stops_level": 30, "trade_freeze_level": 5, "volume_min": 0.1, "volume_step": 0.1}
    adapter, fake, _ = terminal(sim={"symbols": {GOLD: {"spec": spec}}})
    gold = adapter.symbol_spec(GOLD)
    assert (gold.trade_stops_level, gold.trade_freeze_level, gold.volume_min, gold.volume_step) == (30, 5, 0.1, 0.1)
    assert fake.calls["symbol_select"] == 2 and adapter.symbol_spec(BTC).trade_contract_size == 1.0
    with pytest.raises(ValueError, match="unknown symbol"):
        adapter.symbol_spec("EURUSDm")


def test_golds_last_bars_before_the_break_are_published_on_time(terminal: Any) -> None:
    evening = T0 + 10 * 3600 + 50 * 60  # 20:50 UTC; gold's summer break starts at 21:00
    xau: list[Row] = [(3300.0 + k, 3300.5 + k, 3299.5 + k, 3300.2 + k) for k in range(10)]
    btc: list[Row] = [(100_000.0 + k, 100_001.0 + k, 99_999.0 + k, 100_000.5 + k) for k in range(80)]  # not frozen
    adapter, fake, clock = terminal(xau, btc, t0=evening, connect=False)
    core = GatewayCore(adapter, GatewaySection(), clock)
    assert core.connect()
    published: list[tuple[float, Bar]] = []
    beats: dict[float, GatewayHeartbeat] = {}
    for step in range(2, 80):
        t = evening + step * 30
        move(fake, clock, t)
        published += [(t, bar) for _, bar in core.poll() if isinstance(bar, Bar) and bar.symbol == GOLD]
        beat = core.heartbeat()[1]
        assert isinstance(beat, GatewayHeartbeat)
        beats[t] = beat
    m1 = [(t, bar.time) for t, bar in published if bar.timeframe == "M1"]
    assert [time for _, time in m1] == [evening + 60 * k for k in range(1, 10)]
    assert max(t for t, _ in m1) == evening + 10 * 60 + 30  # 21:00:30, the first poll after the grace
    [(at, m5)] = [(t, bar) for t, bar in published if bar.timeframe == "M5" and bar.time == evening + 300]
    assert at == evening + 630 and (m5.open, m5.close, m5.high) == (3305.0, 3309.2, 3309.5)
    assert beats[evening + 1800].symbols[GOLD].reason == "market_closed"
    assert beats[evening + 1800].symbols[BTC].ok


def test_the_gateway_core_serves_every_request_from_the_terminal(terminal: Any) -> None:
    adapter, fake, clock = terminal(connect=False)
    core = GatewayCore(adapter, GatewaySection(), clock)
    assert core.connect()
    move(fake, clock, T0 + 120)
    core.poll()
    sim = fake.sim
    order = OrderSendRequest(ts=0, request=deal(GOLD, "buy", 0.1, magic=777001, comment="leg-1"))
    refused = core.handle_request("strategy_xau", order)
    assert isinstance(refused, ErrorReply) and refused.code == "forbidden" and adapter.positions() == []
    sent = core.handle_request("executor", order)
    assert isinstance(sent, OrderSendReply) and sent.result is not None and sent.result.retcode == 10009
    positions = core.handle_request("risk", PositionsRequest(ts=0, magic=777001))
    assert isinstance(positions, PositionsReply) and positions.positions == tuple(sim.positions())
    close = deal(GOLD, "sell", 0.1, magic=777001, position=sent.result.order)
    assert isinstance(core.handle_request("executor", OrderSendRequest(ts=0, request=close)), OrderSendReply)
    deals = core.handle_request("risk", DealsRequest(ts=0, since=T0, magic=777001))
    assert isinstance(deals, DealsReply) and deals.deals == tuple(sim.deals(T0))
    history = core.handle_request("strategy_btc", HistoryRequest(ts=0, symbol=BTC, timeframe="M1", count=1))
    assert isinstance(history, HistoryReply) and history.bars == tuple(sim.history(BTC, "M1", 1))
    spec = core.handle_request("strategy_btc", SymbolSpecRequest(ts=0, symbol=BTC))
    assert isinstance(spec, SymbolSpecReply) and spec.spec == sim.symbol_spec(BTC)
    account = core.handle_request("telegram", AccountRequest(ts=0))
    assert isinstance(account, AccountReply)
    assert account.account.model_dump(exclude={"id", "ts", "login"}) == sim.account().model_dump(
        exclude={"id", "ts", "login"})
