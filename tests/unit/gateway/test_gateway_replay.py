"""The gateway core over the simulator: the shipped history replayed whole, and the heartbeat's reasons.

The replay runs both symbols' files through GatewayCore as fast as possible with positions open all
the time (re-armed as SL/TP close them, as the executor would), and checks at every poll: no bar lost
or duplicated on any timeframe, gold silent while its market is closed and the heartbeat saying so,
each exit deal published once with its profit exact to the cent, and equity = balance + floating.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from services.gateway_mt5.core import GatewayCore
from services.gateway_mt5.hours import PRESET_HOURS, MarketSchedule
from services.gateway_mt5.sim.broker import SimBroker
from services.gateway_mt5.sim.config import SimConfig
from shared.clock import FakeClock
from shared.config import GatewaySection
from shared.messages import (
    AccountSnapshot,
    Bar,
    DealClosed,
    GatewayHeartbeat,
    Message,
    OrderSendReply,
    OrderSendRequest,
    PositionsReply,
    PositionsRequest,
    Tick,
)
from tests.unit.sim.helpers import DATA, T0, Row, broker, deal, expected_profit
from tests.unit.sim.test_replay import batch, key

GOLD, BTC = "XAUUSDm", "BTCUSDm"
CONTRACT = {GOLD: 100.0, BTC: 1.0}
DISTANCE = {GOLD: (2.0, 3), BTC: (250.0, 2)}
GOLD_HOURS = MarketSchedule(PRESET_HOURS[GOLD])


def drifting(price: float, count: int) -> list[Row]:
    """``count`` bars rising a little each minute (flat bars in a row are a frozen feed to the gateway)."""
    return [(price + k, price + k + 1, price + k - 1, price + k + 0.5) for k in range(count)]


def beat(core: GatewayCore) -> GatewayHeartbeat:
    message = core.heartbeat()[1]
    assert isinstance(message, GatewayHeartbeat)
    return message


def rearm(core: GatewayCore, opened: dict[int, tuple[str, float]]) -> None:
    """Keep one buy and one sell per symbol open, sent as the executor sends them."""
    reply = core.handle_request("risk", PositionsRequest(ts=0, magic=4242))
    assert isinstance(reply, PositionsReply)
    held = {(p.symbol, p.side) for p in reply.positions}
    for symbol in (GOLD, BTC):
        tick = core._last_tick.get(symbol)
        if tick is None or not core.broker.market_open(symbol):
            continue
        distance, digits = DISTANCE[symbol]
        for side, sign in (("buy", 1), ("sell", -1)):
            if (symbol, side) in held:
                continue
            request = deal(symbol, side, 0.01, magic=4242, sl=round(tick.bid - sign * distance, digits),
                           tp=round(tick.bid + sign * distance, digits))
            sent = core.handle_request("executor", OrderSendRequest(ts=0, request=request))
            assert isinstance(sent, OrderSendReply) and sent.result is not None
            if sent.result.retcode == 10009:
                opened[sent.result.order] = (side, sent.result.price)


def closed_throughout(start: float, end: float) -> bool:
    """Whether gold's market is closed at every minute of (start, end]."""
    t = start + 1
    while t < end:
        if GOLD_HOURS.is_open(t):
            return False
        t += 60
    return not GOLD_HOURS.is_open(end)


