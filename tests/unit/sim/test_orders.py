"""order_send: opening, closing, modifying, and every refusal with MT5's retcode."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.gateway_mt5.sim.broker import SimBroker
from shared import mt5
from shared.messages import TradeRequest
from tests.unit.sim.helpers import T0, broker, deal, expected_profit, filled, flat, sltp

BID = 3300.0
ASK = 3300.2  # gold preset: 200 points of 0.001


@pytest.fixture
def sim(tmp_path: Path) -> SimBroker:
    return broker(tmp_path, xau=flat(BID, 30), btc=flat(100_000.0, 30))


def test_buy_fills_at_ask_and_sell_at_bid(sim: SimBroker) -> None:
    buy = filled(sim.order_send(deal("XAUUSDm", "buy", 0.1, magic=7, comment="leg-1")))
    sell = filled(sim.order_send(deal("XAUUSDm", "sell", 0.2)))
    assert (buy.price, buy.bid, buy.ask, buy.volume) == (ASK, BID, ASK, 0.1)
    assert sell.price == BID
    positions = {p.ticket: p for p in sim.positions()}
    assert positions[buy.order].side == "buy" and positions[buy.order].price_open == ASK
    assert positions[buy.order].magic == 7 and positions[buy.order].comment == "leg-1"
    assert positions[sell.order].side == "sell" and positions[sell.order].volume == 0.2
    assert buy.deal != buy.order and len({buy.deal, buy.order, sell.deal, sell.order}) == 4
    assert sim.last_error() == (1, "Success")


def test_hedging_keeps_opposite_positions_and_a_deal_without_position_opens_another(sim: SimBroker) -> None:
    filled(sim.order_send(deal("XAUUSDm", "buy", 0.1)))
    filled(sim.order_send(deal("XAUUSDm", "sell", 0.1)))
    sides = sorted(p.side for p in sim.positions("XAUUSDm"))
    assert sides == ["buy", "sell"]
    assert sim.account().margin == round(0.1 * 100 * ASK / 200 + 0.1 * 100 * BID / 200, 2)


def test_close_by_ticket_books_an_exit_deal_with_exact_profit(sim: SimBroker) -> None:
    opened = filled(sim.order_send(deal("XAUUSDm", "buy", 0.3)))
    closed = filled(sim.order_send(deal("XAUUSDm", "sell", 0.3, position=opened.order, magic=9, comment="x")))
    assert closed.price == BID
    assert sim.positions() == []
    [exit_deal] = sim.deals(0)
    assert (exit_deal.entry, exit_deal.reason, exit_deal.position_id) == (1, 3, opened.order)
    assert exit_deal.side == "sell" and exit_deal.magic == 9 and exit_deal.comment == "x"
    assert exit_deal.profit == expected_profit("buy", ASK, BID, 0.3, 100) == -6.0
    assert sim.account().balance == 1000.0 - 6.0


def test_partial_close_leaves_the_rest_open(sim: SimBroker) -> None:
    opened = filled(sim.order_send(deal("BTCUSDm", "sell", 0.05)))
    filled(sim.order_send(deal("BTCUSDm", "buy", 0.02, position=opened.order)))
    [position] = sim.positions()
    assert position.ticket == opened.order and position.volume == 0.03
    assert sim.deals(0)[0].volume == 0.02


def test_modify_sets_removes_and_reports_no_change(sim: SimBroker) -> None:
    ticket = filled(sim.order_send(deal("XAUUSDm", "buy", 0.1))).order
    filled(sim.order_send(sltp("XAUUSDm", ticket, 3290.0, 3310.0)))
    assert (sim.positions()[0].sl, sim.positions()[0].tp) == (3290.0, 3310.0)
    same = sim.order_send(sltp("XAUUSDm", ticket, 3290.0, 3310.0))
    assert same is not None and same.retcode == 10025
    filled(sim.order_send(sltp("XAUUSDm", ticket, 0.0, 3310.0)))
    assert (sim.positions()[0].sl, sim.positions()[0].tp) == (0.0, 3310.0)


def test_comment_longer_than_31_characters_returns_none_with_last_error(sim: SimBroker) -> None:
    assert sim.order_send(deal("XAUUSDm", "buy", 0.1, comment="c" * 32)) is None
    assert sim.last_error() == (-2, 'Invalid "comment" argument')
    assert sim.positions() == []
    filled(sim.order_send(deal("XAUUSDm", "buy", 0.1, comment="c" * 31)))


@pytest.mark.parametrize(
    ("trade_mode", "side", "retcode"),
    [(0, "buy", 10017), (1, "sell", 10042), (2, "buy", 10043), (3, "buy", 10044), (1, "buy", 10009)],
)
def test_trade_mode(tmp_path: Path, trade_mode: int, side: str, retcode: int) -> None:
    sim = broker(tmp_path, xau=flat(BID, 5), symbols={"XAUUSDm": {"spec": {"trade_mode": trade_mode}}})
    result = sim.order_send(deal("XAUUSDm", side, 0.1))
    assert result is not None and result.retcode == retcode


def test_a_restricted_trade_mode_still_closes(tmp_path: Path) -> None:
    sim = broker(tmp_path, xau=flat(BID, 5), symbols={"XAUUSDm": {"spec": {"trade_mode": 1}}})
    ticket = filled(sim.order_send(deal("XAUUSDm", "buy", 0.1))).order
    filled(sim.order_send(deal("XAUUSDm", "sell", 0.1, position=ticket)))  # long-only: closing is fine
    assert sim.positions() == []


def test_market_closed_in_the_daily_break(tmp_path: Path) -> None:
    friday_2050 = T0 + 3 * 86_400 + 10 * 3600 + 50 * 60  # Fri 2025-07-18 20:50 UTC
    sim = broker(tmp_path, xau=flat(BID, 5), btc=flat(100_000.0, 5))
    assert sim.market_open("XAUUSDm")
    sim.advance_to(friday_2050)
    assert sim.market_open("XAUUSDm") and sim.market_open("BTCUSDm")
    sim.advance_to(friday_2050 + 15 * 60)
    assert not sim.market_open("XAUUSDm") and sim.market_open("BTCUSDm")
    closed = sim.order_send(deal("XAUUSDm", "buy", 0.1))
    assert closed is not None and closed.retcode == 10018
    filled(sim.order_send(deal("BTCUSDm", "buy", 0.1)))


@pytest.mark.parametrize(
    ("filling_mode", "type_filling", "retcode"),
    [(3, 0, 10009), (3, 1, 10009), (3, 2, 10030), (3, 3, 10030), (1, 1, 10030), (2, 0, 10030), (2, 1, 10009)],
)
def test_filling_mode(tmp_path: Path, filling_mode: int, type_filling: int, retcode: int) -> None:
    sim = broker(tmp_path, xau=flat(BID, 5), symbols={"XAUUSDm": {"spec": {"filling_mode": filling_mode}}})
    request = deal("XAUUSDm", "buy", 0.1).model_copy(update={"type_filling": type_filling})
    result = sim.order_send(request)
    assert result is not None and result.retcode == retcode
    if retcode == 10009:
        close = deal("XAUUSDm", "sell", 0.1, position=result.order).model_copy(update={"type_filling": 2})
        refused = sim.order_send(close)
        assert refused is not None and refused.retcode == 10030


@pytest.fixture(scope="module")
def rich(tmp_path_factory: pytest.TempPathFactory) -> SimBroker:
    return broker(tmp_path_factory.mktemp("rich"), xau=flat(BID, 5), initial_balance=1e9)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(steps=st.integers(min_value=-5, max_value=21_000), noise=st.sampled_from([0.0, 0.001, 0.005, 1e-12]))
def test_volume_accepted_iff_within_limits_and_on_the_step(rich: SimBroker, steps: int, noise: float) -> None:
    volume = max(steps * 0.01 + noise, 0.0)
    on_step = noise in (0.0, 1e-12)
    valid = on_step and 0.01 - 1e-9 <= volume <= 200 + 1e-9
    result = rich.order_send(deal("XAUUSDm", "buy", volume))
    assert result is not None
    assert result.retcode == (10009 if valid else 10014), (volume, result)


@pytest.mark.parametrize(
    ("side", "sl", "tp", "stops_level", "retcode"),
    [
        ("buy", 3300.5, 0.0, 0, 10016),     # SL above the bid
        ("buy", 0.0, 3299.0, 0, 10016),     # TP below the bid
        ("buy", 3300.0, 0.0, 0, 10016),     # SL at the bid: refused even at stops level 0
        ("buy", 3299.999, 3300.001, 0, 10009),
        ("sell", 3300.1, 0.0, 0, 10016),    # SL below the ask
        ("sell", 0.0, 3300.3, 0, 10016),    # TP above the ask
        ("sell", 3301.0, 3299.0, 0, 10009),
        ("buy", 3299.6, 0.0, 500, 10016),   # 400 points < stops level 500
        ("buy", 3299.5, 3300.5, 500, 10009),  # exactly 500 points: allowed
        ("sell", 3300.6, 0.0, 500, 10016),
        ("sell", 3300.7, 3299.7, 500, 10009),
        ("buy", 3299.0005, 0.0, 0, 10016),  # not a multiple of the tick size
    ],
)
def test_stops_validation(
    tmp_path: Path, *, side: str, sl: float, tp: float, stops_level: int, retcode: int,
) -> None:
    sim = broker(tmp_path, xau=flat(BID, 5), symbols={"XAUUSDm": {"spec": {"trade_stops_level": stops_level}}})
    result = sim.order_send(deal("XAUUSDm", side, 0.1, sl=sl, tp=tp))
    assert result is not None and result.retcode == retcode
    if retcode == 10009:
        [position] = sim.positions()
        assert (position.sl, position.tp) == (sl, tp)


def test_stops_are_normalised_to_digits(sim: SimBroker) -> None:
    result = filled(sim.order_send(deal("XAUUSDm", "buy", 0.1, sl=3290.0000000001, tp=3310.1 + 1e-10)))
    position = sim.positions()[0]
    assert position.ticket == result.order and (position.sl, position.tp) == (3290.0, 3310.1)


def test_modify_checks_stops_against_the_current_price(sim: SimBroker) -> None:
    ticket = filled(sim.order_send(deal("XAUUSDm", "sell", 0.1))).order
    wrong = sim.order_send(sltp("XAUUSDm", ticket, 3299.0, 0.0))  # SL of a sell below the ask
    assert wrong is not None and wrong.retcode == 10016


def test_freeze_level_blocks_modify_and_close(tmp_path: Path) -> None:
    sim = broker(tmp_path, xau=flat(BID, 5), symbols={"XAUUSDm": {"spec": {"trade_freeze_level": 100}}})
    ticket = filled(sim.order_send(deal("XAUUSDm", "buy", 0.1, sl=3299.95))).order  # 50 points under bid
    modify = sim.order_send(sltp("XAUUSDm", ticket, 3299.0, 0.0))
    close = sim.order_send(deal("XAUUSDm", "sell", 0.1, position=ticket))
    assert modify is not None and modify.retcode == 10029
    assert close is not None and close.retcode == 10029
    far = filled(sim.order_send(deal("XAUUSDm", "buy", 0.1, sl=3299.0))).order  # 1000 points away
    filled(sim.order_send(deal("XAUUSDm", "sell", 0.1, position=far)))


def test_not_enough_free_margin(sim: SimBroker) -> None:
    # 1000 USD at 1:200 carries 0.6 lot of gold at 3300 (margin 990.06), not 0.61 (1006.6)
    filled(sim.order_send(deal("XAUUSDm", "buy", 0.6)))
    refused = sim.order_send(deal("XAUUSDm", "buy", 0.01))
    assert refused is not None and refused.retcode == 10019
    assert len(sim.positions()) == 1
    assert sim.account().margin == round(0.6 * 100 * ASK / 200, 2)


@pytest.mark.parametrize("bad", ["unknown", "closed", "same_side", "too_big", "other_symbol"])
def test_close_refusals(sim: SimBroker, bad: str) -> None:
    ticket = filled(sim.order_send(deal("XAUUSDm", "buy", 0.1))).order
    if bad == "closed":
        filled(sim.order_send(deal("XAUUSDm", "sell", 0.1, position=ticket)))
    request = {
        "unknown": deal("XAUUSDm", "sell", 0.1, position=999_999),
        "closed": deal("XAUUSDm", "sell", 0.1, position=ticket),
        "same_side": deal("XAUUSDm", "buy", 0.1, position=ticket),
        "too_big": deal("XAUUSDm", "sell", 0.2, position=ticket),
        "other_symbol": deal("BTCUSDm", "sell", 0.1, position=ticket),
    }[bad]
    expected = {"unknown": 10013, "closed": 10036, "same_side": 10013, "too_big": 10038, "other_symbol": 10013}
    result = sim.order_send(request)
    assert result is not None and result.retcode == expected[bad]
    modify = sim.order_send(sltp("XAUUSDm", 999_999, 3290.0, 0.0))
    assert modify is not None and modify.retcode == 10013


def test_unsupported_requests(sim: SimBroker) -> None:
    pending = TradeRequest(action=mt5.TRADE_ACTION_PENDING, symbol="XAUUSDm", volume=0.1, price=3290.0, type=2)
    limit_type = deal("XAUUSDm", "buy", 0.1).model_copy(update={"type": 2})
    unknown_symbol = deal("EURUSDm", "buy", 0.1)
    codes = [r.retcode if r else None for r in map(sim.order_send, (pending, limit_type, unknown_symbol))]
    assert codes == [10013, 10035, 10013]
    assert sim.positions() == []


def test_no_quote_before_the_first_bar(tmp_path: Path) -> None:
    sim = broker(tmp_path, xau=flat(BID, 5), start_bars=0)
    result = sim.order_send(deal("XAUUSDm", "buy", 0.1))
    assert result is not None and result.retcode == 10021
