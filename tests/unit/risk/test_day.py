"""Whole trading days: every regime transition on a scripted P&L path, the profit lock, the midnight reset
(also over a weekend for bitcoin), restarts in the middle of each regime, and what moves the day's return."""

from __future__ import annotations

import pytest

from services.risk.store import RiskStore
from shared.clock import FakeClock
from shared.config import LoadedConfig
from shared.messages import DayStarted, DealsReply, PositionsReply, RiskState
from tests.unit.risk.helpers import (
    BTC,
    T0,
    XAU,
    account,
    closing_deal,
    db_path,
    fill_report,
    heartbeat,
    new_core,
    only_plan,
    published,
    ready,
    refused_by,
    set_pnl,
    signal,
    with_table,
)
from tests.unit.risk.scenario import FRI, WED, Day, at, day, events

__all__ = ["day"]  # the fixture


def test_a_losing_day_a_to_b_to_c_with_restarts_in_every_regime(day: Day) -> None:
    assert day.step("01:00", pnl=-40) == []  # -1 %
    assert day.restart() == [] and day.regimes() == {XAU: "A", BTC: "A"}
    assert day.step("02:00", pnl=-90) == [  # -2.25 %
        ("regime", XAU, "A", "B", "daily_loss_b"), ("regime", BTC, "A", "B", "daily_loss_b")]
    assert day.restart() == [] and day.regimes() == {XAU: "B", BTC: "B"}
    assert day.step("03:00", pnl=-60) == []  # back to -1.5 %: B holds for the day
    assert day.step("04:00", pnl=-130) == [  # -3.25 %: bitcoin's max_daily_loss_pct is 3 %
        ("regime", BTC, "B", "C", "max_daily_loss"), ("lock", BTC, "max_daily_loss")]
    assert day.step("05:00", pnl=-210) == [  # -5.25 %
        ("regime", XAU, "B", "C", "daily_loss_c"), ("lock", XAU, "daily_loss_c")]
    assert day.step("15:00", pnl=100) == []  # C holds for the day, whatever the P&L does
    assert day.restart() == []  # a hard stop at 15:00 is still a hard stop at 15:05
    day.step("15:05", pnl=100)
    state = day.core.status()
    assert day.regimes() == {XAU: "C", BTC: "C"} and state.symbols[XAU].trading_locked
    sig = signal(XAU, bar_time=int(day.now) - 60, confidence=0.99)
    assert refused_by(day.core.handle(sig)) == "regime"


def test_straight_from_a_to_c(day: Day) -> None:
    assert day.step("09:00", pnl=-500) == [
        ("regime", XAU, "A", "C", "max_daily_loss"), ("lock", XAU, "max_daily_loss"),
        ("regime", BTC, "A", "C", "max_daily_loss"), ("lock", BTC, "max_daily_loss")]


def test_the_profit_lock(config: LoadedConfig) -> None:
    day = Day(config, balance=1000.0)
    assert day.step("09:00", pnl=150) == []  # +15 %
    assert day.step("10:00", pnl=200) == [  # +20 %: the target
        ("regime", XAU, "A", "B", "daily_target"), ("regime", BTC, "A", "B", "daily_target")]
    assert day.step("10:30", pnl=204) == []  # +20.4 %: not yet 0.5 % past the target
    assert day.step("11:00", pnl=199) == []  # back below the target unarmed: B holds, no lock
    assert day.step("12:00", pnl=260) == []  # +26 %: armed, the peak is tracked
    assert day.restart() == []  # the peak survives a restart in B
    assert day.step("13:00", pnl=230) == []  # +23 %: still above the target
    assert day.step("14:00", pnl=200) == [  # back to the target: hard stop
        ("regime", XAU, "B", "C", "profit_lock"), ("lock", XAU, "profit_lock"),
        ("regime", BTC, "B", "C", "profit_lock"), ("lock", BTC, "profit_lock")]


