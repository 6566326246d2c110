"""The core's plans, reports, broadcasts, requests and health line; properties over many signals."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.risk.core import plan_id_for
from services.risk.health import health_key
from shared import topics
from shared.clock import FakeClock
from shared.config import LoadedConfig, load_config
from shared.messages import (
    Bar,
    ErrorReply,
    ExecutorStatus,
    PositionAdopted,
    PositionData,
    PositionsReply,
    RiskState,
    RiskStateReply,
    RiskStateRequest,
    ServiceHeartbeat,
    SetTrading,
    Side,
)
from tests.unit.risk.helpers import (
    BTC,
    SHIPPED,
    T0,
    XAU,
    fill_report,
    heartbeat,
    new_core,
    only_plan,
    plans,
    ready,
    refused_by,
    set_pnl,
    signal,
    write_system_toml,
)


def test_the_plan_carries_deterministic_ids_and_everything_the_executor_needs(
    config: LoadedConfig, clock: FakeClock
) -> None:
    sig = signal(XAU, confidence=0.92, atr=1.0)
    out = ready(new_core(config, clock)).handle(sig)
    assert [(o.channel, o.topic) for o in out] == [("executor", "")]
    plan = only_plan(out)
    assert plan.plan_id == "XAU1752080340b" == plan_id_for(sig)
    assert [leg.leg_id for leg in plan.legs] == ["XAU1752080340b-1", "XAU1752080340b-2", "XAU1752080340b-3"]
    assert (plan.signal_id, plan.symbol, plan.side, plan.price) == (sig.id, XAU, "buy", 3300.2)
    assert (plan.magic, plan.deviation_points, plan.regime) == (777001, 50, "A")
    assert (plan.confidence, plan.reasons, plan.ts) == (0.92, ("ema stack",), T0)
    assert plan.expires_at == T0 - 60 + 60 + 90  # the bar's close + signal_max_age_s
    assert sum(leg.volume for leg in plan.legs) == pytest.approx(0.41)


def test_the_same_signal_gives_the_same_ids_in_another_process(tmp_path: Path, clock: FakeClock) -> None:
    sig = signal(BTC, side="sell", confidence=0.86)
    first = only_plan(ready(new_core(load_config(write_system_toml(tmp_path / "a")), clock)).handle(sig))
    second = only_plan(ready(new_core(load_config(write_system_toml(tmp_path / "b")), clock)).handle(sig))
    assert first.plan_id == second.plan_id == "BTC1752080340s"
    assert first.legs == second.legs


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([XAU, BTC]), st.integers(-3, 3), st.sampled_from(["buy", "sell"])),
                min_size=1, max_size=12))
def test_no_plan_id_is_ever_produced_twice(steps: list[tuple[str, int, Side]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path, clock = Path(tmp) / "risk.sqlite", FakeClock(float(T0))
        core = ready(new_core(SHIPPED, clock, path))
        seen: list[str] = []
        bar = T0
        for index, (symbol, move, side) in enumerate(steps):
            bar += 60 * move  # bars go forward, repeat, or come late
            core.handle(heartbeat(max(core.market_now, bar + 60)))
            if index == len(steps) // 2:
                core = ready(new_core(SHIPPED, clock, path), ts=core.market_now)  # a restart half-way
            seen += [plan.plan_id for plan in plans(core.handle(signal(symbol, bar_time=bar, side=side)))]
        assert len(seen) == len(set(seen))


def test_execution_reports_are_forwarded_unchanged_and_counted_once(
    config: LoadedConfig, clock: FakeClock
) -> None:
    core = ready(new_core(config, clock))
    report = fill_report(only_plan(core.handle(signal(XAU))))
    for _ in range(2):  # the executor may repeat a report after its own restart
        out = core.handle(report)
        assert [(o.channel, o.topic, o.message) for o in out] == [("publish", topics.RISK_EXECUTION, report)]
    assert core.status().symbols[XAU].open_positions == 1


def test_the_broker_position_list_replaces_the_counts(config: LoadedConfig, clock: FakeClock) -> None:
    core = ready(new_core(config, clock))
    core.handle(fill_report(only_plan(core.handle(signal(XAU))), ticket=11))

    def position(ticket: int, symbol: str, magic: int = 777001) -> PositionData:
        return PositionData(ticket=ticket, symbol=symbol, side="buy", volume=0.01, price_open=100.0, sl=0.0,
                            tp=0.0, price_current=100.0, profit=0.0, magic=magic, time=T0)

    listed = (position(12, XAU), position(13, XAU), position(14, XAU, magic=1), position(15, BTC))
    core.handle(PositionsReply(ts=T0, parent="req", positions=listed))
    assert {s: st.open_positions for s, st in core.status().symbols.items()} == {XAU: 2, BTC: 1}


def test_the_state_broadcast_follows_its_cadence_in_market_time(config: LoadedConfig, clock: FakeClock) -> None:
    core = ready(new_core(config, clock))
    first = core.on_timer(0.0)
    assert [(o.channel, o.topic) for o in first] == [("publish", topics.RISK_STATE)]
    assert core.on_timer(0.5) == []
    state = core.on_timer(1.0)[0].message
    assert isinstance(state, RiskState)
    assert state.ts == T0 and state.trading_enabled and state.day_start_balance == 4000.0
    assert state.symbols[XAU].regime == "A" and state.symbols[XAU].data_ok


def test_the_health_line(config: LoadedConfig, clock: FakeClock) -> None:
    core = new_core(config, clock)
    assert core.health_line() == (
        "2025-07-09T17:00:00Z ok_xau=0 ok_btc=0 reason_xau=no_heartbeat reason_btc=no_heartbeat q=-1 "
        "regime_xau=A regime_btc=A trading=on age_gateway_mt5=- age_executor=- age_strategy_xau=- "
        "age_strategy_btc=- age_telegram=-"
    )
    ready(core)
    core.handle(ExecutorStatus(ts=T0, queue_len=3, sent_total=10))
    core.handle(ServiceHeartbeat(ts=0, service="strategy_xau"))
    set_pnl(core, T0 + 1, -1000.0)
    core.handle(heartbeat(T0 + 1, ok=False, market_open=False, reason="market closed"))
    core.set_trading(False, "owner")
    clock.advance(2.0)
    line = core.health_line()
    assert line == (
        "2025-07-09T17:00:02Z ok_xau=0 ok_btc=0 reason_xau=market_closed reason_btc=market_closed q=3 "
        "regime_xau=C regime_btc=C trading=off age_gateway_mt5=2.0 age_executor=2.0 age_strategy_xau=2.0 "
        "age_strategy_btc=- age_telegram=-"
    )
    assert re.fullmatch(r"\S+( \w+=\S+){13}", line)
    assert (health_key("XAUUSDm"), health_key("BTCUSDm"), health_key("EURUSDm")) == ("xau", "btc", "eurusdm")


def test_requests_on_the_router(config: LoadedConfig, clock: FakeClock) -> None:
    core = ready(new_core(config, clock))
    stop = SetTrading(ts=0, enabled=False, by="telegram:42")
    reply, out = core.handle_request(stop)
    assert isinstance(reply, RiskStateReply) and reply.parent == stop.id
    assert reply.state.trading_enabled is False
    assert [(o.topic, type(o.message)) for o in out] == [(topics.RISK_STATE, RiskState)]
    ask = RiskStateRequest(ts=0)
    reply, out = core.handle_request(ask)
    assert isinstance(reply, RiskStateReply) and reply.parent == ask.id and out == []
    reply, _ = core.handle_request(heartbeat(T0))
    assert isinstance(reply, ErrorReply) and reply.code == "unsupported"


def test_a_type_risk_does_not_take_is_counted_and_ignored(config: LoadedConfig, clock: FakeClock) -> None:
    core = new_core(config, clock)
    bar = Bar(ts=T0, symbol=XAU, timeframe="M1", time=T0 - 60, open=1.0, high=1.0, low=1.0, close=1.0,
              tick_volume=1, spread=1)
    assert core.handle(bar) == []
    assert core.ignored["Bar"] == 1


def test_a_switch_message_with_a_wall_clock_ts_does_not_move_market_time(
    config: LoadedConfig, clock: FakeClock
) -> None:
    core = ready(new_core(config, clock))
    core.handle_request(SetTrading(ts=T0 + 10 * 86400, enabled=True, by="owner"))
    core.handle(ExecutorStatus(ts=T0 + 10 * 86400, queue_len=0, sent_total=0))
    assert core.market_now == T0
    only_plan(core.handle(signal(XAU)))


# How a symbol gets locked: the day's P&L path (balance 4000) or the owner's switch.
LOCKS: dict[str, tuple[float, ...]] = {
    "loss": (-300.0,), "max_loss": (-900.0,), "profit_lock": (850.0, 800.0), "switch": (),
}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    symbol=st.sampled_from([XAU, BTC]),
    side=st.sampled_from(["buy", "sell"]),
    confidence=st.floats(0.0, 1.0),
    strength=st.floats(0.0, 1.0),
    bar_offset=st.integers(-2, 30),
    lock=st.sampled_from(sorted(LOCKS)),
    restart=st.booleans(),
)
def test_no_plan_ever_in_regime_c_or_with_the_switch_off(
    *, symbol: str, side: Side, confidence: float, strength: float, bar_offset: int, lock: str, restart: bool,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path, clock = Path(tmp) / "risk.sqlite", FakeClock(float(T0))
        core = ready(new_core(SHIPPED, clock, path))
        for minute, pnl in enumerate(LOCKS[lock], start=1):
            set_pnl(core, T0 + minute, pnl)
        if lock == "switch":
            core.set_trading(False, "owner")
        if restart:
            core = ready(new_core(SHIPPED, clock, path), ts=T0 + 5)
        for n in range(3):
            bar = T0 + 60 * (bar_offset + n)
            core.handle(heartbeat(max(core.market_now, bar + 60)))
            out = core.handle(signal(symbol, bar_time=bar, side=side, confidence=confidence,
                                     strength=max(strength, 1e-6)))
            assert plans(out) == []
            assert refused_by(out) == ("trading_switch" if lock == "switch" else "regime")


def test_the_state_names_the_last_signal_and_the_lock(config: LoadedConfig, clock: FakeClock) -> None:
    core = ready(new_core(config, clock))
    sent = signal(BTC, side="sell", confidence=0.5)
    core.handle(sent)
    state = core.status().symbols
    assert (state[BTC].last_signal_side, state[BTC].last_signal_at, state[BTC].last_signal_confidence) == (
        "sell", sent.ts, 0.5)
    assert state[XAU].last_signal_side is None and not state[BTC].trading_locked


def test_an_unknown_leg_later_reported_filled_counts_as_a_fill(config: LoadedConfig, clock: FakeClock) -> None:
    core = ready(new_core(config, clock))
    plan = only_plan(core.handle(signal(XAU)))
    core.handle(fill_report(plan, status="unknown"))
    assert core.status().symbols[XAU].open_positions == 0
    core.handle(fill_report(plan))  # the executor's reconciliation found it filled
    assert core.status().symbols[XAU].open_positions == 1
    assert refused_by(core.handle(signal(XAU, bar_time=T0, ts=T0 + 1))) == "cooldown"


def test_an_adopted_position_is_forwarded_for_the_owner(config: LoadedConfig, clock: FakeClock) -> None:
    core = ready(new_core(config, clock))
    adopted = PositionAdopted(ts=T0, ticket=9, symbol=XAU, side="buy", volume=0.01, price_open=3300.0, magic=777001)
    assert [(o.channel, o.topic, o.message) for o in core.handle(adopted)] == [
        ("publish", topics.RISK_EXECUTION, adopted)]
