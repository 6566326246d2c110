"""Every gate refuses with its own rule name, publishes SignalRejected and never raises."""

from __future__ import annotations

from pathlib import Path

from services.risk.core import RiskCore
from services.risk.rules import RULES
from services.risk.store import RiskStore
from shared import topics
from shared.clock import FakeClock
from shared.config import LoadedConfig
from shared.messages import Signal
from tests.unit.risk.helpers import (
    BTC,
    T0,
    XAU,
    XAU_SPEC,
    account,
    closing_deal,
    exec_report,
    fill_report,
    heartbeat,
    new_core,
    only_plan,
    ready,
    refused_by,
    rejections,
    set_pnl,
    signal,
    with_table,
)


def test_a_healthy_signal_passes_every_gate(config: LoadedConfig, clock: FakeClock) -> None:
    only_plan(ready(new_core(config, clock)).handle(signal(XAU)))


def test_a_refusal_is_published_on_the_rejected_topic_with_the_signal_id(
    config: LoadedConfig, clock: FakeClock
) -> None:
    core = ready(new_core(config, clock))
    weak = signal(XAU, confidence=0.5)
    out = core.handle(weak)
    assert [(o.channel, o.topic) for o in out] == [("publish", topics.RISK_REJECTED)]
    event = rejections(out)[0]
    assert (event.signal_id, event.symbol, event.rule) == (weak.id, XAU, "confidence")
    assert "0.500" in event.detail


def test_trading_switch(config: LoadedConfig, clock: FakeClock) -> None:
    core = ready(new_core(config, clock))
    core.set_trading(False, "owner")
    assert refused_by(core.handle(signal(XAU))) == "trading_switch"


def test_regime_c_refuses_every_signal(config: LoadedConfig, clock: FakeClock) -> None:
    core = ready(new_core(config, clock))
    set_pnl(core, T0 + 1, -220.0)  # -5.5 %
    assert refused_by(core.handle(signal(XAU, confidence=0.96))) == "regime"


def test_confidence_threshold_of_regime_a_and_b(config: LoadedConfig, clock: FakeClock) -> None:
    core = ready(new_core(config, clock))
    assert refused_by(core.handle(signal(XAU, confidence=0.79))) == "confidence"
    set_pnl(core, T0 + 1, -100.0)  # -2.5 %: B needs 0.90 on gold
    assert refused_by(core.handle(signal(XAU, bar_time=T0, confidence=0.89))) == "confidence"
    assert only_plan(core.handle(signal(XAU, bar_time=T0, confidence=0.90))).regime == "B"


def test_strength(config: LoadedConfig, clock: FakeClock) -> None:
    core = ready(new_core(config, clock))
    assert refused_by(core.handle(signal(XAU, strength=0.09))) == "strength"
    assert refused_by(core.handle(signal(BTC, strength=0.11))) == "strength"  # bitcoin needs 0.12


def test_stale_signal(config: LoadedConfig, clock: FakeClock) -> None:
    core = ready(new_core(config, clock))
    core.handle(heartbeat(T0 + 91))  # market time 91 s after the bar closed; 90 s allowed
    assert refused_by(core.handle(signal(XAU))) == "stale_signal"
    only_plan(core.handle(signal(XAU, bar_time=T0 + 30)))


def test_market_closed(config: LoadedConfig, clock: FakeClock) -> None:
    core = ready(new_core(config, clock))
    core.handle(heartbeat(T0, ok=False, market_open=False, reason="market_closed"))
    assert refused_by(core.handle(signal(XAU))) == "market_closed"


def test_stale_data_a_disconnected_broker_and_a_silent_gateway(config: LoadedConfig, clock: FakeClock) -> None:
    core = ready(new_core(config, clock))
    core.handle(heartbeat(T0, ok=False, reason="stale"))
    assert refused_by(core.handle(signal(XAU))) == "data_stale"
    core.handle(heartbeat(T0, connected=False))
    assert refused_by(core.handle(signal(XAU))) == "data_stale"
    core.handle(heartbeat(T0))
    clock.advance(6.0)  # five heartbeat intervals without a heartbeat
    out = core.handle(signal(XAU))
    assert refused_by(out) == "data_stale" and "gateway_silent" in rejections(out)[0].detail


def test_no_heartbeat_yet_means_data_not_ok(config: LoadedConfig, clock: FakeClock) -> None:
    core = new_core(config, clock)
    core.set_symbol_spec(XAU_SPEC)
    core.handle(account(T0))
    assert refused_by(core.handle(signal(XAU))) == "data_stale"