def test_the_profit_lock_fires_when_the_return_drops_through_the_target_in_one_step(config: LoadedConfig) -> None:
    day = Day(config, balance=1000.0)
    day.step("10:00", pnl=206)  # +20.6 %: B and armed at once
    assert day.step("10:01", pnl=50)[:2] == [("regime", XAU, "B", "C", "profit_lock"), ("lock", XAU, "profit_lock")]


def test_the_drawdown_from_the_days_peak(config: LoadedConfig) -> None:
    day = Day(with_table(config, XAU, "risk", protect_drawdown_from_peak_pct=0.10))
    assert day.step("09:00", pnl=600) == []  # +15 %
    assert day.step("10:00", pnl=210) == []  # +5.25 %: 9.75 points below the peak
    assert day.step("10:30", pnl=200) == [  # +5 %: 10 points below the peak (gold only)
        ("regime", XAU, "A", "C", "drawdown_from_peak"), ("lock", XAU, "drawdown_from_peak")]
    assert day.regimes() == {XAU: "C", BTC: "A"}


def test_enforce_daily_limits_false_keeps_regime_a(config: LoadedConfig) -> None:
    day = Day(with_table(config, XAU, "risk", enforce_daily_limits=False))
    assert day.step("09:00", pnl=-2000) == [
        ("regime", BTC, "A", "C", "max_daily_loss"), ("lock", BTC, "max_daily_loss")]
    assert day.regimes() == {XAU: "A", BTC: "C"}


def test_ignore_daily_stop_for_trading_reports_c_but_trades_on_like_b(config: LoadedConfig) -> None:
    day = Day(with_table(config, XAU, "risk", ignore_daily_stop_for_trading=True))
    assert day.step("17:00", pnl=-210) == [  # -5.25 %: gold reports C without a lock
        ("regime", XAU, "A", "C", "daily_loss_c"), ("regime", BTC, "A", "C", "max_daily_loss"),
        ("lock", BTC, "max_daily_loss")]
    state = day.core.status().symbols
    assert (state[XAU].regime, state[XAU].trading_locked, state[BTC].trading_locked) == ("C", False, True)
    assert refused_by(day.core.handle(signal(XAU, bar_time=T0 - 60, confidence=0.89))) == "confidence"
    plan = only_plan(day.core.handle(signal(XAU, bar_time=T0, ts=T0 + 60, confidence=0.95)))
    assert plan.regime == "C" and [leg.volume for leg in plan.legs] == [0.2]  # half of 0.41, one leg


def test_positions_and_deals_of_other_magics_do_not_move_the_days_return(day: Day) -> None:
    assert day.step("09:00", pnl=0.0, external=-1000.0) == []  # equity -25 %, none of it ours
    out = day.core.handle(closing_deal(at(WED, "09:01"), XAU, position_id=77, magic=42, profit=-500.0))
    assert events(out) == []
    assert day.core.status().day_return == 0.0
    out = day.core.handle(closing_deal(at(WED, "09:02"), XAU, position_id=900, profit=-90.0))  # ours: -2.25 %
    assert events(out) == [("regime", XAU, "A", "B", "daily_loss_b"), ("regime", BTC, "A", "B", "daily_loss_b")]


def test_a_deal_counts_once_whether_published_or_reconciled(day: Day) -> None:
    deal = closing_deal(at(WED, "09:00"), BTC, position_id=500, profit=-50.0)
    day.core.handle(deal)
    day.core.handle(DealsReply(ts=deal.ts, parent="req", deals=(deal, deal)))
    assert day.core.status().day_return == pytest.approx(-50.0 / 4000)
    day.restart()  # the floating P&L is the last step's (0); the deal stays counted, once
    day.core.handle(DealsReply(ts=deal.ts, parent="req", deals=(deal,)))
    assert day.core.status().day_return == pytest.approx(-50.0 / 4000)


def test_with_ignore_external_positions_false_the_account_equity_counts(config: LoadedConfig) -> None:
    day = Day(with_table(config, BTC, "risk", ignore_external_positions=False))
    assert day.step("09:00", pnl=0.0, external=-90.0) == [("regime", BTC, "A", "B", "daily_loss_b")]


