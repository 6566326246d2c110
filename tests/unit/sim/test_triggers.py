"""SL / TP / stop-out inside a bar: the tick path, fills at the level or through a gap, both symbols."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.gateway_mt5.broker import MarketUpdate
from services.gateway_mt5.sim.broker import SimBroker
from shared.messages import TradeResult
from tests.unit.sim.helpers import T0, Row, broker, deal, expected_profit, filled, flat

XAU = (3300.0, 3300.0, 3300.0, 3300.0)  # bid 3300.000, ask 3300.200
BTC = (100_000.0, 100_000.0, 100_000.0, 100_000.0)  # bid 100000.00, ask 100010.00


def run(
    tmp_path: Path, symbol: str, side: str, levels: tuple[float, float], bar: Row, **symbol_settings: object,
) -> tuple[SimBroker, TradeResult, MarketUpdate]:
    """Open at the first bar's close, replay ``bar``; return (broker, open result, update)."""
    first = XAU if symbol == "XAUUSDm" else BTC
    rows: list[Row] = [first, bar, first]
    gold = symbol == "XAUUSDm"
    sim = broker(tmp_path, xau=rows if gold else None, btc=None if gold else rows,
                 symbols={symbol: dict(symbol_settings)} if symbol_settings else None)
    opened = filled(sim.order_send(deal(symbol, side, 0.1, sl=levels[0], tp=levels[1])))
    update = sim.advance_to(T0 + 120)
    return sim, opened, update


@pytest.mark.parametrize(
    ("symbol", "side", "sl", "tp", "bar", "reason", "price", "second"),
    [
        # buy, bid path 3300 -> 3300.5 (nearer) -> 3298.5 -> 3299.5: SL at the level on the way down
        ("XAUUSDm", "buy", 3299.0, 3302.0, (3300.0, 3300.5, 3298.5, 3299.5), 4, 3299.0, 30),
        # buy, high nearer: TP on the way up at the level
        ("XAUUSDm", "buy", 3297.0, 3302.0, (3300.0, 3302.1, 3297.5, 3301.0), 5, 3302.0, 15),
        # both levels in range: the low is nearer, so the SL comes first
        ("XAUUSDm", "buy", 3299.0, 3302.0, (3300.0, 3302.5, 3298.9, 3301.0), 4, 3299.0, 15),
        # both in range, the high is nearer: the TP comes first
        ("XAUUSDm", "buy", 3299.0, 3302.0, (3300.0, 3302.1, 3297.0, 3298.0), 5, 3302.0, 15),
        # sell: ask = bid + 0.2; ask reaches 3301.1 >= SL 3301.0
        ("XAUUSDm", "sell", 3301.0, 3298.0, (3300.0, 3300.9, 3299.0, 3300.0), 4, 3301.0, 15),
        # sell: bid 3297.8 -> ask 3298.0 <= TP
        ("XAUUSDm", "sell", 3302.0, 3298.0, (3300.0, 3300.5, 3297.8, 3299.0), 5, 3298.0, 30),
        # sell: bid 3297.9 -> ask 3298.1 does NOT reach TP 3298.0 (compare the ask, not the bid)
        ("XAUUSDm", "sell", 3302.0, 3298.0, (3300.0, 3300.5, 3297.9, 3299.0), None, None, None),
        # buy: bid 3301.9 does not reach TP 3302.0 even though the ask would
        ("XAUUSDm", "buy", 3290.0, 3302.0, (3300.0, 3301.9, 3299.9, 3301.0), None, None, None),
        ("BTCUSDm", "buy", 99_900.0, 100_200.0, (100_000.0, 100_250.0, 99_950.0, 100_100.0), 5, 100_200.0, 30),
        ("BTCUSDm", "buy", 99_900.0, 100_200.0, (100_000.0, 100_050.0, 99_850.0, 99_990.0), 4, 99_900.0, 30),
        # sell: ask = bid + 10; bid 100_191 -> ask 100_201 >= SL 100_200
        ("BTCUSDm", "sell", 100_200.0, 99_800.0, (100_000.0, 100_191.0, 99_700.0, 100_100.0), 4, 100_200.0, 15),
        ("BTCUSDm", "sell", 100_200.0, 99_800.0, (100_000.0, 100_010.0, 99_790.0, 99_900.0), 5, 99_800.0, 30),
    ],
)
def test_levels_trigger_inside_the_bar(
    tmp_path: Path, *, symbol: str, side: str, sl: float, tp: float, bar: Row,
    reason: int | None, price: float | None, second: int | None,
) -> None:
    sim, opened, update = run(tmp_path, symbol, side, (sl, tp), bar)
    if reason is None:
        assert update.deals == [] and len(sim.positions()) == 1
        return
    [closed] = update.deals
    assert price is not None and second is not None
    contract = 100 if symbol == "XAUUSDm" else 1
    assert (closed.reason, closed.price, closed.entry, closed.position_id) == (reason, price, 1, opened.order)
    assert closed.time == T0 + 60 + second
    assert closed.side == ("sell" if side == "buy" else "buy")
    assert closed.profit == expected_profit(side, opened.price, price, 0.1, contract)
    assert closed.comment.startswith("[sl " if reason == 4 else "[tp ")
    assert sim.positions() == [] and sim.deals(0) == [closed]
    assert sim.account().balance == round(1000.0 + closed.profit, 2)