def test_broker_info_spec_then_account(config: LoadedConfig, clock: FakeClock) -> None:
    core = new_core(config, clock)
    core.handle(heartbeat(T0))
    out = core.handle(signal(XAU))
    assert refused_by(out) == "broker_info" and "spec" in rejections(out)[0].detail
    core.set_symbol_spec(XAU_SPEC)
    out = core.handle(signal(XAU))
    assert refused_by(out) == "broker_info" and "account" in rejections(out)[0].detail
    assert core.missing_broker_info() == [BTC, "account"]
    core.handle(account(T0))
    only_plan(core.handle(signal(XAU)))


def test_duplicate_bar(config: LoadedConfig, clock: FakeClock) -> None:
    core = ready(new_core(config, clock))
    only_plan(core.handle(signal(XAU)))
    assert refused_by(core.handle(signal(XAU))) == "duplicate"
    assert refused_by(core.handle(signal(XAU, side="sell"))) == "duplicate"  # one plan per bar, either side
    only_plan(core.handle(signal(BTC)))  # the other symbol has its own bars


def test_cooldown_after_a_fill_in_market_seconds(config: LoadedConfig, clock: FakeClock) -> None:
    core = ready(new_core(config, clock))
    plan = only_plan(core.handle(signal(XAU)))
    core.handle(fill_report(plan))  # filled at market time T0: cooldown until T0 + 60
    assert refused_by(core.handle(signal(XAU, bar_time=T0 - 30, ts=T0 + 30))) == "cooldown"
    core.handle(heartbeat(T0 + 60))
    only_plan(core.handle(signal(XAU, bar_time=T0)))


def test_a_rejected_leg_starts_no_cooldown(config: LoadedConfig, clock: FakeClock) -> None:
    core = ready(new_core(config, clock))
    plan = only_plan(core.handle(signal(XAU)))
    core.handle(fill_report(plan, status="rejected"))
    only_plan(core.handle(signal(XAU, bar_time=T0, ts=T0 + 1)))


def test_max_positions_counts_fills_minus_our_closing_deals(config: LoadedConfig, clock: FakeClock) -> None:
    config = with_table(config, XAU, "limits", cooldown_seconds=0.0)
    core = ready(new_core(config, clock))
    for n in range(3):
        plan = only_plan(core.handle(signal(XAU, bar_time=T0 + 60 * n, confidence=0.80)))
        assert len(plan.legs) == 1
        core.handle(fill_report(plan, ticket=100 + n))
        core.handle(heartbeat(T0 + 60 * n + 60))
    assert core.status().symbols[XAU].open_positions == 3
    assert refused_by(core.handle(signal(XAU, bar_time=T0 + 180))) == "max_positions"
    core.handle(closing_deal(T0 + 200, XAU, position_id=101, magic=999))  # not ours: still 3 open
    assert refused_by(core.handle(signal(XAU, bar_time=T0 + 181))) == "max_positions"
    core.handle(closing_deal(T0 + 200, XAU, position_id=101))
    assert core.status().symbols[XAU].open_positions == 2
    only_plan(core.handle(signal(XAU, bar_time=T0 + 182)))


def test_legs_are_capped_by_the_open_position_headroom(config: LoadedConfig, clock: FakeClock) -> None:
    config = with_table(config, XAU, "limits", cooldown_seconds=0.0)
    core = ready(new_core(config, clock))
    first = only_plan(core.handle(signal(XAU, confidence=0.85)))
    assert len(first.legs) == 2
    for index in range(2):
        core.handle(fill_report(first, leg=index, ticket=200 + index))
    assert len(only_plan(core.handle(signal(XAU, bar_time=T0, confidence=0.95))).legs) == 1


def test_max_signals_per_day(config: LoadedConfig, clock: FakeClock) -> None:
    core = ready(new_core(with_table(config, XAU, "limits", max_signals_per_day=1), clock))
    only_plan(core.handle(signal(XAU)))
    assert refused_by(core.handle(signal(XAU, bar_time=T0))) == "max_signals_per_day"