def test_midnight_resets_every_regime_with_new_anchors_and_announces_the_day(config: LoadedConfig) -> None:
    day = Day(with_table(config, XAU, "limits", max_signals_per_day=1))
    only_plan(day.core.handle(signal(XAU, bar_time=int(WED), ts=WED + 60)))
    day.step("20:00", pnl=-120)  # -3 %: gold B, bitcoin C
    assert day.regimes() == {XAU: "B", BTC: "C"}
    assert day.step("23:58", pnl=-100) == []
    assert day.close("23:59") == []
    assert day.step("00:00", pnl=0.0, days=1) == [
        ("day", "2025-07-10", "2025-07-09", -100.0),
        ("regime", XAU, "B", "A", "new_day"), ("regime", BTC, "C", "A", "new_day")]
    state = day.core.status()
    assert (state.day_start_balance, state.day_return) == (4000.0, 0.0)
    only_plan(day.core.handle(signal(XAU, bar_time=int(day.now), ts=day.now + 60)))  # the day's counter restarts
    assert day.restart() == []  # no second reset, no second announcement
    assert day.step("00:05", pnl=-40, days=1) == [] and day.regimes() == {XAU: "A", BTC: "A"}


def test_a_position_carried_over_midnight_counts_its_floating_in_the_new_day(day: Day) -> None:
    day.step("23:00", pnl=-60)  # -1.5 %, still open at midnight
    assert day.step("00:00", pnl=-100, days=1) == [  # the start is the balance, not the equity
        ("day", "2025-07-10", "2025-07-09", -60.0),
        ("regime", XAU, "A", "B", "daily_loss_b"), ("regime", BTC, "A", "B", "daily_loss_b")]


def test_bitcoin_resets_every_midnight_of_a_weekend(config: LoadedConfig) -> None:
    day = Day(config, start=FRI)
    assert day.step("20:00", pnl=-130)[0] == ("regime", XAU, "A", "B", "daily_loss_b")  # bitcoin C
    day.close("23:00")
    saturday = day.step("00:00", pnl=0.0, days=1)
    assert saturday[0] == ("day", "2025-07-12", "2025-07-11", -130.0)
    assert set(saturday[1:]) == {("regime", XAU, "B", "A", "new_day"), ("regime", BTC, "C", "A", "new_day")}
    sat_noon = at(FRI, "12:00", days=1)
    day.step("12:00", pnl=0.0, days=1)
    only_plan(day.core.handle(signal(BTC, bar_time=int(sat_noon) - 60, ts=sat_noon)))  # bitcoin trades
    assert refused_by(day.core.handle(signal(XAU, bar_time=int(sat_noon) - 60, ts=sat_noon))) == "market_hours"
    assert day.step("18:00", pnl=-130, days=1) == [("regime", XAU, "A", "B", "daily_loss_b"),
                                                    ("regime", BTC, "A", "C", "max_daily_loss"),
                                                    ("lock", BTC, "max_daily_loss")]
    day.close("23:00", days=1)
    assert day.step("00:00", pnl=0.0, days=2) == [("day", "2025-07-13", "2025-07-12", -130.0),
                                                  ("regime", XAU, "B", "A", "new_day"),
                                                  ("regime", BTC, "C", "A", "new_day")]
    assert day.restart() == []
    assert day.step("00:00", pnl=0.0, days=3) == [("day", "2025-07-14", "2025-07-13", 0.0)]


def test_the_day_opens_on_the_first_account_after_a_reset_without_one(config: LoadedConfig, clock: FakeClock) -> None:
    core = new_core(config, clock)
    out = core.handle(heartbeat(T0))  # market time known, no account yet: the day has no start balance
    assert published(out, DayStarted) == [] and core.status().day_start_balance == 0.0
    out = core.handle(account(T0 + 1, balance=5000.0, equity=4990.0))
    assert events(out) == [("day", "2025-07-09", None, 0.0)]
    assert core.status().day_start_balance == 5000.0
    assert events(core.handle(account(T0 + 2, balance=5000.0))) == []


