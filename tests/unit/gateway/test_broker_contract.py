"""The Broker contract: one suite, run against the simulator and against the real adapter.

Each test runs three times (``kind``): on the SimBroker itself; on TerminalBroker driving the fake
MetaTrader5 module; and on TerminalBroker driving a real ``mt5linux`` client whose bridge serves the fake
module over a loopback socket. The market underneath is the same simulator, so the same actions must give
the same observable results: fills, positions, money, retcodes, None outcomes, bars and deals published
exactly once, and recovery after the terminal was unreachable.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from services.gateway_mt5.broker import Broker, BrokerUnavailable, MarketUpdate
from shared import mt5
from shared.messages import Bar, DealClosed, TradeRequest, TradeResult
from tests.unit.gateway.conftest import OpenVenue
from tests.unit.gateway.venues import Venue
from tests.unit.sim.helpers import T0, Row, deal, expected_profit, filled, flat, sltp

GOLD, BTC = "XAUUSDm", "BTCUSDm"
BID, ASK = 3300.0, 3300.2


def when(minutes: float) -> datetime:
    return datetime.fromtimestamp(T0 + minutes * 60, UTC)


def walk(start: float, count: int, step: float) -> list[Row]:
    """Bars that move: a zig-zag with real highs and lows."""
    rows: list[Row] = []
    price = start
    for k in range(count):
        move = step * (1 if k % 3 else -2)
        high, low = max(price, price + move) + step / 2, min(price, price + move) - step / 2
        rows.append((round(price, 2), round(high, 2), round(low, 2), round(price + move, 2)))
        price += move
    return rows


def equity_holds(broker: Broker) -> None:
    account = broker.account()
    floating = sum(p.profit + p.swap for p in broker.positions())
    assert account.equity == round(account.balance + floating, 2)


def test_open_fills_at_the_ask_and_shows_the_position(open_venue: OpenVenue) -> None:
    venue = open_venue(flat(BID, 10), flat(100_000.0, 10))
    broker = venue.broker
    spec = broker.symbol_spec(GOLD)
    assert (spec.digits, spec.point, spec.trade_contract_size, spec.filling_mode, spec.volume_step) == (
        3, 0.001, 100.0, 3, 0.01)
    opened = filled(broker.order_send(deal(GOLD, "buy", 0.1, sl=3295.0, tp=3310.0, magic=777001, comment="leg-1")))
    assert opened.price == ASK
    [pos] = broker.positions(magic=777001)
    assert (pos.ticket, pos.side, pos.volume, pos.price_open, pos.sl, pos.tp, pos.comment, pos.magic) == (
        opened.order, "buy", 0.1, ASK, 3295.0, 3310.0, "leg-1", 777001)
    assert pos.profit == expected_profit("buy", ASK, BID, 0.1, 100)
    assert broker.positions(magic=1) == [] and broker.positions(symbol=BTC) == []
    account = broker.account()
    assert account.margin == 165.01  # 0.1 lot * 100 oz * 3300.2 / leverage 200
    equity_holds(broker)


def collect(venue: Venue, minutes: list[float]) -> list[MarketUpdate]:
    return [venue.advance(T0 + m * 60) for m in minutes]


def test_sl_and_tp_hits_are_published_once_with_exact_profit(open_venue: OpenVenue) -> None:
    xau: list[Row] = [*flat(BID, 2), (3300.0, 3302.5, 3299.5, 3302.0), *flat(3302.0, 5)]
    btc: list[Row] = [*flat(100_000.0, 2), (100_000.0, 100_095.0, 99_990.0, 100_000.0), *flat(100_000.0, 5)]
    venue = open_venue(xau, btc)
    broker = venue.broker
    gold = filled(broker.order_send(deal(GOLD, "buy", 0.1, sl=3290.0, tp=3302.0)))
    bitcoin = filled(broker.order_send(deal(BTC, "sell", 0.01, sl=100_100.0, tp=99_000.0)))
    deals = [d for update in collect(venue, [2, 3, 4, 5]) for d in update.deals]
    by_symbol = {d.symbol: d for d in deals}
    assert len(deals) == 2 and set(by_symbol) == {GOLD, BTC}
    tp, sl = by_symbol[GOLD], by_symbol[BTC]
    assert (tp.position_id, tp.reason, tp.price, tp.side, tp.entry) == (gold.order, 5, 3302.0, "sell", 1)
    assert tp.profit == expected_profit("buy", ASK, 3302.0, 0.1, 100) == 18.0
    assert (sl.position_id, sl.reason, sl.price, sl.side) == (bitcoin.order, 4, 100_100.0, "buy")
    assert sl.profit == expected_profit("sell", 100_000.0, 100_100.0, 0.01, 1) == -1.0
    assert broker.positions() == []
    assert [d.ticket for d in broker.deals(T0)] == [d.ticket for d in sorted(deals, key=lambda d: (d.time, d.ticket))]
    assert broker.account().balance == 1000.0 + 18.0 - 1.0
    equity_holds(broker)


def test_modify_sets_keeps_and_removes_levels(open_venue: OpenVenue) -> None:
    broker = open_venue(flat(BID, 10), None).broker
    ticket = filled(broker.order_send(deal(GOLD, "sell", 0.05))).order
    assert filled(broker.order_send(sltp(GOLD, ticket, 3305.0, 3290.0))).retcode == 10009
    assert [(p.sl, p.tp) for p in broker.positions()] == [(3305.0, 3290.0)]
    same = broker.order_send(sltp(GOLD, ticket, 3305.0, 3290.0))
    assert same is not None and same.retcode == 10025
    filled(broker.order_send(sltp(GOLD, ticket, 3305.0, 0.0)))
    assert [(p.sl, p.tp) for p in broker.positions()] == [(3305.0, 0.0)]
    wrong_side = broker.order_send(sltp(GOLD, ticket, 3295.0, 0.0))  # an SL below the price of a sell
    assert wrong_side is not None and wrong_side.retcode == 10016


def test_close_by_ticket_publishes_the_exit_deal_once(open_venue: OpenVenue) -> None:
    venue = open_venue([*flat(BID, 2), *flat(3301.0, 5)], None)
    broker = venue.broker
    ticket = filled(broker.order_send(deal(GOLD, "buy", 0.2, magic=777001))).order
    venue.advance(T0 + 180)
    closed = filled(broker.order_send(deal(GOLD, "sell", 0.2, position=ticket, magic=777001, comment="close")))
    assert closed.price == 3301.0
    deals = [d for update in collect(venue, [4, 5]) for d in update.deals]
    [exit_deal] = deals
    assert (exit_deal.position_id, exit_deal.reason, exit_deal.price) == (ticket, mt5.DEAL_REASON_EXPERT, 3301.0)
    assert exit_deal.profit == expected_profit("buy", ASK, 3301.0, 0.2, 100) == 16.0
    again = broker.order_send(deal(GOLD, "sell", 0.2, position=ticket))
    assert again is not None and again.retcode == 10036
    assert broker.positions() == []


Action = Callable[[Broker], TradeResult | None]


def _send(request: TradeRequest) -> Action:
    return lambda broker: broker.order_send(request)


def _modify_frozen(broker: Broker) -> TradeResult | None:
    ticket = filled(broker.order_send(deal(GOLD, "buy", 0.1, sl=3299.6))).order
    return broker.order_send(sltp(GOLD, ticket, 3299.6, 3310.0))


def _close_twice(broker: Broker) -> TradeResult | None:
    ticket = filled(broker.order_send(deal(GOLD, "buy", 0.1))).order
    filled(broker.order_send(deal(GOLD, "sell", 0.1, position=ticket)))
    return broker.order_send(deal(GOLD, "sell", 0.1, position=ticket))


def _modify_same(broker: Broker) -> TradeResult | None:
    ticket = filled(broker.order_send(deal(GOLD, "buy", 0.1, sl=3290.0))).order
    return broker.order_send(sltp(GOLD, ticket, 3290.0, 0.0))


BUY = deal(GOLD, "buy", 0.1)
RETURN_FILL = TradeRequest(action=1, symbol=GOLD, volume=0.1, type=0, type_filling=mt5.ORDER_FILLING_RETURN)
SCENARIOS: dict[str, tuple[dict[str, Any], Action, int | None, mt5.RetcodeClass]] = {
    "done": ({}, _send(BUY), 10009, mt5.RetcodeClass.SUCCESS),
    "no_changes": ({}, _modify_same, 10025, mt5.RetcodeClass.SUCCESS),
    "requote": ({"faults": {"requote": 1.0}}, _send(deal(GOLD, "buy", 0.1, price=ASK)), 10004,
                mt5.RetcodeClass.RETRY_FRESH_PRICE),
    "price_changed": ({"faults": {"price_changed": 1.0}}, _send(BUY), 10020, mt5.RetcodeClass.RETRY_FRESH_PRICE),
    "price_off": ({"faults": {"price_off": 1.0}}, _send(BUY), 10021, mt5.RetcodeClass.RETRY_FRESH_PRICE),
    "invalid_fill": ({}, _send(RETURN_FILL), 10030, mt5.RetcodeClass.RETRY_OTHER_FILLING),
    "timeout": ({"faults": {"timeout": 1.0}}, _send(BUY), 10012, mt5.RetcodeClass.UNKNOWN),
    "none_filled": ({"faults": {"none_filled": 1.0}}, _send(BUY), None, mt5.RetcodeClass.UNKNOWN),
    "none_not_filled": ({"faults": {"none_not_filled": 1.0}}, _send(BUY), None, mt5.RetcodeClass.UNKNOWN),
    "invalid": ({}, _send(sltp(GOLD, 0, 3290.0, 0.0)), 10013, mt5.RetcodeClass.FINAL),
    "volume": ({}, _send(deal(GOLD, "buy", 0.001)), 10014, mt5.RetcodeClass.FINAL),
    "stops": ({}, _send(deal(GOLD, "buy", 0.1, sl=3301.0)), 10016, mt5.RetcodeClass.FINAL),
    "trade_disabled": ({"symbols": {GOLD: {"spec": {"trade_mode": 0}}}}, _send(BUY), 10017, mt5.RetcodeClass.FINAL),
    "no_money": ({}, _send(deal(GOLD, "buy", 10.0)), 10019, mt5.RetcodeClass.FINAL),
    "frozen": ({"symbols": {GOLD: {"spec": {"trade_freeze_level": 500}}}}, _modify_frozen, 10029,
               mt5.RetcodeClass.FINAL),
    "position_closed": ({}, _close_twice, 10036, mt5.RetcodeClass.FINAL),
    "close_only": ({"symbols": {GOLD: {"spec": {"trade_mode": 3}}}}, _send(BUY), 10044, mt5.RetcodeClass.FINAL),
    "comment_too_long": ({}, _send(deal(GOLD, "buy", 0.1, comment="x" * 32)), None, mt5.RetcodeClass.UNKNOWN),
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_retcode_class(open_venue: OpenVenue, scenario: str) -> None:
    sim_settings, action, retcode, expected_class = SCENARIOS[scenario]
    broker = open_venue(flat(BID, 10), None, **sim_settings).broker
    result = action(broker)
    assert (None if result is None else result.retcode) == retcode
    assert mt5.classify_retcode(None if result is None else result.retcode) is expected_class
    opened = [p for p in broker.positions() if p.volume == 0.1]
    if scenario == "none_filled":  # MT5 said nothing, yet the order was filled: an unknown outcome
        assert broker.last_error() == (mt5.RES_E_INTERNAL_FAIL_TIMEOUT, "IPC timeout") and len(opened) == 1
    if scenario in ("none_not_filled", "timeout", "requote", "price_off", "price_changed", "invalid_fill"):
        assert opened == []
    if scenario == "comment_too_long":
        assert broker.last_error() == (mt5.RES_E_INVALID_PARAMS, 'Invalid "comment" argument') and opened == []


def test_market_closed_in_golds_daily_break(open_venue: OpenVenue) -> None:
    evening = T0 + 10 * 3600 + 55 * 60  # 20:55 UTC, gold's summer break starts at 21:00
    venue = open_venue(flat(BID, 5), flat(100_000.0, 60), t0=evening)
    update = venue.advance(evening + 35 * 60)
    assert not venue.broker.market_open(GOLD) and venue.broker.market_open(BTC)
    assert [b.time for b in update.bars if b.symbol == GOLD][-1:] == [evening + 4 * 60]
    closed = venue.broker.order_send(BUY)
    assert closed is not None and closed.retcode == 10018
    filled(venue.broker.order_send(deal(BTC, "buy", 0.01)))


def stream(updates: list[MarketUpdate], symbol: str) -> list[int]:
    return [bar.time for update in updates for bar in update.bars if bar.symbol == symbol]


def test_a_lost_link_fails_every_call_and_recovery_back_fills_once(open_venue: OpenVenue) -> None:
    xau: list[Row] = [*flat(BID, 5), (3300.0, 3300.5, 3298.0, 3299.0), *flat(3299.0, 20)]
    venue = open_venue(xau, flat(100_000.0, 26), faults={"disconnects": [{"start": when(3), "end": when(8)}]})
    broker = venue.broker
    ticket = filled(broker.order_send(deal(GOLD, "buy", 0.1, sl=3299.0))).order
    updates = [venue.advance(T0 + 120)]
    with pytest.raises(BrokerUnavailable):
        venue.advance(T0 + 240)
    assert broker.order_send(deal(GOLD, "sell", 0.1, position=ticket)) is None
    assert broker.last_error()[0] == mt5.RES_E_INTERNAL_FAIL_CONNECT
    with pytest.raises(BrokerUnavailable):
        broker.positions()
    with pytest.raises(BrokerUnavailable):
        venue.advance(T0 + 420)
    updates += [venue.advance(T0 + 540), venue.advance(T0 + 600)]
    for symbol in (GOLD, BTC):
        assert stream(updates, symbol) == [T0 + 60 * k for k in range(1, 10)], symbol
    [stopped] = [d for update in updates for d in update.deals]
    assert (stopped.position_id, stopped.reason, stopped.time) == (ticket, 4, T0 + 5 * 60 + 30)
    assert broker.positions() == []
    equity_holds(broker)


def key(bar: Bar) -> tuple[object, ...]:
    return (bar.symbol, bar.timeframe, bar.time, bar.open, bar.high, bar.low, bar.close, bar.tick_volume,
            bar.spread, bar.id, bar.ts)


@pytest.mark.parametrize("seconds", [0, 25])
def test_history_is_the_last_closed_bars(open_venue: OpenVenue, seconds: int) -> None:
    venue = open_venue(walk(BID, 80, 0.37), walk(100_000.0, 80, 41.0), start_bars=40)
    venue.advance(T0 + 61 * 60 + seconds)
    for symbol in (GOLD, BTC):
        for timeframe, count in (("M1", 30), ("M5", 7), ("M15", 3)):
            got = venue.broker.history(symbol, timeframe, count)  # type: ignore[arg-type]
            want = venue.sim.history(symbol, timeframe, count)  # type: ignore[arg-type]
            assert [key(b) for b in got] == [key(b) for b in want], (symbol, timeframe)
            assert len(got) == count and got[-1].close_time <= T0 + 61 * 60 + seconds


def test_bars_and_deals_stream_exactly_once_in_order(open_venue: OpenVenue) -> None:
    venue = open_venue(walk(BID, 40, 0.4), walk(100_000.0, 40, 40.0))
    broker = venue.broker
    for side in ("buy", "sell"):
        filled(broker.order_send(deal(GOLD, side, 0.01, sl=3299.0 if side == "buy" else 3301.4,
                                      tp=3301.4 if side == "buy" else 3299.0)))
    updates = collect(venue, [m / 2 for m in range(3, 80)])
    for symbol in (GOLD, BTC):
        assert stream(updates, symbol) == [T0 + 60 * k for k in range(1, 39)]
    deals: list[DealClosed] = [d for update in updates for d in update.deals]
    assert deals and len({d.ticket for d in deals}) == len(deals)
    assert [d.ticket for d in deals] == [d.ticket for d in broker.deals(0)]
