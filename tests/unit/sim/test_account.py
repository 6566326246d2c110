"""Money: exact P&L to the cent, commission, swap, margin, and equity = balance + floating at every step."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.gateway_mt5.sim.broker import SimBroker
from services.gateway_mt5.sim.ledger import money
from tests.unit.sim.helpers import T0, broker, deal, expected_profit, filled, flat


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    symbol=st.sampled_from(["XAUUSDm", "BTCUSDm"]),
    side=st.sampled_from(["buy", "sell"]),
    ticks_open=st.integers(min_value=1_000_000, max_value=5_000_000),
    move=st.integers(min_value=-200_000, max_value=200_000),
    lots=st.integers(min_value=1, max_value=300),
    commission=st.sampled_from([0.0, 3.5, 7.0, 0.35]),
)
def test_realised_profit_is_exact_to_the_cent(
    tmp_path: Path, *, symbol: str, side: str, ticks_open: int, move: int, lots: int, commission: float,
) -> None:
    gold = symbol == "XAUUSDm"
    tick, digits, contract = (0.001, 3, 100) if gold else (0.01, 2, 1)
    first = round(ticks_open * tick, digits)
    second = round(max(ticks_open + move, 1) * tick, digits)
    volume = round(lots * 0.01, 2)
    rows = {"xau" if gold else "btc": [*flat(first, 1), *flat(second, 2)]}
    sim = broker(tmp_path, **rows, initial_balance=1e9,  # type: ignore[arg-type]
                 symbols={symbol: {"commission_per_lot": commission}})
    opened = filled(sim.order_send(deal(symbol, side, volume)))
    sim.advance_to(T0 + 120)
    [position] = sim.positions()
    close_price = position.price_current
    assert position.profit == expected_profit(side, opened.price, close_price, volume, contract)
    closing = "sell" if side == "buy" else "buy"
    filled(sim.order_send(deal(symbol, closing, volume, position=opened.order)))
    [exit_deal] = sim.deals(0)
    per_side = money(commission * volume)
    assert exit_deal.profit == expected_profit(side, opened.price, close_price, volume, contract)
    assert exit_deal.commission == -per_side
    assert sim.account().balance == round(1e9 + exit_deal.profit - 2 * per_side, 2)
    assert sim.account().equity == sim.account().balance


def test_money_rounds_half_away_from_zero() -> None:
    assert [money(x) for x in (0.125, -0.125, 0.135, 2.675, -2.675, 0.0049999)] == [
        0.13, -0.13, 0.14, 2.68, -2.68, 0.0,
    ]


def test_commission_is_charged_on_entry_and_exit(tmp_path: Path) -> None:
    sim = broker(tmp_path, xau=flat(3300.0, 5), symbols={"XAUUSDm": {"commission_per_lot": 7.0}})
    ticket = filled(sim.order_send(deal("XAUUSDm", "buy", 0.3))).order
    assert sim.account().balance == 1000.0 - 2.1
    filled(sim.order_send(deal("XAUUSDm", "sell", 0.3, position=ticket)))
    assert sim.deals(0)[0].commission == -2.1
    assert sim.account().balance == round(1000.0 - 2.1 - 6.0 - 2.1, 2)


def test_swap_accrues_at_midnight_and_triples_on_wednesday(tmp_path: Path) -> None:
    tuesday_2350 = T0 + 13 * 3600 + 50 * 60
    rows = flat(3300.0, 60 * 49)  # to Thursday 00:50
    sim = broker(tmp_path, xau=rows, t0=tuesday_2350,
                 symbols={"XAUUSDm": {"swap_long_per_lot": -5.0, "hours": {"daily_break": False}}})
    ticket = filled(sim.order_send(deal("XAUUSDm", "buy", 0.1))).order
    sim.advance_to(tuesday_2350 + 20 * 60)  # past Wednesday 00:00: Tuesday's night
    assert sim.positions()[0].swap == -0.5
    sim.advance_to(tuesday_2350 + 24 * 3600 + 20 * 60)  # past Thursday 00:00: Wednesday's night, x3
    assert sim.positions()[0].swap == -2.0
    account = sim.account()
    assert account.equity == round(account.balance + account.profit - 2.0, 2)
    filled(sim.order_send(deal("XAUUSDm", "sell", 0.1, position=ticket)))
    assert sim.deals(0)[0].swap == -2.0
    assert sim.account().balance == round(1000.0 - 2.0 - 2.0, 2)  # spread 0.2 * 10 + swap


def test_margin_formula(tmp_path: Path) -> None:
    sim = broker(tmp_path, xau=flat(3300.0, 5), btc=flat(100_000.0, 5), leverage=100)
    filled(sim.order_send(deal("XAUUSDm", "buy", 0.05)))
    filled(sim.order_send(deal("BTCUSDm", "sell", 0.05)))
    account = sim.account()
    assert account.margin == round(0.05 * 100 * 3300.2 / 100 + 0.05 * 1 * 100_000.0 / 100, 2)
    assert account.margin_free == round(account.equity - account.margin, 2)
    assert account.margin_level == round(account.equity / account.margin * 100, 2)
    assert account.leverage == 100


def check_account(sim: SimBroker) -> None:
    account = sim.account()
    positions = sim.positions()
    floating = round(sum(p.profit for p in positions), 2)
    assert account.profit == floating
    assert account.equity == round(account.balance + floating + sum(p.swap for p in positions), 2)
    for p in positions:
        contract = 100 if p.symbol == "XAUUSDm" else 1
        assert p.profit == expected_profit(p.side, p.price_open, p.price_current, p.volume, contract)


def test_equity_is_balance_plus_floating_at_every_step_of_a_real_replay(replay_broker: SimBroker) -> None:
    sim = replay_broker
    for symbol in ("XAUUSDm", "BTCUSDm"):
        bid = sim.tick(symbol)
        assert bid is not None
        for side, sign in (("buy", -1), ("sell", 1)):
            sl = round(bid.bid + sign * (5 if symbol == "XAUUSDm" else 800), 2)
            tp = round(bid.bid - sign * (5 if symbol == "XAUUSDm" else 800), 2)
            filled(sim.order_send(deal(symbol, side, 0.01, sl=sl, tp=tp)))
    closed = 0
    for _ in range(60):
        update = sim.poll()
        closed += len(update.deals)
        check_account(sim)
    assert closed >= 1  # the levels are hit within the 60 polls of 100 bars