@pytest.mark.parametrize(
    ("side", "sl", "tp", "bar", "reason", "price"),
    [
        ("buy", 3299.0, 3302.0, (3298.0, 3298.5, 3297.0, 3298.2), 4, 3298.0),   # gaps below the SL: at the open
        ("buy", 3299.0, 3302.0, (3303.0, 3303.5, 3302.5, 3303.2), 5, 3303.0),   # gaps above the TP: better fill
        ("sell", 3301.0, 3298.0, (3301.5, 3302.0, 3301.0, 3301.8), 4, 3301.7),  # ask 3301.7 above the SL
        ("sell", 3301.0, 3298.0, (3297.0, 3297.5, 3296.0, 3297.2), 5, 3297.2),  # ask 3297.2 below the TP
    ],
)
def test_gap_through_fills_at_the_open(
    tmp_path: Path, *, side: str, sl: float, tp: float, bar: Row, reason: int, price: float,
) -> None:
    _, opened, update = run(tmp_path, "XAUUSDm", side, (sl, tp), bar)
    [closed] = update.deals
    assert (closed.reason, closed.price, closed.time) == (reason, price, T0 + 60)
    assert closed.profit == expected_profit(side, opened.price, price, 0.1, 100)


def test_slippage_makes_fills_worse(tmp_path: Path) -> None:
    settings = {"sl_slippage_points": 30, "tp_slippage_points": 5}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _, _, sl_update = run(tmp_path / "a", "XAUUSDm", "buy", (3299.0, 3302.0),
                          (3300.0, 3300.5, 3298.5, 3299.5), **settings)
    _, _, tp_update = run(tmp_path / "b", "XAUUSDm", "sell", (3302.0, 3298.0),
                          (3300.0, 3300.5, 3297.8, 3299.0), **settings)
    assert sl_update.deals[0].price == 3298.97  # a buy's SL sells lower
    assert tp_update.deals[0].price == 3298.005  # a sell's TP buys higher


def test_two_symbols_and_several_positions_on_one_clock(tmp_path: Path) -> None:
    xau: list[Row] = [XAU, (3300.0, 3300.5, 3298.5, 3299.5), XAU]
    btc: list[Row] = [BTC, (100_000.0, 100_050.0, 99_850.0, 99_990.0), BTC]
    sim = broker(tmp_path, xau=xau, btc=btc)
    gold_sl = filled(sim.order_send(deal("XAUUSDm", "buy", 0.1, sl=3299.0))).order
    gold_free = filled(sim.order_send(deal("XAUUSDm", "sell", 0.1))).order
    btc_sl = filled(sim.order_send(deal("BTCUSDm", "buy", 0.1, sl=99_900.0))).order
    update = sim.advance_to(T0 + 120)
    assert [(d.symbol, d.position_id) for d in update.deals] == [("XAUUSDm", gold_sl), ("BTCUSDm", btc_sl)]
    assert [p.ticket for p in sim.positions()] == [gold_free]


def test_stop_out_closes_the_worst_position(tmp_path: Path) -> None:
    rows: list[Row] = [XAU, (3300.0, 3300.0, 3280.0, 3290.0), XAU]
    sim = broker(tmp_path, xau=rows, stop_out_level_pct=50.0)
    ticket = filled(sim.order_send(deal("XAUUSDm", "buy", 0.6))).order
    update = sim.advance_to(T0 + 120)
    [closed] = update.deals
    assert (closed.reason, closed.position_id, closed.price) == (6, ticket, 3280.0)
    assert closed.profit == expected_profit("buy", 3300.2, 3280.0, 0.6, 100) == -1212.0
    assert sim.account().balance == round(1000.0 - 1212.0, 2)


def test_no_stop_out_while_margin_level_holds(tmp_path: Path) -> None:
    rows: list[Row] = [XAU, (3300.0, 3300.0, 3295.0, 3296.0), XAU]
    sim = broker(tmp_path, xau=rows, stop_out_level_pct=50.0)
    filled(sim.order_send(deal("XAUUSDm", "buy", 0.6)))
    assert sim.advance_to(T0 + 120).deals == []
    assert len(sim.positions()) == 1


def test_positions_without_levels_follow_the_close(tmp_path: Path) -> None:
    sim = broker(tmp_path, xau=[XAU, *flat(3310.0, 2)])
    filled(sim.order_send(deal("XAUUSDm", "buy", 0.1)))
    sim.advance_to(T0 + 120)
    [position] = sim.positions()
    assert position.price_current == 3310.0
    assert position.profit == expected_profit("buy", 3300.2, 3310.0, 0.1, 100) == 98.0