def test_the_shipped_history_through_the_gateway(tmp_path: Path) -> None:
    sim = SimBroker(SimConfig(speed=0, max_bars_per_poll=120, initial_balance=100_000), FakeClock(), DATA)
    core = GatewayCore(sim, GatewaySection(), FakeClock())
    assert core.connect()
    start = sim.now
    streams: dict[tuple[str, str], list[Bar]] = defaultdict(list)
    deals: list[DealClosed] = []
    opened: dict[int, tuple[str, float]] = {}
    closed_polls = 0
    before = core.market_now or start
    while not sim.finished:
        rearm(core, opened)
        published: list[Message] = [message for _, message in core.poll()]
        now = core.market_now
        gold = [m for m in published if isinstance(m, Bar | Tick) and m.symbol == GOLD]
        if closed_throughout(before, now):
            closed_polls += 1
            assert not [m for m in gold if isinstance(m, Tick) or m.timeframe == "M1"]
            assert all(GOLD_HOURS.is_open(m.time) for m in gold if isinstance(m, Bar))  # windows ended at the close
        health = beat(core).symbols
        if not sim.finished:
            assert (health[GOLD].reason == "market_closed") is (not GOLD_HOURS.is_open(now)), now
            assert health[BTC].ok
        for message in published:
            if isinstance(message, Bar):
                streams[(message.symbol, message.timeframe)].append(message)
            elif isinstance(message, DealClosed):
                deals.append(message)
        snapshot = core.account_snapshot()
        assert snapshot is not None and isinstance(snapshot[1], AccountSnapshot)
        account = snapshot[1]
        floating = sum(p.profit + p.swap for p in sim.positions())
        assert account.equity == round(account.balance + floating, 2)
        before = now
    assert closed_polls > 10 and beat(core).symbols[BTC].reason == "replay_ended"
    for symbol in (GOLD, BTC):
        m1 = [b for b in batch(symbol, "M1") if b.close_time > start]
        assert [key(b) for b in streams[(symbol, "M1")]] == [key(b) for b in m1]
        for timeframe in ("M5", "M15"):
            want = [b for b in batch(symbol, timeframe) if b.time >= start and b.close_time <= sim.now]
            assert [key(b) for b in streams[(symbol, timeframe)]] == [key(b) for b in want], (symbol, timeframe)
    assert core.duplicate_bars == 0
    assert len(deals) > 100 and [d.ticket for d in deals] == [d.ticket for d in sim.deals(0)]
    for exit_deal in deals:
        side, price_open = opened[exit_deal.position_id]
        assert exit_deal.profit == expected_profit(side, price_open, exit_deal.price, exit_deal.volume,
                                                   CONTRACT[exit_deal.symbol])


def test_the_heartbeat_says_why_a_symbol_is_not_fresh(tmp_path: Path) -> None:
    evening = T0 + 10 * 3600 + 50 * 60  # 20:50 UTC Tuesday; gold's break is 21:00-22:00
    stale = {"symbol": BTC, "start": "2025-07-15T20:53:00", "end": "2025-07-15T20:58:00"}
    cut = {"start": "2025-07-15T21:02:00", "end": "2025-07-15T21:04:00"}
    sim = broker(tmp_path, xau=drifting(3300.0, 10), btc=drifting(100_000.0, 20), t0=evening, max_bars_per_poll=2,
                 faults={"stale": [stale], "disconnects": [cut]})
    core = GatewayCore(sim, GatewaySection(stale_after_s=120), FakeClock())
    assert core.connect()
    reasons: list[tuple[float, str, str]] = []
    assert {s: h.reason for s, h in beat(core).symbols.items()} == {GOLD: "no_data", BTC: "no_data"}
    for _ in range(22):
        core.poll()
        health = beat(core)
        reasons.append((core.market_now - evening, health.symbols[GOLD].reason, health.symbols[BTC].reason))
    first: dict[int, tuple[str, str]] = {}
    for seconds, gold, btc in reasons:
        first.setdefault(int(seconds // 60), (gold, btc))
    assert first[2] == ("ok", "ok")
    assert first[5] == ("ok", "stale")  # no BTC tick since 20:52:59, more than 120 s ago
    assert first[8] == ("ok", "ok")  # the stale window is over
    assert first[10] == ("market_closed", "ok")
    assert reasons[9][1:] == ("disconnected", "disconnected")  # the poll that ran into the outage
    assert first[16] == ("market_closed", "ok")  # reconnected after it
    assert reasons[-1][1:] == ("market_closed", "replay_ended")
