"""The gateway core over the simulated broker, driven by a fake clock."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from services.gateway_mt5.core import GatewayCore
from services.gateway_mt5.runner import make_broker
from shared import mt5
from shared.clock import FakeClock
from shared.config import load_config
from shared.messages import (
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
    SymbolSpecRequest,
    TradeRequest,
)

CONFIG = load_config(Path(__file__).resolve().parents[3] / "configs" / "system.toml")


@pytest.fixture
def gateway() -> tuple[GatewayCore, FakeClock]:
    clock = FakeClock()
    core = GatewayCore(make_broker(CONFIG, clock), CONFIG.system.gateway, clock)
    assert core.connect()
    return core, clock


def run(core: GatewayCore, clock: FakeClock, seconds: int) -> list[Bar]:
    """Replay ``seconds`` of wall time (60x: one M1 bar per symbol per second); return the bars published."""
    bars: list[Bar] = []
    for _ in range(seconds):
        clock.advance(1.0)
        bars += [message for _, message in core.poll() if isinstance(message, Bar)]
    return bars


def test_every_timeframe_is_published_once_and_in_order(gateway: tuple[GatewayCore, FakeClock]) -> None:
    core, clock = gateway
    bars = run(core, clock, 120)
    counts = Counter((bar.symbol, bar.timeframe) for bar in bars)
    assert counts[("BTCUSDm", "M1")] == 120 and counts[("BTCUSDm", "M5")] == 24 and counts[("BTCUSDm", "M15")] == 8
    for stream in counts:
        times = [bar.time for bar in bars if (bar.symbol, bar.timeframe) == stream]
        assert times == sorted(set(times)), f"{stream} has a duplicate or an out-of-order bar"
    m5 = next(bar for bar in bars if bar.symbol == "BTCUSDm" and bar.timeframe == "M5")
    parts = [bar for bar in bars if bar.symbol == "BTCUSDm" and bar.timeframe == "M1"
             and m5.time <= bar.time < m5.time + 300]
    assert (m5.open, m5.close) == (parts[0].open, parts[-1].close)
    assert (m5.high, m5.low) == (max(b.high for b in parts), min(b.low for b in parts))


def test_gold_is_reported_closed_in_its_daily_break(gateway: tuple[GatewayCore, FakeClock]) -> None:
    core, clock = gateway
    start = core.broker.start  # type: ignore[attr-defined]  # the SimBroker's first replayed minute
    break_starts = (int(start) // 86_400) * 86_400 + 21 * 3_600  # gold's summer break is 21:00-22:00 UTC
    before = run(core, clock, int(break_starts - start) // 60 + 10)  # to 21:10, one M1 bar per second at 60x
    beat = core.heartbeat()[1]
    assert isinstance(beat, GatewayHeartbeat)
    assert beat.symbols["XAUUSDm"].reason == "market_closed" and not beat.symbols["XAUUSDm"].ok
    assert beat.symbols["BTCUSDm"].ok
    during = run(core, clock, 40)
    assert not [bar for bar in during if bar.symbol == "XAUUSDm" and bar.timeframe == "M1"]
    assert [bar for bar in before if bar.symbol == "XAUUSDm"]


def test_only_the_executor_may_change_broker_state(gateway: tuple[GatewayCore, FakeClock]) -> None:
    core, clock = gateway
    run(core, clock, 2)
    order = TradeRequest(action=mt5.TRADE_ACTION_DEAL, symbol="BTCUSDm", volume=0.01, type=mt5.ORDER_TYPE_BUY,
                         magic=777001, comment="test-leg", type_filling=mt5.ORDER_FILLING_FOK)
    refused = core.handle_request("strategy_btc", OrderSendRequest(ts=0, request=order))
    assert isinstance(refused, ErrorReply) and refused.code == "forbidden"
    assert core.refused_requests == 1
    positions = core.handle_request("telegram", PositionsRequest(ts=0, magic=777001))
    assert isinstance(positions, PositionsReply) and positions.positions == ()
    filled = core.handle_request("executor", OrderSendRequest(ts=0, request=order))
    assert isinstance(filled, OrderSendReply) and filled.result is not None and filled.result.retcode == 10009
    positions = core.handle_request("telegram", PositionsRequest(ts=0, magic=777001))
    assert isinstance(positions, PositionsReply) and [p.comment for p in positions.positions] == ["test-leg"]


def test_history_and_deals_answer_from_the_broker(gateway: tuple[GatewayCore, FakeClock]) -> None:
    core, clock = gateway
    run(core, clock, 3)
    history = core.handle_request("strategy_xau", HistoryRequest(ts=0, symbol="XAUUSDm", timeframe="M15", count=10))
    assert isinstance(history, HistoryReply) and len(history.bars) == 10
    assert all(bar.close_time <= core.market_now for bar in history.bars)
    deals = core.handle_request("risk", DealsRequest(ts=0, since=0.0, magic=777001))
    assert isinstance(deals, DealsReply) and deals.deals == ()


def test_an_unknown_symbol_gets_an_error_reply(gateway: tuple[GatewayCore, FakeClock]) -> None:
    core, _ = gateway
    reply = core.handle_request("risk", SymbolSpecRequest(ts=0, symbol="EURUSDm"))
    assert isinstance(reply, ErrorReply) and reply.code == "unknown_symbol"
