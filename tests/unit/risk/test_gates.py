"""Every gate refuses with its own rule name, publishes SignalRejected and never raises."""

from __future__ import annotations

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
    fill_report,
    heartbeat,
    new_core,
    only_plan,
    ready,
    refused_by,
    rejections,
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
    core.handle(account(T0 + 1, balance=4000.0, equity=3780.0))  # -5.5 %
    assert refused_by(core.handle(signal(XAU, confidence=0.96))) == "regime"


def test_confidence_threshold_of_regime_a_and_b(config: LoadedConfig, clock: FakeClock) -> None:
    core = ready(new_core(config, clock))
    assert refused_by(core.handle(signal(XAU, confidence=0.79))) == "confidence"
    core.handle(account(T0 + 1, balance=4000.0, equity=3900.0))  # -2.5 %: B needs 0.90 on gold
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