def test_restart_on_the_same_file_resumes_c_and_the_switch_off(config: LoadedConfig, clock: FakeClock) -> None:
    first = ready(new_core(config, clock))
    set_pnl(first, T0 + 1, -300.0)  # hard stop at 17:00
    first.set_trading(False, "owner via telegram")
    assert refused_by(first.handle(signal(XAU, confidence=0.99))) == "trading_switch"

    second = ready(new_core(config, clock), ts=T0 + 300)  # a flat account: C must still hold
    state = second.status()
    assert (state.trading_enabled, state.trading_by) == (False, "owner via telegram")
    assert {s: v.regime for s, v in state.symbols.items()} == {XAU: "C", BTC: "C"}
    assert state.day_start_balance == 4000.0
    assert refused_by(second.handle(signal(XAU, bar_time=T0 + 240))) == "trading_switch"
    second.set_trading(True, "owner")
    assert refused_by(second.handle(signal(XAU, bar_time=T0 + 240, ts=T0 + 301))) == "regime"
    assert new_core(config, clock).status().trading_enabled is True  # the switch back on is remembered too


def test_restart_remembers_planned_bars_cooldowns_and_peak(config: LoadedConfig, clock: FakeClock) -> None:
    first = ready(new_core(config, clock))
    plan = only_plan(first.handle(signal(XAU)))
    first.handle(fill_report(plan))  # filled at market time T0: cooling down until T0 + 60
    set_pnl(first, T0 + 1, 100.0)
    second = ready(new_core(config, clock), ts=T0 + 2)
    assert refused_by(second.handle(signal(XAU))) == "duplicate"
    assert refused_by(second.handle(signal(XAU, bar_time=T0 - 30, ts=T0 + 2))) == "cooldown"
    anchors = RiskStore(db_path(config)).load_day()
    assert anchors is not None and (anchors.start_balance, anchors.peak_ours_pnl) == (4000.0, 100.0)


def test_the_state_reports_the_day_and_the_switch(config: LoadedConfig, clock: FakeClock) -> None:
    core = ready(new_core(config, clock))
    set_pnl(core, T0 + 1, 40.0)
    state = core.on_timer(0.0)[0].message
    assert isinstance(state, RiskState)
    assert (state.day_start_balance, state.day_return, state.trading_by) == (4000.0, 0.01, "first start")


def test_trading_is_on_at_the_first_start(config: LoadedConfig, clock: FakeClock) -> None:
    assert new_core(config, clock).status().trading_enabled is True
    assert RiskStore(db_path(config)).load_switch() == (True, "first start")


def test_a_closed_winner_counts_until_its_deal_arrives(config: LoadedConfig) -> None:
    """The position list may show a position gone before its exit deal arrives: no false profit lock."""
    day = Day(config, balance=1000.0)
    day.step("10:00", pnl=210.0)  # +21 %: B, profit lock armed
    day.core.handle(PositionsReply(ts=day.now, parent="poll", positions=()))  # closed at TP...
    assert day.core.awaiting_deals and day.regimes() == {XAU: "B", BTC: "B"}
    assert day.core.status().day_return == pytest.approx(0.21)
    deal = closing_deal(day.now + 1, XAU, position_id=900, profit=210.0)
    assert events(day.core.handle(deal)) == []  # ...and realised: nothing moved
    assert day.core.status().day_return == pytest.approx(0.21)
    assert day.core.awaiting_deals is False


def test_a_closed_position_without_a_deal_today_is_dropped_once_the_deals_are_fetched(day: Day) -> None:
    day.step("10:00", pnl=-60.0)
    day.core.handle(PositionsReply(ts=day.now, parent="poll", positions=()))
    assert day.core.status().day_return == pytest.approx(-0.015)
    day.core.handle(DealsReply(ts=day.now, parent="req", deals=()))
    assert not day.core.awaiting_deals and day.core.status().day_return == 0.0