def test_max_trades_per_hour_over_a_sliding_hour(config: LoadedConfig, clock: FakeClock) -> None:
    config = with_table(config, XAU, "limits", max_trades_per_hour=2, cooldown_seconds=0.0)
    core = ready(new_core(config, clock))
    for n in range(2):
        core.handle(fill_report(only_plan(core.handle(signal(XAU, bar_time=T0 + 60 * n))), ticket=300 + n))
    assert refused_by(core.handle(signal(XAU, bar_time=T0 + 120))) == "max_trades_per_hour"
    core.handle(heartbeat(T0 + 3660))  # fills at T0 + 60 and T0 + 120: both within the hour still
    assert refused_by(core.handle(signal(XAU, bar_time=T0 + 3600))) == "max_trades_per_hour"
    core.handle(heartbeat(T0 + 3661))  # the first fill has left the window
    only_plan(core.handle(signal(XAU, bar_time=T0 + 3601)))


def test_unknown_symbol(config: LoadedConfig, clock: FakeClock) -> None:
    core = ready(new_core(config, clock))
    eur = Signal(ts=T0, symbol="EURUSDm", side="buy", net_norm=0.5, confidence=0.9, bar_time=T0 - 60,
                 price=1.1, atr=0.001, spread_points=10, timeframes=("M1",))
    assert refused_by(core.handle(eur)) == "unknown_symbol"


def test_sizing_refuses_without_a_positive_balance(config: LoadedConfig, clock: FakeClock) -> None:
    core = ready(new_core(config, clock), balance=0.0)
    assert refused_by(core.handle(signal(XAU))) == "sizing"


FRIDAY_2130 = 1_752_269_400  # Fri 2025-07-11 21:30 UTC
SUNDAY_2230 = 1_752_445_800  # Sun 2025-07-13 22:30 UTC


def test_market_hours_keep_gold_out_of_the_weekend_by_the_calendar(config: LoadedConfig, clock: FakeClock) -> None:
    core = ready(new_core(config, clock), ts=FRIDAY_2130)
    assert refused_by(core.handle(signal(XAU, bar_time=FRIDAY_2130 - 60))) == "market_hours"
    only_plan(core.handle(signal(BTC, bar_time=FRIDAY_2130 - 60)))  # bitcoin trades 24/7
    core.handle(heartbeat(SUNDAY_2230))
    only_plan(core.handle(signal(XAU, bar_time=SUNDAY_2230 - 60)))  # open again (the gateway says so too)


def test_the_session_filter(config: LoadedConfig, clock: FakeClock) -> None:
    config = with_table(config, XAU, "symbol", ignore_sessions=False, active_sessions=((7, 16),))
    core = ready(new_core(config, clock))  # 17:00 UTC
    out = core.handle(signal(XAU))
    assert refused_by(out) == "session" and "[7, 16]" in rejections(out)[0].detail
    config = with_table(config, XAU, "symbol", active_sessions=((7, 16), (17, 2)))  # the second wraps midnight
    only_plan(ready(new_core(config, clock)).handle(signal(XAU, bar_time=T0)))


def test_the_spread_breaker(config: LoadedConfig, clock: FakeClock) -> None:
    core = ready(new_core(config, clock))
    out = core.handle(signal(XAU, spread_points=2700))  # 2.7 / 3300 = 0.082 % > 0.08 %
    assert refused_by(out) == "spread" and "of the price" in rejections(out)[0].detail
    out = core.handle(signal(XAU, spread_points=501))  # 0.015 % of the price, but > exec_max_spread_points
    assert refused_by(out) == "spread" and "exec_max_spread_points" in rejections(out)[0].detail
    core = ready(new_core(with_table(config, XAU, "execution", max_spread_points=300.0), clock))
    out = core.handle(signal(XAU, spread_points=301))
    assert refused_by(out) == "spread" and "max_spread_points" in rejections(out)[0].detail
    only_plan(core.handle(signal(XAU, spread_points=300)))


def test_a_slow_leg_trips_the_latency_breaker_then_the_latency_cooldown(config: LoadedConfig, clock: FakeClock) -> None:
    core = ready(new_core(config, clock))
    core.handle(exec_report(XAU, 1, status="rejected", latency_ms=400.0))  # >= rtt_cb_ms: 120 s; >= 250 ms: 300 s
    out = core.handle(signal(XAU))
    assert refused_by(out) == "latency_breaker" and "120s left" in rejections(out)[0].detail
    core.handle(heartbeat(T0 + 120))
    assert refused_by(core.handle(signal(XAU, bar_time=T0 + 60))) == "latency_cooldown"
    core.handle(heartbeat(T0 + 300))
    only_plan(core.handle(signal(XAU, bar_time=T0 + 240)))
    core.handle(exec_report(BTC, 2, status="rejected", latency_ms=249.0))  # below both limits
    only_plan(core.handle(signal(BTC, bar_time=T0 + 240)))


