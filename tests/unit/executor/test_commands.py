"""The owner's commands against the simulated broker: /tek_prof, /stop_ls and close all.

The expected prices are worked out by hand from the issue's formula (profit_per_tick = tick value x
volume; ticks = usd / profit_per_tick; delta = ticks x tick size; BUY: TP = open + delta, SL = open -
delta; SELL mirrored), not by calling the code under test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.executor.commands import protection_price
from shared.messages import (
    CloseAll,
    CommandReply,
    OrderLeg,
    OrderSendRequest,
    PositionsRequest,
    SetProtection,
    SymbolSpec,
)
from tests.unit.executor.helpers import START, Bench, plan, sim_broker

XAU = SymbolSpec(name="XAUUSDm", digits=3, point=0.001, trade_tick_size=0.001, trade_tick_value=0.1,
                 trade_contract_size=100, volume_min=0.01, volume_max=200, volume_step=0.01,
                 trade_stops_level=0, trade_freeze_level=0, trade_mode=4, filling_mode=3, spread=200)


def opened(tmp_path: Path, symbols: dict[str, dict[str, Any]] | None = None) -> Bench:
    """Open: gold BUY 0.1 @ 3300.200 and 0.03 @ 3300.200, gold SELL 0.1 @ 3300.000, bitcoin BUY 0.05 @
    100010.00 and SELL 0.05 @ 100000.00 (each with the plan's SL and TP 10 / 1000 away)."""
    setup = Bench(tmp_path, sim_broker(tmp_path, symbols=symbols))
    setup.start()
    setup.accept(plan("XB", legs=1))
    setup.accept(plan("XS", side="sell"))
    setup.accept(plan("XB3", volume=0.03))
    setup.accept(plan("BB", symbol="BTCUSDm", volume=0.05))
    setup.accept(plan("BS", symbol="BTCUSDm", side="sell", volume=0.05))
    setup.drive()
    assert len(setup.positions()) == 5
    return setup


def answer(setup: Bench, command: SetProtection | CloseAll) -> CommandReply:
    out = setup.command(command) + setup.drive()
    [reply] = [m for m in out if isinstance(m, CommandReply)]
    assert reply.parent == command.id
    return reply


def levels(setup: Bench) -> dict[str, tuple[float, float]]:
    return {p.comment: (p.sl, p.tp) for p in setup.positions()}


def test_tek_prof_puts_every_tp_at_the_formulas_price_and_keeps_the_sl(tmp_path: Path) -> None:
    setup = opened(tmp_path)
    reply = answer(setup, SetProtection(ts=START, level="tp", usd=10.0, by="owner"))
    assert reply.ok and len(reply.lines) == 5 and all(line.ok for line in reply.lines)
    assert levels(setup) == {
        "XB-1": (3290.0, 3301.2),      # 0.1 lot: 0.01 USD a tick, 1000 ticks, 1.000 above the open 3300.200
        "XS-1": (3310.2, 3299.0),      # SELL: 1.000 below the open 3300.000
        "XB3-1": (3290.0, 3303.533),   # 0.03 lot: 3333.33 ticks -> 3.333 (to the tick) above 3300.200
        "BB-1": (99000.0, 100210.0),   # 0.05 lot: 0.0005 USD a tick, 20000 ticks = 200.00 above 100010.00
        "BS-1": (101010.0, 99800.0),   # SELL: 200.00 below 100000.00
    }
    xb = next(line.text for line in reply.lines if "3301.200" in line.text)
    assert "3310.000" in xb  # the line shows the old TP and the new one


def test_stop_ls_puts_every_sl_at_the_formulas_price_and_keeps_the_tp(tmp_path: Path) -> None:
    setup = opened(tmp_path)
    reply = answer(setup, SetProtection(ts=START, level="sl", usd=10.0, by="owner"))
    assert reply.ok and len(reply.lines) == 5
    assert levels(setup) == {
        "XB-1": (3299.2, 3310.0),
        "XS-1": (3301.0, 3290.2),
        "XB3-1": (3296.867, 3310.0),
        "BB-1": (99810.0, 101000.0),
        "BS-1": (100200.0, 99010.0),
    }


def test_a_command_for_one_symbol_leaves_the_other_alone(tmp_path: Path) -> None:
    setup = opened(tmp_path)
    before = levels(setup)
    reply = answer(setup, SetProtection(ts=START, level="tp", usd=5.0, symbol="BTCUSDm", by="owner"))
    after = levels(setup)
    assert len(reply.lines) == 2 and after["BB-1"] == (99000.0, 100110.0) and after["BS-1"] == (101010.0, 99900.0)
    assert {k: v for k, v in after.items() if k.startswith("X")} == {k: v for k, v in before.items()
                                                                      if k.startswith("X")}


def test_a_zero_tick_value_skips_the_position_and_says_so(tmp_path: Path) -> None:
    setup = opened(tmp_path)
    setup.link.spec_overrides = {"BTCUSDm": {"trade_tick_value": 0.0}}  # a terminal not yet synchronised
    before = levels(setup)
    reply = answer(setup, SetProtection(ts=START, level="tp", usd=10.0, by="owner"))
    skipped = [line for line in reply.lines if not line.ok]
    assert not reply.ok and len(skipped) == 2 and all("skipped" in line.text for line in skipped)
    after = levels(setup)
    assert after["BB-1"] == before["BB-1"] and after["BS-1"] == before["BS-1"]
    assert after["XB-1"] == (3290.0, 3301.2)


def test_a_level_inside_the_stops_level_is_refused_per_position(tmp_path: Path) -> None:
    setup = opened(tmp_path, symbols={"XAUUSDm": {"spec": {"trade_stops_level": 2000}}})  # 2.000 from the price
    reply = answer(setup, SetProtection(ts=START, level="tp", usd=10.0, symbol="XAUUSDm", by="owner"))
    verdicts = {line.text.split(" ")[0]: line.ok for line in reply.lines}
    tickets = {p.comment: f"#{p.ticket}" for p in setup.positions()}
    assert verdicts == {tickets["XB-1"]: False, tickets["XS-1"]: False, tickets["XB3-1"]: True}
    refused = [line.text for line in reply.lines if not line.ok]
    assert all("10016 TRADE_RETCODE_INVALID_STOPS" in text for text in refused)
    assert levels(setup)["XB-1"] == (3290.0, 3310.0) and levels(setup)["XB3-1"] == (3290.0, 3303.533)


def test_a_position_within_the_freeze_level_is_reported_frozen(tmp_path: Path) -> None:
    setup = Bench(tmp_path, sim_broker(tmp_path, symbols={"XAUUSDm": {"spec": {"trade_freeze_level": 5000}}}))
    setup.start()
    near = plan("XN").model_copy(update={"legs": (OrderLeg(leg_id="XN-1", volume=0.1, sl=3290.0, tp=3303.0),)})
    setup.accept(near)
    setup.drive()
    reply = answer(setup, SetProtection(ts=START, level="sl", usd=20.0, by="owner"))
    [line] = reply.lines
    assert not line.ok and "10029 TRADE_RETCODE_FROZEN" in line.text and "3290.000 -> 3298.200" in line.text


def test_close_all_per_symbol_then_everything(tmp_path: Path) -> None:
    setup = opened(tmp_path)
    reply = answer(setup, CloseAll(ts=START, symbol="BTCUSDm", by="owner"))
    assert reply.ok and len(reply.lines) == 2 and all(line.ok for line in reply.lines)
    assert sorted(p.comment for p in setup.positions()) == ["XB-1", "XB3-1", "XS-1"]
    closes = {d.position_id: d.price for d in setup.sim.deals(0)}
    assert sorted(closes.values()) == [100_000.0, 100_010.0]  # the BUY at the bid, the SELL at the ask
    reply = answer(setup, CloseAll(ts=START, by="owner"))
    assert reply.ok and len(reply.lines) == 3 and setup.positions() == []
    reply = answer(setup, CloseAll(ts=START, by="owner"))
    assert reply.ok and reply.lines == () and "nothing to close" in reply.summary
    reply = answer(setup, CloseAll(ts=START, symbol="EURUSDm", by="owner"))
    assert not reply.ok and "EURUSDm" in reply.summary


def test_a_close_whose_answer_is_lost_is_checked_not_repeated(tmp_path: Path) -> None:
    setup = opened(tmp_path)
    setup.command(CloseAll(ts=START, symbol="XAUUSDm", by="owner"))
    listing = setup.core.next_request()
    assert isinstance(listing, PositionsRequest)
    setup.take(setup.core.on_reply(setup.link(listing)))
    close = setup.core.next_request()
    assert isinstance(close, OrderSendRequest) and close.request.position > 0
    setup.link.mode = "lose_replies"  # the broker closes it; the answer never comes back
    setup.take(setup.core.on_reply(setup.link(close)))
    setup.link.mode = "up"
    [reply] = [m for m in setup.drive() if isinstance(m, CommandReply)]
    assert reply.ok and len(reply.lines) == 3 and [p.symbol for p in setup.positions()] == ["BTCUSDm"] * 2
    assert len(setup.sim.deals(0)) == 3  # one exit deal per position: nothing closed twice


@pytest.mark.parametrize(("side", "level", "expected"), [
    ("buy", "tp", 3301.235), ("buy", "sl", 3299.235), ("sell", "tp", 3299.235), ("sell", "sl", 3301.235),
])
def test_the_formula_on_a_gold_position(side: str, level: str, expected: float) -> None:
    price = protection_price(side=side, level=level, price_open=3300.235, volume=0.1, usd=10.0,  # type: ignore[arg-type]
                             spec=XAU)
    assert price == expected


def test_the_formula_refuses_a_zero_tick_value_and_a_price_below_zero() -> None:
    assert "skipped" in str(protection_price(side="buy", level="tp", price_open=3300.0, volume=0.1, usd=10.0,
                                             spec=XAU.model_copy(update={"trade_tick_value": 0.0})))
    assert "not a price" in str(protection_price(side="buy", level="sl", price_open=3300.0, volume=0.01,
                                                 usd=5000.0, spec=XAU))