def test_the_monitor_pauses_on_the_reject_rate_and_starts_a_fresh_window(
    config: LoadedConfig, clock: FakeClock
) -> None:
    config = with_table(with_table(config, XAU, "limits", cooldown_seconds=0.0), XAU, "risk", max_positions=50)
    core = ready(new_core(config, clock))
    for n in range(4):
        core.handle(exec_report(XAU, n))
    for n in range(4, 9):
        core.handle(exec_report(XAU, n, status="rejected"))
        core.handle(exec_report(XAU, n, status="rejected"))  # a repeated report counts once
    only_plan(core.handle(signal(XAU)))  # 9 reports: below exec_min_samples 10
    core.handle(exec_report(XAU, 9, status="unknown"))  # 6 of 10 failed > 50 %
    out = core.handle(signal(XAU, bar_time=T0))  # market time T0 + 60; paused from T0 until T0 + 120
    assert refused_by(out) == "exec_quality" and "60s left" in rejections(out)[0].detail
    core.handle(heartbeat(T0 + 120))
    core.handle(exec_report(XAU, 10, status="rejected", ts=T0 + 120))  # the old window is gone
    only_plan(core.handle(signal(XAU, bar_time=T0 + 60)))


def test_the_monitor_pauses_on_p95_latency_p95_slippage_and_the_slippage_ewma(
    config: LoadedConfig, tmp_path: Path
) -> None:
    config = with_table(with_table(config, XAU, "limits", cooldown_seconds=0.0), XAU, "risk", max_positions=50)
    config = with_table(config, XAU, "execution", latency_rtt_ms_limit=0, rtt_cb_ms=0, exec_max_p95_latency_ms=100.0)
    cases: list[tuple[LoadedConfig, float, float, str]] = [  # (config, latency ms, slippage points, reason)
        (config, 101.0, 0.0, "p95 latency"),
        (config, 12.0, 21.0, "p95 slippage"),
        # EWMA (alpha 0.2) of 0 x 7 then 40 x 3: 8.0, 14.4, 19.5 > 15 on the tenth report only
        (with_table(config, XAU, "execution", exec_max_p95_slippage_points=1000.0), 12.0, 40.0, "EWMA"),
    ]
    for index, (case_config, latency, slippage, expected) in enumerate(cases):
        core = ready(RiskCore(case_config, RiskStore(tmp_path / f"{index}.sqlite"), FakeClock(float(T0))))
        for n in range(10):
            bad = n >= 7
            core.handle(exec_report(XAU, n, latency_ms=latency if bad else 12.0,
                                    slippage_points=slippage if bad else 0.0))
        out = core.handle(signal(XAU, ts=T0 + 1))
        assert refused_by(out) == "exec_quality", expected
        assert expected in rejections(out)[0].detail


def test_max_signals_per_hour_counts_plans_over_a_sliding_hour(config: LoadedConfig, clock: FakeClock) -> None:
    core = ready(new_core(with_table(config, BTC, "limits", max_signals_per_hour=2), clock))
    for n in range(2):
        only_plan(core.handle(signal(BTC, bar_time=T0 + 60 * n, ts=T0 + 60 * n + 60)))
    assert refused_by(core.handle(signal(BTC, bar_time=T0 + 120, ts=T0 + 180))) == "max_signals_per_hour"
    core.handle(heartbeat(T0 + 3660))
    assert refused_by(core.handle(signal(BTC, bar_time=T0 + 3600))) == "max_signals_per_hour"
    core.handle(heartbeat(T0 + 3661))  # the first plan (at T0 + 60) has left the window
    only_plan(core.handle(signal(BTC, bar_time=T0 + 3601)))


def test_rules_are_listed_once_each_in_one_place() -> None:
    names = [rule.name for rule in RULES]
    assert len(names) == len(set(names)) == 20
    assert names[:2] == ["trading_switch", "regime"]  # the owner and the hard stop come first


def test_a_signal_from_a_day_ahead_is_refused_and_does_not_move_market_time(
    config: LoadedConfig, clock: FakeClock
) -> None:
    core = ready(new_core(config, clock))
    day = core.day
    future = signal(XAU, bar_time=T0 + 3 * 86_400)
    assert refused_by(core.handle(future)) == "from_the_future"
    assert core.day == day and core.market_now == T0
    only_plan(core.handle(signal(XAU)))  # the good signal right after still trades
